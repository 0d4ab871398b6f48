/**
 * Loading and saving models: from/to a path or a Buffer, with external data (read lazily, written
 * to a sidecar above a size threshold), atomic writes (temp file + rename, never a partial output),
 * and one-line typed errors that name the file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GptError, isGptError } from '../errors';
import { Model, externalLocation, modelFromProto, modelToProto } from '../ir/model';
import { Tensor, checkExternal } from '../ir/tensor';
import { PROTOBUF_LIMIT, decodeModel, encodeModelTo } from './codec';
import { DataLocation, ModelProto, TensorProto } from './schema';
import { Sink } from './wire';

export interface LoadOptions {
  /** Folder external data is resolved against (defaults to the model file's folder, or cwd for a Buffer). */
  baseDir?: string;
  /** Check at load time that every external-data sidecar exists and is long enough (default true). */
  checkExternalData?: boolean;
}

function looksLikeText(b: Uint8Array): boolean {
  const n = Math.min(b.length, 512);
  let printable = 0;
  for (let i = 0; i < n; i++) {
    const c = b[i];
    if (c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127)) printable++;
  }
  return n > 0 && printable / n > 0.95;
}

export function decodeModelBytes(bytes: Uint8Array, what: string): ModelProto {
  if (bytes.length === 0) throw new GptError('E_EMPTY', 'the file is empty, not an ONNX model', { subject: what });
  // Sniff before decoding (as Netron does): a ModelProto starts with a field tag of a known number.
  const first = bytes[0];
  const firstField = first >>> 3;
  const knownFirst = [1, 2, 3, 4, 5, 6, 7, 8, 14, 20, 25, 26].includes(firstField) && [0, 2].includes(first & 7);
  if (!knownFirst) {
    const kind = looksLikeText(bytes) ? 'a text file' : 'not a protobuf message';
    throw new GptError('E_NOT_ONNX', `file format is not onnx.ModelProto (${kind})`, {
      subject: what,
      hint: 'pass an .onnx file exported by torch.onnx.export or onnx.save',
    });
  }
  let proto;
  try {
    proto = decodeModel(bytes, what);
  } catch (e) {
    if (isGptError(e) && e.code === 'E_TRUNCATED') throw new GptError('E_TRUNCATED', `the model is truncated (${e.message})`, { subject: what, hint: e.hint });
    if (isGptError(e)) throw new GptError(e.code, e.message, { subject: what, hint: e.hint });
    throw e;
  }
  if (!proto.graph) {
    throw new GptError(looksLikeText(bytes) ? 'E_NOT_ONNX' : proto.irVersion !== undefined ? 'E_TRUNCATED' : 'E_NOT_ONNX',
      proto.irVersion !== undefined ? 'the model has no graph (truncated?)' : 'file format is not onnx.ModelProto (no graph)', { subject: what });
  }
  if (proto.irVersion === undefined) throw new GptError('E_NOT_ONNX', 'file format is not onnx.ModelProto (no ir_version)', { subject: what });
  if (proto.opsetImport.length === 0 && Number(proto.irVersion) >= 3) {
    throw new GptError('E_TRUNCATED', 'the model has no opset_import (truncated?)', { subject: what });
  }
  return proto;
}

/** Load a model from a path or from bytes. */
export function loadModel(src: string | Uint8Array, opts: LoadOptions = {}): Model {
  let bytes: Uint8Array;
  let what = 'model bytes';
  let baseDir = opts.baseDir;
  let sourcePath: string | undefined;
  if (typeof src === 'string') {
    sourcePath = path.resolve(src);
    what = src;
    try {
      const st = fs.statSync(sourcePath);
      if (st.isDirectory()) throw new GptError('E_IO', 'is a directory, not a model file', { subject: src });
      bytes = fs.readFileSync(sourcePath);
    } catch (e) {
      if (isGptError(e)) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      throw new GptError('E_IO', code === 'ENOENT' ? 'no such file' : `cannot read the file (${code ?? String(e)})`, { subject: src });
    }
    baseDir = baseDir ?? path.dirname(sourcePath);
  } else {
    bytes = src;
  }
  const proto = decodeModelBytes(bytes, what);
  let model: Model;
  try {
    model = modelFromProto(proto, baseDir ?? process.cwd());
  } catch (e) {
    if (isGptError(e) && !e.subject) throw new GptError(e.code, e.message, { subject: what, hint: e.hint });
    throw e;
  }
  model.sourcePath = sourcePath;
  model.setSourceBytes(bytes);
  if (opts.checkExternalData !== false) {
    const sizes = new Map<string, number>();
    for (const v of model.graph.initializers) {
      const t = v.tensor!;
      if (t.external) {
        try {
          checkExternal(t.external, t.name, sizes);
        } catch (e) {
          if (isGptError(e)) throw new GptError(e.code, e.message, { subject: what, hint: e.hint });
          throw e;
        }
      }
    }
  }
  return model;
}

