/**
 * Per-node times of a detector by its parts: backbone kernels in their stage (a CSP-form stage's
 * split and transitions too), neck kernels in 'neck' (a neck block's in its neck.nK block), the
 * detection convs and decode in 'heads'. Synthetic ORT traces over yolov5n's node names (one run,
 * durations in µs chosen here; no timing measured):
 *
 *   /model.2/cv1/conv/Conv  100   stage 0 (the C3's split conv: not a block node)
 *   /model.6/m/m.0/cv1/...  200   stage 2, block s2.b0
 *   /model.12/Concat        300   neck (the FPN merge: in no block)
 *   /model.13/cv1/conv/Conv 400   neck, block neck.n1 (the first C3 of the neck)
 *   /model.24/m.0/Conv      500   heads
 */
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { recognize } from '../../src/analysis/structure';
import { loadModel } from '../../src/onnx/io';
import { convert } from '../../src/passes/convert';
import { aggregateProfile, detectorPlaces, parseOrtProfile } from '../../src/profile/node-profile';
import { fixturesDir } from '../helpers';

const yolov5n = path.join(fixturesDir, '..', 'fixtures-detectors', 'yolov5n.onnx');

function trace(kernels: [string, number][]) {
  let ts = 0;
  const total = kernels.reduce((a, [, d]) => a + d, 0);
  return [
    { cat: 'Session', name: 'model_run', ts: 0, dur: total },
    ...kernels.map(([name, dur]) => ({ cat: 'Node', name: `${name}_kernel_time`, ts: (ts += dur) - dur, dur, args: { op_name: 'Conv', provider: 'CPUExecutionProvider' } })),
  ];
}

const KERNELS: [string, number][] = [
  ['/model.2/cv1/conv/Conv', 100], ['/model.6/m/m.0/cv1/conv/Conv', 200], ['/model.12/Concat', 300], ['/model.13/cv1/conv/Conv', 400], ['/model.24/m.0/Conv', 500],
];

test('yolov5n: kernels attributed to stage 0 / stage 2 / neck / heads, in that order; the neck block as neck.n1', () => {
  const model = loadModel(yolov5n);
  const structure = recognize(model);
  const r = aggregateProfile(parseOrtProfile(trace(KERNELS)), { batch: 1, ep: 'cpu', skipRuns: 0, graph: model.graph, structure, detector: detectorPlaces(model, structure) });
  assert.equal(r.byStage.map((s) => [s.stage, s.ms]), [['stage 0', 0.1], ['stage 2', 0.2], ['neck', 0.7], ['heads', 0.5]]);
  assert.equal(r.kernels.map((k) => [k.name, k.stage, k.block]), [
    ['/model.24/m.0/Conv', 'heads', null], ['/model.13/cv1/conv/Conv', 'neck', 'neck.n1'], ['/model.12/Concat', 'neck', null],
    ['/model.6/m/m.0/cv1/conv/Conv', 'stage 2', 's2.b0'], ['/model.2/cv1/conv/Conv', 'stage 0', null],
  ]);
  assert.ok(r.byBlock.some((b) => b.block === 'neck.n1' && b.stage === 'neck'));
});

test('negative: without the detector parts, no kernel is labelled neck or heads', () => {
  const model = loadModel(yolov5n);
  const r = aggregateProfile(parseOrtProfile(trace(KERNELS)), { batch: 1, ep: 'cpu', skipRuns: 0, graph: model.graph, structure: recognize(model) });
  assert.ok(!r.byStage.some((s) => s.stage === 'neck' || s.stage === 'heads'), r.byStage.map((s) => s.stage).join(', '));
  // and a model that is not a detector has no parts
  assert.is(detectorPlaces(model, null), null);
});

test('yolov5n converted to ELAN: the new neck layers count in neck, the CSP-form stages\' kept split convs in their stage', () => {
  const { model } = convert(loadModel(yolov5n), { to: 'elan' });
  const structure = recognize(model);
  const names = model.graph.nodes.map((n) => n.name);
  const fresh = names.find((n) => n.startsWith('/neck/neck.n1/') && n.endsWith('/Conv'));
  assert.ok(fresh, 'a new neck conv');
  const r = aggregateProfile(parseOrtProfile(trace([[fresh!, 100], ['/model.4/cv1/conv/Conv', 200], ['/model.24/m.1/Conv', 300]])), {
    batch: 1, ep: 'cpu', skipRuns: 0, graph: model.graph, structure, detector: detectorPlaces(model, structure),
  });
  assert.equal(r.byStage.map((s) => [s.stage, s.ms]), [['stage 1', 0.2], ['neck', 0.1], ['heads', 0.3]]);
});

test.run();
