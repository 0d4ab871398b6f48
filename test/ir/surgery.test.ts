/**
 * The graph surgery the passes share. Numbers are checked against onnxruntime running the graph
 * (before and after the surgery) or against hand-computed values; each helper has a negative case.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GptError } from '../../src/errors';
import { Graph, Node, Value, floatType } from '../../src/ir/graph';
import { Model } from '../../src/ir/model';
import {
  activationOf, addConv, addConvBnAct, channelsOf, concatChannels, convProducer, copyActivation, heNormalWeights,
  keepInputChannels, keepOutputChannels, range, requireChannels, roundHalfEven, seedOf, selectionWeights, sliceChannels,
  splitChannels, widenInputChannels,
} from '../../src/ir/surgery';
import { Tensor } from '../../src/ir/tensor';
import { validateGraph } from '../../src/ir/validate';
import { createSession, runFloat } from '../../src/profile/ort';

const C = 4, H = 2, W = 2;
/** x [1, 4, 2, 2] with x[c][i] = 10·c + i (i over the 4 pixels): channel c is recognisable. */
const xData = Float32Array.from({ length: C * H * W }, (_, k) => 10 * Math.floor(k / (H * W)) + (k % (H * W)));
const channel = (data: Float32Array, c: number, hw = H * W) => Array.from(data.subarray(c * hw, (c + 1) * hw));

function model(opset = 13): { m: Model; g: Graph; x: Value } {
  const g = new Graph();
  const x = g.addInput('x', floatType([1, C, H, W]));
  const m = new Model({ irVersion: 7, opsetImport: [{ domain: '', version: opset }], metadataProps: [], trainingInfo: [], functions: [], configuration: [] }, g);
  return { m, g, x };
}
async function run(m: Model, feed = xData): Promise<Record<string, Float32Array>> {
  m.graph.cleanup(); // what the passes do: tensors the surgery replaced go
  const s = await createSession(m);
  const out = await runFloat(s, { x: { data: feed, dims: [1, C, H, W] } });
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data]));
}
const code = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    if (e instanceof GptError) return e.code;
    throw e;
  }
  return 'no error';
};
const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol = 1e-5) =>
  a.length === b.length && Array.from(a).every((v, i) => Math.abs(v - b[i]) <= tol * Math.max(1, Math.abs(b[i])));

/** A conv [cout, cin, 1, 1] with weights w[o][i] = o + 1 + i / 10, bias o / 100. */
function conv1x1(g: Graph, x: Value, name: string, cout: number, cin: number, before?: Node): Node {
  const w = g.addInitializer(Tensor.float32(`${name}.w`, [cout, cin, 1, 1], Float32Array.from({ length: cout * cin }, (_, k) => Math.floor(k / cin) + 1 + (k % cin) / 10)));
  const b = g.addInitializer(Tensor.float32(`${name}.b`, [cout], Float32Array.from({ length: cout }, (_, o) => o / 100)));
  const n = g.addNode({ opType: 'Conv', name, inputs: [x, w, b], outputs: [`${name}_out`], attrs: { kernel_shape: [1, 1] } }, before);
  n.outputs[0]!.inferred = floatType([1, cout, H, W]);
  return n;
}
/** BN with scale 1 + c / 10, shift c, mean c / 2, var 1 + c. */
function bn(g: Graph, x: Value, name: string, c: number): Node {
  const p = (s: string, f: (i: number) => number) => g.addInitializer(Tensor.float32(`${name}.${s}`, [c], Float32Array.from({ length: c }, (_, i) => f(i))));
  const n = g.addNode({ opType: 'BatchNormalization', name, inputs: [x, p('scale', (i) => 1 + i / 10), p('shift', (i) => i), p('mean', (i) => i / 2), p('var', (i) => 1 + i)], outputs: [`${name}_out`], attrs: { epsilon: { float: 1e-5 } } });
  n.outputs[0]!.inferred = floatType([1, c, H, W]);
  return n;
}

test('channelsOf / requireChannels / roundHalfEven / range', () => {
  const { g, x } = model();
  assert.is(channelsOf(x), C);
  assert.is(channelsOf(g.value('unknown')), null);
  assert.is(channelsOf(null), null);
  assert.is(requireChannels(x, 'here'), C);
  assert.is(code(() => requireChannels(g.value('unknown'), 'here')), 'E_SHAPE');
  assert.equal([0.5, 1.5, 2.5, 3.5, 2.4, 2.6, 7].map(roundHalfEven), [0, 2, 2, 4, 2, 3, 7]); // Python's round()
  assert.equal(range(2, 5), [2, 3, 4]);
  assert.equal(range(3, 3), []);
});

