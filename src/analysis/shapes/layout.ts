/**
 * Shape rules of ops that move elements without computing on them: Concat, Split, Slice,
 * Flatten, Reshape, Transpose, Gather, (Un)Squeeze, Pad, Expand, and the small integer tensors
 * PyTorch builds its Reshape targets from (Shape, Constant, ConstantOfShape).
 */
import type { Dim } from '../../ir/graph';
import { DataType } from '../../onnx/schema';
import { addDim, divDim, formatShape, known, mulDim, productDims, subDim } from './dims';
import { broadcastAll, HUGE, MAX_TRACKED, NUMERIC, Out, ShapeContext } from './context';

/** Row-major strides of a shape of known sizes. */
function stridesOf(shape: number[]): number[] {
  const st = new Array<number>(shape.length);
  let acc = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    st[k] = acc;
    acc *= shape[k];
  }
  return st;
}

/** The elements of a small tensor at the cartesian product of per-axis index lists, row-major. */
function pick(values: Dim[], shape: number[], idx: number[][]): Dim[] {
  const st = stridesOf(shape);
  const out: Dim[] = [];
  const walk = (k: number, base: number): void => {
    if (k === idx.length) {
      out.push(values[base]);
      return;
    }
    for (const i of idx[k]) walk(k + 1, base + i * st[k]);
  };
  walk(0, 0);
  return out;
}

const allKnown = (s: Dim[]): s is number[] => s.every(known);

export function concat(c: ShapeContext): Out[] {
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
  // small tensors (PyTorch's F.pad builds its pads with Concat / Reshape / Slice / Transpose)
  const vals = c.node.inputs.map((_, i) => c.values(i));
  let values: Dim[] | undefined;
  if (vals.every((v) => v) && shapes.every(allKnown)) {
    const outer = (first as number[]).slice(0, axis).reduce((a, b) => a * b, 1);
    const blocks = shapes.map((s) => (s as number[]).slice(axis).reduce((a, b) => a * b, 1));
    values = [];
    for (let o = 0; o < outer; o++) vals.forEach((v, k) => values!.push(...v!.slice(o * blocks[k], (o + 1) * blocks[k])));
  }
  return [{ shape: out, values }];
}

