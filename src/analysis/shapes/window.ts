/**
 * Shape rules of sliding-window ops: Conv, ConvTranspose and pooling. Output sizes follow the
 * ONNX formulas (auto_pad, ceil_mode), symbolically when the input size is a symbol:
 * floor((d + pads - dilated kernel) / stride) + 1.
 */
import type { Dim } from '../../ir/graph';
import { DataType } from '../../onnx/schema';
import { addDim, ceilDivDim, floorDivDim, formatShape, known, mulDim } from './dims';
import type { Out, ShapeContext } from './context';

/** Output sizes of a sliding window (Conv, pooling): ONNX's formula, with auto_pad and ceil_mode. */
export function windowed(c: ShapeContext, input: Dim[], kernel: number[], ceilMode: boolean): Dim[] {
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
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return ceilDivDim(d, s);
    const [pb, pe] = autoPad === 'VALID' ? [0, 0] : [pads[i], pads[i + n]];
    if (!known(d)) return symbolicWindow(d, pb, pe, ek, s, ceilMode);
    const span = d + pb + pe - ek;
    if (span < 0) c.fail(`kernel ${k} (dilation ${dl}) does not fit the padded input ${d} + ${pb} + ${pe} on spatial axis ${i}`);
    let o = (ceilMode ? Math.ceil(span / s) : Math.floor(span / s)) + 1;
    // PyTorch and ONNX Runtime: with ceil_mode the last window must start inside the input or the left padding
    if (ceilMode && (o - 1) * s >= d + pb) o--;
    return o;
  });
}

function symbolicWindow(d: Dim, pb: number, pe: number, ek: number, s: number, ceilMode: boolean): Dim {
  const span = addDim(d, pb + pe - ek);
  if (!ceilMode) return addDim(floorDivDim(span, s), 1);
  // ceil((d+pb+pe-ek)/s)*s < d+pb+pe-ek+s, so the last window can only start in the right
  // padding when s > ek - pe; otherwise ceil is the answer for every d
  if (s > ek - pe) return null;
  return addDim(ceilDivDim(span, s), 1);
}

export function conv(c: ShapeContext): Out[] {
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
  checkKernelShape(c, kernel, w);
  if (kernel.some(Number.isNaN)) return [{ shape: [x[0], w[0], ...x.slice(2).map(() => null)] }];
  return [{ shape: [x[0], w[0], ...windowed(c, x.slice(2), kernel, false)] }];
}

/** A kernel_shape attribute must agree with the weight's spatial dims (onnxruntime refuses the model otherwise). */
function checkKernelShape(c: ShapeContext, kernel: number[], w: Dim[]): void {
  const spatial = w.slice(2);
  if (kernel.length !== spatial.length || kernel.some((k, i) => known(spatial[i]) && !Number.isNaN(k) && k !== spatial[i])) {
    c.fail(`kernel_shape [${kernel.join(', ')}] disagrees with the weight ${formatShape(w)}`);
  }
}

export function convTranspose(c: ShapeContext): Out[] {
  const x = c.shape(0), w = c.shape(1);
  if (x.length < 3 || w.length !== x.length) c.fail(`input ${formatShape(x)} and weight ${formatShape(w)} need equal rank >= 3`);
  const n = x.length - 2;
  const group = c.node.int('group', 1);
  if (known(x[1]) && known(w[0]) && x[1] !== w[0]) c.fail(`input has ${x[1]} channels but the weight ${formatShape(w)} has ${w[0]} input channels`);
  const cout = mulDim(w[1], group);
  const outputShape = c.node.ints('output_shape');
  if (outputShape.length > 0) return [{ shape: [x[0], cout, ...outputShape.slice(-n)] }];
  const kernel = c.node.ints('kernel_shape', w.slice(2).map((d) => (known(d) ? d : NaN)));
  checkKernelShape(c, kernel, w);
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
    if (!known(d)) return addDim(mulDim(d, s), grow - s);
    const o = s * (d - 1) + grow;
    if (o <= 0) c.fail(`output size ${o} on spatial axis ${i} is not positive`);
    return o;
  });
  return [{ shape: [x[0], cout, ...spatial] }];
}

export function pool(c: ShapeContext): Out[] {
  const x = c.shape(0);
  const kernel = c.node.ints('kernel_shape');
  const y = [x[0], x[1], ...windowed(c, x.slice(2), kernel, c.node.int('ceil_mode', 0) === 1)];
  return c.node.outputs.map((_, i) => (i === 0 ? { shape: y } : { shape: y, elemType: DataType.INT64 }));
}

export function globalPool(c: ShapeContext): Out[] {
  const x = c.shape(0);
  return [{ shape: [x[0], x[1], ...x.slice(2).map(() => 1)] }];
}

/**
 * RoiAlign / MaxRoiPool: one output_height x output_width window per region of interest, on every
 * channel of the feature map: [num_rois, C, h, w]. The number of rois is most often data-dependent
 * (proposals after NMS), so is the output's first dim.
 */
export function roiPool(c: ShapeContext): Out[] {
  const x = c.shape(0);
  const rois = c.shape(1);
  const size = c.node.opType === 'MaxRoiPool'
    ? c.node.ints('pooled_shape')
    : [c.node.int('output_height', 1), c.node.int('output_width', 1)];
  return [{ shape: [rois[0], x[1], ...size] }];
}
