/**
 * Constant tensors (initializers, Constant values). Data is read lazily: a tensor loaded from a file
 * is a view of the file's bytes, or a reference into an external-data sidecar that is read only
 * when something asks for the values.
 */
import * as fs from 'node:fs';
import { GptError } from '../errors';
import { checkExternalPath, openRegular } from '../onnx/files';
import type { Int64 } from '../onnx/wire';
import { DataLocation, DataType, TensorProto, dataTypeBits, dataTypeName } from '../onnx/schema';

export type TypedArray =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array
  | BigInt64Array | BigUint64Array;

/** Where the bytes of an EXTERNAL tensor live. */
export interface ExternalLocation {
  /** Absolute path of the sidecar file. */
  path: string;
  /** `location` as written in the model (relative to the model's folder). */
  location: string;
  offset: number;
  length: number;
}

export function toNumber(v: Int64 | undefined, fallback = 0): number {
  if (v === undefined) return fallback;
  return typeof v === 'number' ? v : Number(v);
}

export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

function typedArrayFor(dataType: number, buf: ArrayBuffer, byteOffset: number, count: number): TypedArray | null {
  switch (dataType) {
    case DataType.FLOAT: return new Float32Array(buf, byteOffset, count);
    case DataType.DOUBLE: return new Float64Array(buf, byteOffset, count);
    case DataType.INT8: return new Int8Array(buf, byteOffset, count);
    case DataType.UINT8: case DataType.BOOL: return new Uint8Array(buf, byteOffset, count);
    case DataType.INT16: return new Int16Array(buf, byteOffset, count);
    case DataType.UINT16: case DataType.FLOAT16: case DataType.BFLOAT16: return new Uint16Array(buf, byteOffset, count);
    case DataType.INT32: return new Int32Array(buf, byteOffset, count);
    case DataType.UINT32: return new Uint32Array(buf, byteOffset, count);
    case DataType.INT64: return new BigInt64Array(buf, byteOffset, count);
    case DataType.UINT64: return new BigUint64Array(buf, byteOffset, count);
    default: return null;
  }
}

export class Tensor {
  /** The proto as loaded (kept for lossless saving); rebuilt when the data is replaced. */
  proto: TensorProto;
  readonly external?: ExternalLocation;
  private cache?: TypedArray;
  private replaced?: Uint8Array;

  constructor(proto: TensorProto, external?: ExternalLocation) {
    this.proto = proto;
    this.external = external;
  }

  get name(): string {
    return this.proto.name ?? '';
  }
  set name(n: string) {
    this.proto.name = n;
  }
  get dataType(): number {
    return this.proto.dataType ?? DataType.UNDEFINED;
  }
  get dims(): number[] {
    return this.proto.dims.map((d) => toNumber(d));
  }
  get size(): number {
    return elementCount(this.dims);
  }
  /** Bytes of the data, from the element type (0 for strings). */
  get byteLength(): number {
    return Math.ceil((this.size * dataTypeBits(this.dataType)) / 8);
  }
  get isExternal(): boolean {
    return this.proto.dataLocation === DataLocation.EXTERNAL && !this.replaced;
  }
  get isFloat(): boolean {
    const t = this.dataType;
    return t === DataType.FLOAT || t === DataType.FLOAT16 || t === DataType.BFLOAT16 || t === DataType.DOUBLE;
  }