export function split(c: ShapeContext): Out[] {
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

export function slice(c: ShapeContext): Out[] {
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
  const idx: number[][] | undefined = allKnown(x) ? x.map((d) => Array.from({ length: d }, (_, i) => i)) : undefined;
  axes.forEach((a, i) => {
    const k = c.axis(a, x.length);
    const d = x[k], step = steps![i], start = starts![i], end = ends![i];
    if (step === 0) c.fail(`step 0 on axis ${a}`);
    if (!known(d)) {
      // from a non-negative start to the end: d - start (the symbol is taken as large enough)
      out[k] = step === 1 && start >= 0 && end >= HUGE ? subDim(d, start) : null;
      return;
    }
    const kept = sliceAxis(d, start, end, step);
    out[k] = kept.length;
    if (idx) idx[k] = kept;
  });
  const v = c.values(0);
  return [{ shape: out, values: v && idx ? pick(v, x as number[], idx) : undefined }];
}

export function flatten(c: ShapeContext): Out[] {
  const x = c.shape(0);
  let axis = c.node.int('axis', 1);
  if (axis < 0) axis += x.length;
  if (axis < 0 || axis > x.length) c.fail(`axis ${c.node.int('axis', 1)} is out of range for rank ${x.length}`);
  return [{ shape: [productDims(x.slice(0, axis)), productDims(x.slice(axis))] }];
}

/**
 * Highest rank gpt tracks (onnxruntime supports far fewer dims in practice). A shape input declared
 * as [300000000] says the output has that rank: never allocate from it, the shape is unknown.
 */
export const MAX_RANK = 64;

/** n unknown dims, or an unknown shape past MAX_RANK. */
function unknownDims(n: number): Dim[] | null {
  return Number.isSafeInteger(n) && n >= 0 && n <= MAX_RANK ? Array<Dim>(n).fill(null) : null;
}

export function reshape(c: ShapeContext): Out[] {
  const x = c.shape(0);
  const target = c.opset < 5 ? c.node.ints('shape') : c.values(1);
  if (!target) {
    const t = c.has(1) ? c.node.inputs[1]?.type?.shape : null;
    return [{ shape: t && known(t[0]) ? unknownDims(t[0]) : null }];
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
  return [{ shape: out, values: c.values(0) }];
}

export function transpose(c: ShapeContext): Out[] {
  const x = c.shape(0);
  const perm = c.node.ints('perm', x.map((_, i) => x.length - 1 - i));
  if (perm.length !== x.length || new Set(perm).size !== perm.length || perm.some((p) => p < 0 || p >= x.length)) {
    c.fail(`perm [${perm.join(', ')}] is not a permutation of the ${x.length} axes of ${formatShape(x)}`);
  }
  const shape = perm.map((p) => x[p]);
  const v = c.values(0);
  let values: Dim[] | undefined;
  if (v && allKnown(x)) {
    const st = stridesOf(x);
    const y = shape as number[];
    values = [];
    const walk = (k: number, base: number): void => {
      if (k === y.length) {
        values!.push(v[base]);
        return;
      }
      for (let i = 0; i < y[k]; i++) walk(k + 1, base + i * st[perm[k]]);
    };
    walk(0, 0);
  }
  return [{ shape, values }];
}

export function pad(c: ShapeContext): Out[] {
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

export function constant(c: ShapeContext): Out[] {
  const out = c.node.outputs[0];
  const t = out ? c.graph.constantTensor(out) : undefined;
  if (!t) return [{ shape: null }];
  const values = t.size <= MAX_TRACKED && NUMERIC.has(t.dataType) ? t.numbers() : undefined;
  return [{ shape: t.dims, elemType: t.dataType, values }];
}

export function shapeOp(c: ShapeContext): Out[] {
  const x = c.shape(0);
  const r = x.length;
  let start = c.opset >= 15 ? c.node.int('start', 0) : 0;
  let end = c.opset >= 15 ? c.node.int('end', r) : r;
  start = Math.min(Math.max(start < 0 ? start + r : start, 0), r);
  end = Math.min(Math.max(end < 0 ? end + r : end, 0), r);
  const dims = x.slice(start, Math.max(start, end));
  return [{ shape: [dims.length], elemType: DataType.INT64, values: dims }];
}

export function gather(c: ShapeContext): Out[] {
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

export function unsqueeze(c: ShapeContext): Out[] {
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

export function squeeze(c: ShapeContext): Out[] {
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

export function constantOfShape(c: ShapeContext): Out[] {
  const dims = c.values(0);
  const t = c.node.tensorAttr('value');
  const elemType = t?.dataType ?? DataType.FLOAT;
  if (dims) {
    const n = allKnown(dims) ? dims.reduce((a, b) => a * b, 1) : Infinity;
    const fill = t && t.size === 1 ? t.numbers()[0] : 0;
    return [{ shape: dims, elemType, values: n <= MAX_TRACKED ? new Array<Dim>(n).fill(fill) : undefined }];
  }
  const s = c.shape(0);
  return [{ shape: known(s[0]) ? unknownDims(s[0]) : null, elemType }];
}

export function expand(c: ShapeContext): Out[] {
  const target = c.values(1);
  if (!target) return [{ shape: null }];
  return [{ shape: broadcastAll(c, [c.shape(0), target]) }];
}

/** ScatterND / ScatterElements: the data's shape; indices and updates must fit it (onnxruntime checks). */
export function scatter(c: ShapeContext): Out[] {
  return [{ shape: c.shape(0) }];
}

/** Tile: each axis times its repeat. */
export function tile(c: ShapeContext): Out[] {
  const x = c.shape(0);
  const repeats = c.values(1);
  if (!repeats) return [{ shape: x.map(() => null) }];
  if (repeats.length !== x.length) c.fail(`repeats has ${repeats.length} values for rank ${x.length}`);
  return [{ shape: x.map((d, i) => mulDim(d, repeats[i])) }];
}

/** Range: max(ceil((limit - start) / delta), 0) elements, as the ONNX definition counts them. */
export function range(c: ShapeContext): Out[] {
  const [start, limit, delta] = [0, 1, 2].map((i) => c.numbers(i)?.[0]);
  if (start === undefined || limit === undefined || delta === undefined) return [{ shape: [null] }];
  if (delta === 0) c.fail('delta is 0');
  const n = Math.max(Math.ceil((limit - start) / delta), 0);
  const integer = c.elemType(0) === DataType.INT64 || c.elemType(0) === DataType.INT32;
  const values = integer && n <= MAX_TRACKED ? Array.from({ length: n }, (_, i) => start + i * delta) : undefined;
  return [{ shape: [n], values }];
}
