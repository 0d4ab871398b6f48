/**
 * A two-stage detector in miniature (Faster R-CNN's layout): the RPN's convs select proposals by
 * top-k indices and hand them to a RoiAlign as boxes; the second stage's Gemm reads the pooled
 * windows. The RPN convs are the detection convs (their values reach the Gemm only as indices and
 * boxes, never as features), the Gemm is a second-stage weight layer of the heads.
 *
 *   x ─ c1 /2 ─ c2 /2 ─ Resize x2 ─ cat(c1) ─ n (3x3) = P ─┬─ obj (1x1) ─ Reshape ─ TopK ─ idx ─┐
 *                                                          ├─ delta (1x1) ─ Reshape ─ Gather(·, idx) ─ rois ─ proposals
 *                                                          └─ RoiAlign(P, rois) ─┬ Flatten ─ fc (Gemm) ─ cls
 *                                                                                └ m1 (3x3) ─ mlogits (1x1) ─ masks (with `mask`)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { analyze } from '../../src/analysis/analyze';
import { recognizeDetector } from '../../src/analysis/detector';
import { floatTensor } from '../../src/ir/float-data';
import { Tensor } from '../../src/ir/tensor';
import { opInfo, registerOp } from '../../src/ops/registry';
import { Tiny } from '../fixtures/tiny-graph';

function twoStage(opts: { featuresToGemm?: boolean; mask?: boolean } = {}) {
  const t = new Tiny(3, 16);
  const g = t.g;
  const c1 = t.convBnAct(t.x, 'c1', 8, 3, { stride: 2 });
  const c2 = t.convBnAct(c1, 'c2', 16, 3, { stride: 2 });
  const roi = g.addInitializer(floatTensor('up.roi', [0], new Float32Array(0)));
  const scales = g.addInitializer(floatTensor('up.scales', [4], Float32Array.from([1, 1, 2, 2])));
  const up = g.addNode({ name: 'up', opType: 'Resize', inputs: [c2, roi, scales], outputs: ['up_out'], attrs: { mode: 'nearest' } }).outputs[0]!;
  const cat = g.addNode({ name: 'cat', opType: 'Concat', inputs: [up, c1], outputs: ['cat_out'], attrs: { axis: 1 } }).outputs[0]!;
  const p = t.convBnAct(cat, 'n', 8, 3); // P: 8 x 8 x 8
  const obj = t.conv(p, 'obj', 1, 1); // 64 objectness logits
  const delta = t.conv(p, 'delta', 4, 1); // 64 boxes
  const scores = t.op('Reshape', 'scores', [obj, g.addInitializer(Tensor.int64('scores.shape', [1], [64]))]);
  const k = g.addInitializer(Tensor.int64('k', [1], [4]));
  const topk = g.addNode({ name: 'topk', opType: 'TopK', inputs: [scores, k], outputs: ['top_values', 'top_idx'], attrs: { axis: 0 } });
  const boxes = t.op('Reshape', 'boxes', [delta, g.addInitializer(Tensor.int64('boxes.shape', [2], [64, 4]))]);
  const rois = g.addNode({ name: 'rois', opType: 'Gather', inputs: [boxes, topk.outputs[1]!], outputs: ['proposals'], attrs: { axis: 0 } }).outputs[0]!;
  g.addOutput(rois);
  const batch = g.addInitializer(Tensor.int64('batch_idx', [4], [0, 0, 0, 0]));
  const pooled = g.addNode({ name: 'pool', opType: 'RoiAlign', inputs: [p, rois, batch], outputs: ['pool_out'], attrs: { output_height: 2, output_width: 2 } }).outputs[0]!;
  const flat = t.op('Flatten', 'flat', [pooled], { axis: 1 });
  // negative variant: the objectness values themselves (not their top-k indices) enter the Gemm's input
  const fcIn = opts.featuresToGemm ? t.op('Concat', 'withObj', [flat, t.op('Reshape', 'objRow', [obj, g.addInitializer(Tensor.int64('objRow.shape', [2], [1, 64]))])], { axis: 1 }) : flat;
  const w = g.addInitializer(floatTensor('fc.weight', [5, opts.featuresToGemm ? 96 : 32], new Float32Array(opts.featuresToGemm ? 480 : 160)));
  g.addOutput(g.addNode({ name: 'fc', opType: 'Gemm', inputs: [fcIn, w], outputs: ['cls'], attrs: { transB: 1 } }).outputs[0]!);
  // Mask R-CNN's branch: convs on the RoI windows, the last one a graph output of its own
  if (opts.mask) g.addOutput(t.conv(t.convBnAct(pooled, 'm1', 8, 3), 'mlogits', 2, 1));
  return t.model();
}

test('two-stage: the RPN convs are the detection convs, the Gemm on RoiAlign windows a second-stage layer of the heads', () => {
  const m = twoStage();
  const d = recognizeDetector(m);
  assert.ok(d.detector, d.seen.join(' / '));
  assert.equal(d.heads.convs, ['obj', 'delta']);
  assert.equal(d.heads.roi, ['fc']);
  for (const n of ['topk', 'rois', 'pool', 'flat', 'fc']) assert.ok(d.heads.nodes.includes(n), n);
  for (const n of ['n.conv', 'up', 'cat']) assert.ok(d.neck.nodes.includes(n), n);
  assert.ok(d.seen.some((s) => s.includes('1 weight layer(s) on RoI-pooled features')), d.seen.join(' / '));
  // RoiAlign's shape: [rois, C, h, w] = [4, 8, 2, 2], so the Gemm is sized: 4 x 32 x 5 = 640 MACs
  const r = analyze(m);
  assert.is(r.detector!.heads.part.macs, 8 * 64 * 1 + 8 * 64 * 4 + 4 * 32 * 5);
  assert.equal(r.detector!.heads.part.unsized, []);
});

test('two-stage with a mask branch: mlogits ends the network too, but on RoI windows: second stage, the neck unchanged', () => {
  const plain = recognizeDetector(twoStage());
  const d = recognizeDetector(twoStage({ mask: true }));
  assert.ok(d.detector);
  assert.equal(d.heads.convs, ['obj', 'delta']);
  assert.equal(d.heads.roi, ['fc', 'm1.conv', 'mlogits']);
  assert.equal(d.neck.nodes, plain.neck.nodes);
  assert.equal(d.backbone.nodes, plain.backbone.nodes);
});

test('negative: the objectness values entering the Gemm as features make obj a feature layer, not a detection conv', () => {
  const d = recognizeDetector(twoStage({ featuresToGemm: true }));
  assert.is(d.detector, false, 'delta alone ends the network');
  assert.equal(d.heads.convs, ['delta']);
});

test("negative: without RoiAlign's rois read as boxes (registry metaInputs) the proposals read as features into the Gemm", () => {
  const before = opInfo('RoiAlign')!;
  const restore = registerOp('RoiAlign', { ...before, metaInputs: undefined });
  try {
    const d = recognizeDetector(twoStage());
    assert.is(d.detector, false);
    assert.equal(d.heads.convs, ['obj']);
  } finally {
    restore();
  }
});

test.run();
