import * as fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gradientPaths, GradientPathOptions, GradientPathReport, isWeightLayer, LayerGradientPaths } from '../../src/analysis/gradient-path';
import { Graph, Value, floatType } from '../../src/ir/graph';
import { Tensor } from '../../src/ir/tensor';
import { loadModel } from '../../src/onnx/io';
import { fixturePath, fixtures, fixturesDir } from '../helpers';
import { emptyModel, syntheticResNet } from '../synthetic';

// ---------------------------------------------------------------------------------------------
// A tiny builder: NCHW activations of 8x8, 3x3 convs with constant weights.

class Net {
  g = new Graph();
  act(name: string, c: number | null = 4): Value {
    const v = this.g.value(name);
    v.inferred = floatType(c === null ? null : [1, c, 8, 8]);
    return v;
  }
  input(name: string, c = 4): Value {
    const v = this.act(name, c);
    v.declared = v.inferred;
    this.g.addInput(v);
    return v;
  }
  output(v: Value): void {
    this.g.addOutput(v);
  }
  conv(name: string, x: Value, out: Value, cin = 4, cout = 4): Value {
    const w = this.g.addInitializer(Tensor.float32(`${name}.w`, [cout, cin, 3, 3], new Float32Array(cout * cin * 9)));
    this.g.addNode({ opType: 'Conv', name, inputs: [x, w], outputs: [out], attrs: { pads: [1, 1, 1, 1] } });
    return out;
  }
  op(opType: string, name: string, inputs: Value[], out: Value, attrs?: Record<string, number | number[]>): Value {
    this.g.addNode({ opType, name, inputs, outputs: [out], attrs });
    return out;
  }
  ints(name: string, values: number[]): Value {
    return this.g.addInitializer(Tensor.int64(name, [values.length], values));
  }
  slice(name: string, x: Value, out: Value, start: number, end: number): Value {
    return this.op('Slice', name, [x, this.ints(`${name}.starts`, [start]), this.ints(`${name}.ends`, [end]), this.ints(`${name}.axes`, [1])], out);
  }
  analyse(opts: GradientPathOptions = {}): GradientPathReport {
    return gradientPaths(emptyModel(this.g), opts);
  }
}

function byName(r: GradientPathReport): Record<string, LayerGradientPaths> {
  return Object.fromEntries(r.layers.map((l) => [l.name, l]));
}
function pick(l: LayerGradientPaths) {
  const { shortest, longest, timestamps, sources, channelGroups } = l;
  return { shortest, longest, timestamps, sources, channelGroups };
}

// ---------------------------------------------------------------------------------------------
// Hand-computed graphs

test('chain of three convs', () => {
  //   in -> A -> B -> C -> out
  // Each layer has one path: A passes A, B, C (3), B passes B, C (2), C only itself (1).
  // One length each (timestamps 1); each output reaches exactly one weight layer / graph output.
  const n = new Net();
  const x = n.input('in');
  const a = n.conv('A', x, n.act('a'));
  const b = n.conv('B', a, n.act('b'));
  n.output(n.conv('C', b, n.act('out')));
  const r = n.analyse();
  const L = byName(r);
  assert.equal(pick(L.A), { shortest: 3, longest: 3, timestamps: 1, sources: 1, channelGroups: 1 });
  assert.equal(pick(L.B), { shortest: 2, longest: 2, timestamps: 1, sources: 1, channelGroups: 1 });
  assert.equal(pick(L.C), { shortest: 1, longest: 1, timestamps: 1, sources: 1, channelGroups: 1 });
  assert.equal(r.layers.map((l) => [l.name, l.order]), [['A', 0], ['B', 1], ['C', 2]]);
  assert.is(r.network.layers, 3);
  assert.is(r.network.maxShortest, 3);
  assert.is(r.network.longest, 3);
  assert.is(r.network.meanTimestamps, 1);
  assert.equal(r.warnings, []);
});