export interface SaveOptions {
  /**
   * Write weights to a sidecar file: true, false, or 'auto' (the default: when the source model had
   * external data, or when the model would exceed protobuf's 2 GiB limit).
   */
  externalData?: boolean | 'auto';
  /** Tensors of at least this many bytes go to the sidecar (default 1024). */
  externalThreshold?: number;
  /** Sidecar file name, relative to the output's folder (default: "<output file name>.data"). */
  externalLocation?: string;
  /** Allow writing over the model's own source file (default false). */
  overwriteSource?: boolean;
}

const ALIGN = 4096; // sidecar offsets are page-aligned so runtimes can map them

class FileSink implements Sink {
  private staging = Buffer.allocUnsafe(8 << 20);
  private fill = 0;
  written = 0;
  constructor(private fd: number) {}
  byte(b: number): void {
    if (this.fill === this.staging.length) this.flush();
    this.staging[this.fill++] = b;
    this.written++;
  }
  bytes(b: Uint8Array): void {
    if (b.length > this.staging.length - this.fill) {
      this.flush();
      if (b.length >= this.staging.length / 2) {
        writeAll(this.fd, b);
        this.written += b.length;
        return;
      }
    }
    this.staging.set(b, this.fill);
    this.fill += b.length;
    this.written += b.length;
  }
  flush(): void {
    if (this.fill > 0) writeAll(this.fd, this.staging.subarray(0, this.fill));
    this.fill = 0;
  }
}

function writeAll(fd: number, b: Uint8Array, position?: number): void {
  let done = 0;
  while (done < b.length) {
    done += fs.writeSync(fd, b, done, b.length - done, position === undefined ? null : position + done);
  }
}

function totalTensorBytes(m: Model): number {
  let n = 0;
  for (const v of m.graph.initializers) n += v.tensor!.byteLength;
  return n;
}

/** Copy one tensor's bytes into the sidecar without holding a large tensor in memory twice. */
function copyTensorBytes(t: Tensor, fd: number, position: number): void {
  const ext = t.isExternal ? t.external : undefined;
  if (!ext) return writeAll(fd, t.bytes(), position);
  checkExternal(ext, t.name);
  const chunk = Buffer.allocUnsafe(Math.min(ext.length, 64 << 20));
  const src = fs.openSync(ext.path, 'r');
  try {
    let done = 0;
    while (done < ext.length) {
      const n = fs.readSync(src, chunk, 0, Math.min(chunk.length, ext.length - done), ext.offset + done);
      if (n === 0) throw new GptError('E_EXTERNAL_DATA', `external data file ${ext.path} ended early`, { subject: t.name });
      writeAll(fd, chunk.subarray(0, n), position + done);
      done += n;
    }
  } finally {
    fs.closeSync(src);
  }
}

/**
 * Tensors inside node attributes (a Constant's value) that live in external data: their location is
 * relative to the source model's folder, so a saved copy carries their bytes inline instead.
 */
function inlineAttributeTensors(proto: ModelProto, baseDir: string | undefined): ModelProto {
  const graph = proto.graph!;
  const external = (t: TensorProto | undefined) => t?.dataLocation === DataLocation.EXTERNAL;
  const inline = (t: TensorProto): TensorProto => {
    const tensor = new Tensor(t, externalLocation(t, baseDir));
    return { ...t, rawData: tensor.bytes(), externalData: [], dataLocation: undefined };
  };
  if (!graph.node.some((n) => n.attribute.some((a) => external(a.t) || a.tensors.some(external)))) return proto;
  const node = graph.node.map((n) =>
    n.attribute.some((a) => external(a.t) || a.tensors.some(external))
      ? { ...n, attribute: n.attribute.map((a) => ({ ...a, t: a.t && external(a.t) ? inline(a.t) : a.t, tensors: a.tensors.map((t) => (external(t) ? inline(t) : t)) })) }
      : n,
  );
  return { ...proto, graph: { ...graph, node } };
}

function inlineProto(t: Tensor): TensorProto {
  if (!t.isExternal) return t.proto;
  return { ...t.proto, rawData: t.bytes(), externalData: [], dataLocation: undefined };
}

