/**
 * Shape inference. Walks graph.nodes in order (topological for loaded models) and sets
 * `value.inferred = { elemType, shape }` on every value.
 *
 * Dims: a number (known), a string (a symbol such as the dynamic batch 'batch', or a product of
 * symbols and a number such as 'batch*64'), or null (unknown). Products are the only symbolic
 * arithmetic: that is what Flatten / Reshape(-1) of a dynamic batch needs, and it keeps the
 * spelling canonical (symbols sorted, the number last).
 *
 * PyTorch computes Reshape targets at run time (Shape -> Gather -> Unsqueeze -> Concat), so small
 * integer tensors are also evaluated element by element (`values`, symbols allowed) until they
 * reach the Reshape.
 */
import { GptError } from '../errors';
import type { Dim, Graph, Node, TensorType, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { DataType } from '../onnx/schema';

export interface InferShapesOptions {
  /** Called with each warning as it arises (they are also returned). */
  warn?: (msg: string) => void;
}

export interface InferShapesResult {
  warnings: string[];
}

/** The opset assumed when a model declares none for the default domain. */
const LATEST_OPSET = 21;
/** Longest small tensor whose elements are tracked. */
const MAX_TRACKED = 64;
/** Ends at or past this are "to the end" (PyTorch writes INT64_MAX). */
const HUGE = 2 ** 31 - 1;

// ---------------------------------------------------------------------------------------------
// Dim arithmetic

interface Product {
  coef: number;
  syms: string[];
}

function factor(d: number | string): Product {
  if (typeof d === 'number') return { coef: d, syms: [] };
  let coef = 1;
  const syms: string[] = [];
  for (const part of d.split('*')) {
    if (/^\d+$/.test(part)) coef *= Number(part);
    else syms.push(part);
  }
  return { coef, syms: syms.sort() };
}

function unfactor(p: Product): Dim {
  if (p.coef === 0 || p.syms.length === 0) return p.coef;
  return p.coef === 1 ? p.syms.join('*') : [...p.syms, p.coef].join('*');
}

export function mulDim(a: Dim, b: Dim): Dim {
  if (a === 0 || b === 0) return 0;
  if (a === null || b === null) return null;
  const x = factor(a), y = factor(b);
  return unfactor({ coef: x.coef * y.coef, syms: [...x.syms, ...y.syms].sort() });
}

/** Exact division; null when it is not exact or cannot be told. */
export function divDim(a: Dim, b: Dim): Dim {
  if (a === null || b === null || b === 0) return null;
  const x = factor(a), y = factor(b);
  if (x.coef % y.coef !== 0) return null;
  const syms = [...x.syms];
  for (const s of y.syms) {
    const i = syms.indexOf(s);
    if (i < 0) return null;
    syms.splice(i, 1);
  }
  return unfactor({ coef: x.coef / y.coef, syms });
}

function addDim(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (a === 0) return b;
  if (b === 0) return a;
  return null;
}

export function productDims(dims: Dim[]): Dim {
  return dims.reduce<Dim>((p, d) => mulDim(p, d), 1);
}

const known = (d: Dim | undefined): d is number => typeof d === 'number';

/** "[batch, 3, 64, 64]" */
export function formatShape(s: Dim[] | null): string {
  return s ? `[${s.map((d) => (d === null ? '?' : String(d))).join(', ')}]` : '[?]';
}

/** One axis of numpy broadcasting; 'clash' for two different known sizes, neither 1. */
function broadcastDim(a: Dim, b: Dim): Dim | 'clash' {
  if (a === 1) return b;
  if (b === 1) return a;
  if (a === b) return a;
  if (known(a) && known(b)) return 'clash';
  if (a === null) return b; // a must be 1 or b
  if (b === null) return a;
  if (known(a)) return a; // the symbol must be 1 or a
  if (known(b)) return b;
  return null; // two different symbols
}

// ---------------------------------------------------------------------------------------------
// Per-op rules

/** What a rule says about one output. */
interface Out {
  shape: Dim[] | null;
  /** Defaults to the element type of input 0. */
  elemType?: number;
  /** Known elements of a small 0-D / 1-D tensor. */
  values?: Dim[];
}

/** Thrown by Ctx.shape when an input's shape is not known: the outputs become unknown too. */
const UNKNOWN = Symbol('unknown shape');

class Ctx {
  constructor(
    readonly node: Node,
    readonly opset: number,
    readonly graph: Graph,
    private readonly tracked: Map<Value, Dim[]>,
  ) {}

  has(i: number): boolean {
    return this.node.inputs[i] !== null && this.node.inputs[i] !== undefined;
  }
  /** The input's shape, or abandon the node (outputs unknown) when it has none. */
  shape(i: number): Dim[] {
    const s = this.node.inputs[i]?.type?.shape;
    if (!s) throw UNKNOWN;
    return s;
  }
  elemType(i: number): number {
    return this.node.inputs[i]?.type?.elemType ?? DataType.UNDEFINED;
  }
  /** Known elements of a small input tensor (propagated, or a constant). */
  values(i: number): Dim[] | undefined {
    const v = this.node.inputs[i];
    if (!v) return undefined;
    const hit = this.tracked.get(v);
    if (hit) return hit;
    const t = this.graph.constantTensor(v);
    if (!t || t.size > MAX_TRACKED || !NUMERIC.has(t.dataType)) return undefined;
    return t.numbers();
  }
  /** Known elements that are all numbers. */
  numbers(i: number): number[] | undefined {
    const v = this.values(i);
    return v && v.every(known) ? (v as number[]) : undefined;
  }
  axis(a: number, rank: number): number {
    const r = a < 0 ? a + rank : a;
    if (r < 0 || r >= rank) this.fail(`axis ${a} is out of range for rank ${rank}`);
    return r;
  }
  fail(msg: string): never {
    throw new GptError('E_SHAPE', `${this.node.opType}: ${msg}`, { subject: this.node.name });
  }
}

const NUMERIC = new Set<number>([
  DataType.FLOAT, DataType.DOUBLE, DataType.INT64, DataType.INT32, DataType.INT16, DataType.INT8,
  DataType.UINT64, DataType.UINT32, DataType.UINT16, DataType.UINT8, DataType.BOOL,
]);

type Rule = (c: Ctx) => Out[];

const same: Rule = (c) => [{ shape: c.shape(0), values: c.values(0) }];

function broadcastAll(c: Ctx, shapes: Dim[][]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let r: Dim = 1;
    for (const s of shapes) {
      const j = s.length - rank + i;
      const d = j >= 0 ? s[j] : 1;
      const b = broadcastDim(r, d);
      if (b === 'clash') c.fail(`shapes ${shapes.map(formatShape).join(' and ')} do not broadcast (${r} vs ${d} on axis ${i})`);
      r = b;
    }
    out.push(r);
  }
  return out;
}

