/**
 * The exporter spellings and block variants of rules/: activations written out (HardSwish,
 * HardSigmoid, Mish, ReLU6 as Clip), channel attention inside a block (SE with SiLU and a written-out
 * HardSigmoid gate, ECA), ResNet-D's AvgPool + 1x1 shortcut, depthwise-separable OSA layers. Each
 * with a negative case that must not match.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Value } from '../../src/ir/graph';
import { floatTensor } from '../../src/ir/float-data';
import { MatchContext, matchAt } from '../../src/analysis/matcher';
import { loadRules } from '../../src/analysis/rules';
import { recognize } from '../../src/analysis/structure';
import { Tiny } from '../fixtures/tiny-graph';

const RULES = loadRules();
const at = (t: Tiny, name: string, input: Value = t.x) => matchAt(new MatchContext(t.g), RULES.find((r) => r.name === name)!, input);
let k = 0;
const scalar = (t: Tiny, v: number): Value => t.g.addInitializer(floatTensor(`c${k++}`, [], new Float32Array([v])));

/** The activations as PyTorch writes them out. */
function act(t: Tiny, x: Value, name: string, kind: string): Value {
  switch (kind) {
    case 'hardswish-add': // x * relu6(x + 3) / 6
      return t.op('Div', `${name}.div`, [t.op('Mul', `${name}.mul`, [x, t.op('Clip', `${name}.clip`, [t.op('Add', `${name}.add`, [x, scalar(t, 3)]), scalar(t, 0), scalar(t, 6)])]), scalar(t, 6)]);
    case 'hardswish-gate-add': // x * (relu6(x + 3) / 6)
      return t.op('Mul', `${name}.mul`, [x, t.op('Div', `${name}.div`, [t.op('Clip', `${name}.clip`, [t.op('Add', `${name}.add`, [x, scalar(t, 3)]), scalar(t, 0), scalar(t, 6)]), scalar(t, 6)])]);
    case 'mish-tanh':
      return t.op('Mul', `${name}.mul`, [x, t.op('Tanh', `${name}.tanh`, [t.op('Softplus', `${name}.softplus`, [x])])]);
    case 'relu6-clip':
      return t.op('Clip', `${name}.clip`, [x, scalar(t, 0), scalar(t, 6)]);
    case 'hardswish-sixth': // x * relu6(x + 3) * (1/6)
      return t.op('Mul', `${name}.sixth`, [t.op('Mul', `${name}.mul`, [x, t.op('Clip', `${name}.clip`, [t.op('Add', `${name}.add`, [x, scalar(t, 3)]), scalar(t, 0), scalar(t, 6)])]), scalar(t, 1 / 6)]);
    case 'hardswish-gate-op': // x * HardSigmoid(x), PyTorch's nn.Hardswish before opset 14
      return t.op('Mul', `${name}.mul`, [t.op('HardSigmoid', `${name}.gate`, [x], {}), x]);
    case 'hardsigmoid-add': // relu6(x + 3) / 6 as a layer's activation
      return t.op('Div', `${name}.div`, [t.op('Clip', `${name}.clip`, [t.op('Add', `${name}.add`, [x, scalar(t, 3)]), scalar(t, 0), scalar(t, 6)]), scalar(t, 6)]);
    case 'silu-of-other': // y * Sigmoid(block input): a product of two unrelated tensors
      return t.op('Mul', `${name}.mul`, [x, t.op('Sigmoid', `${name}.sigmoid`, [t.x])]);
    case 'hardswish-of-other': // y * relu6(block input + 3) / 6
      return t.op('Div', `${name}.div`, [t.op('Mul', `${name}.mul`, [x, t.op('Clip', `${name}.clip`, [t.op('Add', `${name}.add`, [t.x, scalar(t, 3)]), scalar(t, 0), scalar(t, 6)])]), scalar(t, 6)]);
    case 'broken-mish': // tanh(softplus(x)) without the product: not an activation of x
      return t.op('Tanh', `${name}.tanh`, [t.op('Softplus', `${name}.softplus`, [x])]);
    default:
      return t.act(x, name, kind);
  }
}