  /** Raw little-endian bytes of the values (reads external data on demand). */
  bytes(): Uint8Array {
    if (this.replaced) return this.replaced;
    const p = this.proto;
    if (p.dataLocation === DataLocation.EXTERNAL) return readExternal(this.external, this.name);
    if (p.rawData) return p.rawData;
    const n = this.size;
    const out = new Uint8Array(this.byteLength);
    const dv = new DataView(out.buffer);
    const t = this.dataType;
    if (t === DataType.FLOAT) p.floatData.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    else if (t === DataType.DOUBLE) p.doubleData.forEach((v, i) => dv.setFloat64(i * 8, v, true));
    else if (t === DataType.INT64) p.int64Data.forEach((v, i) => dv.setBigInt64(i * 8, BigInt(v), true));
    else if (t === DataType.UINT64 || t === DataType.UINT32) {
      p.uint64Data.forEach((v, i) => (t === DataType.UINT32 ? dv.setUint32(i * 4, toNumber(v), true) : dv.setBigUint64(i * 8, BigInt(v), true)));
    } else if (t === DataType.INT32) p.int32Data.forEach((v, i) => dv.setInt32(i * 4, v, true));
    else if (t === DataType.INT8 || t === DataType.UINT8 || t === DataType.BOOL) p.int32Data.forEach((v, i) => dv.setUint8(i, v & 0xff));
    else if (t === DataType.INT16 || t === DataType.UINT16 || t === DataType.FLOAT16 || t === DataType.BFLOAT16) {
      p.int32Data.forEach((v, i) => dv.setUint16(i * 2, v & 0xffff, true));
    } else if (n > 0) {
      throw new GptError('E_SHAPE', `tensor data of type ${dataTypeName(t)} is not supported here`, { subject: this.name });
    }
    return out;
  }

  /** The values as a typed array (a view where alignment allows, else a copy). */
  data(): TypedArray {
    if (this.cache) return this.cache;
    const bytes = this.bytes();
    const width = dataTypeBits(this.dataType) / 8;
    if (!Number.isInteger(width) || width === 0) {
      throw new GptError('E_SHAPE', `tensor of type ${dataTypeName(this.dataType)} has no typed-array view`, { subject: this.name });
    }
    const count = bytes.length / width;
    let arr: TypedArray | null;
    if (bytes.byteOffset % width === 0) arr = typedArrayFor(this.dataType, bytes.buffer as ArrayBuffer, bytes.byteOffset, count);
    else {
      const copy = new Uint8Array(bytes.length);
      copy.set(bytes);
      arr = typedArrayFor(this.dataType, copy.buffer, 0, count);
    }
    if (!arr) throw new GptError('E_SHAPE', `tensor of type ${dataTypeName(this.dataType)} has no typed-array view`, { subject: this.name });
    this.cache = arr;
    return arr;
  }

  /** Values as plain numbers (int64 converted; for shape-like small tensors). */
  numbers(): number[] {
    const d = this.data();
    return Array.from(d as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? Number(v) : v));
  }

  /** Replace dims and data (a pass changed the tensor). The data becomes inline raw_data. */
  setData(dims: number[], data: TypedArray | Uint8Array, dataType = this.dataType): void {
    const bytes = data instanceof Uint8Array && dataType !== DataType.UINT8 && dataType !== DataType.BOOL
      ? data
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.proto = {
      ...this.proto,
      dims,
      dataType,
      rawData: bytes,
      floatData: [], int32Data: [], int64Data: [], doubleData: [], uint64Data: [], stringData: [],
      externalData: [],
      dataLocation: undefined,
    };
    this.replaced = bytes;
    this.cache = undefined;
  }

  static create(name: string, dataType: number, dims: number[], data: TypedArray | Uint8Array): Tensor {
    const t = new Tensor({
      name, dims: [], dataType, floatData: [], int32Data: [], stringData: [], int64Data: [], externalData: [],
      doubleData: [], uint64Data: [], metadataProps: [],
    });
    t.setData(dims, data, dataType);
    return t;
  }

  static float32(name: string, dims: number[], data: Float32Array): Tensor {
    return Tensor.create(name, DataType.FLOAT, dims, data);
  }

  static int64(name: string, dims: number[], values: number[]): Tensor {
    return Tensor.create(name, DataType.INT64, dims, BigInt64Array.from(values.map((v) => BigInt(v))));
  }
}

