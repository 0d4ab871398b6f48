/**
 * Shape inference: every fixture gets fully known shapes and the manifest's output shape; per op a
 * tiny graph with the expected shape worked out by hand, and a negative case (E_SHAPE) beside it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GptError } from '../../src/errors';
import { Dim, Graph, Node, Value } from '../../src/ir/graph';
import { Model } from '../../src/ir/model';
import { Tensor } from '../../src/ir/tensor';
import { loadModel } from '../../src/onnx/io';
import { DataType } from '../../src/onnx/schema';
import { inferShapes } from '../../src/analysis/shapes';
import { fixturePath, fixtures } from '../helpers';

type Attrs = Record<string, number | number[] | string | Tensor | { float: number } | { floats: number[] }>;

/** A model with an empty graph at an opset, plus small builders. */
function tiny(opset = 17) {
  const g = new Graph();
  const m = new Model({ irVersion: 8, opsetImport: [{ domain: '', version: opset }], metadataProps: [], trainingInfo: [], functions: [], configuration: [] }, g);
  return {
    m,
    g,
    input(name: string, shape: Dim[], elemType: number = DataType.FLOAT): Value {
      const v = g.value(name);
      v.declared = { elemType, shape };
      g.addInput(v);
      return v;
    },
    weight(name: string, dims: number[]): Value {
      return g.addInitializer(Tensor.float32(name, dims, new Float32Array(dims.reduce((a, b) => a * b, 1))));
    },
    ints(name: string, values: number[], dims = [values.length]): Value {
      return g.addInitializer(Tensor.int64(name, dims, values));
    },
    floats(name: string, values: number[]): Value {
      return g.addInitializer(Tensor.float32(name, [values.length], Float32Array.from(values)));
    },
    node(opType: string, inputs: (Value | null)[], attrs: Attrs = {}, outputs = 1, name = opType.toLowerCase()): Node {
      return g.addNode({ opType, name, inputs, attrs, outputs: Array.from({ length: outputs }, (_, i) => `${name}_out${i}`) });
    },
  };
}

/** Run inference and return the shape of output k of a node. */
function shapeOf(t: ReturnType<typeof tiny>, n: Node, k = 0): Dim[] | null {
  inferShapes(t.m);
  return n.outputs[k]!.inferred!.shape;
}

function expectShapeError(t: ReturnType<typeof tiny>, nodeName: string, mention: RegExp): void {
  try {
    inferShapes(t.m);
  } catch (e) {
    assert.instance(e, GptError);
    assert.is((e as GptError).code, 'E_SHAPE');
    assert.is((e as GptError).subject, nodeName);
    assert.match((e as GptError).message, mention);
    return;
  }
  assert.unreachable('expected E_SHAPE');
}

// ---------------------------------------------------------------------------------------------
// fixtures

for (const f of fixtures()) {
  test(`fixture ${f.model}: every value has a fully known shape; output [${f.input.shape[0]}, 10]`, () => {
    const m = loadModel(fixturePath(f.model));
    const { warnings } = inferShapes(m);
    assert.equal(warnings, []);
    for (const v of m.graph.values.values()) {
      const s = v.inferred?.shape;
      assert.ok(s && s.every((d) => d !== null), `'${v.name}' has shape ${JSON.stringify(s)}`);
    }
    const input = m.graph.inputs.find((v) => v.name === f.input.name)!;
    assert.equal(input.inferred!.shape, f.input.shape);
    const out = m.graph.outputs.find((v) => v.name === f.output)!;
    // the manifest: batch as in the input, 10 classes
    assert.equal(out.inferred!.shape, [f.input.shape[0], 10]);
  });
}

test('resnet50-w25: the symbolic batch reaches every activation', () => {
  const m = loadModel(fixturePath('resnet50-w25.onnx'));
  inferShapes(m);
  for (const n of m.graph.nodes) for (const o of n.outputs) if (o) assert.is(o.inferred!.shape![0], 'batch', o.name);
});

// ---------------------------------------------------------------------------------------------
// Conv / ConvTranspose

