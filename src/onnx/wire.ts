/**
 * Protocol-buffer wire format, written for lossless round trips of ONNX models.
 *
 * Why our own codec and not protobufjs' decode/encode of onnx-proto's classes: those drop every
 * field the (ONNX 1.10) schema does not know, and newer exporters write such fields. This codec is
 * driven by a schema kept as data (src/onnx/schema.ts); it keeps each unknown field's bytes and
 * writes them back after the known ones, as protobuf's C++ serializer does, so an untouched model
 * round-trips byte for byte. `bytes` fields are zero-copy views of the input buffer.
 */
import { GptError } from '../errors';

export type Int64 = number | bigint;

const TWO_64 = 1n << 64n;
const TWO_63 = 1n << 63n;
const utf8Decoder = new TextDecoder('utf-8', { fatal: false });
const utf8Encoder = new TextEncoder();

export const enum WireType {
  Varint = 0,
  Fixed64 = 1,
  LengthDelimited = 2,
  StartGroup = 3,
  EndGroup = 4,
  Fixed32 = 5,
}

export class WireReader {
  pos: number;
  constructor(readonly buf: Uint8Array, start = 0, readonly end = buf.length, readonly what = 'model') {
    this.pos = start;
  }

  truncated(): never {
    throw new GptError('E_TRUNCATED', `truncated protobuf data in ${this.what} at byte ${this.pos}`, {
      hint: 'the file is incomplete; download or export it again',
    });
  }

  /** Unsigned varint as a JS number when below 2^53, else as a bigint (two's complement kept raw). */
  varintRaw(): number | bigint {
    const buf = this.buf;
    let pos = this.pos;
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 7; i++) {
      if (pos >= this.end) this.truncated();
      const b = buf[pos++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) {
        this.pos = pos;
        return result;
      }
      mul *= 128;
    }
    // more than 49 bits: finish in bigint
    let big = BigInt(result);
    let shift = 49n;
    for (let i = 7; i < 10; i++) {
      if (pos >= this.end) this.truncated();
      const b = buf[pos++];
      big |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) {
        this.pos = pos;
        big &= TWO_64 - 1n;
        return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
      }
      shift += 7n;
    }
    throw new GptError('E_NOT_ONNX', `malformed varint in ${this.what} at byte ${pos}`);
  }

  uint32(): number {
    const v = this.varintRaw();
    return typeof v === 'number' ? v % 0x100000000 : Number(v & 0xffffffffn);
  }

  /** int64 (and int32, which protobuf sign-extends to 64 bits). */
  int64(): Int64 {
    const v = this.varintRaw();
    if (typeof v === 'number') return v;
    const signed = v >= TWO_63 ? v - TWO_64 : v;
    return signed >= BigInt(Number.MIN_SAFE_INTEGER) && signed <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(signed) : signed;
  }

  int32(): number {
    const v = this.int64();
    return typeof v === 'number' ? v | 0 : Number(BigInt.asIntN(32, v));
  }

  uint64(): Int64 {
    return this.varintRaw();
  }

  fixed32Float(): number {
    if (this.pos + 4 > this.end) this.truncated();
    const dv = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4);
    this.pos += 4;
    return dv.getFloat32(0, true);
  }

  fixed64Double(): number {
    if (this.pos + 8 > this.end) this.truncated();
    const dv = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 8);
    this.pos += 8;
    return dv.getFloat64(0, true);
  }

  /**
   * A length or a tag: a varint that must fit in 32 bits (protobuf's limit). Reading it as uint32 would
   * take 2^32 + n as n and misread the rest of the message.
   */
  length(): number {
    const at = this.pos;
    const v = this.varintRaw();
    if (typeof v !== 'number' || v > 0xffffffff) {
      throw new GptError('E_NOT_ONNX', `a length or tag of ${String(v)} at byte ${at} in ${this.what} is over protobuf's 32-bit limit`, {
        hint: 'the file is damaged or not an ONNX model',
      });
    }
    return v;
  }

  /** A length-delimited payload as a view (no copy). */
  bytes(): Uint8Array {
    const len = this.length();
    const start = this.pos;
    if (start + len > this.end) this.truncated();
    this.pos = start + len;
    return this.buf.subarray(start, start + len);
  }

  string(): string {
    return utf8Decoder.decode(this.bytes());
  }

  /** Skip one field's value. Groups nest: they are walked with a depth count, not recursion. */
  skip(wireType: number): void {
    let depth = 0;
    for (;;) {
      switch (wireType) {
        case WireType.Varint:
          this.varintRaw();
          break;
        case WireType.Fixed64:
          if (this.pos + 8 > this.end) this.truncated();
          this.pos += 8;
          break;
        case WireType.LengthDelimited:
          this.bytes();
          break;
        case WireType.StartGroup:
          depth++;
          break;
        case WireType.EndGroup:
          if (depth === 0) throw new GptError('E_NOT_ONNX', `unexpected end-group tag in ${this.what} at byte ${this.pos}`);
          depth--;
          break;
        case WireType.Fixed32:
          if (this.pos + 4 > this.end) this.truncated();
          this.pos += 4;
          break;
        default:
          throw new GptError('E_NOT_ONNX', `invalid wire type ${wireType} in ${this.what} at byte ${this.pos}`);
      }
      if (depth === 0) return;
      // inside a group: the next field's tag
      if (this.pos >= this.end) this.truncated();
      wireType = this.length() & 7;
    }
  }
}

export function varintSize(v: Int64): number {
  if (typeof v === 'number') {
    if (v < 0) return 10;
    if (v < 0x80) return 1;
    if (v < 0x4000) return 2;
    if (v < 0x200000) return 3;
    if (v < 0x10000000) return 4;
    let n = 4;
    let x = Math.floor(v / 0x10000000);
    while (x > 0) {
      n++;
      x = Math.floor(x / 128);
    }
    return n;
  }
  let x = v < 0n ? v + TWO_64 : v;
  let n = 1;
  while (x >= 128n) {
    x >>= 7n;
    n++;
  }
  return n;
}

export function stringSize(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Where encoded bytes go: a preallocated buffer, or a file through a staging buffer. */
export interface Sink {
  byte(b: number): void;
  bytes(b: Uint8Array): void;
  /** Bytes written so far. */
  readonly written: number;
}

export class BufferSink implements Sink {
  readonly buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  byte(b: number): void {
    this.buf[this.pos++] = b;
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  get written(): number {
    return this.pos;
  }
}

export class WireWriter {
  constructor(readonly sink: Sink) {}

  varint(v: Int64): void {
    const s = this.sink;
    if (typeof v === 'number' && v >= 0) {
      while (v >= 128) {
        s.byte((v % 128) | 0x80);
        v = Math.floor(v / 128);
      }
      s.byte(v);
      return;
    }
    let x = BigInt(v);
    if (x < 0n) x += TWO_64;
    while (x >= 128n) {
      s.byte(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    s.byte(Number(x));
  }

  tag(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  fixed32Float(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.sink.bytes(b);
  }

  fixed64Double(v: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.sink.bytes(b);
  }

  lengthDelimited(b: Uint8Array): void {
    this.varint(b.length);
    this.sink.bytes(b);
  }

  string(s: string): void {
    this.lengthDelimited(utf8Encoder.encode(s));
  }
}