/** Read an external tensor's bytes; checks that the sidecar is a regular file long enough. */
export function readExternal(ext: ExternalLocation | undefined, tensorName: string): Uint8Array {
  if (!ext) throw new GptError('E_EXTERNAL_DATA', 'external data has no location', { subject: tensorName });
  const { fd, st } = openExternal(ext, tensorName);
  try {
    checkExternalSize(ext, tensorName, st.size);
    const out = Buffer.allocUnsafe(ext.length);
    let done = 0;
    while (done < ext.length) {
      const n = fs.readSync(fd, out, done, Math.min(ext.length - done, 1 << 30), ext.offset + done);
      if (n === 0) throw new GptError('E_EXTERNAL_DATA', `external data file '${ext.location}' ended early`, { subject: tensorName });
      done += n;
    }
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

/** Open an external-data file: no symlink, a regular file (a FIFO or a device is refused, never read). */
export function openExternal(ext: ExternalLocation, tensorName: string): { fd: number; st: fs.Stats } {
  try {
    return openRegular(ext.path, `${ext.location}`, { noFollow: true, code: 'E_EXTERNAL_DATA' });
  } catch (e) {
    if (e instanceof GptError && e.message === 'no such file') {
      throw new GptError('E_EXTERNAL_DATA', `external data file '${ext.location}' of tensor '${tensorName}' is missing (looked for ${ext.path})`, {
        hint: 'keep the sidecar file next to the model, under the name the model records',
      });
    }
    if (e instanceof GptError) throw new GptError(e.code, `external data file '${ext.location}' of tensor '${tensorName}' ${e.message}`, { hint: e.hint });
    throw e;
  }
}

function checkExternalSize(ext: ExternalLocation, tensorName: string, size: number): void {
  if (ext.offset + ext.length > size) {
    throw new GptError('E_EXTERNAL_DATA', `external data file '${ext.location}' has ${size} bytes, but tensor '${tensorName}' needs bytes ${ext.offset}..${ext.offset + ext.length}`, {
      hint: 'the sidecar is truncated or belongs to another model',
    });
  }
}

/** Check that a sidecar is a regular file that holds the tensor's bytes; `sizes` caches file sizes within one call site. */
export function checkExternal(ext: ExternalLocation, tensorName: string, sizes?: Map<string, number>): void {
  let size = sizes?.get(ext.path);
  if (size === undefined) {
    const { fd, st } = openExternal(ext, tensorName);
    fs.closeSync(fd);
    size = st.size;
    sizes?.set(ext.path, size);
  }
  checkExternalSize(ext, tensorName, size);
}

/** A non-negative whole number written in decimal digits ("4096"), as external_data offset / length must be. */
function parseExternalInt(v: string | undefined, key: string, tensorName: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,16}$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw new GptError('E_EXTERNAL_DATA', `tensor '${tensorName}' has a bad external ${key} '${v}' (expected a whole number of bytes, in decimal)`, {
      hint: 'the model file is damaged or was written by a faulty exporter',
    });
  }
  return Number(v);
}

/** Where an EXTERNAL tensor's bytes are, from its external_data entries and the model's folder. */
export function externalLocation(t: Tensor['proto'], baseDir: string | undefined): ExternalLocation | undefined {
  if (t.dataLocation !== DataLocation.EXTERNAL) return undefined;
  const kv = new Map<string, string>();
  for (const e of t.externalData) kv.set(e.key ?? '', e.value ?? '');
  const name = t.name ?? '';
  const location = kv.get('location');
  if (!location) throw new GptError('E_EXTERNAL_DATA', `tensor '${name}' is marked EXTERNAL but has no location entry`);
  const byteLength = checkTensorProto(t);
  const length = parseExternalInt(kv.get('length'), 'length', name) ?? byteLength ?? 0;
  const offset = parseExternalInt(kv.get('offset'), 'offset', name) ?? 0;
  if (byteLength !== null && length !== byteLength) {
    throw new GptError('E_EXTERNAL_DATA', `tensor '${name}' has an external length of ${length} bytes, but its type and dims make ${byteLength}`, {
      hint: 'the model file is damaged or its external_data entries are wrong',
    });
  }
  const file = checkExternalPath(baseDir ?? '.', location, name);
  return { path: file, location, offset, length };
}