test('Conv: pads, strides, dilations, groups, auto_pad', () => {
  const t = tiny();
  const x = t.input('x', [1, 8, 32, 32]);
  // 3x3 stride 2 pad 1: floor((32 + 1 + 1 - 3) / 2) + 1 = floor(31 / 2) + 1 = 16
  const a = t.node('Conv', [x, t.weight('w', [16, 8, 3, 3]), t.weight('b', [16])], { pads: [1, 1, 1, 1], strides: [2, 2] }, 1, 'a');
  // dilation 2 makes the 3x3 kernel span 2*(3-1)+1 = 5: (32 - 5) / 1 + 1 = 28
  const b = t.node('Conv', [x, t.weight('w2', [4, 8, 3, 3])], { dilations: [2, 2] }, 1, 'b');
  // group 4: weight Cin 2 x 4 = 8 input channels; 1x1 keeps 32
  const c = t.node('Conv', [x, t.weight('w3', [12, 2, 1, 1])], { group: 4 }, 1, 'c');
  // SAME_UPPER stride 3: ceil(32 / 3) = 11
  const d = t.node('Conv', [x, t.weight('w4', [4, 8, 3, 3])], { auto_pad: 'SAME_UPPER', strides: [3, 3] }, 1, 'd');
  inferShapes(t.m);
  assert.equal(a.outputs[0]!.inferred!.shape, [1, 16, 16, 16]);
  assert.equal(b.outputs[0]!.inferred!.shape, [1, 4, 28, 28]);
  assert.equal(c.outputs[0]!.inferred!.shape, [1, 12, 32, 32]);
  assert.equal(d.outputs[0]!.inferred!.shape, [1, 4, 11, 11]);
});

test('Conv: a symbolic batch passes through', () => {
  const t = tiny();
  const n = t.node('Conv', [t.input('x', ['batch', 3, 8, 8]), t.weight('w', [5, 3, 3, 3])], { pads: [1, 1, 1, 1] });
  // (8 + 2 - 3) / 1 + 1 = 8
  assert.equal(shapeOf(t, n), ['batch', 5, 8, 8]);
});

test('Conv: input channels != weight Cin x group is E_SHAPE', () => {
  const t = tiny();
  // 4 input channels, weight expects 3 x 1
  t.node('Conv', [t.input('x', [1, 4, 8, 8]), t.weight('w', [8, 3, 3, 3])], {}, 1, 'conv1');
  expectShapeError(t, 'conv1', /4 channels.*3 x group 1 = 3/);
});

test('Conv: a kernel larger than the padded input is E_SHAPE', () => {
  const t = tiny();
  t.node('Conv', [t.input('x', [1, 3, 2, 2]), t.weight('w', [8, 3, 3, 3])], {}, 1, 'conv1');
  expectShapeError(t, 'conv1', /does not fit/);
});

test('ConvTranspose: strides, pads, output_padding, output_shape', () => {
  const t = tiny();
  const x = t.input('x', [1, 8, 5, 5]);
  // out = s*(in-1) + output_padding + d*(k-1) + 1 - pads = 2*4 + 1 + 2 + 1 - 1 - 1 = 10; channels 4 x group 1
  const a = t.node('ConvTranspose', [x, t.weight('w', [8, 4, 3, 3])], { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] }, 1, 'a');
  const b = t.node('ConvTranspose', [x, t.weight('w2', [8, 2, 3, 3])], { strides: [2, 2], output_shape: [12, 12], group: 2 }, 1, 'b');
  inferShapes(t.m);
  assert.equal(a.outputs[0]!.inferred!.shape, [1, 4, 10, 10]);
  // channels 2 x group 2 = 4; spatial as output_shape says
  assert.equal(b.outputs[0]!.inferred!.shape, [1, 4, 12, 12]);
});

test('ConvTranspose: input channels != weight dim 0 is E_SHAPE', () => {
  const t = tiny();
  t.node('ConvTranspose', [t.input('x', [1, 6, 5, 5]), t.weight('w', [8, 4, 3, 3])], {}, 1, 'up');
  expectShapeError(t, 'up', /6 channels/);
});

// ---------------------------------------------------------------------------------------------
// BatchNormalization and element-wise ops

test('BatchNormalization: inference form and the 5-output training form', () => {
  const t = tiny(13);
  const x = t.input('x', [2, 4, 5, 5]);
  const p = ['s', 'b', 'm', 'v'].map((n) => t.weight(n, [4]));
  const inf = t.node('BatchNormalization', [x, ...p], {}, 1, 'bn');
  const train = t.node('BatchNormalization', [x, ...p], {}, 5, 'bntrain');
  inferShapes(t.m);
  assert.equal(inf.outputs[0]!.inferred!.shape, [2, 4, 5, 5]);
  assert.equal(train.outputs[0]!.inferred!.shape, [2, 4, 5, 5]);
  // outputs 1-4: running / saved mean and variance, one per channel
  for (const k of [1, 2, 3, 4]) assert.equal(train.outputs[k]!.inferred!.shape, [4]);
});

