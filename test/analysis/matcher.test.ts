import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Value } from '../../src/ir/graph';
import { Match, MatchContext, matchAll, matchAt, selectMatches } from '../../src/analysis/matcher';
import { Rule, isBlockRule, loadRules } from '../../src/analysis/rules';
import { Tiny } from '../fixtures/tiny-graph';

const RULES = loadRules();
const rule = (name: string): Rule => RULES.find((r) => r.name === name)!;

function at(t: Tiny, name: string, input: Value = t.x): Match | null {
  return matchAt(new MatchContext(t.g), rule(name), input);
}
/** Every block match anywhere in the graph (boundary rules left out). */
function blocksIn(t: Tiny): Match[] {
  const ctx = new MatchContext(t.g);
  // the plain-conv rule reads any conv-BN-act (structure.ts matches it only where no other block is): left out here
  return selectMatches(matchAll(t.g, RULES.filter((r) => isBlockRule(r) && r.family !== 'plain' && r.part !== 'neck'), ctx), ctx);
}
const names = (m: Match | null, role: string) => (m?.roles.get(role as never) ?? []).map((n) => n.name);

/**
 * Darknet residual block, 16 channels:
 *
 *   x ─┬─ 1x1 conv 16->8 ─ BN ─ act ─ 3x3 conv 8->16 ─ BN ─ act ─┐
 *      └──────────────────────────────────────────────────────── Add ─> (no act)
 */
function darknet(opts: { act?: string; firstKernel?: number; mid?: number; shortcutFirst?: boolean } = {}): Tiny {
  const t = new Tiny(16);
  const a = t.convBnAct(t.x, 'b1', opts.mid ?? 8, opts.firstKernel ?? 1, { act: opts.act ?? 'LeakyRelu' });
  const b = t.convBnAct(a, 'b2', 16, 3, { act: opts.act ?? 'LeakyRelu' });
  const y = t.op('Add', 'add', opts.shortcutFirst === false ? [b, t.x] : [t.x, b]);
  t.head(y);
  return t;
}

test('darknet: 1x1 C->C/2, 3x3 C/2->C, Add(shortcut, branch)', () => {
  const m = at(darknet(), 'darknet-residual');
  assert.ok(m);
  assert.is(m!.output.name, 'add_out');
  assert.equal(names(m, 'add'), ['add']);
  assert.equal(names(m, 'conv'), ['b1.conv', 'b1.bn', 'b1.act', 'b2.conv', 'b2.bn', 'b2.act']);
  assert.equal(m!.parts.get('conv3x3.conv')!.map((n) => n.name), ['b2.conv']);
  assert.is(m!.symbols.get('C'), 16);
});

test('darknet: operands in either order (Add(branch, shortcut))', () => {
  assert.ok(at(darknet({ shortcutFirst: false }), 'darknet-residual'));
});

test('darknet: SiLU as Mul(x, Sigmoid(x)) and HardSwish are activations', () => {
  const silu = at(darknet({ act: 'silu' }), 'darknet-residual');
  assert.ok(silu);
  assert.ok(names(silu, 'conv').includes('b1.act.sigmoid') && names(silu, 'conv').includes('b1.act.mul'));
  assert.ok(at(darknet({ act: 'HardSwish' }), 'darknet-residual'));
});

test('darknet negative: 3x3 first does not match', () => {
  assert.is(at(darknet({ firstKernel: 3 }), 'darknet-residual'), null);
  assert.is(blocksIn(darknet({ firstKernel: 3 })).length, 0);
});

test('darknet: any middle width (CSPDarknet-53 keeps C in its later stages), but a 3x3 first is not a Darknet block', () => {
  assert.ok(at(darknet({ mid: 16 }), 'darknet-residual'));
  assert.ok(at(darknet({ mid: 12 }), 'darknet-residual'));
  assert.is(at(darknet({ mid: 16, firstKernel: 3 }), 'darknet-residual'), null);
});

/**
 * ResNet basic block, identity or projection shortcut:
 *
 *   x ─┬─ 3x3 conv ─ BN ─ Relu ─ 3x3 conv ─ BN ─┐
 *      └──────────── [1x1 conv /2 ─ BN] ────────── Add(branch, shortcut) ─ Relu
 */
