/**
 * Float tensors of any float element type read as float32 and written back in their own type: a
 * pass computes in float32 and a new tensor takes the element type of the tensors it joins (an
 * all-float16 model stays all-float16; onnxruntime rejects a graph that mixes them).
 */
import { GptError } from '../errors';
import { DataType, DataTypeName } from '../onnx/schema';
import { Tensor } from './tensor';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half (binary16) bits -> number. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** number -> IEEE half bits, rounding to nearest even (as numpy's astype(float16)). */
export function floatToHalf(x: number): number {
  f32[0] = x;
  const b = u32[0];
  const sign = (b >>> 16) & 0x8000;
  const e = (b >>> 23) & 0xff;
  let m = b & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  let he = e - 127 + 15;
  if (he >= 31) return sign | 0x7c00;
  if (he <= 0) {
    if (he < -10) return sign;
    m |= 0x800000;
    const shift = 14 - he;
    let hm = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && hm & 1)) hm++;
    return sign | hm;
  }
  let hm = m >>> 13;
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && hm & 1)) {
    hm++;
    if (hm === 0x400) {
      hm = 0;
      he++;
      if (he >= 31) return sign | 0x7c00;
    }
  }
  return sign | (he << 10) | hm;
}

/** bfloat16 bits -> number, and back (round to nearest even). */
const bf16ToFloat = (h: number): number => {
  u32[0] = h << 16;
  return f32[0];
};
function floatToBf16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if (Number.isNaN(x)) return 0x7fc0;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Element types a pass can compute with: their values are read as float32 and written back. */
export const FLOAT_TYPES: readonly number[] = [DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE];

/** The values of a float tensor (float32, float16, bfloat16, double) as float32. */
export function floatValues(t: Tensor, what: string): Float32Array {
  const d = t.data();
  switch (t.dataType) {
    case DataType.FLOAT: return d as Float32Array;
    case DataType.DOUBLE: return Float32Array.from(d as Float64Array);
    case DataType.FLOAT16: return Float32Array.from(d as Uint16Array, halfToFloat);
    case DataType.BFLOAT16: return Float32Array.from(d as Uint16Array, bf16ToFloat);
    default:
      throw new GptError('E_SHAPE', `'${t.name}' holds ${DataTypeName[t.dataType] ?? t.dataType} values; only float weights can be rewritten`, { subject: what });
  }
}

/** A new tensor of `elemType` (a float type) from float32 values. */
export function floatTensor(name: string, dims: number[], values: Float32Array, elemType: number = DataType.FLOAT): Tensor {
  switch (elemType) {
    case DataType.FLOAT: return Tensor.float32(name, dims, values);
    case DataType.DOUBLE: return Tensor.create(name, elemType, dims, Float64Array.from(values));
    case DataType.FLOAT16: return Tensor.create(name, elemType, dims, Uint16Array.from(values, floatToHalf));
    case DataType.BFLOAT16: return Tensor.create(name, elemType, dims, Uint16Array.from(values, floatToBf16));
    default:
      throw new GptError('E_SHAPE', `cannot write float values as ${DataTypeName[elemType] ?? elemType}`, { subject: name, hint: 'new weights take the float type of the tensors they join' });
  }
}