test('BatchNormalization: a scale of the wrong length is E_SHAPE', () => {
  const t = tiny();
  const p = ['s', 'b', 'm', 'v'].map((n) => t.weight(n, [n === 's' ? 3 : 4]));
  t.node('BatchNormalization', [t.input('x', [1, 4, 5, 5]), ...p], {}, 1, 'bn');
  expectShapeError(t, 'bn', /4 channels but input 1 has 3/);
});

test('unary ops keep the shape; Dropout adds a BOOL mask', () => {
  const t = tiny();
  const x = t.input('x', ['batch', 6, 7]);
  const ops = ['Relu', 'LeakyRelu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Clip', 'Identity', 'Softmax'].map((op) => t.node(op, [x]));
  const drop = t.node('Dropout', [x], {}, 2);
  inferShapes(t.m);
  for (const n of ops) assert.equal(n.outputs[0]!.inferred!.shape, ['batch', 6, 7], n.opType);
  assert.equal(drop.outputs[1]!.inferred, { elemType: DataType.BOOL, shape: ['batch', 6, 7] });
});

test('Add / Sub / Mul / Div broadcast as numpy does', () => {
  const t = tiny();
  // right-aligned: [2, 1, 4] vs [_, 3, 1] -> [2, 3, 4]
  const a = t.node('Add', [t.input('a', [2, 1, 4]), t.input('b', [3, 1])], {}, 1, 'add');
  // ['batch', 8] vs [8] -> ['batch', 8]
  const m = t.node('Mul', [t.input('c', ['batch', 8]), t.weight('w', [8])], {}, 1, 'mul');
  // a symbol against a size: the symbol must be 1 or 5, so 5
  const s = t.node('Sub', [t.input('d', ['n', 1]), t.input('e', [5, 1])], {}, 1, 'sub');
  const d = t.node('Div', [t.input('f', [1, 3, 1, 1]), t.input('g', [2, 1, 4, 4])], {}, 1, 'div');
  inferShapes(t.m);
  assert.equal(a.outputs[0]!.inferred!.shape, [2, 3, 4]);
  assert.equal(m.outputs[0]!.inferred!.shape, ['batch', 8]);
  assert.equal(s.outputs[0]!.inferred!.shape, [5, 1]);
  assert.equal(d.outputs[0]!.inferred!.shape, [2, 3, 4, 4]);
});

test('Add: shapes that do not broadcast are E_SHAPE', () => {
  const t = tiny();
  // last axes 3 vs 4, neither 1
  t.node('Add', [t.input('a', [2, 3]), t.input('b', [4])], {}, 1, 'add1');
  expectShapeError(t, 'add1', /\[2, 3\] and \[4\] do not broadcast/);
});

// ---------------------------------------------------------------------------------------------
// Concat / Split / Slice

test('Concat: sizes add on the axis', () => {
  const t = tiny();
  // 2 + 3 + 1 = 6 channels
  const n = t.node('Concat', [t.input('a', [1, 2, 4, 4]), t.input('b', [1, 3, 4, 4]), t.input('c', [1, 1, 4, 4])], { axis: 1 });
  assert.equal(shapeOf(t, n), [1, 6, 4, 4]);
  const t2 = tiny();
  const neg = t2.node('Concat', [t2.input('a', ['batch', 2]), t2.input('b', ['batch', 5])], { axis: -1 });
  assert.equal(shapeOf(t2, neg), ['batch', 7]);
});

test('Concat: a mismatch off the axis is E_SHAPE', () => {
  const t = tiny();
  t.node('Concat', [t.input('a', [1, 2, 4, 4]), t.input('b', [1, 3, 5, 4])], { axis: 1 }, 1, 'cat');
  expectShapeError(t, 'cat', /input 1 .* has 5 on axis 2 where input 0 has 4/);
});

test('Split: attribute (opset 11), input (13), num_outputs (18), equal parts', () => {
  const t11 = tiny(11);
  const a = t11.node('Split', [t11.input('x', [1, 8, 4])], { axis: 1, split: [2, 6] }, 2);
  inferShapes(t11.m);
  assert.equal(a.outputs.map((o) => o!.inferred!.shape), [[1, 2, 4], [1, 6, 4]]);

  const t13 = tiny(13);
  const x13 = t13.input('x', [1, 8, 4]);
  const b = t13.node('Split', [x13, t13.ints('s', [3, 5])], { axis: 1 }, 2, 'b');
  // no sizes: 8 / 2 = 4 each
  const c = t13.node('Split', [x13], { axis: 1 }, 2, 'c');
  inferShapes(t13.m);
  assert.equal(b.outputs.map((o) => o!.inferred!.shape), [[1, 3, 4], [1, 5, 4]]);
  assert.equal(c.outputs.map((o) => o!.inferred!.shape), [[1, 4, 4], [1, 4, 4]]);

  const t18 = tiny(18);
  // num_outputs 3 on 8: chunks of ceil(8 / 3) = 3, the last 8 - 6 = 2
  const d = t18.node('Split', [t18.input('x', [8])], { axis: 0, num_outputs: 3 }, 3);
  inferShapes(t18.m);
  assert.equal(d.outputs.map((o) => o!.inferred!.shape), [[3], [3], [2]]);
});

