/**
 * The CSP form of plain conv nets (YOLOv4-tiny's layout of Darknet stages: each stage's input split,
 * part 1 through the stage's convs, 1x1 transitions around the Concat) read without gpt's record
 * (stripped, as a plain torch.onnx.export writes it) by the rules alone, with the slice split and
 * with the producer split (the default: the layers that make the stage input written once per
 * part). The independent figures are the architectures' own: yolov3-tiny.cfg has 5 stages of plain
 * convs behind its first conv (32, 64, 128, 256 between the 2x2/2 pools, then 512 + the stride-1
 * pool + 1024); yolo-voc.cfg's Darknet-19 trunk 1, 3, 3, 5, 7 convs between the pools, then the
 * passthrough 1x1 and the 3x3 after the concat (7 stages). CSP keeps every conv of a stage; its
 * transitions are the split's, not conv layers of the stage.
 */
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { analyzeModel } from '../../src/analysis/analyze';
import { STRUCTURE_KEY } from '../../src/analysis/recorded-structure';
import { loadRules } from '../../src/analysis/rules';
import type { Model } from '../../src/ir/model';
import { loadModel, saveModelToBuffer } from '../../src/onnx/io';
import { convert } from '../../src/passes/convert';
import { fixturesDir, repoRoot } from '../helpers';

const YOLOV3_TINY = path.join(fixturesDir, '..', 'fixtures-detectors', 'yolov3-tiny-w25.onnx');
const YOLOV2 = path.join(repoRoot, 'test', 'fixtures', 'yolov2-plain', 'yolov2-w2.onnx');

/** The CSP form, and the same with its record stripped. */
function cspForms(file: string, splitOp?: 'slice'): { recorded: Model; stripped: Model } {
  const recorded = convert(loadModel(file), splitOp ? { to: 'csp', splitOp } : { to: 'csp' }).model;
  const copy = loadModel(saveModelToBuffer(recorded));
  assert.ok(copy.metadata()[STRUCTURE_KEY], 'convert records the structure');
  copy.setMetadata(STRUCTURE_KEY, '');
  const stripped = loadModel(saveModelToBuffer(copy));
  assert.not.ok(stripped.metadata()[STRUCTURE_KEY]);
  return { recorded, stripped };
}

const read = (m: Model, rules = loadRules()) => {
  const r = analyzeModel(m, { rules }).report;
  const own = (s: { blockRules: Record<string, number> }) => Object.fromEntries(Object.entries(s.blockRules).filter(([k]) => !k.startsWith('gpt ')));
  return { family: r.family, rules: r.stages.map(own), csp: r.stages.map((s) => !!s.csp), converted: r.stages.map((s) => !!s.blockRules['gpt csp']), errors: r.errors, params: r.params, macs: r.macs };
};

const CASES: [string, string, number[]][] = [
  ['YOLOv3-tiny', YOLOV3_TINY, [1, 1, 1, 1, 2]],
  ['YOLOv2 (Darknet-19 trunk, passthrough)', YOLOV2, [1, 3, 3, 5, 7, 1, 1]],
];

for (const [what, file, convs] of CASES) {
  for (const splitOp of ['slice', undefined] as const) {
    test(`${what} CSP (--split-op ${splitOp ?? 'producer, the default'}), record stripped: plain, ${convs.join(', ')} conv layers per stage, each stage CSP converted read as split`, () => {
      const { recorded, stripped } = cspForms(file, splitOp);
      const rec = read(recorded);
      const r = read(stripped);
      assert.equal(r.errors, []);
      assert.is(r.family, 'plain');
      assert.equal(r.rules, convs.map((n) => ({ 'plain-conv': n })));
      assert.equal(rec.rules, r.rules, 'the record');
      // the stages the conversion split (its record's 'gpt csp' entries) and no other
      assert.ok(rec.converted.some(Boolean), 'CSP converted a stage');
      assert.equal(r.csp, rec.converted);
      assert.is(r.params, rec.params);
      assert.is(r.macs, rec.macs);
    });
  }
}

test('negative: without the transition rule, YOLOv3-tiny\'s CSP form reads its transitions as conv layers of its stages and no stage as split', () => {
  for (const splitOp of ['slice', undefined] as const) {
    const r = read(cspForms(YOLOV3_TINY, splitOp).stripped, loadRules().filter((x) => x.kind !== 'transition'));
    assert.not.equal(r.rules, [1, 1, 1, 1, 2].map((n) => ({ 'plain-conv': n })));
    assert.ok(r.csp.every((c) => !c), `${splitOp ?? 'producer'}: ${r.csp}`);
  }
});

test.run();