test('residual block', () => {
  //   in -> S -> x --> A -> Relu -> B --> Add -> y -> H -> out
  //              \___________________/
  // H: {1}. y: {1}. B: 1 + {1} = {2}. A: A, B, H = {3}.
  // x: via Add {1}, via A {3} -> S: 1 + {1, 3} = {2, 4}: shortest 2, longest 4, timestamps 2.
  // sources(S): x reaches A directly and H through Add (transparent) = 2; A: {B}; B: {H}; H: {out}.
  // network: maxShortest = max(2, 3, 2, 1) = 3, longest 4, mean timestamps (2+1+1+1)/4 = 1.25.
  const n = new Net();
  const x = n.conv('S', n.input('in'), n.act('x'));
  const a = n.op('Relu', 'relu', [n.conv('A', x, n.act('a'))], n.act('ar'));
  const y = n.op('Add', 'add', [n.conv('B', a, n.act('b')), x], n.act('y'));
  n.output(n.conv('H', y, n.act('out')));
  const r = n.analyse();
  const L = byName(r);
  assert.equal(pick(L.S), { shortest: 2, longest: 4, timestamps: 2, sources: 2, channelGroups: 1 });
  assert.equal(pick(L.A), { shortest: 3, longest: 3, timestamps: 1, sources: 1, channelGroups: 1 });
  assert.equal(pick(L.B), { shortest: 2, longest: 2, timestamps: 1, sources: 1, channelGroups: 1 });
  assert.equal(pick(L.H), { shortest: 1, longest: 1, timestamps: 1, sources: 1, channelGroups: 1 });
  assert.is(r.network.maxShortest, 3);
  assert.is(r.network.longest, 4);
  assert.is(r.network.meanTimestamps, 1.25);
});

test('concat block (OSA-like)', () => {
  //   in -> S -> x -> C1 -> a -> C2 -> b
  //              x, a, b -> Concat(axis 1, 12 ch) -> T -> out
  // T: {1}. Concat routes every input's channels to T: b {1}, a {1} and via C2 {2}, x {1} and
  // via C1 {2, 3}. So C2: {2}; C1: 1 + {1, 2} = {2, 3}; S: 1 + {1, 2, 3} = {2, 3, 4}.
  // sources: S -> {C1, T}, C1 -> {C2, T}, C2 -> {T}, T -> {out}.
  // Concat keeps each input's channels apart, but within one input all channels agree: 1 group.
  // network: maxShortest = max(2, 2, 2, 1) = 2; longest 4; mean timestamps (3+2+1+1)/4 = 1.75.
  const n = new Net();
  const x = n.conv('S', n.input('in'), n.act('x'));
  const a = n.conv('C1', x, n.act('a'));
  const b = n.conv('C2', a, n.act('b'));
  const cat = n.op('Concat', 'concat', [x, a, b], n.act('cat', 12), { axis: 1 });
  n.output(n.conv('T', cat, n.act('out'), 12, 4));
  const r = n.analyse();
  const L = byName(r);
  assert.equal(pick(L.S), { shortest: 2, longest: 4, timestamps: 3, sources: 2, channelGroups: 1 });
  assert.equal(pick(L.C1), { shortest: 2, longest: 3, timestamps: 2, sources: 2, channelGroups: 1 });
  assert.equal(pick(L.C2), { shortest: 2, longest: 2, timestamps: 1, sources: 1, channelGroups: 1 });
  assert.equal(pick(L.T), { shortest: 1, longest: 1, timestamps: 1, sources: 1, channelGroups: 1 });
  assert.is(r.network.maxShortest, 2);
  assert.is(r.network.longest, 4);
  assert.is(r.network.meanTimestamps, 1.75);
});

/**
 * PRN masked residual (paper section 4.1), C = 4, k = 2:
 *
 *   in -> S -> x --> A -> r -> Split(2, 2) -> r1, r2
 *              |                              r1 --> Add(r1, xs) -> s1 --+
 *              +--> Slice[0:2] -> xs ---------------^                    Concat -> y -> H -> out
 *                                             r2 ------------------------+
 */
function maskedResidual(sliceEnd: number): Net {
  const n = new Net();
  const x = n.conv('S', n.input('in'), n.act('x'));
  const r = n.conv('A', x, n.act('r'));
  const r1 = n.act('r1', 2), r2 = n.act('r2', 2);
  n.g.addNode({ opType: 'Split', name: 'split', inputs: [r, n.ints('split.sizes', [2, 2])], outputs: [r1, r2], attrs: { axis: 1 } });
  const xs = n.slice('mask', x, n.act('xs', sliceEnd), 0, sliceEnd);
  const s1 = n.op('Add', 'add', [r1, xs], n.act('s1', 2));
  const y = n.op('Concat', 'concat', [s1, r2], n.act('y', 4), { axis: 1 });
  n.output(n.conv('H', y, n.act('out')));
  return n;
}

