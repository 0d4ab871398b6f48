import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Value } from '../../src/ir/graph';
import { loadModel } from '../../src/onnx/io';
import { loadRules } from '../../src/analysis/rules';
import { recognize } from '../../src/analysis/structure';
import type { Block, Structure } from '../../src/analysis/structure-types';
import { fixturePath, fixtures, repoRoot } from '../helpers';
import { Tiny } from '../fixtures/tiny-graph';

const GROUPED_BASIC = path.join(repoRoot, 'test', 'fixtures', 'grouped-basic.rule.json');

/** What the fixture README says each model is: family, blocks per stage, projection shortcuts. */
/** The stem's ops, BN nodes left out (some fixtures fold them). */
const EXPECTED: Record<string, { family: Structure['family']; blocks: number[]; projections: number; stem: string[] }> = {
  resnet18: { family: 'resnet', blocks: [2, 2, 2, 2], projections: 3, stem: ['Conv', 'Relu', 'MaxPool'] },
  resnet50: { family: 'resnet', blocks: [3, 4, 6, 3], projections: 4, stem: ['Conv', 'Relu', 'MaxPool'] },
  // the stem conv and the first stride-2 conv: stage 0 opens at its first block
  darknet53: { family: 'darknet53', blocks: [1, 2, 8, 8, 4], projections: 0, stem: ['Conv', 'LeakyRelu', 'Conv', 'LeakyRelu'] },
  vovnet39: { family: 'vovnet', blocks: [1, 1, 2, 2], projections: 0, stem: ['Conv', 'Relu', 'Conv', 'Relu', 'Conv', 'Relu'] },
  vovnet57: { family: 'vovnet', blocks: [1, 1, 4, 3], projections: 0, stem: ['Conv', 'Relu', 'Conv', 'Relu', 'Conv', 'Relu'] },
};

const allBlocks = (s: Structure): Block[] => s.stages.flatMap((st) => st.blocks);

for (const fx of fixtures()) {
  const key = Object.keys(EXPECTED).find((k) => fx.model.startsWith(k + '-'))!;
  test(`fixture ${fx.model}: family, stages, blocks per stage, shortcuts`, () => {
    const want = EXPECTED[key];
    const model = loadModel(fixturePath(fx.model));
    const s = recognize(model);
    assert.is(s.family, want.family);
    assert.is(s.family, fx.family === 'darknet53' ? 'darknet53' : fx.family);
    assert.equal(s.stages.map((st) => st.blocks.length), want.blocks);
    assert.equal(s.unmatched, []);
    const opOf = (name: string) => model.graph.nodes.find((x) => x.name === name)!.opType;
    assert.equal(s.head.map(opOf), ['GlobalAveragePool', 'Flatten', 'Gemm']);
    assert.equal(s.stem.map(opOf).filter((op) => op !== 'BatchNormalization'), want.stem);
    // every data node is in exactly one place
    const placed = [...s.stem, ...s.head, ...s.unmatched, ...s.stages.flatMap((st) => [...st.entry, ...st.blocks.flatMap((b) => b.nodes)])];
    assert.is(new Set(placed).size, placed.length);
    // Identity / Constant nodes on weight paths are not data nodes (resnet18-w25-nofold has 42)
    const dataNodes = model.graph.nodes.filter((n) => n.outputs.some((o) => o && !model.graph.isConstant(o)));
    assert.is(placed.length, dataNodes.length);
    // stages halve the resolution one after another
    const sizes = s.stages.map((st) => st.resolution![0] as number);
    sizes.slice(1).forEach((h, i) => assert.is(h, sizes[i] / 2));
    const blocks = allBlocks(s);
    assert.is(blocks.filter((b) => b.residual?.shortcut === 'projection').length, want.projections);
    if (want.family === 'vovnet') assert.ok(blocks.every((b) => b.kind === 'osa' && !b.residual && b.roles.concat.length === 1));
    else assert.ok(blocks.every((b) => b.residual));
  });
}

test('resnet18: residual info names the Add operands (ResNet writes Add(branch, shortcut))', () => {
  const model = loadModel(fixturePath('resnet18-w25.onnx'));
  const s = recognize(model);
  const [first, , third] = allBlocks(s);
  assert.is(first.id, 's0.b0');
  assert.equal(first.residual, {
    add: '/layer1/layer1.0/Add',
    shortcutValue: '/maxpool/MaxPool_output_0',
    branchValue: '/layer1/layer1.0/conv2/Conv_output_0',
    shortcut: 'identity',
    projectionNodes: [],
    postAdd: ['/layer1/layer1.0/relu_1/Relu'],
  });
  assert.is(first.input, '/maxpool/MaxPool_output_0');
  assert.is(third.id, 's1.b0');
  assert.is(third.residual!.shortcut, 'projection');
  assert.equal(third.residual!.projectionNodes, ['/layer2/layer2.0/downsample/downsample.0/Conv']);
  assert.is(third.residual!.shortcutValue, '/layer2/layer2.0/downsample/downsample.0/Conv_output_0');
  assert.is(third.channelsIn, 16);
  assert.is(third.channelsOut, 32);
  // the stage opens with the block that downsamples itself, not with a separate entry
  assert.equal(s.stages[1].entry, []);
  assert.is((s.stages[1] as { entryBlock?: string }).entryBlock, 's1.b0');
});