test('splitChannels: one Split (split as an input from opset 13, as an attribute before), parts as asked', async () => {
  for (const opset of [13, 11]) {
    const { m, g, x } = model(opset);
    const [a, b] = splitChannels(m, x, [1, 3], 'sp');
    assert.equal([channelsOf(a), channelsOf(b)], [1, 3]);
    const split = a.producer!;
    assert.is(split.opType, 'Split');
    assert.is(split.inputs.length, opset >= 13 ? 2 : 1);
    g.addOutput(a);
    g.addOutput(b);
    const out = await run(m);
    assert.equal(Array.from(out[a.name]), channel(xData, 0));
    assert.equal(Array.from(out[b.name]), [...channel(xData, 1), ...channel(xData, 2), ...channel(xData, 3)]);
  }
  const { m, x } = model();
  assert.equal(splitChannels(m, x, [4], 'one'), [x], 'one part: x itself, no node');
  assert.is(code(() => splitChannels(m, x, [4, 0], 'bad')), 'E_ARG');
});

test('sliceChannels: one Slice (inputs from opset 10, attributes before) of channels [start, end)', async () => {
  for (const opset of [13, 9]) {
    const { m, g, x } = model(opset);
    const s = sliceChannels(m, x, 1, 3, 'sl');
    assert.is(channelsOf(s), 2);
    assert.is(s.producer!.inputs.length, opset >= 10 ? 4 : 1);
    g.addOutput(s);
    const out = await run(m);
    assert.equal(Array.from(out[s.name]), [...channel(xData, 1), ...channel(xData, 2)]);
  }
});

test('concatChannels: channels add up; writes into a given output so downstream names stay', async () => {
  const { m, g, x } = model();
  const [a, b] = splitChannels(m, x, [3, 1], 'sp');
  const y = g.value('y');
  const out = concatChannels(m, [b, a], 'cat', undefined, y);
  assert.is(out, y);
  assert.is(channelsOf(y), 4);
  g.addOutput(y);
  const r = await run(m);
  assert.equal(Array.from(r.y), [...channel(xData, 3), ...channel(xData, 0), ...channel(xData, 1), ...channel(xData, 2)]);
  // negative: unknown channel counts leave the output's type unknown rather than wrong
  const z = concatChannels(m, [x, g.value('unknown')], 'cat2');
  assert.is(channelsOf(z), null);
});

test('convProducer: the conv behind a value, through BatchNormalization and Identity; null otherwise', () => {
  //   x ─ conv ─ bn ─ Identity ─ v ;  x ─ Relu ─ r
  const { g, x } = model();
  const conv = conv1x1(g, x, 'conv', 2, C);
  const b = bn(g, conv.outputs[0]!, 'bn', 2);
  const v = g.addNode({ opType: 'Identity', name: 'id', inputs: [b.outputs[0]], outputs: ['v'] }).outputs[0]!;
  assert.equal(convProducer(g, v), { conv, bn: b });
  assert.equal(convProducer(g, conv.outputs[0]!), { conv, bn: undefined });
  assert.is(convProducer(g, g.addNode({ opType: 'Relu', inputs: [x], outputs: ['r'] }).outputs[0]!), null);
  assert.is(convProducer(g, x), null);
});

test('keepOutputChannels: the kept channels compute exactly what they did (conv + BN)', async () => {
  //   x ─ conv(4 -> 3) ─ bn ─ y ;  keep channels [2, 0]
  const { m, g, x } = model();
  const conv = conv1x1(g, x, 'conv', 3, C);
  const b = bn(g, conv.outputs[0]!, 'bn', 3);
  g.addOutput(b.outputs[0]!);
  const before = (await run(m))[b.outputs[0]!.name];
  const oldW = g.constantTensor(conv.inputs[1])!;
  keepOutputChannels(m, conv, b, [2, 0]);
  assert.is(channelsOf(b.outputs[0]), 2);
  assert.equal(g.constantTensor(conv.inputs[1])!.dims, [2, C, 1, 1]);
  assert.equal(oldW.dims, [3, C, 1, 1], 'the source tensor is not edited in place');
  assert.equal(validateGraph(g), []);
  const after = (await run(m))[b.outputs[0]!.name];
  assert.ok(close(after, [...channel(before, 2), ...channel(before, 0)]), `${Array.from(after)}`);
  // negative: a grouped conv cannot be shrunk this way
  conv.setAttr('group', 2);
  assert.is(code(() => keepOutputChannels(m, conv, b, [0])), 'E_SHAPE');
});

