/**
 * Small float tensors evaluated during shape inference, as torchvision's transform computes the
 * size it resizes the image to: scale = min(min_size / min(h, w), max_size / max(h, w)), then
 * floor(scale x h), floor(scale x w) as the Resize `sizes`. Expected sizes worked out by hand.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { inferShapes } from '../../src/analysis/shapes';
import { Graph, Value } from '../../src/ir/graph';
import { Model } from '../../src/ir/model';
import { Tensor } from '../../src/ir/tensor';
import { DataType } from '../../src/onnx/schema';

/** image [1,3,H,W] resized to floor(s*H) x floor(s*W), s = min(target / min(H,W), cap / max(H,W)); `unary` is the op on the scale. */
function transform(h: number, w: number, target: number, cap: number, unary = 'Identity'): Value {
  const g = new Graph();
  const m = new Model({ irVersion: 7, opsetImport: [{ domain: '', version: 11 }], metadataProps: [], trainingInfo: [], functions: [], configuration: [] }, g);
  const x = g.value('x');
  x.declared = { elemType: DataType.FLOAT, shape: [1, 3, h, w] };
  g.addInput(x);
  let k = 0;
  const op = (opType: string, inputs: Value[], attrs: Record<string, number> = {}) =>
    g.addNode({ opType, name: `${opType}${k}`, inputs, outputs: [`v${k++}`], attrs }).outputs[0]!;
  const hw = g.addInitializer(Tensor.int64('hw', [2], [h, w]));
  const f = (name: string, v: number) => g.addInitializer(Tensor.float32(name, [], Float32Array.of(v)));
  const lo = op('Cast', [op('ReduceMin', [hw], { keepdims: 0 })], { to: DataType.FLOAT });
  const hi = op('Cast', [op('ReduceMax', [hw], { keepdims: 0 })], { to: DataType.FLOAT });
  const s = op(unary, [op('Min', [op('Mul', [op('Reciprocal', [lo]), f('target', target)]), op('Mul', [op('Reciprocal', [hi]), f('cap', cap)])])]);
  const dim = (v: number, name: string) => op('Unsqueeze', [op('Cast', [op('Floor', [op('Mul', [f(name, v), s])])], { to: DataType.INT64 })], { axes: [0] } as never);
  const sizes = g.addNode({ opType: 'Concat', name: 'sizes', inputs: [g.addInitializer(Tensor.int64('nc', [2], [1, 3])), dim(h, 'h'), dim(w, 'w')], outputs: ['sizes'], attrs: { axis: 0 } }).outputs[0]!;
  const empty = g.addInitializer(Tensor.float32('empty', [0], new Float32Array(0)));
  const y = g.addNode({ opType: 'Resize', name: 'resize', inputs: [x, empty, empty, sizes], outputs: ['y'], attrs: { mode: 'nearest' } as never }).outputs[0]!;
  g.addOutput(y);
  inferShapes(m);
  return y;
}

test('the resize size of a transform: 480x640 to min 128 / max 200 -> scale min(128/480, 200/640) = 0.2667 -> 128 x 170', () => {
  // float32: 128 * (1/480) = 0.26666668; floor(0.26666668 * 480) = 128, floor(0.26666668 * 640) = 170
  assert.equal(transform(480, 640, 128, 200).shape, [1, 3, 128, 170]);
});

test('the cap wins: 100x400 to min 128 / max 256 -> scale min(1.28, 0.64) = 0.64 -> 64 x 256', () => {
  assert.equal(transform(100, 400, 128, 256).shape, [1, 3, 64, 256]);
});

test('negative: an op whose value is not evaluated (Exp) leaves the resized sizes unknown, never a wrong number', () => {
  const s = transform(480, 640, 128, 200, 'Exp').shape!;
  assert.equal([s[2], s[3]], [null, null]);
});

test('Reciprocal / Neg of a tracked value are computed, not passed through', () => {
  // a Neg on the scale would have given the input size back before; now it gives a negative size -> not a size
  assert.not.equal(transform(480, 640, 128, 200, 'Neg').shape, [1, 3, 128, 170]);
});

test.run();