test('Split: sizes that do not add up are E_SHAPE', () => {
  const t = tiny(13);
  // 2 + 5 = 7, not 8
  t.node('Split', [t.input('x', [1, 8]), t.ints('s', [2, 5])], { axis: 1 }, 2, 'split');
  expectShapeError(t, 'split', /2\+5 = 7 do not add up to 8/);
});

test('Slice: negative, clamped and INT64_MAX ends, steps; attribute form before opset 10', () => {
  const t = tiny(13);
  const x = t.input('x', [10, 20]);
  const i64max = (name: string) => t.g.addInitializer(Tensor.create(name, DataType.INT64, [1], BigInt64Array.of(9223372036854775807n)));
  // axis 1: start -3 -> 17, end INT64_MAX -> clamped to 20: 3 elements
  const a = t.node('Slice', [x, t.ints('s1', [-3]), i64max('e1'), t.ints('a1', [1])], {}, 1, 'a');
  // axis 0: start 8, end 1, step -2: 8, 6, 4, 2 -> 4 elements
  const b = t.node('Slice', [x, t.ints('s2', [8]), t.ints('e2', [1]), t.ints('a2', [0]), t.ints('st2', [-2])], {}, 1, 'b');
  // axis 0: start 2, end 100 clamped to 10: 8 elements; axis 1: 0..20 step 3: 0,3,...,18 -> 7
  const c = t.node('Slice', [x, t.ints('s3', [2, 0]), t.ints('e3', [100, 20]), t.ints('a3', [0, 1]), t.ints('st3', [1, 3])], {}, 1, 'c');
  inferShapes(t.m);
  assert.equal(a.outputs[0]!.inferred!.shape, [10, 3]);
  assert.equal(b.outputs[0]!.inferred!.shape, [4, 20]);
  assert.equal(c.outputs[0]!.inferred!.shape, [8, 7]);

  const t9 = tiny(9);
  // starts 1, ends -1 on axis 0: 1 .. 9 -> 8
  const d = t9.node('Slice', [t9.input('x', [10, 20])], { starts: [1], ends: [-1], axes: [0] });
  assert.equal(shapeOf(t9, d), [8, 20]);
});

test('Slice: step 0 is E_SHAPE', () => {
  const t = tiny(13);
  t.node('Slice', [t.input('x', [10]), t.ints('s', [0]), t.ints('e', [5]), t.ints('a', [0]), t.ints('st', [0])], {}, 1, 'sl');
  expectShapeError(t, 'sl', /step 0/);
});

// ---------------------------------------------------------------------------------------------
// pooling, Flatten, Reshape

test('MaxPool / AveragePool: ceil_mode, pads, auto_pad', () => {
  const t = tiny();
  const x = t.input('x', [1, 4, 16, 16]);
  // VoVNet's 3x3/2 ceil: ceil((16 - 3) / 2) + 1 = ceil(6.5) + 1 = 8; floor mode: 6 + 1 = 7
  const a = t.node('MaxPool', [x], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }, 1, 'a');
  const b = t.node('MaxPool', [x], { kernel_shape: [3, 3], strides: [2, 2] }, 1, 'b');
  // SAME_LOWER stride 3: ceil(16 / 3) = 6
  const c = t.node('AveragePool', [x], { kernel_shape: [3, 3], strides: [3, 3], auto_pad: 'SAME_LOWER' }, 1, 'c');
  // VALID: floor((16 - 5) / 2) + 1 = 6
  const d = t.node('AveragePool', [x], { kernel_shape: [5, 5], strides: [2, 2], auto_pad: 'VALID' }, 1, 'd');
  inferShapes(t.m);
  assert.equal(a.outputs[0]!.inferred!.shape, [1, 4, 8, 8]);
  assert.equal(b.outputs[0]!.inferred!.shape, [1, 4, 7, 7]);
  assert.equal(c.outputs[0]!.inferred!.shape, [1, 4, 6, 6]);
  assert.equal(d.outputs[0]!.inferred!.shape, [1, 4, 6, 6]);
});

