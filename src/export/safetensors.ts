/**
 * The safetensors format, written directly: an 8-byte little-endian header length, a JSON header
 * ({ name: { dtype, shape, data_offsets: [begin, end] } } plus "__metadata__"), then the raw
 * little-endian tensor bytes back to back. The header is padded with spaces to 8 bytes so every
 * tensor starts aligned (what the reference writer does).
 */
import { GptError } from '../errors';
import { DataType } from '../onnx/schema';

export interface NamedTensor {
  name: string;
  /** ONNX element type (DataType). */
  dataType: number;
  dims: number[];
  /** Raw little-endian bytes, dims' product x element size long. */
  bytes: Uint8Array;
}

const DTYPE: Record<number, string> = {
  [DataType.FLOAT]: 'F32', [DataType.FLOAT16]: 'F16', [DataType.BFLOAT16]: 'BF16', [DataType.DOUBLE]: 'F64',
  [DataType.INT64]: 'I64', [DataType.INT32]: 'I32', [DataType.INT16]: 'I16', [DataType.INT8]: 'I8',
  [DataType.UINT8]: 'U8', [DataType.BOOL]: 'BOOL',
};

export function safetensorsDtype(dataType: number): string | undefined {
  return DTYPE[dataType];
}

export function writeSafetensors(tensors: readonly NamedTensor[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const dtype = DTYPE[t.dataType];
    if (!dtype) throw new GptError('E_ARG', `tensor '${t.name}' has an element type safetensors cannot hold (${t.dataType})`, { subject: t.name });
    if (t.name in header) throw new GptError('E_GRAPH', `two tensors named '${t.name}'`, { subject: t.name });
    header[t.name] = { dtype, shape: t.dims, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of tensors) {
    out.set(t.bytes, at);
    at += t.bytes.length;
  }
  return out;
}

/** Read a safetensors file back (tests, and pipelines that post-process the weights). */
export function readSafetensors(bytes: Uint8Array): { header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>; metadata: Record<string, string>; data(name: string): Uint8Array } {
  if (bytes.length < 8) throw new GptError('E_TRUNCATED', 'safetensors file shorter than its 8-byte header length');
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > bytes.length) throw new GptError('E_TRUNCATED', `safetensors header of ${n} bytes runs past the end of the file`);
  const parsed = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8')) as Record<string, unknown>;
  const metadata = (parsed.__metadata__ ?? {}) as Record<string, string>;
  delete parsed.__metadata__;
  const header = parsed as ReturnType<typeof readSafetensors>['header'];
  const base = 8 + n;
  return {
    header,
    metadata,
    data(name: string): Uint8Array {
      const e = header[name];
      if (!e) throw new GptError('E_ARG', `no tensor '${name}' in the safetensors file`);
      return bytes.subarray(base + e.data_offsets[0], base + e.data_offsets[1]);
    },
  };
}
