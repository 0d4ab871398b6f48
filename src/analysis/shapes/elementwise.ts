/**
 * Shape rules of ops that keep or broadcast their input's shape: unary ops and activations,
 * numpy-broadcasting binaries, normalizations, casts and (de)quantization.
 */
import type { Dim } from '../../ir/graph';
import { DataType } from '../../onnx/schema';
import { addDim, divDim, floorDivDim, known, mulDim, subDim } from './dims';
import { broadcastAll, ShapeRule } from './context';

/** Output 0 has input 0's shape (and its tracked values: Identity, Cast of a shape...). */
export const same: ShapeRule = (c) => [{ shape: c.shape(0), values: c.values(0) }];

/** float32 arithmetic for FLOAT tensors (as the runtime computes them), doubles otherwise. */
function rounder(elemType: number): (x: number) => number {
  return elemType === DataType.FLOAT ? Math.fround : (x) => x;
}

const UNARY: Record<string, (x: number) => number> = {
  Floor: Math.floor, Ceil: Math.ceil, Neg: (x) => -x, Abs: Math.abs, Reciprocal: (x) => 1 / x, Sqrt: Math.sqrt,
  // ONNX Round: half to even
  Round: (x) => (Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : Math.round(x)),
};
/** Ops that leave a whole, non-negative dim (a symbol too) as it is. */
const KEEPS_DIMS = new Set(['Identity', 'Floor', 'Ceil', 'Round', 'Abs']);

/**
 * A pointwise op without parameters: input 0's shape; tracked values computed for the ops above
 * (torchvision's transform works out its resize scale with Reciprocal / Min / Floor on constants).
 * Any other op (Exp, Sin...) tracks no values.
 */
export const unary: ShapeRule = (c) => {
  const op = c.node.opType;
  const v = c.values(0);
  let values: Dim[] | undefined;
  if (v && v.every(known) && UNARY[op]) {
    const r = rounder(c.elemType(0));
    values = (v as number[]).map((x) => r(UNARY[op](x)));
  } else if (v && KEEPS_DIMS.has(op)) values = v;
  return [{ shape: c.shape(0), values }];
};

/** Element-wise arithmetic on tracked values (PyTorch does shape maths with Mul/Div/Add). */
function arithmetic(op: string, a: Dim[], b: Dim[]): Dim[] | undefined {
  if (a.length !== b.length && a.length !== 1 && b.length !== 1) return undefined;
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length === 1 ? 0 : i], y = b[b.length === 1 ? 0 : i];
    if (op === 'Add') out.push(addDim(x, y));
    else if (op === 'Sub') out.push(subDim(x, y));
    else if (op === 'Mul') out.push(mulDim(x, y));
    else if (known(x) && known(y)) out.push(y === 0 ? null : Math.trunc(x / y));
    else out.push(divDim(x, y) ?? (known(y) && y > 0 ? floorDivDim(x, y) : null)); // dims are >= 0: trunc = floor
  }
  return out;
}

/** numpy broadcasting over every input; `elemType` for comparisons (BOOL). */
export function broadcasting(elemType?: number): ShapeRule {
  return (c) => {
    const shapes = c.node.inputs.map((_, i) => c.shape(i));
    const shape = broadcastAll(c, shapes);
    let values: Dim[] | undefined;
    const a = c.values(0), b = c.values(1);
    const integer = c.elemType(0) === DataType.INT64 || c.elemType(0) === DataType.INT32;
    const float = c.elemType(0) === DataType.FLOAT || c.elemType(0) === DataType.DOUBLE;
    const op = c.node.opType;
    if (integer && a && b && shape.length <= 1 && (op === 'Add' || op === 'Sub' || op === 'Mul' || op === 'Div')) {
      values = arithmetic(op, a, b);
    } else if (shape.length <= 1 && (float || integer) && FLOAT_OPS.has(op)) {
      values = floatArithmetic(op, c.node.inputs.map((_, i) => c.numbers(i)), rounder(c.elemType(0)), integer);
    } else if (a && b && shape.length <= 1 && op === 'Equal') {
      values = equal(a, b);
    }
    return [{ shape, elemType, values }];
  };
}

const FLOAT_OPS = new Set(['Add', 'Sub', 'Mul', 'Div', 'Min', 'Max']);

/**
 * Element-wise arithmetic on known numbers (float scales; Min / Max of integers too), rounded as
 * the element type is; undefined when an input is not known.
 */