test('MaxPool ceil_mode: a last window starting in the right padding is dropped (as PyTorch does)', () => {
  const t = tiny();
  // k 2, s 2, pads 1+1 on 5: ceil((5 + 2 - 2) / 2) + 1 = 4, but window 4 would start at (4-1)*2 = 6 >= 5 + 1: 3
  const n = t.node('MaxPool', [t.input('x', [1, 1, 5, 5])], { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 });
  assert.equal(shapeOf(t, n), [1, 1, 3, 3]);
});

test('MaxPool: a window larger than the input is E_SHAPE', () => {
  const t = tiny();
  t.node('MaxPool', [t.input('x', [1, 1, 3, 3])], { kernel_shape: [5, 5] }, 1, 'pool');
  expectShapeError(t, 'pool', /kernel 5/);
});

test('GlobalAveragePool / GlobalMaxPool keep N, C', () => {
  const t = tiny();
  const x = t.input('x', ['batch', 8, 7, 7]);
  const a = t.node('GlobalAveragePool', [x]);
  const b = t.node('GlobalMaxPool', [x]);
  inferShapes(t.m);
  assert.equal(a.outputs[0]!.inferred!.shape, ['batch', 8, 1, 1]);
  assert.equal(b.outputs[0]!.inferred!.shape, ['batch', 8, 1, 1]);
});

test('Flatten: products on both sides of the axis, symbols included', () => {
  const t = tiny();
  const x = t.input('x', [2, 3, 4, 5]);
  const y = t.input('y', ['batch', 64, 1, 1]);
  const a = t.node('Flatten', [x], { axis: 2 }, 1, 'a'); // [2*3, 4*5] = [6, 20]
  const b = t.node('Flatten', [x], { axis: 0 }, 1, 'b'); // [1, 2*3*4*5] = [1, 120]
  const c = t.node('Flatten', [y], { axis: 1 }, 1, 'c'); // [batch, 64]
  const d = t.node('Flatten', [y], { axis: 0 }, 1, 'd'); // [1, batch*64]
  inferShapes(t.m);
  assert.equal(a.outputs[0]!.inferred!.shape, [6, 20]);
  assert.equal(b.outputs[0]!.inferred!.shape, [1, 120]);
  assert.equal(c.outputs[0]!.inferred!.shape, ['batch', 64]);
  assert.equal(d.outputs[0]!.inferred!.shape, [1, 'batch*64']);
});

test('Reshape: 0 copies, -1 infers, allowzero keeps a 0', () => {
  const t = tiny();
  // [2, 3, 4] to [0, -1]: 0 copies 2, -1 = 24 / 2 = 12
  const a = t.node('Reshape', [t.input('x', [2, 3, 4]), t.ints('s', [0, -1])], {}, 1, 'a');
  // allowzero: the 0 is a size; [3, 0] has 0 elements, so does [0, 7]
  const b = t.node('Reshape', [t.input('z', [3, 0]), t.ints('s2', [0, 7])], { allowzero: 1 }, 1, 'b');
  // [batch, 8, 2, 2] to [-1, 32]: batch*32 / 32 = batch
  const c = t.node('Reshape', [t.input('y', ['batch', 8, 2, 2]), t.ints('s3', [-1, 32])], {}, 1, 'c');
  inferShapes(t.m);
  assert.equal(a.outputs[0]!.inferred!.shape, [2, 12]);
  assert.equal(b.outputs[0]!.inferred!.shape, [0, 7]);
  assert.equal(c.outputs[0]!.inferred!.shape, ['batch', 32]);
});

test('Reshape: element counts that cannot match are E_SHAPE', () => {
  const t = tiny();
  // 2*3*4 = 24 is not a multiple of 5
  t.node('Reshape', [t.input('x', [2, 3, 4]), t.ints('s', [5, -1])], {}, 1, 'r1');
  expectShapeError(t, 'r1', /24 elements.*not a multiple of 5/);
  const t2 = tiny();
  // 24 elements into 5*5 = 25
  t2.node('Reshape', [t2.input('x', [2, 3, 4]), t2.ints('s', [5, 5])], {}, 1, 'r2');
  expectShapeError(t2, 'r2', /24 elements.*25 elements/);
});

