/**
 * Shape rules of the ops detectors add after their convs: TopK (k as input or attribute, or computed
 * from the data) and RoiAlign / MaxRoiPool (one window per region of interest). Expected shapes by
 * hand from the ONNX operator docs; negative cases beside.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Dim, Graph, Node, Value } from '../../src/ir/graph';
import { Model } from '../../src/ir/model';
import { Tensor } from '../../src/ir/tensor';
import { DataType } from '../../src/onnx/schema';
import { inferShapes } from '../../src/analysis/shapes';

function tiny(opset: number) {
  const g = new Graph();
  const m = new Model({ irVersion: 8, opsetImport: [{ domain: '', version: opset }], metadataProps: [], trainingInfo: [], functions: [], configuration: [] }, g);
  const input = (name: string, shape: Dim[], elemType: number = DataType.FLOAT): Value => {
    const v = g.value(name);
    v.declared = { elemType, shape };
    g.addInput(v);
    return v;
  };
  const node = (opType: string, name: string, inputs: (Value | null)[], attrs: Record<string, number | number[]> = {}, outputs = 1): Node =>
    g.addNode({ opType, name, inputs, attrs, outputs: Array.from({ length: outputs }, (_, i) => `${name}_out${i}`) });
  return { m, g, input, node };
}

test('TopK: the axis cut to k (input since opset 10, attribute before); indices INT64', () => {
  const t = tiny(11);
  const x = t.input('x', [2, 100, 7]);
  const k = t.g.addInitializer(Tensor.int64('k', [1], [5]));
  const a = t.node('TopK', 'a', [x, k], { axis: 1 }, 2);
  const b = t.node('TopK', 'b', [x, k], {}, 2); // axis -1 by default
  inferShapes(t.m);
  assert.equal(a.outputs.map((o) => o!.inferred!.shape), [[2, 5, 7], [2, 5, 7]]);
  assert.is(a.outputs[1]!.inferred!.elemType, DataType.INT64);
  assert.is(a.outputs[0]!.inferred!.elemType, DataType.FLOAT);
  assert.equal(b.outputs[0]!.inferred!.shape, [2, 100, 5]);
  const old = tiny(9);
  const c = old.node('TopK', 'c', [old.input('x', [3, 10])], { k: 4 }, 2);
  inferShapes(old.m);
  assert.equal(c.outputs[0]!.inferred!.shape, [3, 4]);
});

test('negative: TopK with k from the data keeps the rank and leaves that dim unknown (null), not a guess', () => {
  const t = tiny(11);
  const x = t.input('x', [1, 100]);
  const k = t.input('k', [1], DataType.INT64);
  const a = t.node('TopK', 'a', [x, k], { axis: 1 }, 2);
  inferShapes(t.m);
  assert.equal(a.outputs[0]!.inferred!.shape, [1, null]);
});

test('RoiAlign / MaxRoiPool: [num_rois, C, output_height, output_width]', () => {
  const t = tiny(11);
  const x = t.input('x', [1, 64, 32, 32]);
  const rois = t.input('rois', [50, 4]);
  const idx = t.input('idx', [50], DataType.INT64);
  const a = t.node('RoiAlign', 'a', [x, rois, idx], { output_height: 7, output_width: 7 });
  const d = t.node('RoiAlign', 'd', [x, rois, idx]); // ONNX defaults: 1 x 1
  const p = t.node('MaxRoiPool', 'p', [x, t.input('rois5', [9, 5])], { pooled_shape: [3, 2] });
  inferShapes(t.m);
  assert.equal(a.outputs[0]!.inferred!.shape, [50, 64, 7, 7]);
  assert.equal(d.outputs[0]!.inferred!.shape, [50, 64, 1, 1]);
  assert.equal(p.outputs[0]!.inferred!.shape, [9, 64, 3, 2]);
});

test('negative: RoiAlign on rois of unknown shape (proposals after NMS) has an unknown output', () => {
  const t = tiny(11);
  const x = t.input('x', [1, 64, 32, 32]);
  const nz = t.node('NonZero', 'nz', [x]); // no shape rule: data-dependent
  const a = t.node('RoiAlign', 'a', [x, nz.outputs[0]!, t.input('idx', [50], DataType.INT64)], { output_height: 7, output_width: 7 });
  inferShapes(t.m);
  assert.is(a.outputs[0]!.inferred?.shape ?? null, null);
});

test.run();