function floatArithmetic(op: string, ins: (number[] | undefined)[], r: (x: number) => number, integer: boolean): number[] | undefined {
  if (ins.length === 0 || ins.some((v) => !v)) return undefined;
  const vs = ins as number[][];
  const n = Math.max(...vs.map((v) => v.length));
  if (vs.some((v) => v.length !== 1 && v.length !== n)) return undefined;
  const at = (v: number[], i: number) => v[v.length === 1 ? 0 : i];
  const f: Record<string, (xs: number[]) => number> = {
    Add: ([x, y]) => x + y, Sub: ([x, y]) => x - y, Mul: ([x, y]) => x * y, Div: ([x, y]) => x / y,
    Min: (xs) => Math.min(...xs), Max: (xs) => Math.max(...xs),
  };
  if (integer && op !== 'Min' && op !== 'Max') return undefined;
  return Array.from({ length: n }, (_, i) => r(f[op](vs.map((v) => r(at(v, i))))));
}

/** Equal on tracked values (PyTorch's index broadcasting: Where(Equal(shape, -1), ...)); undefined when a symbol makes it unknown. */
function equal(a: Dim[], b: Dim[]): Dim[] | undefined {
  if (a.length !== b.length && a.length !== 1 && b.length !== 1) return undefined;
  const out: Dim[] = [];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[a.length === 1 ? 0 : i], y = b[b.length === 1 ? 0 : i];
    if (x !== null && x === y) out.push(1);
    else if (known(x) && known(y)) out.push(0);
    else return undefined;
  }
  return out;
}

export const where: ShapeRule = (c) => {
  const shape = broadcastAll(c, [0, 1, 2].map((i) => c.shape(i)));
  const cond = c.numbers(0), x = c.values(1), y = c.values(2);
  let values: Dim[] | undefined;
  if (cond && x && y && shape.length <= 1) {
    const n = Math.max(cond.length, x.length, y.length);
    const at = (v: readonly Dim[], i: number) => v[v.length === 1 ? 0 : i];
    if ([cond, x, y].every((v) => v.length === 1 || v.length === n)) values = Array.from({ length: n }, (_, i) => (at(cond, i) ? at(x, i) : at(y, i)));
  }
  return [{ shape, elemType: c.elemType(1), values }];
};

const INTEGER = new Set<number>([DataType.INT64, DataType.INT32, DataType.INT16, DataType.INT8, DataType.UINT64, DataType.UINT32, DataType.UINT16, DataType.UINT8]);

export const cast: ShapeRule = (c) => {
  const to = c.node.int('to', DataType.UNDEFINED);
  const v = c.values(0);
  // to an integer type a number truncates (towards zero, as a C cast)
  const values = v && INTEGER.has(to) ? v.map((d) => (typeof d === 'number' ? Math.trunc(d) : d)) : v;
  return [{ shape: c.shape(0), elemType: to, values }];
};

/** CastLike: input 1's element type. */
export const castLike: ShapeRule = (c) => [{ shape: c.shape(0), elemType: c.elemType(1), values: c.values(0) }];

export const dropout: ShapeRule = (c) => {
  const x = c.shape(0);
  return c.node.outputs.map((_, i) => (i === 0 ? { shape: x } : { shape: x, elemType: DataType.BOOL }));
};

/** DequantizeLinear: input 0's shape, the scale's element type (float, float16...). */
export const dequantize: ShapeRule = (c) => [{ shape: c.shape(0), elemType: c.has(1) ? c.elemType(1) : DataType.FLOAT }];

/** QuantizeLinear: input 0's shape, the zero point's type (uint8 without one), or output_dtype. */
export const quantize: ShapeRule = (c) => {
  const dtype = c.node.int('output_dtype', 0);
  return [{ shape: c.shape(0), elemType: dtype || (c.has(2) ? c.elemType(2) : DataType.UINT8) }];
};

export function batchNorm(c: Parameters<ShapeRule>[0]): ReturnType<ShapeRule> {
  const x = c.shape(0);
  const ch = x.length > 1 ? x[1] : 1;
  for (const i of [1, 2, 3, 4]) {
    if (!c.has(i)) continue;
    const p = c.shape(i);
    if (known(p[0]) && known(ch) && p[0] !== ch) c.fail(`input has ${ch} channels but input ${i} has ${p[0]} elements`);
  }
  // training mode: running mean/var (and saved mean/var before opset 14) are [C]
  return c.node.outputs.map((_, i) => ({ shape: i === 0 ? x : [ch] }));
}

/** LayerNormalization: Y like X; Mean and InvStdDev keep the axes before `axis`, 1 after. */
export const layerNorm: ShapeRule = (c) => {
  const x = c.shape(0);
  const axis = c.axis(c.node.int('axis', -1), x.length);
  const stat = x.map((d, i) => (i < axis ? d : 1));
  return c.node.outputs.map((_, i) => (i === 0 ? { shape: x } : { shape: stat, elemType: DataType.FLOAT }));
};