test('keepInputChannels: a conv on fewer channels equals the full conv when the dropped channels are zero', async () => {
  //   x ─ conv(4 -> 2) ─ y ;  keep input channels [1, 3], feed x with channels 0 and 2 zeroed
  const { m, g, x } = model();
  const conv = conv1x1(g, x, 'conv', 2, C);
  g.addOutput(conv.outputs[0]!);
  const zeroed = xData.map((v, k) => ([0, 2].includes(Math.floor(k / (H * W))) ? 0 : v));
  const full = (await run(m, zeroed))[conv.outputs[0]!.name];
  // now feed the conv the two kept channels only
  const kept = sliceChannels(m, x, 1, 2, 'c1');
  const kept3 = sliceChannels(m, x, 3, 4, 'c3');
  conv.setInput(0, concatChannels(m, [kept, kept3], 'cat', conv));
  keepInputChannels(m, conv, [1, 3]);
  assert.equal(g.constantTensor(conv.inputs[1])!.dims, [2, 2, 1, 1]);
  const part = (await run(m, xData))[conv.outputs[0]!.name];
  assert.ok(close(part, full), `${Array.from(part)} vs ${Array.from(full)}`);
  conv.setAttr('group', 2);
  assert.is(code(() => keepInputChannels(m, conv, [0])), 'E_SHAPE');
});

test('activationOf / copyActivation: op, attributes and constant inputs are copied', async () => {
  //   x ─ LeakyRelu(alpha 0.25) ;  x ─ Clip(min 1, max 12) as inputs
  const { m, g, x } = model();
  const lr = g.addNode({ opType: 'LeakyRelu', name: 'lr', inputs: [x], outputs: ['lr_out'], attrs: { alpha: { float: 0.25 } } });
  assert.equal(activationOf(lr), { opType: 'LeakyRelu', attrs: { alpha: { float: 0.25 } } });
  assert.equal(activationOf(g.addNode({ opType: 'Relu', inputs: [x], outputs: ['r'] })), { opType: 'Relu', attrs: {} });
  const lo = g.addInitializer(Tensor.float32('lo', [], Float32Array.of(1)));
  const hi = g.addInitializer(Tensor.float32('hi', [], Float32Array.of(12)));
  const clip = g.addNode({ opType: 'Clip', name: 'clip', inputs: [x, lo, hi], outputs: ['clip_out'] });
  const neg = g.addNode({ opType: 'Neg', name: 'neg', inputs: [x], outputs: ['negx'] }).outputs[0]!;
  const c = copyActivation(m, clip, neg, 'copy/Clip');
  const l = copyActivation(m, lr, neg, 'copy/LeakyRelu');
  g.addOutput(c);
  g.addOutput(l);
  const out = await run(m);
  assert.ok(close(out[c.name], Array.from(xData, (v) => Math.min(12, Math.max(1, -v)))));
  assert.ok(close(out[l.name], Array.from(xData, (v) => (-v > 0 ? -v : -0.25 * v))));
  assert.is(c.producer!.name, 'copy/Clip');
  assert.is(l.producer!.float('alpha', 0), 0.25);
  assert.equal(clip.inputs.length, 3, 'the template keeps its inputs');
});

test('seedOf is 32-bit FNV-1a; heNormalWeights is seeded N(0, 2 / fan_in)', () => {
  // FNV-1a reference values (offset basis 0x811c9dc5; "a" and "foobar" from the FNV test suite)
  assert.is(seedOf(''), 0x811c9dc5);
  assert.is(seedOf('a'), 0xe40c292c);
  assert.is(seedOf('foobar'), 0xbf9cf968);
  const w = heNormalWeights(7, 64, 32, 3);
  assert.is(w.length, 64 * 32 * 9);
  const mean = w.reduce((a, b) => a + b, 0) / w.length;
  const std = Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length);
  const want = Math.sqrt(2 / (32 * 9)); // 0.0833
  assert.ok(Math.abs(mean) < 0.05 * want, `mean ${mean}`);
  assert.ok(Math.abs(std / want - 1) < 0.03, `std ${std} vs ${want}`); // 18432 draws: ~0.5% sampling error
  assert.equal(heNormalWeights(7, 2, 2), heNormalWeights(7, 2, 2));
  assert.not.equal(Array.from(heNormalWeights(7, 2, 2)), Array.from(heNormalWeights(8, 2, 2)));
});