/** Element-wise arithmetic on tracked values (PyTorch does shape maths with Mul/Div/Add). */
function elementwise(op: string, a: Dim[], b: Dim[]): Dim[] | undefined {
  if (a.length !== b.length && a.length !== 1 && b.length !== 1) return undefined;
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length === 1 ? 0 : i], y = b[b.length === 1 ? 0 : i];
    if (op === 'Add') out.push(addDim(x, y));
    else if (op === 'Sub') out.push(known(x) && known(y) ? x - y : y === 0 ? x : null);
    else if (op === 'Mul') out.push(mulDim(x, y));
    else out.push(known(x) && known(y) ? (y === 0 ? null : Math.trunc(x / y)) : divDim(x, y));
  }
  return out;
}

function binary(elemType?: number): Rule {
  return (c) => {
    const shapes = c.node.inputs.map((_, i) => c.shape(i));
    const shape = broadcastAll(c, shapes);
    let values: Dim[] | undefined;
    const a = c.values(0), b = c.values(1);
    const integer = c.elemType(0) === DataType.INT64 || c.elemType(0) === DataType.INT32;
    if (integer && a && b && shape.length <= 1 && ['Add', 'Sub', 'Mul', 'Div'].includes(c.node.opType)) {
      values = elementwise(c.node.opType, a, b);
    }
    return [{ shape, elemType, values }];
  };
}

