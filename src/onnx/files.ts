/**
 * Reading untrusted files safely, and the one check every output path goes through.
 *
 * Reading: a file is opened non-blocking (a FIFO cannot hang the open), checked with fstat to be a
 * regular file (a FIFO, a socket or /dev/zero would block or never end), and read up to the size
 * fstat reported. Files a model names (external data) must also be no symlink and lie, by their
 * real path, inside the model's real folder, as onnx's checker requires.
 *
 * Writing: outputs are compared with inputs as real files (device + inode), never as path strings,
 * so `here/in.onnx` with `here -> .`, a hard link or the input's own sidecar are all caught.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GptError } from '../errors';

const O_NONBLOCK = fs.constants.O_NONBLOCK ?? 0;
const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;

function ioError(subject: string, e: unknown, what = 'cannot read the file'): GptError {
  if (e instanceof GptError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new GptError('E_IO', 'no such file', { subject });
  if (code === 'ELOOP') return new GptError('E_IO', 'is a symbolic link, which gpt does not follow here', { subject });
  return new GptError('E_IO', `${what} (${code ?? String(e)})`, { subject });
}

/** What kind of thing a non-regular file is, for the message. */
export function fileKind(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

/**
 * Open a regular file for reading: non-blocking, optionally refusing a symlink as the last path
 * component. Returns the fd and its fstat; the caller closes it.
 */
export function openRegular(file: string, subject: string, opts: { noFollow?: boolean; code?: 'E_IO' | 'E_EXTERNAL_DATA' | 'E_RULE' } = {}): { fd: number; st: fs.Stats } {
  if (typeof file !== 'string' || file.length === 0) {
    throw new GptError('E_ARG', `expected a file path, got ${file === '' ? 'an empty string' : typeof file}`, { subject: String(subject) });
  }
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | O_NONBLOCK | (opts.noFollow ? O_NOFOLLOW : 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (opts.code && opts.code !== 'E_IO' && (code === 'ENOENT' || code === 'ELOOP')) {
      throw new GptError(opts.code, code === 'ELOOP' ? 'is a symbolic link, which gpt does not follow' : 'no such file', { subject });
    }
    throw ioError(subject, e);
  }
  let st: fs.Stats;
  try {
    st = fs.fstatSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    throw ioError(subject, e);
  }
  if (!st.isFile()) {
    fs.closeSync(fd);
    throw new GptError(opts.code ?? 'E_IO', `is ${fileKind(st)}, not a regular file`, { subject, hint: 'give the path of a regular file' });
  }
  return { fd, st };
}

/** Read a whole regular file (never a FIFO or device), at most `maxBytes`. */
export function readRegularFile(file: string, subject = file, opts: { maxBytes?: number; noFollow?: boolean; code?: 'E_IO' | 'E_RULE' } = {}): Buffer {
  const { fd, st } = openRegular(file, subject, opts);
  try {
    const max = opts.maxBytes ?? Number.MAX_SAFE_INTEGER;
    if (st.size > max) {
      throw new GptError(opts.code ?? 'E_IO', `the file is ${st.size} bytes, over the limit of ${max}`, { subject });
    }
    if (st.size > 2 ** 32) throw new GptError('E_TOO_LARGE', `the file is ${(st.size / 2 ** 30).toFixed(1)} GiB; a model file is at most 2 GiB (weights go to external data)`, { subject });
    const buf = Buffer.allocUnsafe(st.size);
    let done = 0;
    while (done < st.size) {
      const n = fs.readSync(fd, buf, done, st.size - done, done);
      if (n === 0) break; // the file shrank while being read
      done += n;
    }
    return done === st.size ? buf : buf.subarray(0, done);
  } catch (e) {
    throw ioError(subject, e);
  } finally {
    fs.closeSync(fd);
  }
}

/** The real path of an existing file, or of a not-yet-existing file in an existing folder. */
export function realPathOf(p: string): string {
  const abs = path.resolve(p);
  try {
    return fs.realpathSync(abs);
  } catch {
    try {
      return path.join(fs.realpathSync(path.dirname(abs)), path.basename(abs));
    } catch {
      return abs;
    }
  }
}

/**
 * Check an external-data location named by a model: a plain relative path, whose real path lies
 * inside the model's real folder, that is no symlink (at any level under the folder) and, when it
 * exists, a regular file. Returns the absolute path to read.
 */
export function checkExternalPath(baseDir: string, location: string, tensorName: string): string {
  const bad = (why: string) => new GptError('E_EXTERNAL_DATA', `tensor '${tensorName}' has external location '${location}' ${why}`, {
    hint: 'external data must be a regular file in the model folder or below it, not a link',
  });
  if (location.includes('\0')) throw bad('with a NUL byte');
  if (path.isAbsolute(location) || /^[a-zA-Z]:/.test(location) || location.split(/[\\/]/).includes('..')) throw bad("outside the model's folder");
  let realBase: string;
  try {
    realBase = fs.realpathSync(baseDir);
  } catch {
    realBase = path.resolve(baseDir);
  }
  const target = path.resolve(realBase, location);
  // every component below the folder must be a plain folder or, last, a plain file: no links
  const parts = path.relative(realBase, target).split(path.sep).filter((s) => s && s !== '.');
  if (parts.length === 0) throw bad('that names the model folder itself');
  let cur = realBase;
  for (let i = 0; i < parts.length; i++) {
    cur = path.join(cur, parts[i]);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(cur);
    } catch {
      return target; // missing: reported as missing when read
    }
    if (st.isSymbolicLink()) throw bad(`through a symbolic link (${parts.slice(0, i + 1).join('/')})`);
    if (i < parts.length - 1 && !st.isDirectory()) throw bad('under something that is not a folder');
    if (i === parts.length - 1 && !st.isFile()) throw bad(`that is ${fileKind(st)}, not a regular file`);
  }
  const real = realPathOf(target);
  if (real !== realBase && !real.startsWith(realBase.endsWith(path.sep) ? realBase : realBase + path.sep)) throw bad("outside the model's folder");
  return target;
}

