/**
 * ELAN's defaults do not grow a block: with neither --stack nor --width given, a neck block (and a
 * backbone stage in CSP form) takes the first setting, from stack 2 / width 0.5 down, whose ELAN
 * block has no more params and MACs than the block it replaces; given values are kept, and a model
 * they make larger gets the one-line growth note. Counts by hand below (BN as a node: 2 params per
 * channel; folded: 1 bias per channel).
 *
 * A neck C3 (ultralytics, no shortcut) at 16x16, reading the upsample-concat of 48 channels:
 *
 *   x ─ c1 3x3/2 (16) ─ c2 3x3/2 (32) ─────────────── h0 1x1 ─ out0
 *             │               └ Resize x2 ─┐
 *             └──────────────────────── concat (48) ─ C3 (m 16, out 32) ─ h1 1x1 ─ out1
 *
 *   C3:   cv1 48->16 1x1   768 + 32      ELAN stack 2 (h 16, q 8):   ELAN stack 1:
 *         m0  16->16 1x1   256 + 32        cv1, cv2 48->16  1536 + 64  cv1, cv2  1536 + 64
 *         m0  16->16 3x3  2304 + 32        3x3 16->8        1152 + 16  3x3 16->8 1152 + 16
 *         cv2 48->16 1x1   768 + 32        3 x 3x3 8->8     1728 + 48  3x3 8->8   576 + 16
 *         cv3 32->32 1x1  1024 + 64        64 -> 32 1x1     2048 + 64  48 -> 32  1536 + 64
 *         total           5120 + 192       total            6464 + 192 total     4800 + 160
 *   params 5312, MACs 5120 x 256         params 6656 (grows)          params 4960, MACs 4800 x 256
 */
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../../src/onnx/io';
import { convert } from '../../src/passes/convert';
import { fitCandidates, fitSetting } from '../../src/passes/elan-fit';
import { c3NeckDetector } from '../fixtures/c3-neck-detector';
import { fixturesDir } from '../helpers';

const detector = c3NeckDetector;

const C3 = { params: 5312, macs: 5120 * 256 };
const ELAN_STACK1 = { params: 4960, macs: 4800 * 256 };
const ELAN_STACK2 = { params: 6656, macs: 6464 * 256 };

test('defaults on a neck C3: stack 1 chosen (stack 2 would grow it), the model shrinks by the hand-counted difference, said in the report', () => {
  const { report } = convert(detector(), { to: 'elan', parts: 'neck' });
  assert.is(report.before.params - report.after.params, C3.params - ELAN_STACK1.params);
  assert.is(report.before.macs - report.after.macs, C3.macs - ELAN_STACK1.macs);
  assert.match(report.converted[0].change, /2 chained 3x3 16->8, concat of all 48, 1x1 -> 32 \[default stack 1: stack 2, width 0\.5 would grow the block, params 6\.66 K > 5\.31 K\]/);
  assert.ok(report.notes.some((n) => /ELAN defaults per neck block .*neck\.n0 stack 1, width 0\.5/.test(n)), report.notes.join(' / '));
  assert.is(report.growth, undefined);
});

test('negative: an explicit --stack 2 is kept on the neck C3: it grows by the hand-counted difference and the growth line names the way out', () => {
  const { report } = convert(detector(), { to: 'elan', parts: 'neck', stack: 2 });
  assert.is(report.after.params - report.before.params, ELAN_STACK2.params - C3.params);
  assert.is(report.after.macs - report.before.macs, ELAN_STACK2.macs - C3.macs);
  assert.match(report.converted[0].change, /4 chained 3x3 16->8, concat of all 64, 1x1 -> 32$/);
  assert.match(report.growth ?? '', /larger than the source .*leaving --stack and --width out/);
  // an explicit width alone also keeps the defaults' stack
  assert.match(convert(detector(), { to: 'elan', parts: 'neck', width: 0.5 }).report.converted[0].change, /4 chained 3x3/);
});

test('fitSetting: the first candidate within both params and MACs, defaults first; nothing fits: the defaults, fits false', () => {
  assert.equal(fitCandidates({ stack: 2, width: 0.5 }, { stack: true, width: true }).slice(0, 3), [{ stack: 2, width: 0.5 }, { stack: 1, width: 0.5 }, { stack: 2, width: 0.375 }]);
  assert.equal(fitCandidates({ stack: 3, width: 0.5 }, { stack: false, width: false }), [{ stack: 3, width: 0.5 }]);
  const cost = (s: { stack: number; width: number }) => ({ params: 100 * s.stack * s.width, macs: 10 * s.stack });
  assert.equal(fitSetting({ stack: 2, width: 0.5 }, { stack: true, width: true }, { params: 60, macs: 20 }, cost).setting, { stack: 1, width: 0.5 });
  // params fit at stack 2 but MACs do not: stack 1
  assert.equal(fitSetting({ stack: 2, width: 0.5 }, { stack: true, width: true }, { params: 1000, macs: 15 }, cost).setting, { stack: 1, width: 0.5 });
  const none = fitSetting({ stack: 2, width: 0.5 }, { stack: true, width: true }, { params: 1, macs: 1 }, cost);
  assert.equal([none.setting, none.fits], [{ stack: 2, width: 0.5 }, false]);
  // not free: kept even though it grows
  const kept = fitSetting({ stack: 2, width: 0.5 }, { stack: false, width: false }, { params: 60, macs: 20 }, cost);
  assert.equal([kept.setting, kept.fits], [{ stack: 2, width: 0.5 }, false]);
});

// yolov5n's backbone stage 0 is CSP form with one Bottleneck at 16 channels (BN folded: conv biases):
//   source 1x1 16->16 256 + 16, 3x3 16->16 2304 + 16                      = 2592
//   ELAN stack 2 (c 8): 2 x (128 + 8), 4 x (576 + 8), 32->16 512 + 16      = 3136 (grows)
//   ELAN stack 1 (c 8): 2 x (128 + 8), 2 x (576 + 8), 24->16 384 + 16      = 1840
const yolov5n = path.join(fixturesDir, '..', 'fixtures-detectors', 'yolov5n.onnx');

test('yolov5n: defaults give its CSP-form stage 0 stack 1 (hand count) and do not grow the model; explicit --stack 2 grows stage 0 and the model', () => {
  const d = convert(loadModel(yolov5n), { to: 'elan' }).report;
  assert.is(d.stages.before[0].params - d.stages.after[0].params, 2592 - 1840);
  assert.ok(d.after.params <= d.before.params && d.after.macs <= d.before.macs, `${d.after.params} / ${d.after.macs}`);
  assert.is(d.growth, undefined);
  assert.ok(d.notes.some((n) => /^stage 0 \(CSP form\): ELAN defaults for this stage stack 1/.test(n)));
  const e = convert(loadModel(yolov5n), { to: 'elan', stack: 2 }).report;
  assert.is(e.stages.after[0].params - e.stages.before[0].params, 3136 - 2592);
  assert.match(e.growth ?? '', /^the ELAN model is larger than the source/);
});

test.run();