/** Darknet block, 16 channels, with activation `kind` after each conv-BN (the second one only with `secondOnly`). */
function darknet(kind: string, secondOnly = false): Tiny {
  const t = new Tiny(16);
  const a = act(t, t.bn(t.conv(t.x, 'b1.conv', 8, 1), 'b1.bn'), 'b1.act', secondOnly ? 'silu' : kind);
  const b = act(t, t.bn(t.conv(a, 'b2.conv', 16, 3), 'b2.bn'), 'b2.act', kind);
  t.head(t.op('Add', 'add', [t.x, b]));
  return t;
}

for (const kind of ['hardswish-add', 'hardswish-gate-add', 'hardswish-sixth', 'hardswish-gate-op', 'hardsigmoid-add', 'mish-tanh', 'relu6-clip', 'silu', 'HardSwish', 'HardSigmoid', 'Mish']) {
  test(`darknet block with ${kind}: every node of the activation belongs to the block`, () => {
    const t = darknet(kind);
    const m = at(t, 'darknet-residual');
    assert.ok(m, kind);
    const inBlock = new Set(m!.nodes.map((n) => n.name));
    assert.ok(t.g.nodes.filter((n) => n.name.startsWith('b1.act') || n.name.startsWith('b2.act')).every((n) => inBlock.has(n.name)));
    assert.equal(recognize(t.model()).unmatched, []);
  });
}

test('darknet negative: Softplus -> Tanh without the product, or a Mul of the layer and an unrelated tensor, is no activation', () => {
  assert.is(at(darknet('broken-mish'), 'darknet-residual'), null);
  for (const kind of ['silu-of-other', 'hardswish-of-other']) assert.is(at(darknet(kind, true), 'darknet-residual'), null, kind);
});

/**
 * Bottleneck with SE (SiLU inside, a written-out HardSigmoid gate) and a ResNet-D shortcut:
 *
 *   x ─┬─ 1x1 ─ 3x3 /2 ─ 1x1 ─ SE ─┐          SE: y * gate(fc2(silu(fc1(ReduceMean(y)))))
 *      └─ AvgPool 2x2 /2 ─ 1x1 ──── Add ─ Relu
 */
function seBottleneck(opts: { gateReadsInput?: boolean; pool?: boolean } = {}): Tiny {
  const t = new Tiny(16);
  const a = t.convBnAct(t.x, 'reduce', 8, 1);
  const b = t.convBnAct(a, 'conv3x3', 8, 3, { stride: 2 });
  const c = t.bn(t.conv(b, 'expand.conv', 32, 1), 'expand.bn');
  const pooled = t.op('ReduceMean', 'se.mean', [c], { axes: [2, 3], keepdims: 1 });
  const s1 = t.silu(t.conv(pooled, 'se.fc1', 8, 1), 'se.act');
  const hs = t.op('Div', 'se.gate.div', [t.op('Clip', 'se.gate.clip', [t.op('Add', 'se.gate.add', [t.conv(s1, 'se.fc2', 32, 1), scalar(t, 3)]), scalar(t, 0), scalar(t, 6)]), scalar(t, 6)]);
  const scaled = t.op('Mul', 'se.mul', [opts.gateReadsInput ? b : c, hs]);
  const sc = t.bn(t.conv(opts.pool === false ? t.x : t.op('AveragePool', 'down.pool', [t.x], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }), 'down.conv', 32, 1, { stride: opts.pool === false ? 2 : 1 }), 'down.bn');
  t.head(t.op('Relu', 'out', [t.op('Add', 'add', [scaled, sc])]));
  return t;
}

