/**
 * The ELAN form of plain conv nets (YOLOv7-tiny's layout: each stage of plain conv layers replaced by
 * one ELAN block, max pools between) read without gpt's record (stripped, as a plain torch.onnx.export
 * writes it) by the rules alone. The independent figures are the architectures' own: yolov3-tiny.cfg
 * has 5 stages of plain convs behind its first conv (32, 64, 128, 256 between the 2x2/2 pools, then
 * 512 + the stride-1 pool + 1024); yolo-voc.cfg's Darknet-19 trunk 1, 3, 3, 5, 7 convs between the
 * pools, then the passthrough 1x1 and the 3x3 after the concat (7 stages). ELAN replaces each stage
 * whole, so each reads as one ELAN block, and the family stays plain.
 */
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { analyzeModel } from '../../src/analysis/analyze';
import { recognizeDetector } from '../../src/analysis/detector';
import { STRUCTURE_KEY } from '../../src/analysis/recorded-structure';
import { loadRules } from '../../src/analysis/rules';
import type { Model } from '../../src/ir/model';
import { loadModel, saveModelToBuffer } from '../../src/onnx/io';
import { convert } from '../../src/passes/convert';
import { ModelBuilder } from '../../src/samples';
import { fixturesDir, repoRoot } from '../helpers';

const YOLOV3_TINY = path.join(fixturesDir, '..', 'fixtures-detectors', 'yolov3-tiny-w25.onnx');
const YOLOV2 = path.join(repoRoot, 'test', 'fixtures', 'yolov2-plain', 'yolov2-w2.onnx');

/** The model's record stripped, as a plain export writes it. */
function stripped(m: Model): Model {
  const copy = loadModel(saveModelToBuffer(m));
  assert.ok(copy.metadata()[STRUCTURE_KEY], 'convert records the structure');
  copy.setMetadata(STRUCTURE_KEY, '');
  const back = loadModel(saveModelToBuffer(copy));
  assert.not.ok(back.metadata()[STRUCTURE_KEY]);
  return back;
}

const read = (m: Model, rules = loadRules()) => {
  const r = analyzeModel(m, { rules }).report;
  return { family: r.family, rules: r.stages.map((s) => s.blockRules), errors: r.errors };
};
/** The record's per-stage block rules without its 'gpt <pass>' entries (the nodes a pass added: no rule reads them). */
const own = (rules: Record<string, number>[]) => rules.map((s) => Object.fromEntries(Object.entries(s).filter(([r]) => !r.startsWith('gpt '))));

const CASES: [string, string, number][] = [
  ['yolov3-tiny-w25', YOLOV3_TINY, 5],
  ['YOLOv2 (Darknet-19 trunk, passthrough)', YOLOV2, 7],
];

for (const [name, file, stages] of CASES) {
  // params and MACs are not asserted here: they do not depend on the record (stripping it cannot
  // change them); the export tests assert them against torch.onnx.export's read-back
  test(`${name} ELAN, record stripped: plain, ${stages} stages of one ELAN block each, the record's stages`, () => {
    const m = convert(loadModel(file), { to: 'elan' }).model;
    const recorded = read(m);
    const r = read(stripped(m));
    assert.equal(r.errors, []);
    assert.is(r.family, 'plain');
    assert.equal(r.rules, Array.from({ length: stages }, () => ({ elan: 1 })));
    assert.is(recorded.family, 'plain', 'the record');
    assert.equal(own(recorded.rules), r.rules, 'the record');
  });
}

test('yolov3-tiny-w25 ELAN, record stripped: the detector reads a plain backbone of 5 stages found by the rules', () => {
  const d = recognizeDetector(stripped(convert(loadModel(YOLOV3_TINY), { to: 'elan' }).model));
  assert.is(d.backbone.family, 'plain');
  assert.is(d.backbone.foundBy, 'rules');
  assert.is(d.backbone.stages, 5);
});

/**
 * A Darknet-19-like classifier at 16x16 whose last stage is a lone 1x1 (no ELAN block of any setting
 * costs less, so ELAN leaves it as it is):
 *
 *   input 3 ── stem 3x3 3->4 ── pool/2 ── [s0, 8x8: 3x3 4->8] ── pool/2 ── [s1, 4x4: 1x1 8->16] ── GAP ── Gemm 10
 */
function lone1x1Net(): Model {
  const b = new ModelBuilder({ seed: 5, batch: 1 });
  let x = b.convBnAct(b.input('input', 3, 16, 16), { conv: 'stem.conv', bn: 'stem.bn', act: 'stem.act' }, 4, 3, 1, 'LeakyRelu');
  x = b.maxPool(x, 'pool0', 2, 2, 0, false);
  x = b.convBnAct(x, { conv: 's0.c0.conv', bn: 's0.c0.bn', act: 's0.c0.act' }, 8, 3, 1, 'LeakyRelu');
  x = b.maxPool(x, 'pool1', 2, 2, 0, false);
  x = b.convBnAct(x, { conv: 's1.c0.conv', bn: 's1.c0.bn', act: 's1.c0.act' }, 16, 1, 1, 'LeakyRelu');
  return b.finish(b.gemm(b.flatten(b.globalAveragePool(x, 'gap')), 'fc', 10, 'logits'), 'plain-lone1x1');
}

test('a plain net whose lone 1x1 stage ELAN left, record stripped: the ELAN stage and the plain-conv stage, as the record says', () => {
  const { model, report } = convert(lone1x1Net(), { to: 'elan' });
  assert.ok(report.unconverted.some((u) => u.block === 's1'), 'ELAN leaves s1 as it is');
  const r = read(stripped(model));
  assert.equal(r.errors, []);
  assert.is(r.family, 'plain');
  assert.equal(r.rules, [{ elan: 1 }, { 'plain-conv': 1 }]);
  assert.equal(r.rules, own(read(model).rules), 'the record');
});

test('negative: without the elan rule, the ELAN forms read as no architecture (their Concats keep the plain-conv reading off)', () => {
  const rules = loadRules().filter((x) => x.kind !== 'elan');
  for (const m of [convert(loadModel(YOLOV3_TINY), { to: 'elan' }).model, convert(loadModel(YOLOV2), { to: 'elan' }).model, convert(lone1x1Net(), { to: 'elan' }).model]) {
    const r = read(stripped(m), rules);
    assert.is(r.family, 'unknown');
    assert.equal(r.rules, []);
  }
});

test('negative: without the max pool\'s family (downsample-pool), the ELAN yolov3-tiny keeps its blocks but no family', () => {
  const rules = loadRules().map((x) => (x.name === 'downsample-pool' ? { ...x, family: undefined } : x));
  const r = read(stripped(convert(loadModel(YOLOV3_TINY), { to: 'elan' }).model), rules);
  assert.is(r.family, 'unknown');
  assert.equal(r.rules, Array.from({ length: 5 }, () => ({ elan: 1 })));
});

test.run();