test('PRN masked residual splits the channels of the layer feeding the shortcut', () => {
  // H: {1}; y: {1} on all 4 channels, so r1, r2, xs, s1 get {1}.
  // A: its output r mixes nothing further: all 4 channels {1} -> A: {2}, one group.
  // x: channels 0-1 get {1} (mask -> Add -> Concat) and {2} (through A) = {1, 2};
  //    channels 2-3 only {2} (through A). Two profiles -> channelGroups(S) = 2.
  // S as a whole: 1 + {1, 2} = {2, 3}; sources(S) = {A, H}.
  const r = maskedResidual(2).analyse();
  const L = byName(r);
  assert.equal(pick(L.S), { shortest: 2, longest: 3, timestamps: 2, sources: 2, channelGroups: 2 });
  assert.equal(pick(L.A), { shortest: 2, longest: 2, timestamps: 1, sources: 1, channelGroups: 1 });
  assert.equal(pick(L.H), { shortest: 1, longest: 1, timestamps: 1, sources: 1, channelGroups: 1 });
  assert.is(r.network.maxChannelGroups, 2);
  assert.equal(r.warnings, []);
});

test('a full-width residual keeps one channel group; unknown widths collapse to one group', () => {
  // Same graph with the plain residual: Add(r, x) instead of the mask (every channel of x gets
  // {1, 2}): one group.
  const n = new Net();
  const x = n.conv('S', n.input('in'), n.act('x'));
  const y = n.op('Add', 'add', [n.conv('A', x, n.act('r')), x], n.act('y'));
  n.output(n.conv('H', y, n.act('out')));
  assert.is(byName(n.analyse()).S.channelGroups, 1);

  // The masked residual with its channel counts erased and inference turned off: routing is
  // impossible, so the analysis treats the channels as one group and says so; the path lengths do
  // not depend on channels.
  const m = maskedResidual(2);
  for (const v of m.g.values.values()) if (!v.tensor && !m.g.inputs.includes(v)) v.inferred = undefined;
  const r = m.analyse({ inferShapes: false });
  assert.equal(pick(byName(r).S), { shortest: 2, longest: 3, timestamps: 2, sources: 2, channelGroups: 1 });
  assert.ok(r.warnings.some((w) => w.includes('channel count')));
  // By default the analysis infers the shapes itself and finds the two groups again.
  const again = m.analyse();
  assert.is(byName(again).S.channelGroups, 2);
  assert.equal(again.warnings, []);
});

test('a Conv whose weight is a graph input is not a weight layer; Identity-wrapped weights are', () => {
  //   in -> S -> x -> D(Conv, weight = graph input 'w') -> y -> I(Conv, weight = Identity(init)) -> out
  //                                                      \-> MatMul(const, y): input 1 is data -> z -> Add
  // D is transparent, so S's only path is S, I: {2}, and S's output reaches I directly: sources 1.
  // The MatMul has a constant input 0 but a data input 1: transparent too. z joins I's output
  // at an Add, so S also reaches the graph output through D and the MatMul without another
  // weight layer: S = 1 + {0, 1} = {1, 2}, sources {I, out} = 2.
  const n = new Net();
  const x = n.conv('S', n.input('in'), n.act('x'));
  const w = n.g.value('w');
  w.declared = floatType([4, 4, 3, 3]);
  n.g.addInput(w);
  const y = n.op('Conv', 'D', [x, w], n.act('y'));
  const raw = n.g.addInitializer(Tensor.float32('I.raw', [4, 4, 3, 3], new Float32Array(144)));
  const wi = n.op('Identity', 'I.weight', [raw], n.g.value('I.w'));
  const i = n.op('Conv', 'I', [y, wi], n.act('i'));
  const k = n.g.addInitializer(Tensor.float32('K', [8, 8], new Float32Array(64)));
  const z = n.op('MatMul', 'M', [k, y], n.act('z'));
  n.output(n.op('Add', 'join', [i, z], n.act('out')));
  const r = n.analyse();
  const L = byName(r);
  assert.equal(Object.keys(L).sort(), ['I', 'S']);
  assert.not.ok(isWeightLayer(n.g, n.g.nodes.find((m) => m.name === 'D')!));
  assert.not.ok(isWeightLayer(n.g, n.g.nodes.find((m) => m.name === 'M')!));
  assert.equal(pick(L.I), { shortest: 1, longest: 1, timestamps: 1, sources: 1, channelGroups: 1 });
  assert.equal(pick(L.S), { shortest: 1, longest: 2, timestamps: 2, sources: 2, channelGroups: 1 });
});