/** Elements per entry of the typed repeated field that holds a type's values, and which field it is. */
function typedField(t: TensorProto): { field: keyof TensorProto; perEntry: number } | null {
  switch (t.dataType) {
    case DataType.FLOAT: return { field: 'floatData', perEntry: 1 };
    case DataType.COMPLEX64: return { field: 'floatData', perEntry: 0.5 };
    case DataType.DOUBLE: return { field: 'doubleData', perEntry: 1 };
    case DataType.COMPLEX128: return { field: 'doubleData', perEntry: 0.5 };
    case DataType.INT64: return { field: 'int64Data', perEntry: 1 };
    case DataType.UINT32: case DataType.UINT64: return { field: 'uint64Data', perEntry: 1 };
    case DataType.STRING: return { field: 'stringData', perEntry: 1 };
    case DataType.UINT4: case DataType.INT4: case DataType.FLOAT4E2M1: return { field: 'int32Data', perEntry: 2 };
    case DataType.UNDEFINED: return null;
    default: return dataTypeBits(t.dataType ?? 0) > 0 ? { field: 'int32Data', perEntry: 1 } : null;
  }
}

/** Above this many elements a tensor cannot exist in memory anyway (2^53 bytes is far past any disk). */
const MAX_ELEMENTS = 2 ** 50;

/**
 * Check a tensor's declared dims against its type and the data it carries: dims whole and >= 0,
 * raw_data exactly as long as type x dims make, typed fields exactly as many values. Returns the
 * byte length (null for strings). Throws E_SHAPE naming the tensor.
 */
export function checkTensorProto(t: TensorProto): number | null {
  const name = t.name ?? '';
  const typeName = dataTypeName(t.dataType);
  const bad = (what: string) => new GptError('E_SHAPE', `tensor '${name}' ${what}`, { hint: 'the model file is damaged or was written by a faulty exporter' });
  let count = 1;
  for (const d of t.dims) {
    if (typeof d === 'bigint' || !Number.isSafeInteger(d) || d < 0) {
      throw bad(`has a dimension of ${String(d)} (dims [${t.dims.map(String).join(', ')}]); dims must be whole numbers >= 0`);
    }
    count *= d;
    if (count > MAX_ELEMENTS) throw bad(`declares ${t.dims.map(String).join(' x ')} elements, more than any model can hold`);
  }
  const bits = dataTypeBits(t.dataType ?? 0);
  const byteLength = t.dataType === DataType.STRING ? null : Math.ceil((count * bits) / 8);
  if (t.dataType !== DataType.STRING && bits === 0 && count > 0 && (t.rawData?.length || t.dataLocation === DataLocation.EXTERNAL)) {
    throw bad(`has data of an unknown element type (${typeName})`);
  }
  if (t.dataLocation === DataLocation.EXTERNAL) return byteLength;
  if (t.rawData !== undefined && t.rawData.length > 0) {
    if (byteLength === null) throw bad('of type STRING has raw_data');
    if (t.rawData.length !== byteLength) throw bad(`has ${t.rawData.length} bytes of raw_data, but ${typeName} [${t.dims.map(String).join(', ')}] takes ${byteLength}`);
    return byteLength;
  }
  const f = typedField(t);
  if (f) {
    const have = (t[f.field] as unknown[] | undefined)?.length ?? 0;
    const want = Math.ceil(count / f.perEntry);
    if (have !== want && !(have === 0 && count > 0 && !anyData(t))) {
      throw bad(`has ${have} values in ${String(f.field)}, but ${typeName} [${t.dims.map(String).join(', ')}] takes ${want}`);
    }
    if (have === 0 && count > 0 && byteLength !== 0) throw bad(`has no data, but ${typeName} [${t.dims.map(String).join(', ')}] takes ${byteLength ?? count} ${byteLength === null ? 'strings' : 'bytes'}`);
  }
  return byteLength;
}

function anyData(t: TensorProto): boolean {
  return t.floatData.length + t.int32Data.length + t.int64Data.length + t.doubleData.length + t.uint64Data.length + t.stringData.length > 0;
}