test('darknet53: shortcut is the block input (Add(shortcut, branch)), no act after the Add, stride-2 conv entries', () => {
  const s = recognize(loadModel(fixturePath('darknet53-w25.onnx')));
  const b = s.stages[2].blocks[0];
  assert.is(b.residual!.shortcut, 'identity');
  assert.is(b.residual!.shortcutValue, b.input);
  assert.is(b.residual!.branchValue, b.roles.conv[b.roles.conv.length - 1] + '_output_0');
  assert.equal(b.residual!.postAdd, []);
  assert.is(b.output, b.residual!.add + '_output_0');
  assert.is(b.channelsIn, b.channelsOut);
  for (const st of s.stages.slice(1)) assert.equal(st.entry.map((n) => n.split('/').pop()), ['Conv', 'LeakyRelu']);
});

test('vovnet39: MaxPool entries, transition and concat roles', () => {
  const s = recognize(loadModel(fixturePath('vovnet39-w25.onnx')));
  assert.equal(s.stages[0].entry, []);
  for (const st of s.stages.slice(1)) assert.equal(st.entry.map((n) => n.split('/').pop()), ['MaxPool']);
  const b = s.stages[2].blocks[1];
  assert.is(b.roles.transition.length, 2); // conv + Relu (BN folded)
  assert.is(b.roles.conv.length, 10); // 5 x (conv + Relu)
});

/**
 * A small ResNet with an unknown region between two blocks:
 *
 *   x ─ stem conv ─ [basic] ─ [basic] ─ Softsign ─ Erf ─ [basic] ─ GAP ─ Flatten ─ Gemm
 */
function basicBlock(t: Tiny, x: Value, name: string, act = 'Relu'): Value {
  const a = t.convBnAct(x, `${name}.c1`, 8, 3, { act });
  const b = t.bn(t.conv(a, `${name}.c2.conv`, 8, 3), `${name}.c2.bn`);
  return t.act(t.op('Add', `${name}.add`, [b, x]), `${name}.relu`, act);
}

test('an unknown region is reported by name; the rest is still recognised', () => {
  const t = new Tiny(3, 16);
  let y = t.convBnAct(t.x, 'stem', 8, 3);
  y = basicBlock(t, basicBlock(t, y, 'b0'), 'b1');
  y = t.op('Erf', 'mystery.erf', [t.op('Softsign', 'mystery.softsign', [y])]);
  t.head(basicBlock(t, y, 'b2'));
  const s = recognize(t.model());
  assert.is(s.family, 'resnet');
  assert.equal(s.stem, ['stem.conv', 'stem.bn', 'stem.act']);
  assert.equal(s.stages.map((st) => st.blocks.length), [3]);
  assert.equal(s.unmatched, ['mystery.softsign', 'mystery.erf']);
  assert.equal(s.head, ['head.pool', 'head.flatten', 'head.fc']);
  assert.ok(s.warnings.some((w) => w.includes('match no rule')));
});

test('nothing recognisable: family unknown, every node unmatched', () => {
  const t = new Tiny(3, 8);
  t.head(t.convBnAct(t.x, 'c', 8, 3));
  const s = recognize(t.model());
  assert.is(s.family, 'unknown');
  assert.equal(s.stages, []);
  assert.equal(s.unmatched, ['c.conv', 'c.bn', 'c.act', 'head.pool', 'head.flatten', 'head.fc']);
});

/**
 * ResNeXt-style network: stem, then two grouped bottlenecks (the second projects and downsamples):
 *
 *   x ─┬─ 1x1 ─ 3x3 group=4 ─ 1x1 ─┐
 *      └──────── [1x1 /2] ────────── Add ─ Relu
 */
function resnext(): Tiny {
  const t = new Tiny(3, 16);
  const stem = t.convBnAct(t.x, 'stem', 16, 3);
  const block = (x: Value, name: string, stride: number, cout: number) => {
    const a = t.convBnAct(x, `${name}.reduce`, 8, 1);
    const b = t.convBnAct(a, `${name}.grouped`, 8, 3, { group: 4, stride });
    const c = t.bn(t.conv(b, `${name}.expand.conv`, cout, 1), `${name}.expand.bn`);
    const sc = stride > 1 ? t.bn(t.conv(x, `${name}.proj.conv`, cout, 1, { stride }), `${name}.proj.bn`) : x;
    return t.op('Relu', `${name}.relu`, [t.op('Add', `${name}.add`, [c, sc])]);
  };
  t.head(block(block(stem, 'x0', 1, 16), 'x1', 2, 32));
  return t;
}

