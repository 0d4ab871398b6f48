/**
 * Schema-driven protobuf decode / encode (see schema.ts). Decoding keeps unknown fields' bytes in
 * `$unknown`; encoding writes known fields in field-number order, then the unknown ones, which is
 * what protobuf's C++ serializer (and so torch.onnx / onnx.save) does.
 */
import { GptError } from '../errors';
import type { FieldSpec, MessageSpec, ModelProto } from './schema';
import { ModelSpec } from './schema';
import { BufferSink, Sink, WireReader, WireType, WireWriter, varintSize, stringSize } from './wire';

function index(spec: MessageSpec): void {
  if (spec.byNo) return;
  spec.byNo = new Map(spec.fields.map((fl) => [fl.no, fl]));
  spec.ordered = [...spec.fields].sort((a, b) => a.no - b.no);
}

function nativeWireType(kind: FieldSpec['kind']): number {
  switch (kind) {
    case 'float': return WireType.Fixed32;
    case 'double': return WireType.Fixed64;
    case 'int64': case 'int32': case 'uint64': case 'enum': return WireType.Varint;
    default: return WireType.LengthDelimited;
  }
}

function readScalar(r: WireReader, kind: FieldSpec['kind']): unknown {
  switch (kind) {
    case 'int64': return r.int64();
    case 'int32': case 'enum': return r.int32();
    case 'uint64': return r.uint64();
    case 'float': return r.fixed32Float();
    case 'double': return r.fixed64Double();
    default: throw new Error(`not a scalar kind: ${kind}`);
  }
}

export function emptyMessage(spec: MessageSpec): Record<string, unknown> {
  const msg: Record<string, unknown> = {};
  for (const fl of spec.fields) if (fl.repeated) msg[fl.name] = [];
  return msg;
}

export function decodeMessage<T>(spec: MessageSpec, r: WireReader, end: number): T {
  index(spec);
  const msg = emptyMessage(spec);
  const byNo = spec.byNo!;
  while (r.pos < end) {
    const fieldStart = r.pos;
    const tag = r.length();
    const no = tag >>> 3;
    const wt = tag & 7;
    if (no === 0) throw new GptError('E_NOT_ONNX', `invalid field number 0 in ${spec.name} at byte ${fieldStart}`);
    const fl = byNo.get(no);
    const native = fl ? nativeWireType(fl.kind) : -1;
    if (!fl || (wt !== native && !(fl.repeated && wt === WireType.LengthDelimited && native !== WireType.LengthDelimited))) {
      // unknown field (or a known number with a wire type we do not expect): keep its bytes verbatim
      r.skip(wt);
      if (r.pos > end) r.truncated();
      ((msg.$unknown as Uint8Array[] | undefined) ?? (msg.$unknown = [] as Uint8Array[]) as Uint8Array[]).push(r.buf.subarray(fieldStart, r.pos));
      continue;
    }
    let value: unknown;
    switch (fl.kind) {
      case 'string': value = r.string(); break;
      case 'bytes': case 'raw': value = r.bytes(); break;
      case 'message': {
        const len = r.length();
        const subEnd = r.pos + len;
        if (subEnd > end) r.truncated();
        value = decodeMessage(fl.message!(), r, subEnd);
        r.pos = subEnd;
        break;
      }
      default:
        if (wt === WireType.LengthDelimited) {
          // packed repeated scalars
          const len = r.length();
          const subEnd = r.pos + len;
          if (subEnd > end) r.truncated();
          const arr = msg[fl.name] as unknown[];
          while (r.pos < subEnd) arr.push(readScalar(r, fl.kind));
          continue;
        }
        value = readScalar(r, fl.kind);
    }
    if (r.pos > end) r.truncated();
    if (fl.repeated) (msg[fl.name] as unknown[]).push(value);
    else msg[fl.name] = value;
  }
  if (r.pos !== end) r.truncated();
  return msg as T;
}

// ---------------------------------------------------------------- encoding

type Sizes = Map<object, number>;

function scalarSize(kind: FieldSpec['kind'], v: unknown): number {
  switch (kind) {
    case 'float': return 4;
    case 'double': return 8;
    default: return varintSize(v as number | bigint);
  }
}

function tagSize(no: number): number {
  return varintSize(no * 8);
}

function fieldValueSize(fl: FieldSpec, v: unknown, sizes: Sizes): number {
  switch (fl.kind) {
    case 'string': {
      const n = stringSize(v as string);
      return varintSize(n) + n;
    }
    case 'bytes': case 'raw': {
      const n = (v as Uint8Array).length;
      return varintSize(n) + n;
    }
    case 'message': {
      const n = messageSize(fl.message!(), v as Record<string, unknown>, sizes);
      return varintSize(n) + n;
    }
    default:
      return scalarSize(fl.kind, v);
  }
}