test('selectionWeights + addConv: a 1x1 conv that copies the chosen channels', async () => {
  const { m, g, x } = model();
  assert.equal(Array.from(selectionWeights([2, 0], 3)), [0, 0, 1, 1, 0, 0]);
  const y = addConv(m, x, { name: 'pick', outChannels: 2, weight: selectionWeights([3, 1], C) });
  assert.is(channelsOf(y), 2);
  assert.is(y.producer!.inputs.length, 3);
  g.addOutput(y);
  const out = await run(m);
  assert.equal(Array.from(out[y.name]), [...channel(xData, 3), ...channel(xData, 1)]);
  assert.is(code(() => addConv(m, x, { name: 'bad', outChannels: 2, weight: new Float32Array(3) })), 'E_SHAPE');
});

test('addConvBnAct: conv (+BN starting as the identity) (+activation), seeded; writes into a given output', async () => {
  //   x ─ Conv 3x3 (4 -> 2) ─ BN ─ Relu ─ y
  const { m, g, x } = model();
  const y = g.value('y');
  const r = addConvBnAct(m, x, { scope: '/new', cout: 2, kernel: 3, batchNorm: true, act: { opType: 'Relu', attrs: {} }, output: y });
  assert.equal([r.conv.name, r.bn!.name, r.act!.name], ['/new/Conv', '/new/BatchNormalization', '/new/Relu']);
  assert.is(r.output, y);
  assert.equal(y.shape, [1, 2, H, W]);
  assert.is(r.params, 2 * C * 9 + 2 * 2);
  const w = g.constantTensor(r.conv.inputs[1])!;
  assert.equal(Array.from(w.data() as Float32Array), Array.from(heNormalWeights(seedOf('/new'), 2, C, 3)));
  g.addOutput(y);
  const out = await run(m);
  // independent figure: the 3x3 same-padded conv computed here, then Relu (BN is the identity up to eps)
  const wd = w.data() as Float32Array;
  const want: number[] = [];
  for (let o = 0; o < 2; o++) for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) {
    let s = 0;
    for (let c = 0; c < C; c++) for (let di = -1; di <= 1; di++) for (let dj = -1; dj <= 1; dj++) {
      const ii = i + di, jj = j + dj;
      if (ii >= 0 && ii < H && jj >= 0 && jj < W) s += wd[((o * C + c) * 3 + di + 1) * 3 + dj + 1] * xData[c * H * W + ii * W + jj];
    }
    want.push(Math.max(0, s / Math.sqrt(1 + 1e-5)));
  }
  assert.ok(close(out.y, want, 1e-4), `${Array.from(out.y)} vs ${want}`);
  // without BN: a zero bias instead, and no activation
  const plain = addConvBnAct(m, x, { scope: '/plain', cout: 1, kernel: 1, batchNorm: false, act: null });
  assert.is(plain.conv.inputs.length, 3);
  assert.is(plain.bn, undefined);
  assert.is(plain.params, C + 1);
  // negative: an output that already has a producer
  assert.is(code(() => addConvBnAct(m, x, { scope: '/again', cout: 1, kernel: 1, batchNorm: false, act: null, output: y })), 'E_GRAPH');
});

test('widenInputChannels: carried-over slices keep their weights, new ones are seeded; counts the new values', async () => {
  //   x ─ conv(2 -> 3): widen to 4 inputs, new channel j reads old channel from(j)
  const { m, g } = model();
  const x2 = g.addInput('x2', floatType([1, 2, H, W]));
  const conv = conv1x1(g, x2, 'conv', 3, 2);
  const oldW = g.constantTensor(conv.inputs[1])!.data() as Float32Array;
  const from = [1, null, 0, null];
  const fresh = widenInputChannels(m, conv, 4, (j) => from[j]);
  assert.is(fresh, 3 * 2); // two new input channels x 3 filters x 1x1
  const w = g.constantTensor(conv.inputs[1])!;
  assert.equal(w.dims, [3, 4, 1, 1]);
  const wd = w.data() as Float32Array;
  for (let o = 0; o < 3; o++) {
    assert.is(wd[o * 4 + 0], oldW[o * 2 + 1]);
    assert.is(wd[o * 4 + 2], oldW[o * 2 + 0]);
  }
  const seeded = heNormalWeights(seedOf('conv/in4'), 3, 4, 1);
  assert.is(wd[1], seeded[1]);
  assert.is(code(() => widenInputChannels(m, conv, 5, () => 9)), 'E_SHAPE'); // no input channel 9
  conv.setAttr('group', 3);
  assert.is(code(() => widenInputChannels(m, conv, 6, () => null)), 'E_SHAPE');
});

test.run();