test('ResNeXt (grouped 3x3 bottleneck) is recognised by the shipped rules; an ungrouped-only rule set does not see it', () => {
  const s = recognize(resnext().model());
  assert.is(s.family, 'resnet');
  assert.equal(s.unmatched, []);
  assert.equal(s.stages.map((st) => st.blocks.map((b) => b.rule)), [['resnext-bottleneck'], ['resnext-bottleneck']]);
  assert.is(s.stages[1].blocks[0].residual!.shortcut, 'projection');
  assert.is(s.stages[1].resolution![0], 8);
  const plain = recognize(resnext().model(), { rules: loadRules().filter((r) => r.name !== 'resnext-bottleneck' && r.family !== 'plain') });
  assert.is(plain.family, 'unknown');
  assert.ok(plain.unmatched.includes('x0.grouped.conv'));
  // with the plain-conv fallback, the ungrouped convs read as plain layers, but the grouped conv and
  // the residual Adds stay unexplained: the missing rule is not hidden
  const fallback = recognize(resnext().model(), { rules: loadRules().filter((r) => r.name !== 'resnext-bottleneck') });
  assert.ok(fallback.unmatched.includes('x0.grouped.conv'));
  assert.ok((fallback.coverage?.unexplained ?? []).some((n) => /add/i.test(n)), JSON.stringify(fallback.coverage));
});

/**
 * A block type that is not shipped: a basic block with two grouped 3x3 convs.
 *
 *   x ─┬─ 3x3 g4 ─ 3x3 g4 ─┐
 *      └─ [1x1 /2] ──────── Add ─ Relu
 */
function groupedBasic(): Tiny {
  const t = new Tiny(3, 16);
  const stem = t.convBnAct(t.x, 'stem', 16, 3);
  const block = (x: Value, name: string, stride: number, cout: number) => {
    const a = t.convBnAct(x, `${name}.g1`, cout, 3, { group: 4, stride });
    const b = t.bn(t.conv(a, `${name}.g2.conv`, cout, 3, { group: 4 }), `${name}.g2.bn`);
    const sc = stride > 1 ? t.bn(t.conv(x, `${name}.proj.conv`, cout, 1, { stride }), `${name}.proj.bn`) : x;
    return t.op('Relu', `${name}.relu`, [t.op('Add', `${name}.add`, [b, sc])]);
  };
  t.head(block(block(stem, 'x0', 1, 16), 'x1', 2, 32));
  return t;
}

test('a new block type is a new rule file: a grouped basic block recognised with it, not without it', () => {
  const without = recognize(groupedBasic().model());
  assert.is(without.family, 'unknown');
  assert.ok(without.unmatched.includes('x0.g1.conv'));
  const s = recognize(groupedBasic().model(), { rules: loadRules([GROUPED_BASIC]) });
  assert.is(s.family, 'resnet');
  assert.equal(s.unmatched, []);
  assert.equal(s.stages.map((st) => st.blocks.map((b) => b.rule)), [['grouped-basic'], ['grouped-basic']]);
});

test('SiLU (Mul(x, Sigmoid(x))) darknet and HardSwish resnet networks are recognised', () => {
  const dk = new Tiny(3, 16);
  let y = dk.convBnAct(dk.x, 'stem', 16, 3, { act: 'silu' });
  for (const name of ['r0', 'r1']) {
    const b = dk.convBnAct(dk.convBnAct(y, `${name}.reduce`, 8, 1, { act: 'silu' }), `${name}.conv`, 16, 3, { act: 'silu' });
    y = dk.op('Add', `${name}.add`, [y, b]);
  }
  dk.head(y);
  const s1 = recognize(dk.model());
  assert.is(s1.family, 'darknet53');
  assert.equal(s1.stages.map((st) => st.blocks.length), [2]);
  assert.equal(s1.unmatched, []);

  const rn = new Tiny(3, 16);
  rn.head(basicBlock(rn, basicBlock(rn, rn.convBnAct(rn.x, 'stem', 8, 3, { act: 'HardSwish' }), 'b0', 'HardSwish'), 'b1', 'HardSwish'));
  const s2 = recognize(rn.model());
  assert.is(s2.family, 'resnet');
  assert.equal(s2.stages.map((st) => st.blocks.length), [2]);
  assert.equal(s2.unmatched, []);
});

test('recognize infers shapes when the model has none', () => {
  const t = new Tiny(3, 16);
  t.head(basicBlock(t, t.convBnAct(t.x, 'stem', 8, 3), 'b0'));
  const model = t.model();
  const s = recognize(model);
  assert.equal(s.stages[0].resolution, [16, 16]);
  assert.equal(model.graph.nodes[0].outputs[0]!.shape, [1, 8, 16, 16]);
});

test.run();
