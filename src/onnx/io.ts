/**
 * Loading and saving models: from/to a path or a Buffer, with external data (read lazily, written
 * to a sidecar above a size threshold), atomic writes (temp file + rename, never a partial output),
 * and one-line typed errors that name the file.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GptError, isGptError } from '../errors';
import { Model, externalLocation, modelFromProto, modelToProto } from '../ir/model';
import { Tensor, checkExternal, checkTensorProto, openExternal } from '../ir/tensor';
import { checkOutputPath, readRegularFile } from './files';
import { releaseTemp, removeStaleTemps, removeTemp, tempPathFor } from './temp';
import { PROTOBUF_LIMIT, decodeModel, encodeModelTo } from './codec';
import { DataLocation, GraphProto, ModelProto, TensorProto } from './schema';
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
  if (!(bytes instanceof Uint8Array)) throw new GptError('E_ARG', `expected a file path or the model's bytes, got ${bytes === null ? 'null' : typeof bytes}`, { subject: what });
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
    // a text file can start with a byte that reads as a field tag: it is not a truncated model
    if (isGptError(e) && looksLikeText(bytes)) {
      throw new GptError('E_NOT_ONNX', 'file format is not onnx.ModelProto (a text file)', { subject: what, hint: 'pass an .onnx file exported by torch.onnx.export or onnx.save' });
    }
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

/** Every TensorProto of the main graph (initializers, attribute tensors), walked without recursion. */
function* graphTensors(g: GraphProto): Generator<{ t: TensorProto; where: string }> {
  for (const t of g.initializer) yield { t, where: 'initializer' };
  for (const n of g.node) {
    for (const a of n.attribute) {
      if (a.t) yield { t: a.t, where: `attribute '${a.name ?? ''}' of node '${n.name ?? ''}'` };
      for (const t of a.tensors) yield { t, where: `attribute '${a.name ?? ''}' of node '${n.name ?? ''}'` };
    }
  }
}

/** Load a model from a path or from bytes. */
export function loadModel(src: string | Uint8Array, opts: LoadOptions = {}): Model {
  let bytes: Uint8Array;
  let what = 'model bytes';
  let baseDir = opts.baseDir;
  let sourcePath: string | undefined;
  if (typeof src === 'string') {
    if (src.length === 0) throw new GptError('E_ARG', 'expected a model path, got an empty string');
    sourcePath = path.resolve(src);
    what = src;
    // a regular file only: a FIFO would block, a device (/dev/zero) would never end
    bytes = readRegularFile(sourcePath, src);
    baseDir = baseDir ?? path.dirname(sourcePath);
  } else if (src instanceof Uint8Array) {
    bytes = src;
  } else {
    throw new GptError('E_ARG', `loadModel: expected a file path or the model's bytes, got ${src === null ? 'null' : typeof src}`);
  }
  const proto = decodeModelBytes(bytes, what);
  const withFile = (e: unknown): never => {
    if (isGptError(e)) throw e.subject && (e.subject === what || e.subject.startsWith(`${what}:`)) ? e : new GptError(e.code, e.message, { subject: e.subject ? `${what}: ${e.subject}` : what, hint: e.hint });
    throw e;
  };
  let model: Model;
  try {
    // a node without op_type is no ONNX node: refuse before building a graph of millions of them
    const nodes = proto.graph!.node;
    for (let i = 0; i < nodes.length; i++) {
      if (!nodes[i].opType) {
        let more = 0;
        for (let j = i + 1; j < nodes.length; j++) if (!nodes[j].opType) more++;
        throw new GptError('E_GRAPH', `node ${i}${nodes[i].name ? ` '${nodes[i].name}'` : ''} has no op_type${more ? ` (and ${more} more like it)` : ''}`, { hint: 'the file is damaged or was not written by an ONNX exporter' });
      }
    }
    // sizes first: no later step may trust a declared size (dims, raw_data, external length)
    for (const { t, where } of graphTensors(proto.graph!)) {
      checkTensorProto(t);
      // a Constant's external value: its path is checked now, not when a pass first reads it
      if (where !== 'initializer' && t.dataLocation === DataLocation.EXTERNAL) {
        const ext = externalLocation(t, baseDir ?? process.cwd());
        if (ext && opts.checkExternalData !== false) checkExternal(ext, t.name ?? '');
      }
    }
    model = modelFromProto(proto, baseDir ?? process.cwd());
  } catch (e) {
    return withFile(e);
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
          withFile(e);
        }
      }
    }
  }
  return model;
}