test('a weight layer that reaches no output is reported with 0 paths and left out of the aggregates', () => {
  //   in -> A -> out ;  in -> Dead -> (nothing)
  const n = new Net();
  const x = n.input('in');
  n.output(n.conv('A', x, n.act('out')));
  n.conv('Dead', x, n.act('dead'));
  const r = n.analyse();
  assert.equal(pick(byName(r).Dead), { shortest: 0, longest: 0, timestamps: 0, sources: 0, channelGroups: 0 });
  assert.is(r.network.layers, 1);
  assert.ok(r.warnings.some((w) => w.includes('reach no graph output')));
});

test('a graph whose nodes are out of order is analysed in topological order, unchanged', () => {
  const n = new Net();
  const a = n.conv('A', n.input('in'), n.act('a'));
  n.output(n.conv('B', a, n.act('out')));
  n.g.reorderNodes([...n.g.nodes].reverse());
  const r = n.analyse();
  assert.equal(r.layers.map((l) => [l.name, l.shortest]), [['A', 2], ['B', 1]]);
  assert.equal(n.g.nodes.map((m) => m.name), ['B', 'A']);
});

// ---------------------------------------------------------------------------------------------
// Synthetic plain ResNets against a closed formula

/**
 * syntheticResNet(N): stem, N blocks x(k-1) -> conv1 -> relu -> conv2 -> Add(., x(k-1)) -> relu,
 * GAP -> Flatten -> fc. Let P(k) be the lengths from block k's output x_k to the output.
 * P(N) = {1} (fc); x(k-1) goes through the Add (P(k)) or through conv1, conv2 (P(k) + 2), so
 * P(N - j) = {1, 3, ..., 1 + 2j}. Hence
 *   stem:        1 + P(0)  = {2, 4, ..., 2N + 2}      shortest 2, longest 2N + 2, N + 1 timestamps
 *   conv1 of k:  2 + P(k)                             shortest 3, longest 3 + 2(N - k)
 *   conv2 of k:  1 + P(k)                             shortest 2, longest 2 + 2(N - k)
 *   fc:          {1}
 * Network: 2N + 2 weight layers, maxShortest 3, longest 2N + 2, and timestamps summing to
 * (N + 1) + 2 * (1 + ... + N) + 1 = N^2 + 2N + 2.
 * sources: stem reaches conv1 of every block and fc through the Add chain (N + 1).
 */
function checkSynthetic(N: number): void {
  const r = gradientPaths(syntheticResNet(N));
  assert.is(r.network.layers, 2 * N + 2);
  assert.is(r.network.maxShortest, 3);
  assert.is(r.network.longest, 2 * N + 2);
  assert.ok(Math.abs(r.network.meanTimestamps - (N * N + 2 * N + 2) / (2 * N + 2)) < 1e-9);
  const L = byName(r);
  assert.equal(pick(L.stem), { shortest: 2, longest: 2 * N + 2, timestamps: N + 1, sources: N + 1, channelGroups: 1 });
  const k = Math.ceil(N / 2);
  assert.equal(pick(L[`b${k}.conv1`]), { shortest: 3, longest: 3 + 2 * (N - k), timestamps: N - k + 1, sources: 1, channelGroups: 1 });
  assert.equal(pick(L[`b${k}.conv2`]), { shortest: 2, longest: 2 + 2 * (N - k), timestamps: N - k + 1, sources: N - k + 1, channelGroups: 1 });
  assert.equal(pick(L.fc), { shortest: 1, longest: 1, timestamps: 1, sources: 1, channelGroups: 1 });
  assert.is(r.network.maxChannelGroups, 1);
}

test('synthetic ResNet of 3 blocks matches the formula', () => checkSynthetic(3));
test('synthetic ResNet of 1,000 blocks matches the formula', () => checkSynthetic(1000));

test('per-stage aggregates', () => {
  // N = 4: stage "early" = blocks 1-2, "late" = blocks 3-4 (+ fc).
  // early: conv1 longest 3 + 2(4 - 1) = 9 at k = 1; shortest 3; timestamps 4,4,3,3 -> mean 3.5.
  // late:  conv1 of 3: {3, 5}, conv2 of 3: {2, 4}, block 4: {3}, {2}, fc {1}: longest 5,
  //        maxShortest 3, timestamps 2,2,1,1,1 -> mean 1.4.
  const m = syntheticResNet(4);
  const names = (ks: number[]) => ks.flatMap((k) => [`b${k}.conv1`, `b${k}.relu1`, `b${k}.conv2`, `b${k}.add`, `b${k}.relu2`]);
  const r = gradientPaths(m, { stages: [{ name: 'early', nodes: names([1, 2]) }, { name: 'late', nodes: [...names([3, 4]), 'gap', 'flatten', 'fc'] }, { name: 'none', nodes: [] }] });
  const [early, late, none] = r.stages;
  assert.equal([early.name, early.layers, early.maxShortest, early.longest, early.meanTimestamps, early.start, early.end], ['early', 4, 3, 9, 3.5, 1, 4]);
  assert.equal([late.name, late.layers, late.maxShortest, late.longest, late.start, late.end], ['late', 5, 3, 5, 5, 9]);
  assert.ok(Math.abs(late.meanTimestamps - 1.4) < 1e-9);
  assert.equal([none.layers, none.start, none.end, none.maxShortest], [0, -1, -1, 0]);
});