test('PyTorch dynamic-batch chain: Shape -> Gather -> Unsqueeze -> Concat -> Reshape', () => {
  const t = tiny(13);
  const x = t.input('x', ['batch', 8, 2, 2]);
  const shape = t.node('Shape', [x]);
  const batch = t.node('Gather', [shape.outputs[0], t.ints('zero', [0], [])], { axis: 0 }); // scalar index: shape []
  const unsq = t.node('Unsqueeze', [batch.outputs[0], t.ints('ax', [0])]);
  const cat = t.node('Concat', [unsq.outputs[0], t.ints('minus1', [-1])], { axis: 0 });
  const rs = t.node('Reshape', [x, cat.outputs[0]]);
  inferShapes(t.m);
  assert.equal(shape.outputs[0]!.inferred, { elemType: DataType.INT64, shape: [4] });
  assert.equal(batch.outputs[0]!.inferred!.shape, []);
  assert.equal(cat.outputs[0]!.inferred!.shape, [2]);
  // target [batch, -1]: -1 = batch*8*2*2 / batch = 32
  assert.equal(rs.outputs[0]!.inferred!.shape, ['batch', 32]);
});

// ---------------------------------------------------------------------------------------------
// Gemm / MatMul

test('Gemm: transA / transB', () => {
  const t = tiny();
  // A [4, 3] transposed: M = 3, K = 4; B [5, 4] transposed: K = 4, N = 5
  const n = t.node('Gemm', [t.input('a', [4, 3]), t.weight('b', [5, 4]), t.weight('c', [5])], { transA: 1, transB: 1 });
  assert.equal(shapeOf(t, n), [3, 5]);
});

test('Gemm: inner sizes that differ are E_SHAPE', () => {
  const t = tiny();
  // A [2, 3] x B [4, 5]: 3 != 4
  t.node('Gemm', [t.input('a', [2, 3]), t.weight('b', [4, 5])], {}, 1, 'fc');
  expectShapeError(t, 'fc', /3 columns .* 4 rows/);
});

test('MatMul: batched with broadcasting, and 1-D operands', () => {
  const t = tiny();
  // batch [2, 1] vs [5] -> [2, 5]; [3, 4] x [4, 6] -> [3, 6]
  const a = t.node('MatMul', [t.input('a', [2, 1, 3, 4]), t.input('b', [5, 4, 6])], {}, 1, 'a');
  // [4] x [4, 6]: the 1 prepended to the vector is removed again -> [6]
  const b = t.node('MatMul', [t.input('v', [4]), t.input('m', [4, 6])], {}, 1, 'b');
  // [3, 4] x [4]: -> [3]
  const c = t.node('MatMul', [t.input('m2', [3, 4]), t.input('v2', [4])], {}, 1, 'c');
  inferShapes(t.m);
  assert.equal(a.outputs[0]!.inferred!.shape, [2, 5, 3, 6]);
  assert.equal(b.outputs[0]!.inferred!.shape, [6]);
  assert.equal(c.outputs[0]!.inferred!.shape, [3]);
});

test('MatMul: inner sizes that differ are E_SHAPE', () => {
  const t = tiny();
  t.node('MatMul', [t.input('a', [3, 4]), t.input('b', [5, 6])], {}, 1, 'mm');
  expectShapeError(t, 'mm', /inner sizes 4 and 5 differ/);
});

// ---------------------------------------------------------------------------------------------
// Pad, Resize, Transpose, Softmax, ReduceMean, Squeeze, Cast, Constant

test('Pad: pads as input (opset 13) and as attribute (opset 10)', () => {
  const t = tiny(13);
  // begins [0, 0, 1, 2], ends [0, 0, 3, 4]: H 5 + 1 + 3 = 9, W 5 + 2 + 4 = 11
  const n = t.node('Pad', [t.input('x', [1, 3, 5, 5]), t.ints('p', [0, 0, 1, 2, 0, 0, 3, 4])]);
  assert.equal(shapeOf(t, n), [1, 3, 9, 11]);
  const t10 = tiny(10);
  const m = t10.node('Pad', [t10.input('x', [1, 3, 5, 5])], { pads: [0, 0, 1, 1, 0, 0, 1, 1] });
  assert.equal(shapeOf(t10, m), [1, 3, 7, 7]);
});