function basic(opts: { project?: boolean; bnTraining?: boolean; act?: string; identityOnPath?: boolean } = {}): Tiny {
  const t = new Tiny(8);
  const cout = opts.project ? 16 : 8;
  const stride = opts.project ? 2 : 1;
  let a = t.conv(t.x, 'conv1', cout, 3, { stride });
  a = t.act(t.bn(a, 'bn1', opts.bnTraining), 'relu1', opts.act ?? 'Relu');
  if (opts.identityOnPath) a = t.op('Identity', 'noop', [a]);
  const b = t.bn(t.conv(a, 'conv2', cout, 3), 'bn2', opts.bnTraining);
  const sc = opts.project ? t.bn(t.conv(t.x, 'down.conv', cout, 1, { stride }), 'down.bn', opts.bnTraining) : t.x;
  const y = t.act(t.op('Add', 'add', [b, sc]), 'relu2', opts.act ?? 'Relu');
  t.head(y);
  return t;
}

test('resnet basic: identity shortcut, post-Add Relu', () => {
  const m = at(basic(), 'resnet-basic');
  assert.ok(m);
  assert.equal(names(m, 'postAdd'), ['relu2']);
  assert.equal(names(m, 'projection'), []);
  assert.is(m!.values.get('proj')![0], m!.input); // absent projection stands for the block input
});

test('resnet basic: projection shortcut (1x1 stride-2 conv + BN)', () => {
  const m = at(basic({ project: true }), 'resnet-basic');
  assert.ok(m);
  assert.equal(names(m, 'projection'), ['down.conv', 'down.bn']);
});

test('exporter variants: training-mode BN (5 outputs), Identity on the data path, HardSwish', () => {
  assert.ok(at(basic({ bnTraining: true, project: true }), 'resnet-basic'));
  const m = at(basic({ identityOnPath: true }), 'resnet-basic');
  assert.ok(m);
  assert.ok(m!.nodes.some((n) => n.name === 'noop'), 'the Identity belongs to the block');
  assert.ok(at(basic({ act: 'HardSwish' }), 'resnet-basic'));
});

test('exporter variant: weights behind Identity nodes (export without constant folding)', () => {
  const t = basic();
  const conv = t.g.nodes.find((n) => n.name === 'conv1')!;
  conv.setInput(1, t.op('Identity', 'w_identity', [conv.inputs[1]!]));
  const m = at(t, 'resnet-basic');
  assert.ok(m);
  assert.not.ok(m!.nodes.some((n) => n.name === 'w_identity'), 'a weight is a parameter, not part of the data path');
});

/**
 * Negative: the Add adds two branches of the same input, with no conv.
 *
 *   x ─┬─ Relu ───┐
 *      └─ Sigmoid ─ Add ─ Relu
 */
test('residual negative: Add of two conv-less branches of one input', () => {
  const t = new Tiny(8);
  const y = t.op('Relu', 'out', [t.op('Add', 'add', [t.op('Relu', 'r', [t.x]), t.op('Sigmoid', 's', [t.x])])]);
  t.head(y);
  assert.is(blocksIn(t).length, 0);
});

/**
 * Negative: a conv chain with no Add.
 *
 *   x ─ 3x3 conv ─ BN ─ Relu ─ 3x3 conv ─ BN ─ Relu
 */
test('residual negative: a plain conv chain', () => {
  const t = new Tiny(8);
  t.head(t.convBnAct(t.convBnAct(t.x, 'c1', 8, 3), 'c2', 8, 3));
  assert.is(blocksIn(t).length, 0);
});

test('a match is closed: a block whose inner value is read elsewhere is not a block', () => {
  const t = basic();
  // a second graph output taps the branch inside the block
  t.g.addOutput(t.g.nodes.find((n) => n.name === 'relu1')!.outputs[0]!);
  assert.is(at(t, 'resnet-basic'), null);
});

/**
 * VoVNet OSA module with n layers (and the VoVNetV2 extras):
 *
 *   x ─ 3x3 ─ 3x3 ─ ... ─ 3x3          (n chained conv-BN-Relu)
 *   │    │     │           │
 *   └────┴─────┴─ Concat ──┘ ─ 1x1 transition ─ [eSE: x * HardSigmoid(conv(GAP(x)))] ─ [Add x]
 */