/** The files a loaded model reads: the model file and every external-data file (absolute paths). */
export function modelInputFiles(model: Model): string[] {
  const out = new Set<string>();
  if (model.sourcePath) out.add(model.sourcePath);
  for (const v of model.graph.initializers) {
    const t = v.tensor!;
    if (t.isExternal && t.external) out.add(t.external.path);
  }
  for (const n of model.graph.nodes) {
    for (const a of n.proto.attribute) {
      for (const t of [a.t, ...a.tensors]) {
        if (t?.dataLocation !== DataLocation.EXTERNAL) continue;
        const loc = t.externalData.find((e) => e.key === 'location')?.value;
        if (loc && model.baseDir) out.add(path.resolve(model.baseDir, loc));
      }
    }
  }
  return [...out];
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
  /** Other files the caller reads (rule files, another model): never written over or removed. */
  inputs?: string[];
  /** @internal For tests: called after the sidecar is in place, just before the model is renamed into place. */
  beforeModelRename?: () => void;
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
  const { fd: src, st } = openExternal(ext, t.name);
  try {
    checkExternal(ext, t.name, new Map([[ext.path, st.size]]));
    const chunk = Buffer.allocUnsafe(Math.max(1, Math.min(ext.length, 64 << 20)));
    let done = 0;
    while (done < ext.length) {
      const n = fs.readSync(src, chunk, 0, Math.min(chunk.length, ext.length - done), ext.offset + done);
      if (n === 0) throw new GptError('E_EXTERNAL_DATA', `external data file '${ext.location}' ended early`, { subject: t.name });
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

export { checkOutputPath };

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

/** Sidecars gpt names for an output: "<name>.data" and "<name>.<8 hex>.data". */
function ownSidecars(out: string): string[] {
  const base = path.basename(out);
  const re = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\.[0-9a-f]{8})?\\.data$`);
  try {
    return fs.readdirSync(path.dirname(out)).filter((n) => re.test(n)).map((n) => path.join(path.dirname(out), n));
  } catch {
    return [];
  }
}

function fileId(p: string): string | null {
  try {
    const st = fs.statSync(p);
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

/** Put `tmp` at `dest` only if nothing is there (a hard link fails on an existing name; rename as a fallback). */
function renameNoClobber(tmp: string, dest: string): boolean {
  try {
    fs.linkSync(tmp, dest);
    fs.rmSync(tmp, { force: true });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    if (fs.existsSync(dest)) return false;
    fs.renameSync(tmp, dest);
    return true;
  }
}

/**
 * Save a model to a path. Writes to temp files in the same folder and renames them into place, so a
 * failure leaves no partial output and never touches the input. A model and its sidecar change as
 * one unit: the new sidecar gets a name no file has (`<name>.data`, or `<name>.<random>.data` while
 * the old one is there), so the old model keeps its old sidecar until the new model is renamed over
 * it; only then is the old sidecar removed.
 */
export function saveModel(model: Model, dest: string, opts: SaveOptions = {}): { path: string; bytes: number; externalPath?: string; externalBytes?: number } {
  if (typeof dest !== 'string' || dest.length === 0) throw new GptError('E_ARG', 'saveModel: expected an output path');
  const out = path.resolve(dest);
  checkOutputPath(out);
  const inputs = [...modelInputFiles(model), ...(opts.inputs ?? [])];
  const outId = fileId(out);
  if (outId && !opts.overwriteSource) {
    for (const i of inputs) {
      if (fileId(i) === outId) {
        throw new GptError('E_IO', path.resolve(i) === out ? 'the output path is the input file' : `the output path is the input file ${i} (the same file under another path)`, {
          subject: dest, hint: 'write the result to a new file (-o OTHER.onnx)',
        });
      }
    }
  }
  removeStaleTemps(path.dirname(out));
  const hadExternal = model.graph.initializers.some((v) => v.tensor!.isExternal);
  const mode = opts.externalData ?? 'auto';
  const useExternal = mode === true || (mode === 'auto' && (hadExternal || totalTensorBytes(model) > 1.8 * 2 ** 30));
  const threshold = opts.externalThreshold ?? 1024;
  if (opts.externalLocation !== undefined && (path.isAbsolute(opts.externalLocation) || opts.externalLocation.split(/[\\/]/).includes('..') || opts.externalLocation.includes('\0'))) {
    throw new GptError('E_ARG', `external data location '${opts.externalLocation}' must be a plain file name`, { subject: dest });
  }
  if (!useExternal) {
    try {
      checkInlineSize(model);
    } catch (e) {
      if (isGptError(e)) throw new GptError(e.code, e.message, { subject: dest, hint: e.hint });
      throw e;
    }
  }
  const inputIds = new Set(inputs.map(fileId).filter((x): x is string => x !== null));
  // the sidecar's final name: the asked one, else "<name>.data" when free, else a fresh random one
  const pickLocation = (): string => {
    if (opts.externalLocation !== undefined) return opts.externalLocation;
    const plain = `${path.basename(out)}.data`;
    if (!fs.existsSync(path.join(path.dirname(out), plain)) && Buffer.byteLength(plain) <= 255) return plain;
    const stem = Buffer.byteLength(path.basename(out)) > 240 ? `${path.basename(out).slice(0, 60)}` : path.basename(out);
    return `${stem}.${crypto.randomBytes(4).toString('hex')}.data`;
  };
  let location = useExternal ? pickLocation() : '';
  const sidecar = useExternal ? path.join(path.dirname(out), location) : undefined;
  if (sidecar && inputIds.has(fileId(sidecar) ?? '')) {
    throw new GptError('E_IO', `the external data file ${location} would overwrite an input`, {
      subject: dest, hint: 'save under another name, or give another --external-location',
    });
  }

  const tmpModel = tempPathFor(out);
  const tmpData = sidecar ? tempPathFor(sidecar) : undefined;
  let modelFd: number | undefined;
  let dataFd: number | undefined;
  let placedSidecar: string | undefined;
  try {
    let externalBytes = 0;
    let tensorProto: (t: Tensor) => TensorProto = inlineProto;
    if (useExternal) {
      dataFd = fs.openSync(tmpData!, 'wx');
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
    const proto0 = () => inlineAttributeTensors(modelToProto(model, tensorProto), model.baseDir);
    let proto: ModelProto;
    if (useExternal) {
      // the sidecar's name is written into the model: place the sidecar first, under a name no file has
      proto = proto0();
      fs.closeSync(dataFd!);
      dataFd = undefined;
      if (opts.externalLocation !== undefined) {
        fs.renameSync(tmpData!, sidecar!);
        placedSidecar = sidecar;
      } else {
        for (let tries = 0; !renameNoClobber(tmpData!, path.join(path.dirname(out), location)); tries++) {
          if (tries > 8) throw new GptError('E_IO', 'cannot find a free name for the external data file', { subject: dest });
          const fresh = `${path.basename(out).slice(0, 200)}.${crypto.randomBytes(4).toString('hex')}.data`;
          for (const e of proto.graph!.initializer) for (const kv of e.externalData) if (kv.key === 'location' && kv.value === location) kv.value = fresh;
          location = fresh;
        }
        placedSidecar = path.join(path.dirname(out), location);
      }
      releaseTemp(tmpData!);
    } else {
      proto = proto0();
    }
    modelFd = fs.openSync(tmpModel, 'wx');
    const fd = modelFd;
    let sink: FileSink | undefined;
    const { size } = encodeModelTo(proto, () => (sink = new FileSink(fd)));
    sink!.flush();
    fs.closeSync(modelFd);
    modelFd = undefined;
    opts.beforeModelRename?.();
    fs.renameSync(tmpModel, out);
    releaseTemp(tmpModel);
    // the new pair is complete: the old model's sidecars (by gpt's naming) can go, never an input
    if (opts.externalLocation === undefined) {
      for (const old of ownSidecars(out)) {
        if (old === placedSidecar) continue;
        const id = fileId(old);
        if (id && !inputIds.has(id)) fs.rmSync(old, { force: true });
      }
    }
    return { path: out, bytes: size, externalPath: placedSidecar, externalBytes: useExternal ? externalBytes : undefined };
  } catch (e) {
    if (modelFd !== undefined) fs.closeSync(modelFd);
    if (dataFd !== undefined) fs.closeSync(dataFd);
    removeTemp(tmpModel);
    removeTemp(tmpData);
    if (placedSidecar && opts.externalLocation === undefined) fs.rmSync(placedSidecar, { force: true });
    if (isGptError(e)) throw e.subject ? e : new GptError(e.code, e.message, { subject: dest, hint: e.hint });
    const code = (e as NodeJS.ErrnoException).code;
    throw new GptError('E_IO', `cannot write (${code ?? String(e)})`, { subject: dest, cause: e });
  }
}

/** Write a text or binary file atomically (temp file + rename): never a partial file. */
export function writeFileAtomic(dest: string, data: string | Uint8Array, opts: { inputs?: string[] } = {}): void {
  if (typeof dest !== 'string' || dest.length === 0) throw new GptError('E_ARG', 'expected an output path');
  const out = path.resolve(dest);
  checkOutputPath(out);
  const id = fileId(out);
  if (id && (opts.inputs ?? []).some((i) => fileId(i) === id)) {
    throw new GptError('E_ARG', 'the output path is an input file; gpt never writes over its inputs', { subject: dest, hint: 'write the output to a new file' });
  }
  removeStaleTemps(path.dirname(out));
  const tmp = tempPathFor(out);
  try {
    fs.writeFileSync(tmp, data, { flag: 'wx' });
    fs.renameSync(tmp, out);
    releaseTemp(tmp);
  } catch (e) {
    removeTemp(tmp);
    throw new GptError('E_IO', `cannot write (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { subject: dest });
  }
}