export function messageSize(spec: MessageSpec, msg: Record<string, unknown>, sizes: Sizes): number {
  index(spec);
  let total = 0;
  for (const fl of spec.ordered!) {
    const v = msg[fl.name];
    if (v === undefined) continue;
    if (fl.repeated) {
      const arr = v as unknown[];
      if (arr.length === 0) continue;
      if (fl.packed) {
        let payload = 0;
        for (const x of arr) payload += scalarSize(fl.kind, x);
        sizes.set(arr, payload);
        total += tagSize(fl.no) + varintSize(payload) + payload;
      } else {
        const ts = tagSize(fl.no);
        for (const x of arr) total += ts + fieldValueSize(fl, x, sizes);
      }
    } else {
      total += tagSize(fl.no) + fieldValueSize(fl, v, sizes);
    }
  }
  const unknown = msg.$unknown as Uint8Array[] | undefined;
  if (unknown) for (const u of unknown) total += u.length;
  sizes.set(msg, total);
  return total;
}

function writeScalar(w: WireWriter, kind: FieldSpec['kind'], v: unknown): void {
  switch (kind) {
    case 'float': w.fixed32Float(v as number); break;
    case 'double': w.fixed64Double(v as number); break;
    default: w.varint(v as number | bigint);
  }
}

function writeFieldValue(w: WireWriter, fl: FieldSpec, v: unknown, sizes: Sizes): void {
  switch (fl.kind) {
    case 'string': w.tag(fl.no, WireType.LengthDelimited); w.string(v as string); break;
    case 'bytes': case 'raw': w.tag(fl.no, WireType.LengthDelimited); w.lengthDelimited(v as Uint8Array); break;
    case 'message':
      w.tag(fl.no, WireType.LengthDelimited);
      w.varint(sizes.get(v as object)!);
      writeMessage(w, fl.message!(), v as Record<string, unknown>, sizes);
      break;
    default:
      w.tag(fl.no, nativeWireType(fl.kind));
      writeScalar(w, fl.kind, v);
  }
}

export function writeMessage(w: WireWriter, spec: MessageSpec, msg: Record<string, unknown>, sizes: Sizes): void {
  for (const fl of spec.ordered!) {
    const v = msg[fl.name];
    if (v === undefined) continue;
    if (fl.repeated) {
      const arr = v as unknown[];
      if (arr.length === 0) continue;
      if (fl.packed) {
        w.tag(fl.no, WireType.LengthDelimited);
        w.varint(sizes.get(arr)!);
        for (const x of arr) writeScalar(w, fl.kind, x);
      } else {
        for (const x of arr) writeFieldValue(w, fl, x, sizes);
      }
    } else {
      writeFieldValue(w, fl, v, sizes);
    }
  }
  const unknown = msg.$unknown as Uint8Array[] | undefined;
  if (unknown) for (const u of unknown) w.sink.bytes(u);
}

/** Protobuf's hard limit on one serialized message. */
export const PROTOBUF_LIMIT = 2 ** 31 - 1;

export function decodeModel(bytes: Uint8Array, what = 'model'): ModelProto {
  const r = new WireReader(bytes, 0, bytes.length, what);
  return decodeMessage<ModelProto>(ModelSpec, r, bytes.length);
}

/** Size first (so the 2 GiB limit is checked before a byte is written), then write. */
export function encodeModelTo(model: ModelProto, makeSink: (size: number) => Sink): { size: number } {
  const sizes: Sizes = new Map();
  const size = messageSize(ModelSpec, model as unknown as Record<string, unknown>, sizes);
  if (size > PROTOBUF_LIMIT) {
    throw new GptError('E_TOO_LARGE', `the serialized model would be ${(size / 2 ** 30).toFixed(2)} GiB, over protobuf's 2 GiB limit`, {
      hint: 'save its weights as external data: --external-data (API: { externalData: true })',
    });
  }
  const sink = makeSink(size);
  writeMessage(new WireWriter(sink), ModelSpec, model as unknown as Record<string, unknown>, sizes);
  if (sink.written !== size) throw new Error(`internal: encoded ${sink.written} bytes, sized ${size}`);
  return { size };
}

export function encodeModel(model: ModelProto): Buffer {
  let sink: BufferSink | undefined;
  encodeModelTo(model, (size) => (sink = new BufferSink(size)));
  return sink!.buf;
}

export function encodeGeneric(spec: MessageSpec, msg: object): Buffer {
  const sizes: Sizes = new Map();
  const size = messageSize(spec, msg as Record<string, unknown>, sizes);
  const sink = new BufferSink(size);
  writeMessage(new WireWriter(sink), spec, msg as Record<string, unknown>, sizes);
  return sink.buf;
}

export function decodeGeneric<T>(spec: MessageSpec, bytes: Uint8Array, what = spec.name): T {
  return decodeMessage<T>(spec, new WireReader(bytes, 0, bytes.length, what), bytes.length);
}
