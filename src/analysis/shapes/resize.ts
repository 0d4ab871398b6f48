/**
 * Resize and Upsample. ONNX Runtime computes an output size in float32, as the ONNX reference
 * does: `(int64)(float(scale) * float(d))`, so 10 x 0.7 gives 7, where float64 would give 6.
 * keep_aspect_ratio_policy (opset 18) turns `sizes` into one scale per policy:
 * not_larger takes the smallest ratio over the axes, not_smaller the largest, and each size is
 * then roundf(scale * d), all in float32 (onnxruntime's upsamplebase.h).
 */
import type { Dim } from '../../ir/graph';
import { floorDivDim, known, mulDim } from './dims';
import type { Out, ShapeContext } from './context';

const f32 = Math.fround;

/** floor(scale x d) as float32 arithmetic gives it. */
export function scaledSize(d: number, scale: number): number {
  return Math.floor(f32(f32(scale) * f32(d)));
}

/** floor(scale x d) for a symbolic d: exact for integer scales and for 1 / 2^k. */
function scaledSymbol(d: Dim, scale: number): Dim {
  const s = f32(scale);
  if (s === 1) return d;
  if (Number.isInteger(s) && s > 0) return mulDim(d, s);
  const inv = 1 / s;
  // 1/2^k is exact in float32, and so is d x 2^-k for any d below 2^24
  if (Number.isInteger(inv) && (inv & (inv - 1)) === 0) return floorDivDim(d, inv);
  return null;
}

/** roundf: half away from zero (sizes are positive). */
const roundf = (x: number) => Math.floor(x + 0.5);

export function resize(c: ShapeContext): Out[] {
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
    const policy = c.opset >= 18 ? c.node.string('keep_aspect_ratio_policy', 'stretch') : 'stretch';
    if (policy === 'stretch') axes.forEach((a, i) => (out[a] = sizes![i]));
    else if (policy === 'not_larger' || policy === 'not_smaller') {
      const ins = axes.map((a) => x[a]);
      if (!ins.every(known)) return [{ shape: x.map((d, k) => (axes.includes(k) ? null : d)) }];
      const ratios = axes.map((_, i) => f32(f32(sizes![i]) / f32(ins[i] as number)));
      const scale = policy === 'not_larger' ? Math.min(...ratios) : Math.max(...ratios);
      axes.forEach((a, i) => (out[a] = roundf(f32(scale * (ins[i] as number)))));
    } else c.fail(`unknown keep_aspect_ratio_policy '${policy}' (stretch, not_larger or not_smaller)`);
  } else if (scales) {
    if (scales.length !== axes.length) c.fail(`scales has ${scales.length} values for ${axes.length} axes`);
    axes.forEach((a, i) => {
      const d = x[a], s = scales![i];
      out[a] = known(d) ? scaledSize(d, s) : scaledSymbol(d, s);
    });
  } else return [{ shape: x.map(() => null) }];
  return [{ shape: out }];
}