/** Output sizes of a sliding window (Conv, pooling): ONNX's formula, with auto_pad and ceil_mode. */
function windowed(c: Ctx, input: Dim[], kernel: number[], ceilMode: boolean): Dim[] {
  const n = input.length;
  const strides = c.node.ints('strides', Array(n).fill(1));
  const dilations = c.node.ints('dilations', Array(n).fill(1));
  const pads = c.node.ints('pads', Array(2 * n).fill(0));
  const autoPad = c.node.string('auto_pad', 'NOTSET');
  if (kernel.length !== n) c.fail(`kernel_shape has ${kernel.length} dims but the input has ${n} spatial dims`);
  return input.map((d, i) => {
    const s = strides[i], dl = dilations[i], k = kernel[i];
    if (s <= 0) c.fail(`stride ${s} on spatial axis ${i} must be positive`);
    const ek = dl * (k - 1) + 1; // the dilated kernel's extent
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return known(d) ? Math.ceil(d / s) : s === 1 ? d : null;
    const [pb, pe] = autoPad === 'VALID' ? [0, 0] : [pads[i], pads[i + n]];
    if (!known(d)) return s === 1 && pb + pe === ek - 1 ? d : null; // size-preserving windows keep the symbol
    const span = d + pb + pe - ek;
    if (span < 0) c.fail(`kernel ${k} (dilation ${dl}) does not fit the padded input ${d} + ${pb} + ${pe} on spatial axis ${i}`);
    let o = (ceilMode ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
    // PyTorch and ONNX Runtime: with ceil_mode the last window must start inside the input or the left padding
    if (ceilMode && (o - 1) * s >= d + pb) o--;
    return o;
  });
}

function conv(c: Ctx): Out[] {
  const x = c.shape(0), w = c.shape(1);
  if (x.length < 3) c.fail(`input ${formatShape(x)} has rank ${x.length}; Conv needs [N, C, spatial...]`);
  if (w.length !== x.length) c.fail(`weight ${formatShape(w)} has rank ${w.length}, the input ${formatShape(x)} has ${x.length}`);
  const group = c.node.int('group', 1);
  const cin = mulDim(w[1], group);
  if (known(x[1]) && known(cin) && x[1] !== cin) {
    c.fail(`input has ${x[1]} channels but the weight ${formatShape(w)} expects ${w[1]} x group ${group} = ${cin}`);
  }
  if (c.has(2)) {
    const b = c.shape(2);
    if (known(b[0]) && known(w[0]) && b[0] !== w[0]) c.fail(`bias has ${b[0]} elements but the weight has ${w[0]} output channels`);
  }
  const kernel = c.node.ints('kernel_shape', w.slice(2).map((d) => (known(d) ? d : NaN)));
  if (kernel.some(Number.isNaN)) return [{ shape: [x[0], w[0], ...x.slice(2).map(() => null)] }];
  return [{ shape: [x[0], w[0], ...windowed(c, x.slice(2), kernel, false)] }];
}

function convTranspose(c: Ctx): Out[] {
  const x = c.shape(0), w = c.shape(1);
  if (x.length < 3 || w.length !== x.length) c.fail(`input ${formatShape(x)} and weight ${formatShape(w)} need equal rank >= 3`);
  const n = x.length - 2;
  const group = c.node.int('group', 1);
  if (known(x[1]) && known(w[0]) && x[1] !== w[0]) c.fail(`input has ${x[1]} channels but the weight ${formatShape(w)} has ${w[0]} input channels`);
  const cout = mulDim(w[1], group);
  const outputShape = c.node.ints('output_shape');
  if (outputShape.length > 0) return [{ shape: [x[0], cout, ...outputShape.slice(-n)] }];
  const kernel = c.node.ints('kernel_shape', w.slice(2).map((d) => (known(d) ? d : NaN)));
  const strides = c.node.ints('strides', Array(n).fill(1));
  const dilations = c.node.ints('dilations', Array(n).fill(1));
  const outPad = c.node.ints('output_padding', Array(n).fill(0));
  const pads = c.node.ints('pads', Array(2 * n).fill(0));
  const autoPad = c.node.string('auto_pad', 'NOTSET');
  const spatial = x.slice(2).map((d, i) => {
    const s = strides[i], k = kernel[i];
    if (Number.isNaN(k)) return null;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return mulDim(d, s);
    const [pb, pe] = autoPad === 'VALID' ? [0, 0] : [pads[i], pads[i + n]];
    const grow = outPad[i] + dilations[i] * (k - 1) + 1 - pb - pe; // out = s*(in-1) + grow
    if (!known(d)) return s === 1 && grow === 1 ? d : null;
    const o = s * (d - 1) + grow;
    if (o <= 0) c.fail(`output size ${o} on spatial axis ${i} is not positive`);
    return o;
  });
  return [{ shape: [x[0], cout, ...spatial] }];
}

function batchNorm(c: Ctx): Out[] {
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

function concat(c: Ctx): Out[] {
  const shapes = c.node.inputs.map((_, i) => c.shape(i));
  const first = shapes[0];
  const axis = c.axis(c.node.int('axis', 0), first.length);
  const out = [...first];
  shapes.forEach((s, j) => {
    if (s.length !== first.length) c.fail(`input ${j} ${formatShape(s)} has rank ${s.length}, input 0 ${formatShape(first)} has ${first.length}`);
    s.forEach((d, k) => {
      if (k === axis) return;
      if (known(d) && known(out[k]) && d !== out[k]) {
        c.fail(`input ${j} ${formatShape(s)} has ${d} on axis ${k} where input 0 has ${out[k]}; all sizes but axis ${axis} must match`);
      }
      if (out[k] === null || (!known(out[k]) && known(d))) out[k] = d;
    });
  });
  out[axis] = shapes.map((s) => s[axis]).reduce((a, b) => addDim(a, b));
  const vals = c.node.inputs.map((_, i) => c.values(i));
  const values = first.length === 1 && vals.every((v) => v) ? vals.flatMap((v) => v!) : undefined;
  return [{ shape: out, values }];
}

function split(c: Ctx): Out[] {
  const x = c.shape(0);
  const axis = c.axis(c.node.int('axis', 0), x.length);
  const n = c.node.outputs.length;
  const d = x[axis];
  let sizes: number[] | undefined;
  if (c.opset < 13) sizes = c.node.attr('split') ? c.node.ints('split') : undefined;
  else if (c.has(1)) {
    sizes = c.numbers(1);
    if (!sizes) return c.node.outputs.map(() => ({ shape: x.map((e, k) => (k === axis ? null : e)) }));
  }
  if (sizes) {
    if (sizes.length !== n) c.fail(`split has ${sizes.length} sizes for ${n} outputs`);
    const sum = sizes.reduce((a, b) => a + b, 0);
    if (known(d) && sum !== d) c.fail(`split sizes ${sizes.join('+')} = ${sum} do not add up to ${d} on axis ${axis}`);
  } else if (known(d)) {
    if (c.opset >= 18) {
      const chunk = Math.ceil(d / n); // from opset 18 the last chunk may be smaller
      sizes = Array.from({ length: n }, (_, i) => (i < n - 1 ? chunk : d - chunk * (n - 1)));
    } else {
      if (d % n !== 0) c.fail(`axis ${axis} of size ${d} does not split into ${n} equal parts`);
      sizes = Array(n).fill(d / n);
    }
  }
  return c.node.outputs.map((_, i) => ({ shape: x.map((e, k) => (k === axis ? (sizes ? sizes[i] : divDim(e, n)) : e)) }));
}

/** The indices one axis of Slice keeps, by ONNX's clamping rules. */
function sliceAxis(d: number, start: number, end: number, step: number): number[] {
  const idx: number[] = [];
  if (step > 0) {
    const s = Math.min(Math.max(start < 0 ? start + d : start, 0), d);
    const e = Math.min(Math.max(end < 0 ? end + d : end, 0), d);
    for (let i = s; i < e; i += step) idx.push(i);
  } else {
    const s = Math.min(Math.max(start < 0 ? start + d : start, 0), d - 1);
    const e = Math.min(Math.max(end < 0 ? end + d : end, -1), d - 1);
    for (let i = s; i > e; i += step) idx.push(i);
  }
  return idx;
}

function slice(c: Ctx): Out[] {
  const x = c.shape(0);
  let starts: number[] | undefined, ends: number[] | undefined, axes: number[] | undefined, steps: number[] | undefined;
  if (c.opset < 10) {
    starts = c.node.ints('starts');
    ends = c.node.ints('ends');
    axes = c.node.attr('axes') ? c.node.ints('axes') : undefined;
  } else {
    starts = c.numbers(1);
    ends = c.numbers(2);
    axes = c.has(3) ? c.numbers(3) : undefined;
    steps = c.has(4) ? c.numbers(4) : undefined;
    if (!starts || !ends || (c.has(3) && !axes) || (c.has(4) && !steps)) {
      return [{ shape: x.map((d, k) => (axes && !axes.map((a) => (a < 0 ? a + x.length : a)).includes(k) ? d : null)) }];
    }
  }
  axes ??= starts.map((_, i) => i);
  steps ??= starts.map(() => 1);
  if (starts.length !== ends.length || axes.length !== starts.length || steps.length !== starts.length) {
    c.fail(`starts, ends, axes and steps have different lengths (${starts.length}, ${ends.length}, ${axes.length}, ${steps.length})`);
  }
  const out = [...x];
  let values = c.values(0);
  axes.forEach((a, i) => {
    const k = c.axis(a, x.length);
    const d = x[k], step = steps![i], start = starts![i], end = ends![i];
    if (step === 0) c.fail(`step 0 on axis ${a}`);
    if (!known(d)) {
      out[k] = step === 1 && start === 0 && end >= HUGE ? d : null;
      values = undefined;
      return;
    }
    const idx = sliceAxis(d, start, end, step);
    out[k] = idx.length;
    if (values && x.length === 1) values = idx.map((j) => values![j]);
  });
  return [{ shape: out, values: x.length === 1 ? values : undefined }];
}

function pool(c: Ctx): Out[] {
  const x = c.shape(0);
  const kernel = c.node.ints('kernel_shape');
  const y = [x[0], x[1], ...windowed(c, x.slice(2), kernel, c.node.int('ceil_mode', 0) === 1)];
  return c.node.outputs.map((_, i) => (i === 0 ? { shape: y } : { shape: y, elemType: DataType.INT64 }));
}

const globalPool: Rule = (c) => {
  const x = c.shape(0);
  return [{ shape: [x[0], x[1], ...x.slice(2).map(() => 1)] }];
};

const flatten: Rule = (c) => {
  const x = c.shape(0);
  let axis = c.node.int('axis', 1);
  if (axis < 0) axis += x.length;
  if (axis < 0 || axis > x.length) c.fail(`axis ${c.node.int('axis', 1)} is out of range for rank ${x.length}`);
  return [{ shape: [productDims(x.slice(0, axis)), productDims(x.slice(axis))] }];
};

function reshape(c: Ctx): Out[] {
  const x = c.shape(0);
  const target = c.opset < 5 ? c.node.ints('shape') : c.values(1);
  if (!target) {
    const t = c.has(1) ? c.node.inputs[1]?.type?.shape : null;
    return [{ shape: t && known(t[0]) ? Array(t[0]).fill(null) : null }];
  }
  const allowZero = c.node.int('allowzero', 0) === 1;
  const out: Dim[] = target.map((t, i) => {
    if (t === 0 && !allowZero) {
      if (i >= x.length) c.fail(`target ${formatShape(target)} copies axis ${i} (0) but the input ${formatShape(x)} has rank ${x.length}`);
      return x[i];
    }
    return t;
  });
  const minus = out.flatMap((t, i) => (t === -1 ? [i] : []));
  if (minus.length > 1) c.fail(`target ${formatShape(target)} has more than one -1`);
  const total = productDims(x);
  if (minus.length === 1) {
    const rest = productDims(out.filter((_, i) => i !== minus[0]));
    if (known(total) && known(rest) && (rest === 0 || total % rest !== 0)) {
      c.fail(`cannot reshape ${formatShape(x)} (${total} elements) to ${formatShape(target)}: ${total} is not a multiple of ${rest}`);
    }
    out[minus[0]] = divDim(total, rest);
  } else {
    const n = productDims(out);
    if (known(total) && known(n) && total !== n) c.fail(`cannot reshape ${formatShape(x)} (${total} elements) to ${formatShape(target)} (${n} elements)`);
  }
  return [{ shape: out, values: out.length <= 1 ? c.values(0) : undefined }];
}

function gemm(c: Ctx): Out[] {
  const a = c.shape(0), b = c.shape(1);
  if (a.length !== 2 || b.length !== 2) c.fail(`A ${formatShape(a)} and B ${formatShape(b)} must both be matrices`);
  const transA = c.node.int('transA', 0) === 1, transB = c.node.int('transB', 0) === 1;
  const [m, k] = transA ? [a[1], a[0]] : a;
  const [k2, n] = transB ? [b[1], b[0]] : b;
  if (known(k) && known(k2) && k !== k2) {
    c.fail(`A ${formatShape(a)}${transA ? ' (transposed)' : ''} has ${k} columns but B ${formatShape(b)}${transB ? ' (transposed)' : ''} has ${k2} rows`);
  }
  if (c.has(2)) broadcastAll(c, [[m, n], c.shape(2)]);
  return [{ shape: [m, n] }];
}

function matmul(c: Ctx): Out[] {
  const a = c.shape(0), b = c.shape(1);
  if (a.length === 0 || b.length === 0) c.fail('inputs must not be scalars');
  const a2 = a.length === 1 ? [1, a[0]] : a;
  const b2 = b.length === 1 ? [b[0], 1] : b;
  const k = a2[a2.length - 1], k2 = b2[b2.length - 2];
  if (known(k) && known(k2) && k !== k2) c.fail(`${formatShape(a)} x ${formatShape(b)}: inner sizes ${k} and ${k2} differ`);
  const batch = broadcastAll(c, [a2.slice(0, -2), b2.slice(0, -2)]);
  const out = [...batch];
  if (a.length > 1) out.push(a2[a2.length - 2]);
  if (b.length > 1) out.push(b2[b2.length - 1]);
  return [{ shape: out }];
}

function pad(c: Ctx): Out[] {
  const x = c.shape(0);
  const r = x.length;
  const pads = c.opset < 11 ? c.node.ints(c.node.attr('paddings') ? 'paddings' : 'pads') : c.numbers(1);
  let axes = c.opset >= 18 && c.has(3) ? c.numbers(3) : x.map((_, i) => i);
  if (!pads || !axes) return [{ shape: x.map(() => null) }];
  axes = axes.map((a) => c.axis(a, r));
  if (pads.length !== 2 * axes.length) c.fail(`pads has ${pads.length} values for ${axes.length} axes (needs begin and end per axis)`);
  const out = [...x];
  axes.forEach((a, i) => {
    const grow = pads[i] + pads[i + axes!.length];
    const d = addDim(x[a], grow);
    if (known(d) && d < 0) c.fail(`pads ${pads.join(',')} shrink axis ${a} of size ${x[a]} below zero`);
    out[a] = d;
  });
  return [{ shape: out }];
}

function resize(c: Ctx): Out[] {
  const x = c.shape(0);
  const op = c.node.opType;
  let scales: number[] | undefined, sizes: number[] | undefined;
  if (op === 'Upsample') scales = c.opset < 9 ? c.node.floats('scales') : c.numbers(1);
  else if (c.opset < 11) scales = c.numbers(1);
  else {
    // PyTorch passes an empty scales tensor when it gives sizes
    scales = c.has(2) ? c.numbers(2) : undefined;
    sizes = c.has(3) ? c.numbers(3) : undefined;
    if (scales?.length === 0) scales = undefined;
    if (sizes?.length === 0) sizes = undefined;
  }
  const axes = (c.node.attr('axes') ? c.node.ints('axes') : x.map((_, i) => i)).map((a) => c.axis(a, x.length));
  const out = [...x];
  if (sizes) {
    if (sizes.length !== axes.length) c.fail(`sizes has ${sizes.length} values for ${axes.length} axes`);
    axes.forEach((a, i) => (out[a] = sizes![i]));
  } else if (scales) {
    if (scales.length !== axes.length) c.fail(`scales has ${scales.length} values for ${axes.length} axes`);
    axes.forEach((a, i) => {
      const d = x[a], s = scales![i];
      out[a] = known(d) ? Math.floor(d * s) : s === 1 ? d : null;
    });
  } else return [{ shape: x.map(() => null) }];
  return [{ shape: out }];
}

const transpose: Rule = (c) => {
  const x = c.shape(0);
  const perm = c.node.ints('perm', x.map((_, i) => x.length - 1 - i));
  if (perm.length !== x.length || new Set(perm).size !== perm.length || perm.some((p) => p < 0 || p >= x.length)) {
    c.fail(`perm [${perm.join(', ')}] is not a permutation of the ${x.length} axes of ${formatShape(x)}`);
  }
  return [{ shape: perm.map((p) => x[p]) }];
};

function reduce(c: Ctx): Out[] {
  const x = c.shape(0);
  const keep = c.node.int('keepdims', 1) === 1;
  const axesAsInput = c.opset >= 18 || (c.node.opType === 'ReduceSum' && c.opset >= 13);
  let axes: number[] | undefined;
  if (!axesAsInput) axes = c.node.ints('axes');
  else if (c.has(1)) {
    axes = c.numbers(1);
    if (!axes) return [{ shape: keep ? x.map(() => null) : null }];
  } else axes = [];
  if (axes.length === 0) {
    if (axesAsInput && c.node.int('noop_with_empty_axes', 0) === 1) return [{ shape: x }];
    axes = x.map((_, i) => i);
  }
  const set = new Set(axes.map((a) => c.axis(a, x.length)));
  return [{ shape: keep ? x.map((d, i) => (set.has(i) ? 1 : d)) : x.filter((_, i) => !set.has(i)) }];
}

const argReduce: Rule = (c) => {
  const x = c.shape(0);
  const axis = c.axis(c.node.int('axis', 0), x.length);
  const keep = c.node.int('keepdims', 1) === 1;
  return [{ shape: keep ? x.map((d, i) => (i === axis ? 1 : d)) : x.filter((_, i) => i !== axis), elemType: DataType.INT64 }];
};

function constant(c: Ctx): Out[] {
  const out = c.node.outputs[0];
  const t = out ? c.graph.constantTensor(out) : undefined;
  if (!t) return [{ shape: null }];
  const values = t.size <= MAX_TRACKED && NUMERIC.has(t.dataType) ? t.numbers() : undefined;
  return [{ shape: t.dims, elemType: t.dataType, values }];
}

function shapeOp(c: Ctx): Out[] {
  const x = c.shape(0);
  const r = x.length;
  let start = c.opset >= 15 ? c.node.int('start', 0) : 0;
  let end = c.opset >= 15 ? c.node.int('end', r) : r;
  start = Math.min(Math.max(start < 0 ? start + r : start, 0), r);
  end = Math.min(Math.max(end < 0 ? end + r : end, 0), r);
  const dims = x.slice(start, Math.max(start, end));
  return [{ shape: [dims.length], elemType: DataType.INT64, values: dims }];
}

function gather(c: Ctx): Out[] {
  const data = c.shape(0), idx = c.shape(1);
  const axis = c.axis(c.node.int('axis', 0), data.length);
  const d = data[axis];
  const indices = c.numbers(1);
  if (indices && known(d)) {
    const bad = indices.find((i) => i < -d || i >= d);
    if (bad !== undefined) c.fail(`index ${bad} is out of range for axis ${axis} of size ${d}`);
  }
  const vals = c.values(0);
  const values = vals && data.length === 1 && indices ? indices.map((i) => vals[i < 0 ? i + vals.length : i]) : undefined;
  return [{ shape: [...data.slice(0, axis), ...idx, ...data.slice(axis + 1)], values }];
}

function unsqueeze(c: Ctx): Out[] {
  const x = c.shape(0);
  const axes = c.opset < 13 ? c.node.ints('axes') : c.numbers(1);
  if (!axes) return [{ shape: null }];
  const rank = x.length + axes.length;
  const set = new Set(axes.map((a) => c.axis(a, rank)));
  if (set.size !== axes.length) c.fail(`axes [${axes.join(', ')}] repeat an axis`);
  const out: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) out.push(set.has(i) ? 1 : x[j++]);
  return [{ shape: out, values: c.values(0) }];
}

function squeeze(c: Ctx): Out[] {
  const x = c.shape(0);
  const axes = c.opset < 13 ? (c.node.attr('axes') ? c.node.ints('axes') : undefined) : c.has(1) ? c.numbers(1) : undefined;
  if (c.opset >= 13 && c.has(1) && !axes) return [{ shape: null }];
  if (!axes) {
    // without axes every 1 goes; a symbolic dim might be 1, so the rank is then unknown
    return [{ shape: x.every(known) ? x.filter((d) => d !== 1) : null, values: c.values(0) }];
  }
  const set = new Set(axes.map((a) => c.axis(a, x.length)));
  for (const a of set) if (known(x[a]) && x[a] !== 1) c.fail(`cannot squeeze axis ${a} of ${formatShape(x)}: its size is ${x[a]}, not 1`);
  return [{ shape: x.filter((_, i) => !set.has(i)), values: c.values(0) }];
}

const cast: Rule = (c) => [{ shape: c.shape(0), elemType: c.node.int('to', DataType.UNDEFINED), values: c.values(0) }];

const dropout: Rule = (c) => {
  const x = c.shape(0);
  return c.node.outputs.map((_, i) => (i === 0 ? { shape: x } : { shape: x, elemType: DataType.BOOL }));
};

function constantOfShape(c: Ctx): Out[] {
  const dims = c.values(0);
  const t = c.node.tensorAttr('value');
  const elemType = t?.dataType ?? DataType.FLOAT;
  if (dims) return [{ shape: dims, elemType }];
  const s = c.shape(0);
  return [{ shape: known(s[0]) ? Array(s[0]).fill(null) : null, elemType }];
}

function expand(c: Ctx): Out[] {
  const target = c.values(1);
  if (!target) return [{ shape: null }];
  return [{ shape: broadcastAll(c, [c.shape(0), target]) }];
}

const RULES: Record<string, Rule> = {
  Conv: conv,
  ConvTranspose: convTranspose,
  BatchNormalization: batchNorm,
  Concat: concat,
  Split: split,
  Slice: slice,
  MaxPool: pool,
  AveragePool: pool,
  LpPool: pool,
  GlobalAveragePool: globalPool,
  GlobalMaxPool: globalPool,
  GlobalLpPool: globalPool,
  Flatten: flatten,
  Reshape: reshape,
  Gemm: gemm,
  MatMul: matmul,
  Pad: pad,
  Resize: resize,
  Upsample: resize,
  Transpose: transpose,
  Constant: constant,
  Shape: shapeOp,
  Gather: gather,
  Unsqueeze: unsqueeze,
  Squeeze: squeeze,
  Cast: cast,
  Dropout: dropout,
  ConstantOfShape: constantOfShape,
  Expand: expand,
  ArgMax: argReduce,
  ArgMin: argReduce,
  Where: (c) => [{ shape: broadcastAll(c, [0, 1, 2].map((i) => c.shape(i))), elemType: c.elemType(1) }],
};
for (const op of ['Relu', 'LeakyRelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Clip', 'Identity', 'Softmax', 'LogSoftmax',
  'Tanh', 'Elu', 'Selu', 'Mish', 'Softplus', 'Exp', 'Log', 'Sqrt', 'Abs', 'Neg', 'Erf', 'Floor', 'Ceil', 'Round', 'Reciprocal',
  'InstanceNormalization', 'LRN', 'Not', 'Gelu']) {
  RULES[op] = same;
}
for (const op of ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'PRelu', 'Mod', 'And', 'Or', 'Xor']) RULES[op] = binary();
for (const op of ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual']) RULES[op] = binary(DataType.BOOL);
for (const op of ['ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceSum', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum',
  'ReduceLogSumExp', 'ReduceSumSquare']) {
  RULES[op] = reduce;
}

/** Op types shape inference knows (default ONNX domain). */
export const SUPPORTED_OPS: readonly string[] = Object.keys(RULES).sort();

// ---------------------------------------------------------------------------------------------
// The walk

/**
 * Infer the type and shape of every value. Unknown ops leave their outputs unknown (or as the
 * model's value_info declares them) and add a warning naming the node; shapes that cannot fit
 * throw GptError('E_SHAPE') naming the node.
 */
export function inferShapes(model: Model, opts: InferShapesOptions = {}): InferShapesResult {
  const g = model.graph;
  const opset = model.opset() ?? LATEST_OPSET;
  const warnings: string[] = [];
  const warn = (msg: string) => {
    warnings.push(msg);
    opts.warn?.(msg);
  };
  const tracked = new Map<Value, Dim[]>();

  for (const v of g.inputs) v.inferred = v.tensor ? tensorType(v) : v.declared ? { ...v.declared } : { elemType: DataType.UNDEFINED, shape: null };
  for (const v of g.initializers) v.inferred = tensorType(v);

  for (const node of g.nodes) {
    const outs = inferNode(node, opset, g, tracked, warn);
    node.outputs.forEach((v, i) => {
      if (!v) return;
      const o = outs?.[i];
      if (!o) {
        v.inferred = v.declared ? { ...v.declared } : { elemType: DataType.UNDEFINED, shape: null };
        return;
      }
      const elemType = o.elemType ?? node.inputs[0]?.type?.elemType ?? v.declared?.elemType ?? DataType.UNDEFINED;
      // what the model's value_info says beats nothing
      v.inferred = { elemType, shape: o.shape ?? v.declared?.shape ?? null };
      if (o.values && o.values.length <= MAX_TRACKED && (o.shape?.length ?? 2) <= 1) tracked.set(v, o.values);
      else tracked.delete(v);
      const d = v.declared?.shape;
      if (d && o.shape && (d.length !== o.shape.length || d.some((x, k) => known(x) && known(o.shape![k]) && x !== o.shape![k]))) {
        warn(`value '${v.name}': the model declares ${formatShape(d)} but inference gives ${formatShape(o.shape)}`);
      }
    });
  }
  return { warnings };
}

function tensorType(v: Value): TensorType {
  return { elemType: v.tensor!.dataType, shape: v.tensor!.dims };
}

function inferNode(node: Node, opset: number, g: Graph, tracked: Map<Value, Dim[]>, warn: (m: string) => void): Out[] | undefined {
  const domain = node.domain === 'ai.onnx' ? '' : node.domain;
  const rule = domain === '' ? RULES[node.opType] : undefined;
  if (!rule) {
    const op = domain ? `${domain}::${node.opType}` : node.opType;
    warn(`node '${node.name}': shape inference does not know op ${op}; the shapes of its outputs are unknown`);
    return undefined;
  }
  try {
    return rule(new Ctx(node, opset, g, tracked));
  } catch (e) {
    if (e === UNKNOWN) return node.outputs.map(() => ({ shape: null }));
    if (e instanceof GptError) throw e;
    // a malformed attribute must not crash an analysis: report it and go on
    warn(`node '${node.name}' (${node.opType}): shape inference failed (${e instanceof Error ? e.message : String(e)}); its outputs are unknown`);
    return undefined;
  }
}