test('Resize (scales, sizes) and Upsample', () => {
  const t = tiny(13);
  const x = t.input('x', [1, 3, 5, 5]);
  const empty = t.g.addInitializer(Tensor.float32('empty', [0], new Float32Array(0)));
  // floor(5 x 2) = 10
  const a = t.node('Resize', [x, empty, t.floats('sc', [1, 1, 2, 2])], {}, 1, 'a');
  // floor(5 x 1.5) = floor(7.5) = 7
  const b = t.node('Resize', [x, empty, t.floats('sc2', [1, 1, 1.5, 1.5])], {}, 1, 'b');
  // sizes given, scales empty (as PyTorch writes it)
  const c = t.node('Resize', [x, empty, empty, t.ints('sz', [1, 3, 9, 8])], {}, 1, 'c');
  inferShapes(t.m);
  assert.equal(a.outputs[0]!.inferred!.shape, [1, 3, 10, 10]);
  assert.equal(b.outputs[0]!.inferred!.shape, [1, 3, 7, 7]);
  assert.equal(c.outputs[0]!.inferred!.shape, [1, 3, 9, 8]);
  const t9 = tiny(9);
  const u = t9.node('Upsample', [t9.input('x', [1, 3, 5, 5]), t9.floats('sc', [1, 1, 3, 3])]);
  assert.equal(shapeOf(t9, u), [1, 3, 15, 15]);
});

test('Resize: sizes are float32 products (10 x 0.7 = 7, as onnxruntime); keep_aspect_ratio_policy (opset 18)', () => {
  const t = tiny(13);
  // float32(0.7) = 0.699999988; x 10 = 6.99999988 in float64 (floor 6), 7 in float32
  const a = t.node('Resize', [t.input('x', [1, 1, 10, 10]), null, t.floats('sc', [1, 1, 0.7, 0.7])]);
  assert.equal(shapeOf(t, a), [1, 1, 7, 7]);
  // sizes [5, 5] on 10 x 7 over axes 2, 3: ratios 0.5 and 0.714...
  //   not_larger: scale 0.5 -> [5, roundf(3.5) = 4]; not_smaller: scale 5/7 -> [roundf(7.14) = 7, 5]; stretch: [5, 5]
  for (const [policy, want] of [['not_larger', [5, 4]], ['not_smaller', [7, 5]], ['stretch', [5, 5]]] as const) {
    const t18 = tiny(18);
    const r = t18.node('Resize', [t18.input('x', [1, 2, 10, 7]), null, null, t18.ints('sz', [5, 5])], { axes: [2, 3], keep_aspect_ratio_policy: policy });
    assert.equal(shapeOf(t18, r), [1, 2, ...want], policy);
  }
  // before opset 18 the attribute does not exist: sizes are taken as they are
  const t13 = tiny(13);
  const old = t13.node('Resize', [t13.input('x', [1, 2, 10, 7]), null, null, t13.ints('sz', [1, 2, 5, 5])], { keep_aspect_ratio_policy: 'not_larger' });
  assert.equal(shapeOf(t13, old), [1, 2, 5, 5]);
});

test('Resize: an unknown keep_aspect_ratio_policy is E_SHAPE', () => {
  const t = tiny(18);
  t.node('Resize', [t.input('x', [1, 2, 10, 7]), null, null, t.ints('sz', [1, 2, 5, 5])], { keep_aspect_ratio_policy: 'fit' }, 1, 'rs');
  expectShapeError(t, 'rs', /keep_aspect_ratio_policy 'fit'/);
});

test('symbolic spatial sizes: Conv / pool output sizes as floor quotients, Resize x2 and x0.5 exact, x0.7 unknown', () => {
  const t = tiny(13);
  const x = t.input('x', ['N', 3, 'H', 'W']);
  const c = t.node('Conv', [x, t.weight('w', [4, 3, 3, 3])], { pads: [1, 1, 1, 1], strides: [2, 2] }, 1, 'c');
  const p = t.node('MaxPool', [c.outputs[0]!], { kernel_shape: [2, 2], strides: [2, 2] }, 1, 'p');
  const up = t.node('Resize', [x, null, t.floats('s2', [1, 1, 2, 0.5])], {}, 1, 'up');
  const odd = t.node('Resize', [x, null, t.floats('s7', [1, 1, 0.7, 1])], {}, 1, 'odd');
  inferShapes(t.m);
  // (H + 2 - 3) / 2 + 1 = floor((H + 1) / 2); the 2x2/2 pool: floor((floor((H + 1) / 2) - 2) / 2) + 1
  assert.equal(c.outputs[0]!.inferred!.shape, ['N', 4, 'floor((H+1)/2)', 'floor((W+1)/2)']);
  assert.equal(p.outputs[0]!.inferred!.shape, ['N', 4, 'floor(floor((H+1)/2)/2)', 'floor(floor((W+1)/2)/2)']);
  assert.equal(up.outputs[0]!.inferred!.shape, ['N', 3, 'H*2', 'floor(W/2)']);
  assert.equal(odd.outputs[0]!.inferred!.shape, ['N', 3, null, 'W']);
});

