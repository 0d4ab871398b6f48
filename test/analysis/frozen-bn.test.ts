/**
 * torchvision detection backbones export FrozenBatchNorm2d as Mul + Add with constant per-channel
 * tensors after each conv; the rules read it like BN (rules/units.json frozenBatchNorm).
 *
 *   x ─ conv ─ Mul(k) ─ Add(b) ─ Relu ─┬─ conv ─ Mul ─ Add ─ Relu ─ conv ─ Mul ─ Add ─┐
 *                                      └──────────────────────────────────────────── Add ─ Relu ─ head
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { recognize } from '../../src/analysis/structure';
import { inferShapes } from '../../src/analysis/shapes';
import { floatTensor } from '../../src/ir/float-data';
import type { Value } from '../../src/ir/graph';
import { Tiny } from '../fixtures/tiny-graph';

function frozenBn(t: Tiny, x: Value, name: string, c: number, dataScale = false): Value {
  const k = dataScale ? x : t.g.addInitializer(floatTensor(`${name}.scale`, [1, c, 1, 1], new Float32Array(c).fill(1)));
  const b = t.g.addInitializer(floatTensor(`${name}.shift`, [1, c, 1, 1], new Float32Array(c)));
  return t.op('Add', `${name}.add`, [t.op('Mul', `${name}.mul`, [x, k]), b]);
}

function resnetWithFrozenBn(dataScale: boolean) {
  const t = new Tiny(8, 16);
  const stem = t.op('Relu', 'stem.relu', [frozenBn(t, t.conv(t.x, 'stem.conv', 8, 3), 'stem.bn', 8)]);
  let y = stem;
  for (const b of [0, 1]) {
    const a = t.op('Relu', `b${b}.relu1`, [frozenBn(t, t.conv(y, `b${b}.conv1`, 8, 3), `b${b}.bn1`, 8)]);
    const c = frozenBn(t, t.conv(a, `b${b}.conv2`, 8, 3), `b${b}.bn2`, 8, dataScale && b === 1);
    y = t.op('Relu', `b${b}.relu2`, [t.op('Add', `b${b}.add`, [y, c])]);
  }
  t.head(y);
  const m = t.model();
  inferShapes(m);
  return m;
}

test('FrozenBatchNorm (Mul + Add of constants) reads like BN: two resnet-basic blocks', () => {
  const s = recognize(resnetWithFrozenBn(false), { recorded: false });
  assert.is(s.family, 'resnet');
  assert.equal(s.stages.flatMap((st) => st.blocks.map((b) => b.rule)), ['resnet-basic', 'resnet-basic']);
  const b0 = s.stages[0].blocks[0];
  assert.ok(b0.nodes.includes('b0.bn1.mul') && b0.nodes.includes('b0.bn1.add'));
});

test('negative: a Mul by a data value is not a frozen BN (the second block is not recognised)', () => {
  const s = recognize(resnetWithFrozenBn(true), { recorded: false });
  assert.equal(s.stages.flatMap((st) => st.blocks.map((b) => b.nodes.includes('b1.bn2.mul'))), [false]);
});

test.run();