function tempName(dest: string): string {
  return path.join(path.dirname(dest), `.${path.basename(dest)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
}

/** Fail early, naming the file, when `dest` cannot be written (missing or read-only folder, a folder). */
export function checkOutputPath(dest: string): void {
  const dir = path.dirname(dest);
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
  if (fs.existsSync(dest) && fs.statSync(dest).isDirectory()) throw new GptError('E_IO', 'cannot write: the output path is a folder', { subject: dest });
}

/** Inline weights over protobuf's limit cannot be written: say so before reading gigabytes of them. */
function checkInlineSize(model: Model): void {
  const total = totalTensorBytes(model);
  if (total > PROTOBUF_LIMIT) {
    throw new GptError('E_TOO_LARGE', `the model's weights are ${(total / 2 ** 30).toFixed(2)} GiB, over protobuf's 2 GiB limit for one file`, {
      hint: 'save its weights as external data: --external-data (API: { externalData: true })',
    });
  }
}

/** Serialize to bytes (no external data: everything inline). */
export function saveModelToBuffer(model: Model): Buffer {
  checkInlineSize(model);
  let out: Buffer | undefined;
  encodeModelTo(inlineAttributeTensors(modelToProto(model, inlineProto), model.baseDir), (size) => {
    out = Buffer.allocUnsafe(size);
    let pos = 0;
    return {
      byte: (b) => void (out![pos++] = b),
      bytes: (b) => {
        out!.set(b, pos);
        pos += b.length;
      },
      get written() {
        return pos;
      },
    };
  });
  return out!;
}

/**
 * Save a model to a path. Writes to temp files in the same folder and renames them into place, so a
 * failure leaves no partial output and never touches the input.
 */
export function saveModel(model: Model, dest: string, opts: SaveOptions = {}): { path: string; bytes: number; externalPath?: string; externalBytes?: number } {
  const out = path.resolve(dest);
  if (model.sourcePath && path.resolve(model.sourcePath) === out && !opts.overwriteSource) {
    throw new GptError('E_IO', 'the output path is the input file', { subject: dest, hint: 'write the result to a new file (-o OTHER.onnx)' });
  }
  checkOutputPath(out);
  const hadExternal = model.graph.initializers.some((v) => v.tensor!.isExternal);
  const mode = opts.externalData ?? 'auto';
  const useExternal = mode === true || (mode === 'auto' && (hadExternal || totalTensorBytes(model) > 1.8 * 2 ** 30));
  const threshold = opts.externalThreshold ?? 1024;
  const location = opts.externalLocation ?? `${path.basename(out)}.data`;
  if (path.isAbsolute(location) || location.includes('..')) throw new GptError('E_ARG', `external data location '${location}' must be a plain file name`, { subject: dest });
  const sidecar = path.join(path.dirname(out), location);
  if (!useExternal) {
    try {
      checkInlineSize(model);
    } catch (e) {
      if (isGptError(e)) throw new GptError(e.code, e.message, { subject: dest, hint: e.hint });
      throw e;
    }
  }
  for (const v of model.graph.initializers) {
    const ext = v.tensor!.isExternal ? v.tensor!.external : undefined;
    if (ext && useExternal && path.resolve(ext.path) === path.resolve(sidecar)) {
      throw new GptError('E_IO', `the external data file ${location} would overwrite the source model's own weights`, {
        subject: dest, hint: 'save under another name, or give another --external-location',
      });
    }
  }

  const tmpModel = tempName(out);
  const tmpData = useExternal ? tempName(sidecar) : undefined;
  let modelFd: number | undefined;
  let dataFd: number | undefined;
  try {
    let externalBytes = 0;
    let tensorProto: (t: Tensor) => TensorProto = inlineProto;
    if (useExternal) {
      dataFd = fs.openSync(tmpData!, 'w');
      tensorProto = (t) => {
        const n = t.byteLength;
        if (n < threshold || t.proto.stringData.length > 0) return inlineProto(t);
        const offset = Math.ceil(externalBytes / ALIGN) * ALIGN;
        copyTensorBytes(t, dataFd!, offset);
        externalBytes = offset + n;
        return {
          ...t.proto,
          rawData: undefined,
          floatData: [], int32Data: [], int64Data: [], doubleData: [], uint64Data: [],
          dataLocation: DataLocation.EXTERNAL,
          externalData: [
            { key: 'location', value: location },
            { key: 'offset', value: String(offset) },
            { key: 'length', value: String(n) },
          ],
        };
      };
    }
    const proto = inlineAttributeTensors(modelToProto(model, tensorProto), model.baseDir);
    modelFd = fs.openSync(tmpModel, 'w');
    const fd = modelFd;
    let sink: FileSink | undefined;
    const { size } = encodeModelTo(proto, () => (sink = new FileSink(fd)));
    sink!.flush();
    fs.closeSync(modelFd);
    modelFd = undefined;
    if (dataFd !== undefined) {
      fs.closeSync(dataFd);
      dataFd = undefined;
      fs.renameSync(tmpData!, sidecar);
    }
    fs.renameSync(tmpModel, out);
    return { path: out, bytes: size, externalPath: useExternal ? sidecar : undefined, externalBytes: useExternal ? externalBytes : undefined };
  } catch (e) {
    if (modelFd !== undefined) fs.closeSync(modelFd);
    if (dataFd !== undefined) fs.closeSync(dataFd);
    for (const t of [tmpModel, tmpData]) if (t) fs.rmSync(t, { force: true });
    if (isGptError(e)) throw e.subject ? e : new GptError(e.code, e.message, { subject: dest, hint: e.hint });
    const code = (e as NodeJS.ErrnoException).code;
    throw new GptError('E_IO', `cannot write (${code ?? String(e)})`, { subject: dest, cause: e });
  }
}

/** Write a text or binary file atomically (temp file + rename): never a partial file. */
export function writeFileAtomic(dest: string, data: string | Uint8Array): void {
  const out = path.resolve(dest);
  checkOutputPath(out);
  const tmp = tempName(out);
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, out);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new GptError('E_IO', `cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { subject: dest });
  }
}