// ---------------------------------------------------------------------------------------------
// Fixtures: reference values from an independent implementation

const reference: [RegExp, { maxShortest: number; longest: number; layers: number }][] = [
  [/^resnet18-/, { maxShortest: 6, longest: 18, layers: 21 }],
  [/^resnet50-/, { maxShortest: 7, longest: 50, layers: 54 }],
  [/^darknet53-/, { maxShortest: 7, longest: 53, layers: 53 }],
  [/^vovnet39-/, { maxShortest: 10, longest: 40, layers: 40 }],
  [/^vovnet57-/, { maxShortest: 13, longest: 58, layers: 58 }],
];

test('fixtures match the reference gradient paths', () => {
  assert.ok(fs.existsSync(fixturesDir), `fixtures not found at ${fixturesDir}`);
  let checked = 0;
  for (const f of fixtures()) {
    const ref = reference.find(([re]) => re.test(f.model))?.[1];
    assert.ok(ref, `no reference figures for ${f.model}`);
    const r = gradientPaths(loadModel(fixturePath(f.model)));
    const got = { maxShortest: r.network.maxShortest, longest: r.network.longest, layers: r.network.layers };
    assert.equal(got, ref, f.model);
    // plain networks: every layer's channels share one profile (channel counts from inference)
    assert.is(r.network.maxChannelGroups, 1, f.model);
    assert.equal(r.warnings, [], f.model);
    checked++;
  }
  assert.ok(checked >= 5);
});

test('masking the first residual of resnet18-w25 splits the stem conv into two channel groups', () => {
  // Stem: conv1 -> Relu -> MaxPool -> m (16 ch). Block layer1.0: m -> conv, relu, conv -> b;
  // Add(b, m). Masked (k = 8):  Add(Split(b)[0], Slice(m)[0:8]) -> s1; Concat(s1, Split(b)[1]).
  // Channels 0-7 of the stem's output still reach the Add and the block's first conv; channels
  // 8-15 only the conv: two profiles on conv1, one everywhere else. The sets of path lengths
  // (a union over channels) do not change, so maxShortest / longest stay 6 / 18.
  const model = loadModel(fixturePath('resnet18-w25.onnx'));
  const g = model.graph;
  const add = g.nodes.find((n) => n.opType === 'Add')!;
  const shortcutIndex = add.inputs.findIndex((v) => v?.producer?.opType === 'MaxPool');
  assert.ok(shortcutIndex >= 0, 'the first Add takes the MaxPool output as its shortcut');
  const m = add.inputs[shortcutIndex]!, b = add.inputs[1 - shortcutIndex]!, sum = add.outputs[0]!;
  const ints = (name: string, v: number[]) => g.addInitializer(Tensor.int64(name, [v.length], v));
  const xs = g.addNode({ opType: 'Slice', inputs: [m, ints('k0', [0]), ints('k8', [8]), ints('ax1', [1])], outputs: ['masked_shortcut'] }, add).outputs[0]!;
  const parts = g.addNode({ opType: 'Split', inputs: [b, ints('halves', [8, 8])], outputs: ['b_lo', 'b_hi'], attrs: { axis: 1 } }, add).outputs;
  const s1 = g.addNode({ opType: 'Add', inputs: [parts[0], xs], outputs: ['masked_sum'] }, add).outputs[0]!;
  const cat = g.addNode({ opType: 'Concat', inputs: [s1, parts[1]], outputs: ['masked_out'], attrs: { axis: 1 } }, add).outputs[0]!;
  g.replaceAllUses(sum, cat, add);
  g.removeNode(add);
  g.cleanup();

  const r = gradientPaths(model);
  assert.equal(r.warnings, []);
  assert.is(r.network.maxShortest, 6);
  assert.is(r.network.longest, 18);
  const split = r.layers.filter((l) => l.channelGroups !== 1).map((l) => [l.name, l.channelGroups]);
  const stem = g.nodes.find((n) => n.opType === 'Conv')!;
  assert.equal(split, [[stem.name, 2]]);
});

test.run();
