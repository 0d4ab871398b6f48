/**
 * gpt sample yolov3 / yolov3-tiny against Darknet's own printout: conv MACs x 2 = Darknet's BFLOPs
 * (l.bflops = 2 n k k c out_h out_w, darknet src/convolutional_layer.c); yolov3.cfg at 416 prints
 * 65.879 BFLOPs in total, yolov3-tiny.cfg 5.571; 61.9 M parameters (YOLOv3), 8.8 M (tiny).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { costModel } from '../../src/analysis/cost';
import { recognizeDetector } from '../../src/analysis/detector';
import { buildSample } from '../../src/samples';

const within = (x: number, ref: number, rel: number) => Math.abs(x - ref) / ref <= rel;

test('yolov3 at 416: 2 x conv MACs within 1% of Darknet\'s 65.879 BFLOPs, params within 1% of 61.9 M, 3 raw heads', () => {
  const m = buildSample('yolov3');
  const c = costModel(m);
  const convMacs = c.nodes.filter((n) => n.opType === 'Conv').reduce((s, n) => s + n.macs, 0);
  assert.ok(within((2 * convMacs) / 1e9, 65.879, 0.01), `${(2 * convMacs) / 1e9} BFLOPs`);
  assert.ok(within(c.totals.params, 61.9e6, 0.01), `${c.totals.params}`);
  // first layer by hand, as Darknet prints it: 2 x 32 x 3 x 3 x 3 x 416 x 416 = 0.299 BFLOPs
  assert.is(c.nodes.find((n) => n.opType === 'Conv')!.macs, 32 * 3 * 3 * 3 * 416 * 416);
  assert.equal(m.graph.outputs.map((o) => [o.name, o.shape]), [['yolo_s32', [1, 255, 13, 13]], ['yolo_s16', [1, 255, 26, 26]], ['yolo_s8', [1, 255, 52, 52]]]);
});

test('yolov3-tiny at 416: 2 x conv MACs within 1% of Darknet\'s 5.571 BFLOPs, params within 1% of 8.85 M', () => {
  const c = costModel(buildSample('yolov3-tiny'));
  const convMacs = c.nodes.filter((n) => n.opType === 'Conv').reduce((s, n) => s + n.macs, 0);
  assert.ok(within((2 * convMacs) / 1e9, 5.571, 0.01), `${(2 * convMacs) / 1e9}`);
  assert.ok(within(c.totals.params, 8.85e6, 0.01), `${c.totals.params}`);
});

test('yolov3 sample is recognised as a detector: darknet53 backbone, 3 conv sets, 3 heads; negative: a wrong width misses the counts', () => {
  const d = recognizeDetector(buildSample('yolov3', { width: 0.25, resolution: 128 }));
  assert.ok(d.detector);
  assert.is(d.backbone.family, 'darknet53');
  assert.is(d.neck.blocks.filter((b) => b.rule === 'yolo-conv-set').length, 3);
  assert.is(d.heads.convs.length, 3);
  const half = costModel(buildSample('yolov3', { width: 0.5 }));
  assert.not.ok(within(half.totals.params, 61.9e6, 0.01));
});

test.run();
