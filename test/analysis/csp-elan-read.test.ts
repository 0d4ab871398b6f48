/**
 * CSP and ELAN models without gpt's recorded structure (a plain torch.onnx.export, or the record
 * stripped) are read by the rules alone. The independent figures are the architectures' own: ResNet-18
 * has 2 basic blocks per stage and no projection in stage 0, ResNet-50 3, 4, 6, 3 bottlenecks each
 * stage opening with a projecting one, Darknet-53 five stages behind stride-2 convs, VoVNet-39 four
 * stages of OSA modules; CSP keeps every block and splits each stage once, ELAN replaces a stage's
 * identity blocks by one ELAN block (the projecting first block stays) and relocates a VoVNet stage's
 * transitions so the stage is one aggregation.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { analyzeModel } from '../../src/analysis/analyze';
import { STRUCTURE_KEY } from '../../src/analysis/recorded-structure';
import { loadRules } from '../../src/analysis/rules';
import type { Model } from '../../src/ir/model';
import { loadModel, saveModelToBuffer } from '../../src/onnx/io';
import { convert } from '../../src/passes/convert';
import { fixturePath, realworldPath } from '../helpers';

/**
 * The converted form as a plain export writes it: no gpt.structure record. CSP with its default
 * producer split (the stage input's layers written once per part) or `splitOp: 'slice'` (a Split).
 */
function withoutRecord(file: string, to: 'csp' | 'elan', splitOp?: 'slice', edit?: (m: Model) => void): Model {
  const m = convert(loadModel(file), splitOp ? { to, splitOp } : { to }).model;
  assert.ok(m.metadata()[STRUCTURE_KEY], 'convert records the structure');
  m.setMetadata(STRUCTURE_KEY, '');
  edit?.(m);
  const back = loadModel(saveModelToBuffer(m));
  assert.not.ok(back.metadata()[STRUCTURE_KEY]);
  return back;
}

const read = (m: Model, rules = loadRules()) => {
  const r = analyzeModel(m, { rules }).report;
  return { family: r.family, rules: r.stages.map((s) => s.blockRules), csp: r.stages.map((s) => !!s.csp), splitOps: r.stages.map((s) => s.csp?.splitOp), errors: r.errors };
};

const CSP: [string, string, Record<string, number>[]][] = [
  [fixturePath('resnet18-w25.onnx'), 'resnet', [2, 2, 2, 2].map((n) => ({ 'resnet-basic': n }))],
  [fixturePath('resnet50-w25.onnx'), 'resnet', [3, 4, 6, 3].map((n) => ({ 'resnet-bottleneck': n }))],
  [realworldPath('resnext50-w25.onnx'), 'resnet', [3, 4, 6, 3].map((n) => ({ 'resnext-bottleneck': n }))],
  [fixturePath('darknet53-w25.onnx'), 'darknet53', [1, 2, 8, 8, 4].map((n) => ({ 'darknet-residual': n }))],
  [fixturePath('vovnet39-w25.onnx'), 'vovnet', [1, 1, 2, 2].map((n) => ({ 'vovnet-osa': n }))],
];

for (const [file, family, stages] of CSP) {
  for (const splitOp of ['slice', undefined] as const) {
    test(`${file.split('/').pop()} CSP (--split-op ${splitOp ?? 'producer, the default'}), record stripped: ${family}, every block in its stage, each stage split once`, () => {
      const r = read(withoutRecord(file, 'csp', splitOp));
      assert.equal(r.errors, []);
      assert.is(r.family, family);
      assert.equal(r.rules, stages);
      assert.equal(r.csp, stages.map(() => true));
    });
  }
}

test('negative: without the transition rule, no stage of the CSP ResNet-50 reads as split (slice and producer split)', () => {
  for (const splitOp of ['slice', undefined] as const) {
    const r = read(withoutRecord(fixturePath('resnet50-w25.onnx'), 'csp', splitOp), loadRules().filter((x) => x.kind !== 'transition'));
    assert.equal(r.csp, [false, false, false, false]);
  }
});

test('negative: the producer split read only where both copies are the same layer: a part-2 copy with another LeakyRelu slope leaves its stage unsplit', () => {
  const file = fixturePath('darknet53-w25.onnx');
  const intact = read(withoutRecord(file, 'csp'));
  assert.equal(intact.splitOps, [0, 1, 2, 3, 4].map(() => 'producer'));
  // the pass names each part-2 copy '<stage>/part2/<op>' (csp-forms.ts splitProducer)
  const r = read(withoutRecord(file, 'csp', undefined, (m) => {
    const relu = m.graph.nodes.find((n) => /csp\.s2\/part2\/LeakyRelu$/.test(n.name));
    assert.ok(relu, 'stage 2 part-2 copy');
    relu!.setAttr('alpha', { float: 0.2 });
  }));
  assert.equal(r.csp, [true, true, false, true, true]);
});

const ELAN: [string, string, Record<string, number>[]][] = [
  [fixturePath('resnet18-w25.onnx'), 'resnet', [{ elan: 1 }, ...[1, 2, 3].map(() => ({ 'resnet-basic': 1, elan: 1 }))]],
  [fixturePath('resnet50-w25.onnx'), 'resnet', [0, 1, 2, 3].map(() => ({ 'resnet-bottleneck': 1, elan: 1 }))],
  [realworldPath('seresnet50-w25.onnx'), 'resnet', [0, 1, 2, 3].map(() => ({ 'resnet-bottleneck': 1, elan: 1 }))],
  [fixturePath('darknet53-w25.onnx'), 'darknet53', [0, 1, 2, 3, 4].map(() => ({ elan: 1 }))],
  [realworldPath('darknet53-silu-w19.onnx'), 'darknet53', [0, 1, 2, 3, 4].map(() => ({ elan: 1 }))],
  [fixturePath('vovnet39-w25.onnx'), 'vovnet', [0, 1, 2, 3].map(() => ({ 'vovnet-osa': 1 }))],
  [realworldPath('ese-vovnet39b-w19.onnx'), 'vovnet', [0, 1, 2, 3].map(() => ({ 'vovnet-osa': 1 }))],
];

for (const [file, family, stages] of ELAN) {
  test(`${file.split('/').pop()} ELAN, record stripped: ${family}, ${stages.length} stages of the ELAN form, as the record says`, () => {
    const m = convert(loadModel(file), { to: 'elan' }).model;
    const recorded = read(m);
    const r = read(withoutRecord(file, 'elan'));
    assert.equal(r.errors, []);
    assert.is(r.family, family);
    assert.equal(r.rules, stages);
    assert.equal(recorded.rules, stages, 'the record');
  });
}

test('negative: without the elan rule, the ELAN Darknet-53 reads as no architecture and the ELAN ResNet-50 without its ELAN blocks', () => {
  const rules = loadRules().filter((x) => x.kind !== 'elan');
  const d = read(withoutRecord(fixturePath('darknet53-w25.onnx'), 'elan'), rules);
  assert.is(d.family, 'unknown');
  assert.equal(d.rules, []);
  const r = read(withoutRecord(fixturePath('resnet50-w25.onnx'), 'elan'), rules);
  assert.not.ok(r.rules.some((s) => s.elan));
});

test.run();