test('Transpose: perm and the default reversal; a bad perm is E_SHAPE', () => {
  const t = tiny();
  const x = t.input('x', [1, 3, 5, 7]);
  const a = t.node('Transpose', [x], { perm: [0, 2, 3, 1] }, 1, 'a');
  const b = t.node('Transpose', [x], {}, 1, 'b');
  inferShapes(t.m);
  assert.equal(a.outputs[0]!.inferred!.shape, [1, 5, 7, 3]);
  assert.equal(b.outputs[0]!.inferred!.shape, [7, 5, 3, 1]);
  const t2 = tiny();
  t2.node('Transpose', [t2.input('x', [1, 3, 5])], { perm: [0, 0, 1] }, 1, 'tr');
  expectShapeError(t2, 'tr', /not a permutation/);
});

test('Softmax keeps the shape', () => {
  const t = tiny();
  const n = t.node('Softmax', [t.input('x', ['batch', 10])], { axis: -1 });
  assert.equal(shapeOf(t, n), ['batch', 10]);
});

test('ReduceMean: axes attribute (opset 13), axes input (opset 18), keepdims', () => {
  const t = tiny(13);
  const x = t.input('x', [1, 8, 5, 5]);
  const a = t.node('ReduceMean', [x], { axes: [2, 3] }, 1, 'a');
  const b = t.node('ReduceMean', [x], { axes: [2, 3], keepdims: 0 }, 1, 'b');
  inferShapes(t.m);
  assert.equal(a.outputs[0]!.inferred!.shape, [1, 8, 1, 1]);
  assert.equal(b.outputs[0]!.inferred!.shape, [1, 8]);
  const t18 = tiny(18);
  const c = t18.node('ReduceMean', [t18.input('x', [1, 8, 5, 5]), t18.ints('ax', [-1])], { keepdims: 0 });
  assert.equal(shapeOf(t18, c), [1, 8, 5]);
});

test('Squeeze / Unsqueeze; squeezing a dim that is not 1 is E_SHAPE', () => {
  const t = tiny(13);
  const x = t.input('x', [2, 1, 3]);
  const s = t.node('Squeeze', [x, t.ints('ax', [1])], {}, 1, 's');
  // unsqueeze at 0 and -1 of a rank-3 tensor -> rank 5: [1, 2, 1, 3, 1]
  const u = t.node('Unsqueeze', [x, t.ints('ax2', [0, -1])], {}, 1, 'u');
  inferShapes(t.m);
  assert.equal(s.outputs[0]!.inferred!.shape, [2, 3]);
  assert.equal(u.outputs[0]!.inferred!.shape, [1, 2, 1, 3, 1]);
  const t2 = tiny(13);
  t2.node('Squeeze', [t2.input('x', [2, 1, 3]), t2.ints('ax', [0])], {}, 1, 'sq');
  expectShapeError(t2, 'sq', /size is 2, not 1/);
});

test('Cast changes the element type; Constant gives its tensor shape', () => {
  const t = tiny();
  const c = t.node('Cast', [t.input('x', [2, 3])], { to: DataType.INT64 });
  const k = t.node('Constant', [], { value: Tensor.float32('k', [3, 4], new Float32Array(12)) });
  inferShapes(t.m);
  assert.equal(c.outputs[0]!.inferred, { elemType: DataType.INT64, shape: [2, 3] });
  assert.equal(k.outputs[0]!.inferred, { elemType: DataType.FLOAT, shape: [3, 4] });
});

// ---------------------------------------------------------------------------------------------
// unknown ops

test('an unknown op warns naming the node, leaves its outputs unknown, and does not crash', () => {
  const t = tiny();
  const x = t.input('x', [1, 3, 8, 8]);
  const odd = t.node('FrobnicateV2', [x], {}, 1, 'mystery');
  const after = t.node('Relu', [odd.outputs[0]], {}, 1, 'after');
  const custom = t.g.addNode({ opType: 'Fancy', domain: 'com.example', name: 'custom', inputs: [x], outputs: ['c'] });
  const seen: string[] = [];
  const { warnings } = inferShapes(t.m, { warn: (m) => seen.push(m) });
  assert.is(warnings.length, 2);
  assert.equal(seen, warnings);
  assert.match(warnings[0], /'mystery'.*FrobnicateV2/);
  assert.match(warnings[1], /'custom'.*com\.example::Fancy/);
  assert.is(odd.outputs[0]!.inferred!.shape, null);
  assert.is(after.outputs[0]!.inferred!.shape, null);
  assert.is(custom.outputs[0]!.inferred!.shape, null);
});

test.run();
