/**
 * A detector whose heads end in a data-dependent shape: NonMaxSuppression (its output has as many
 * rows as boxes survive). Cost figures stay finite and the parts say which nodes they could not size.
 *
 *   x ─ c1 /2 ─ c2 /2 ─┬─ h0 (1x1) ─ Reshape ─ NMS ─ selected
 *          │           └ Resize x2 ─ concat ─ n (3x3) ─ h1 (1x1) ─ out1
 *          └────────────────────────┘
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { analyze } from '../../src/analysis/analyze';
import { recognizeDetector } from '../../src/analysis/detector';
import { floatTensor } from '../../src/ir/float-data';
import { Tensor } from '../../src/ir/tensor';
import { Tiny } from '../fixtures/tiny-graph';

function tinyDetector() {
  const t = new Tiny(3, 16);
  const c1 = t.convBnAct(t.x, 'c1', 8, 3, { stride: 2 });
  const c2 = t.convBnAct(c1, 'c2', 16, 3, { stride: 2 });
  const h0 = t.conv(c2, 'h0', 8, 1); // 8 x 4 x 4 = 128 values
  const boxes = t.op('Reshape', 'boxes', [h0, t.g.addInitializer(Tensor.int64('boxes.shape', [3], [1, 32, 4]))]);
  const scores = t.op('Reshape', 'scores', [h0, t.g.addInitializer(Tensor.int64('scores.shape', [3], [1, 4, 32]))]);
  const selected = t.op('NonMaxSuppression', 'nms', [boxes, scores]);
  t.g.addOutput(selected);
  const roi = t.g.addInitializer(floatTensor('up.roi', [0], new Float32Array(0)));
  const scales = t.g.addInitializer(floatTensor('up.scales', [4], Float32Array.from([1, 1, 2, 2])));
  const up = t.g.addNode({ name: 'up', opType: 'Resize', inputs: [c2, roi, scales], outputs: ['up_out'], attrs: { mode: 'nearest' } }).outputs[0]!;
  const cat = t.g.addNode({ name: 'cat', opType: 'Concat', inputs: [up, c1], outputs: ['cat_out'], attrs: { axis: 1 } }).outputs[0]!;
  const h1 = t.conv(t.convBnAct(cat, 'n', 16, 3), 'h1', 8, 1);
  t.g.addOutput(h1);
  return t.model();
}

test('NMS in the heads: detector with 2 head convs, 1 top-down merge; the NMS output is listed as unsized, every figure finite', () => {
  const m = tinyDetector();
  const d = recognizeDetector(m);
  assert.ok(d.detector);
  assert.equal(d.heads.convs, ['h0', 'h1']);
  assert.ok(d.heads.nodes.includes('nms'));
  assert.equal(d.neck.paths.map((p) => [p.kind, p.merge, p.via]), [['top-down', 'cat', 'up']]);
  const r = analyze(m);
  assert.ok(Number.isFinite(r.macs) && Number.isFinite(r.params));
  const det = r.detector!;
  assert.ok(det.heads.part.unsized.includes('nms'), det.heads.part.unsized.join(','));
  assert.equal(det.backbone.part.unsized, []);
  // MACs of the parts by hand: c1 8*3*9*8*8 = 13824; c2 16*8*9*4*4 = 18432; h0 8*16*4*4 = 2048;
  // n 16*24*9*8*8 = 221184; h1 8*16*8*8 = 8192 (BN and Relu count 0 MACs here)
  assert.is(det.backbone.part.macs, 13824 + 18432);
  assert.is(det.neck.part.macs, 221184);
  assert.is(det.heads.part.macs, 2048 + 8192);
});

test('negative: with one head conv left (h1 removed from the outputs) it is not a detector', () => {
  const m = tinyDetector();
  const g = m.graph;
  g.removeOutput(g.outputs.find((o) => o.name === 'h1_out')!);
  g.cleanup();
  assert.is(recognizeDetector(m).detector, false);
});

test.run();
