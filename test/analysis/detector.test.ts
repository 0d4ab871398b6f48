/**
 * Detector recognition on the detector fixtures (../shared/fixtures-detectors): backbone + neck +
 * heads, taps, neck blocks and FPN/PAN merges against what the fixtures' README and cfgs say; a
 * classifier is not a detector (negative case).
 */
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { analyze } from '../../src/analysis/analyze';
import { recognizeDetector } from '../../src/analysis/detector';
import { loadRules } from '../../src/analysis/rules';
import { loadModel } from '../../src/onnx/io';
import { buildSample } from '../../src/samples';
import { fixturesDir } from '../helpers';

const det = (m: string) => path.join(fixturesDir, '..', 'fixtures-detectors', `${m}.onnx`);

test('yolov3-w25-raw: Darknet-53 backbone by the rules, 3 taps (strides 8/16/32), 3 conv sets, 2 top-down merges, 3 head convs', () => {
  const d = recognizeDetector(loadModel(det('yolov3-w25-raw')));
  assert.ok(d.detector);
  assert.is(d.backbone.foundBy, 'rules');
  assert.is(d.backbone.family, 'darknet53');
  // yolov3.cfg routes 61 and 36 plus the last stage: stage outputs at 20x20/64, 10x10/128, 5x5/256 at quarter width and 160 px
  assert.equal(d.backbone.taps.map((t) => [t.resolution, t.channels, t.stage]), [[[20, 20], 64, 2], [[10, 10], 128, 3], [[5, 5], 256, 4]]);
  assert.equal(d.neck.blocks.map((b) => [b.rule, b.nodes.filter((n) => n.endsWith('/Conv')).length]), [['yolo-conv-set', 5], ['yolo-conv-set', 5], ['yolo-conv-set', 5]]);
  assert.equal(d.neck.paths.map((p) => p.kind), ['top-down', 'top-down']);
  assert.is(d.heads.convs.length, 3);
  assert.equal(d.heads.outputs, ['yolo_s32', 'yolo_s16', 'yolo_s8']);
});

test('yolov3-w25: the decode (ScatterND, Exp, Sigmoid...) is in the heads, untouched; 75 convs = 52 backbone + 20 neck + 3 heads', () => {
  const r = analyze(loadModel(det('yolov3-w25')));
  const d = r.detector!;
  assert.ok(d);
  assert.is(d.heads.ops.ScatterND, 9);
  assert.is(d.heads.ops.Exp, 3);
  assert.is(d.backbone.part.gradientPaths.layers, 52);
  assert.is(d.neck.part.gradientPaths.layers, 20);
  assert.is(d.heads.part.gradientPaths.layers, 3);
  // every figure finite; backbone and neck fully sized
  for (const p of [d.backbone.part, d.neck.part, d.heads.part]) assert.ok(Number.isFinite(p.macs) && Number.isFinite(p.params));
  assert.equal([d.backbone.part.unsized, d.neck.part.unsized], [[], []]);
  assert.is(d.backbone.part.params + d.neck.part.params + d.heads.part.params, r.params);
});

test('yolov3-tiny-w25: no residual; backbone of plain conv stages (the plain-conv rule), the tiny neck set, and the report says what it saw', () => {
  const d = recognizeDetector(loadModel(det('yolov3-tiny-w25')));
  assert.ok(d.detector);
  assert.is(d.backbone.foundBy, 'rules');
  assert.is(d.backbone.family, 'plain');
  assert.is(d.heads.convs.length, 2);
  assert.equal(d.neck.blocks.map((b) => b.rule), ['yolo-tiny-conv-set']);
  assert.is(d.neck.paths.length, 1);
  assert.ok(d.seen.some((s) => s.includes('no residual block recognised')));
  assert.ok(d.seen.some((s) => s.startsWith('backbone: plain, 5 stage(s) recognised by the rules')));
});

test('negative: without the plain-conv rule, yolov3-tiny-w25\'s backbone is taken by downsampling (and says so)', () => {
  const rules = loadRules().filter((r) => r.family !== 'plain');
  const d = recognizeDetector(loadModel(det('yolov3-tiny-w25')), { rules });
  assert.is(d.backbone.foundBy, 'downsampling');
  assert.ok(d.seen.some((s) => s.startsWith('backbone: no backbone rule matched')));
});

test('yolov5n: C3 blocks and SPPF in the neck, 2 FPN top-down and 2 PAN bottom-up merges (SiLU as Sigmoid+Mul)', () => {
  const d = recognizeDetector(loadModel(det('yolov5n')));
  assert.ok(d.detector);
  const rules = d.neck.blocks.map((b) => b.rule);
  assert.ok(rules.includes('sppf'));
  assert.ok(rules.filter((r) => r === 'csp-c3').length >= 4, rules.join(','));
  assert.equal(d.neck.paths.map((p) => p.kind).sort(), ['bottom-up', 'bottom-up', 'top-down', 'top-down']);
  assert.is(d.heads.convs.length, 3);
  // negative for the FPN-level and shared-tower readings: YOLOv5 concatenates its taps (no lateral
  // 1x1 added to an upsample) and its three detection convs have weights of their own
  assert.equal(d.neck.fpn, { levels: [], extra: [] });
  assert.equal(d.heads.towers, []);
});

test('negative: a classifier (darknet53 sample) is not a detector', () => {
  const d = recognizeDetector(buildSample('darknet53', { width: 0.25, resolution: 64, classes: 10 }));
  assert.is(d.detector, false);
  assert.is(analyze(buildSample('darknet53', { width: 0.25, resolution: 64, classes: 10 })).detector, undefined);
});

test.run();