// ------------------------------------------------------------------------------------------------
// Outputs against inputs

/** A real file's identity. */
function identity(p: string): string | null {
  try {
    const st = fs.statSync(p);
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

/**
 * The one check for every output of a command: each output must not be (as a real file) any input,
 * any input's sidecar, or another output; its folder must exist and be writable; it must not be a
 * folder. `inputs` are files the command reads (models, their external data, rule files).
 */
export function checkOutputs(outputs: { path: string; flag: string }[], inputs: string[]): void {
  const inputIds = new Map<string, string>();
  for (const i of inputs) {
    const id = identity(i);
    if (id) inputIds.set(id, i);
  }
  const seen = new Map<string, string>();
  for (const o of outputs) {
    checkOutputPath(o.path);
    const id = identity(o.path);
    if (id && inputIds.has(id)) {
      const input = inputIds.get(id)!;
      throw new GptError('E_ARG', `${o.flag} ${o.path} is the input file${path.resolve(input) === path.resolve(o.path) ? '' : ` ${input} (the same file under another path)`}; gpt never writes over its inputs`, {
        subject: o.path, hint: 'write the output to a new file',
      });
    }
    const real = realPathOf(o.path);
    const key = id ?? `path:${real}`;
    const prior = seen.get(key);
    if (prior) throw new GptError('E_ARG', `${o.flag} ${o.path} is the same file as ${prior}`, { subject: o.path, hint: 'give each output its own file' });
    seen.set(key, `${o.flag} ${o.path}`);
  }
}

/** Fail early, naming the file, when `dest` cannot be written (missing or read-only folder, a folder). */
export function checkOutputPath(dest: string): void {
  if (typeof dest !== 'string' || dest.length === 0) throw new GptError('E_ARG', 'expected an output path', { subject: String(dest) });
  const dir = path.dirname(path.resolve(dest));
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new GptError('E_IO', `cannot write: folder ${dir} does not exist`, { subject: dest, hint: 'create the folder first' });
  }
  if (!st.isDirectory()) throw new GptError('E_IO', `cannot write: ${dir} is not a folder`, { subject: dest });
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new GptError('E_IO', `cannot write: folder ${dir} is not writable`, { subject: dest });
  }
  if (Buffer.byteLength(path.basename(dest)) > 255) throw new GptError('E_ARG', 'the output file name is over 255 bytes', { subject: dest });
  let out: fs.Stats | undefined;
  try {
    out = fs.statSync(dest);
  } catch {
    out = undefined;
  }
  if (out && out.isDirectory()) throw new GptError('E_IO', 'cannot write: the output path is a folder', { subject: dest });
  if (out && !out.isFile()) throw new GptError('E_IO', `cannot write: the output path is ${fileKind(out)}`, { subject: dest });
}