test('bottleneck with SE (SiLU, HardSigmoid written out) and an AvgPool + 1x1 shortcut: one block, SE as attention, pool in the projection', () => {
  const m = at(seBottleneck(), 'resnet-bottleneck');
  assert.ok(m);
  const role = (r: string) => (m!.roles.get(r as never) ?? []).map((n) => n.name);
  assert.equal(role('attention'), ['se.mean', 'se.fc1', 'se.act.sigmoid', 'se.act.mul', 'se.fc2', 'se.gate.add', 'se.gate.clip', 'se.gate.div', 'se.mul']);
  assert.equal(role('projection'), ['down.pool', 'down.conv', 'down.bn']);
  // the strided 1x1 shortcut (ResNet-B) too
  assert.ok(at(seBottleneck({ pool: false }), 'resnet-bottleneck'));
});

test('bottleneck negative: an SE whose Mul scales another value than the expand output is not attention of this block', () => {
  assert.is(at(seBottleneck({ gateReadsInput: true }), 'resnet-bottleneck'), null);
});

/** ECA in a basic block: y * Sigmoid(conv1d(GAP(y) as a row)) with constant reshapes. */
function ecaBasic(kernel: number): Tiny {
  const t = new Tiny(8);
  const a = t.convBnAct(t.x, 'conv1', 8, 3);
  const b = t.bn(t.conv(a, 'conv2.conv', 8, 3), 'conv2.bn');
  const shape = (name: string, dims: number[]) => t.g.addInitializer(floatTensor(name, [dims.length], new Float32Array(dims)));
  const gap = t.op('GlobalAveragePool', 'eca.pool', [b]);
  const row = t.op('Reshape', 'eca.row', [gap, shape('eca.rowshape', [1, 1, 8])]);
  const w = t.g.addInitializer(floatTensor('eca.conv.weight', [1, 1, kernel], new Float32Array(kernel)));
  const conv = t.g.addNode({ name: 'eca.conv', opType: 'Conv', inputs: [row, w], outputs: ['eca.conv_out'], attrs: { kernel_shape: [kernel], pads: [1, 1] } }).outputs[0]!;
  const gate = t.op('Sigmoid', 'eca.gate', [conv]);
  const back = t.op('Reshape', 'eca.back', [gate, shape('eca.backshape', [1, 8, 1, 1])]);
  t.head(t.op('Relu', 'out', [t.op('Add', 'add', [t.op('Mul', 'eca.mul', [b, back]), t.x])]));
  return t;
}

test('basic block with ECA: the 1-D conv across channels and its reshapes are the block\'s attention', () => {
  const m = at(ecaBasic(3), 'resnet-basic');
  assert.ok(m);
  assert.equal((m!.roles.get('attention') ?? []).map((n) => n.name), ['eca.pool', 'eca.row', 'eca.conv', 'eca.gate', 'eca.back', 'eca.mul']);
});

test('ECA negative: a 1-D conv with an even kernel (not ECA\'s odd k) is not attention', () => {
  assert.is(at(ecaBasic(4), 'resnet-basic'), null);
});

/** VoVNet _dw OSA module: 1x1 reduction, then depthwise 3x3 + pointwise 1x1 layers, concat with the input, 1x1 transition. */
function dwOsa(depthwise = true): Tiny {
  const t = new Tiny(16);
  const r = t.convBnAct(t.x, 'reduction', 8, 1);
  let z = r;
  const outs: Value[] = [];
  for (let i = 0; i < 3; i++) {
    z = t.convBnAct(t.conv(z, `l${i}.dw`, 8, 3, { group: depthwise ? 8 : 2 }), `l${i}.pw`, 8, 1);
    outs.push(z);
  }
  t.head(t.convBnAct(t.op('Concat', 'concat', [t.x, ...outs], { axis: 1 }), 'transition', 16, 1));
  return t;
}

test('VoVNet depthwise OSA module: reduction, depthwise-separable layers, concat with the module input', () => {
  const m = at(dwOsa(), 'vovnet-osa');
  assert.ok(m);
  assert.equal(m!.parts.get('layer[0].dw')!.map((n) => n.name), ['l0.dw']);
  assert.equal(recognize(dwOsa().model()).unmatched, []);
});

test('VoVNet negative: a grouped (not depthwise) 3x3 before the 1x1 is not a separable layer', () => {
  assert.is(at(dwOsa(false), 'vovnet-osa'), null);
});

test.run();
