/**
 * A PRN model without gpt's recorded structure (a plain torch.onnx.export, or the record stripped)
 * is read by the rules alone: the masked residual in both emit forms (mask: Add(B, S * 0/1 mask);
 * split: Split / Slice / Add / Concat) belongs to the residual block it masks. The independent figure
 * is the plain source model's analysis: PRN changes no block, only which shortcut channels are added.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { analyzeModel } from '../../src/analysis/analyze';
import { gradientPaths } from '../../src/analysis/gradient-path';
import { STRUCTURE_KEY } from '../../src/analysis/recorded-structure';
import { recognize } from '../../src/analysis/structure';
import type { Model } from '../../src/ir/model';
import { Tensor } from '../../src/ir/tensor';
import { loadModel, saveModelToBuffer } from '../../src/onnx/io';
import { convert } from '../../src/passes/convert';
import { fixturePath, realworldPath } from '../helpers';

/** The PRN form as a plain export writes it: no gpt.structure record. */
function prnWithoutRecord(file: string, emit: 'mask' | 'split'): Model {
  const m = convert(loadModel(file), { to: 'prn', emit }).model;
  assert.ok(m.metadata()[STRUCTURE_KEY], 'convert records the structure');
  m.setMetadata(STRUCTURE_KEY, '');
  const back = loadModel(saveModelToBuffer(m));
  assert.not.ok(back.metadata()[STRUCTURE_KEY]);
  return back;
}

const shape = (m: Model) => {
  const r = analyzeModel(m).report;
  return { family: r.family, rules: r.stages.map((s) => s.blockRules), blocks: r.stages.map((s) => s.blocks) };
};

/** The mask Muls of a mask-form model: a Mul whose constant operand holds only 0s and 1s. */
function maskMuls(m: Model) {
  const g = m.graph;
  return g.nodes.filter((n) => n.opType === 'Mul' && n.inputs.some((v) => {
    const t = v && g.isConstant(v) ? g.constantTensor(v) : undefined;
    return !!t && t.numbers().every((x) => x === 0 || x === 1);
  }));
}

const cases = [
  fixturePath('resnet18-w25.onnx'),
  fixturePath('resnet50-w25.onnx'),
  fixturePath('darknet53-w25.onnx'),
  realworldPath('seresnet50-w25.onnx'),
  realworldPath('resnext50-w25.onnx'),
  realworldPath('resnet50d-w25.onnx'),
];

for (const file of cases) {
  const name = file.split('/').pop();
  const plain = shape(loadModel(file));
  for (const emit of ['mask', 'split'] as const) {
    test(`${name} PRN --emit ${emit}, record stripped: the plain model's family, stages and blocks`, () => {
      assert.is.not(plain.family, 'unknown');
      const m = prnWithoutRecord(file, emit);
      assert.equal(shape(m), plain);
      // every residual block keeps its residual, and the mask nodes are inside the blocks
      const s = recognize(m);
      const blocks = s.stages.flatMap((st) => st.blocks).filter((b) => b.kind === 'residual');
      assert.ok(blocks.length > 0);
      for (const b of blocks) assert.ok(b.residual, `${b.id}: residual`);
      const inBlocks = new Set(blocks.flatMap((b) => b.nodes));
      if (emit === 'mask') {
        const muls = maskMuls(m);
        assert.ok(muls.length > 0, 'the mask form has mask Muls');
        for (const n of muls) assert.ok(inBlocks.has(n.name), `${n.name} belongs to a block`);
      } else {
        const parts = m.graph.nodes.filter((n) => n.opType === 'Split' || n.opType === 'Concat');
        assert.ok(parts.length > 0);
        for (const n of parts) assert.ok(inBlocks.has(n.name), `${n.name} belongs to a block`);
      }
    });
  }
}

test('gradient paths read the mask form as the split form: the layers feeding a masked residual get 2 channel groups (paper 4.1), the plain model none', () => {
  const file = fixturePath('darknet53-w25.onnx');
  const groups = (m: Model) => gradientPaths(m).layers.map((l) => l.channelGroups);
  const mask = groups(prnWithoutRecord(file, 'mask'));
  const split = groups(prnWithoutRecord(file, 'split'));
  assert.equal(mask, split);
  assert.ok(mask.some((c) => c === 2));
  assert.ok(groups(loadModel(file)).every((c) => c === 1));
});

test('negative: a Mul by a constant that is not 0/1, or by a non-constant, is not a masked shortcut: that block is not recognised', () => {
  const file = fixturePath('resnet18-w25.onnx');
  const total = (m: Model) => shape(m).blocks.reduce((a, b) => a + b, 0);
  const expected = total(loadModel(file));
  for (const how of ['half', 'data'] as const) {
    const m = prnWithoutRecord(file, 'mask');
    assert.is(total(m), expected);
    const mul = maskMuls(m)[0];
    const k = mul.inputs.findIndex((v) => !!v && m.graph.isConstant(v));
    const t = m.graph.constantTensor(mul.inputs[k])!;
    if (how === 'half') {
      mul.setInput(k, m.graph.addInitializer(Tensor.float32('not_a_mask', t.dims, new Float32Array(t.size).fill(0.5))));
    } else mul.setInput(k, mul.inputs[1 - k]); // S * S: no constant operand
    const back = loadModel(saveModelToBuffer(m));
    assert.is(total(back), expected - 1, how);
  }
});

test.run();
