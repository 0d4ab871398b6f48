/** Shape rules of reductions (axes as attribute or, from opset 18, as input), ArgMax / ArgMin and TopK. */
import { DataType } from '../../onnx/schema';
import type { Out, ShapeContext } from './context';

const FOLD: Partial<Record<string, (a: number, b: number) => number>> = {
  ReduceMin: (a, b) => Math.min(a, b), ReduceMax: (a, b) => Math.max(a, b), ReduceSum: (a, b) => a + b, ReduceProd: (a, b) => a * b,
};

export function reduce(c: ShapeContext): Out[] {
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
  const shape = keep ? x.map((d, i) => (set.has(i) ? 1 : d)) : x.filter((_, i) => !set.has(i));
  // a whole small tensor reduced to one number (torchvision's transform: min / max of the image size)
  const v = c.numbers(0);
  const f = FOLD[c.node.opType];
  const values = v && v.length > 0 && f && x.every((_, i) => set.has(i)) ? [v.reduce(f)] : undefined;
  return [{ shape, values }];
}

export function argReduce(c: ShapeContext): Out[] {
  const x = c.shape(0);
  const axis = c.axis(c.node.int('axis', 0), x.length);
  const keep = c.node.int('keepdims', 1) === 1;
  return [{ shape: keep ? x.map((d, i) => (i === axis ? 1 : d)) : x.filter((_, i) => i !== axis), elemType: DataType.INT64 }];
}

/**
 * TopK: values and indices with the axis cut to k (an attribute before opset 10, input 1 since).
 * A k computed from the data (torchvision: min(pre_nms_top_n, anchors)) is often tracked; when it
 * is not, that dim is unknown (null) rather than the whole shape.
 */
export function topK(c: ShapeContext): Out[] {
  const x = c.shape(0);
  const axis = c.axis(c.node.int('axis', -1), x.length);
  const k = c.opset < 10 ? c.node.int('k', 0) : c.numbers(1)?.[0] ?? null;
  const shape = x.map((d, i) => (i === axis ? k : d));
  return [{ shape }, { shape, elemType: DataType.INT64 }];
}