function osa(opts: { layers?: number; withInput?: boolean; ese?: boolean; identityAdd?: boolean } = {}): Tiny {
  const t = new Tiny(16);
  const outs: Value[] = [];
  let cur = t.x;
  for (let i = 0; i < (opts.layers ?? 5); i++) outs.push((cur = t.convBnAct(cur, `layer${i}`, 8, 3)));
  const cat = t.op('Concat', 'concat', opts.withInput === false ? outs : [t.x, ...outs], { axis: 1 });
  let y = t.convBnAct(cat, 'transition', 16, 1);
  if (opts.ese) {
    const gate = t.op('HardSigmoid', 'ese.gate', [t.conv(t.op('GlobalAveragePool', 'ese.pool', [y]), 'ese.fc', 16, 1)]);
    y = t.op('Mul', 'ese.scale', [y, gate]);
  }
  if (opts.identityAdd) y = t.op('Add', 'add', [y, t.x]);
  t.head(y);
  return t;
}

test('osa: 5 chained 3x3 convs, Concat of the input and all outputs, 1x1 transition', () => {
  const m = at(osa(), 'vovnet-osa');
  assert.ok(m);
  assert.is(m!.values.get('layer')!.length, 5);
  assert.equal(names(m, 'concat'), ['concat']);
  assert.equal(names(m, 'transition'), ['transition.conv', 'transition.bn', 'transition.act']);
  assert.is(m!.output.name, 'transition.act_out');
  assert.equal(names(m, 'add'), []);
});

test('osa: 3 layers, and the optional eSE tail and identity Add (VoVNetV2)', () => {
  assert.is(at(osa({ layers: 3 }), 'vovnet-osa')!.values.get('layer')!.length, 3);
  const m = at(osa({ ese: true, identityAdd: true }), 'vovnet-osa');
  assert.ok(m);
  assert.equal(names(m, 'attention'), ['ese.pool', 'ese.fc', 'ese.gate', 'ese.scale']);
  assert.equal(names(m, 'add'), ['add']);
  assert.is(m!.output.name, 'add_out');
});

/**
 * Negative: OSA-like, but the Concat leaves out the module input.
 *
 *   x ─ 3x3 ─ 3x3
 *        │     │
 *        └─────┴─ Concat ─ 1x1
 */
test('osa negative: a concat without the module input', () => {
  const t = osa({ layers: 2, withInput: false });
  assert.is(at(t, 'vovnet-osa'), null);
  assert.is(blocksIn(t).length, 0);
});

/**
 * Stage boundaries: a stride-2 conv-BN-act and a stride-2 MaxPool match; stride 1 does not.
 *
 *   x ─ 3x3/s conv ─ BN ─ LeakyRelu ─ MaxPool 3x3/s
 */
test('boundaries: stride-2 conv(+BN+act) and MaxPool; negative: the same at stride 1', () => {
  for (const stride of [2, 1]) {
    const t = new Tiny(8);
    const y = t.convBnAct(t.x, 'down', 16, 3, { stride, act: 'LeakyRelu' });
    t.head(t.op('MaxPool', 'pool', [y], { kernel_shape: [3, 3], strides: [stride, stride], pads: [1, 1, 1, 1] }));
    const conv = at(t, 'downsample-conv');
    const pool = at(t, 'downsample-pool', y);
    if (stride === 2) {
      assert.equal(names(conv, 'downsample'), ['down.conv', 'down.bn', 'down.act']);
      assert.equal(names(pool, 'downsample'), ['pool']);
    } else {
      assert.is(conv, null);
      assert.is(pool, null);
    }
  }
});

test('selectMatches: the bigger match wins where two overlap', () => {
  const t = osa({ ese: true });
  const ctx = new MatchContext(t.g);
  const all = matchAll(t.g, [rule('vovnet-osa'), rule('downsample-conv'), rule('resnet-basic')], ctx);
  const chosen = selectMatches(all, ctx);
  assert.is(chosen.length, 1);
  assert.is(chosen[0].rule.name, 'vovnet-osa');
  assert.ok(chosen[0].nodes.some((n) => n.name === 'ese.scale'));
});

test.run();
