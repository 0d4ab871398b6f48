/**
 * onnxruntime's own layout kernels (ReorderInput / ReorderOutput, NCHW <-> NCHWc) attributed to the
 * kernel they reorder for, the top-10 table, the per-node explanation, and --trace keeping the
 * profile. Recorded traces; the one real run asserts no timing.
 *
 *   run: conv1 | ReorderOutput_token_1 | Add (NCHW only) | ReorderInput | Conv (NCHWc) | ReorderInput (for Relu's conv)
 *        ReorderOutput serves the NEXT kernel (it un-blocks for it); ReorderInput the PREVIOUS one's output.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../../src/onnx/io';
import { profile, traceFile, validateProfileReport } from '../../src/profile';
import { aggregateProfile, parseOrtProfile, perNodeExplanation, topKernels } from '../../src/profile/node-profile';
import { fixturePath, tmpDir } from '../helpers';

const cpu = { provider: 'CPUExecutionProvider' };
const trace = [
  { cat: 'Session', name: 'model_run', ts: 0, dur: 100 },
  { cat: 'Node', name: '/layer1/layer1.0/conv2/Conv_kernel_time', ts: 0, dur: 30, args: { op_name: 'Conv', ...cpu } },
  { cat: 'Node', name: 'ReorderOutput_token_1_kernel_time', ts: 30, dur: 10, args: { op_name: 'ReorderOutput', ...cpu } },
  { cat: 'Node', name: '/layer1/layer1.0/Add_kernel_time', ts: 40, dur: 5, args: { op_name: 'Add', ...cpu } },
  { cat: 'Node', name: 'ReorderInput_kernel_time', ts: 45, dur: 8, args: { op_name: 'ReorderInput', ...cpu } },
  { cat: 'Node', name: '/layer1/layer1.1/conv1/Conv_kernel_time', ts: 53, dur: 20, args: { op_name: 'Conv', ...cpu } },
  { cat: 'Node', name: '/layer1/layer1.1/relu/Relu_kernel_time', ts: 73, dur: 2, args: { op_name: 'Relu', ...cpu } },
  { cat: 'Node', name: 'ReorderInput_kernel_time', ts: 75, dur: 4, args: { op_name: 'ReorderInput', ...cpu } },
];

test('parseOrtProfile: ReorderOutput is for the next kernel, ReorderInput for the previous one', () => {
  const p = parseOrtProfile(trace);
  const layout = p.kernels.filter((k) => k.layoutFor !== null).map((k) => [k.name, k.layoutFor]);
  assert.equal(layout, [
    ['ReorderOutput_token_1', '/layer1/layer1.0/Add'],
    ['ReorderInput', '/layer1/layer1.0/Add'],
    ['ReorderInput', '/layer1/layer1.1/relu/Relu'],
  ]);
  assert.ok(p.kernels.filter((k) => k.opType === 'Conv').every((k) => k.layoutFor === null), 'a model kernel is not a layout kernel');
});

test('aggregateProfile: layout kernels count in the stage of the node they serve, one row each, none unattributed', () => {
  const model = loadModel(fixturePath('resnet18-w25.onnx'));
  const structure = { family: 'resnet' as const, stem: [], stages: [], head: [], unmatched: [], warnings: [] };
  const r = aggregateProfile(parseOrtProfile(trace), { batch: 1, ep: 'cpu', skipRuns: 0, graph: model.graph, structure });
  const rows = r.kernels.filter((k) => k.layoutFor);
  assert.is(rows.length, 3); // the two "ReorderInput" kernels stay apart
  assert.equal(rows.map((k) => k.node).sort(), ['/layer1/layer1.0/Add', '/layer1/layer1.0/Add', '/layer1/layer1.1/relu/Relu']);
  assert.not.ok(r.byStage.some((s) => s.stage === 'unattributed'), JSON.stringify(r.byStage));
  // top kernels: slowest first, layout kernels labelled with what they serve
  const top = topKernels(r, 3);
  assert.equal(top.map((k) => k.name), ['/layer1/layer1.0/conv2/Conv', '/layer1/layer1.1/conv1/Conv', 'ReorderOutput_token_1']);
  assert.is(top[2].note, 'layout kernel onnxruntime inserted for /layer1/layer1.0/Add');
  assert.is(top[0].note, '');
  assert.ok(Math.abs(top[0].share - 30 / 79) < 1e-12); // 30 us of 79 us of kernels
  const why = perNodeExplanation(r, 0.5);
  assert.match(why, /mean of 1 profiled runs .* kernels 0\.08 ms of 0\.10 ms per profiled run \(79\.0%\); the p50 of 0\.50 ms comes from the timed runs, without the profiler/);
});

test('traceFile: FILE alone, or FILE-<model>-b<batch>.json', () => {
  assert.is(traceFile('t.json', null, null), 't.json');
  assert.is(traceFile('out/t.json', 1, null), 'out/t-2.json');
  assert.is(traceFile('t.json', 0, 8), 't-1-b8.json');
  assert.is(traceFile('t', null, 4), 't-b4.json');
});

test('--trace keeps onnxruntime\'s profile (Chrome trace JSON with model_run events); the report lists it', async () => {
  const dir = tmpDir('gpt-trace-');
  const file = path.join(dir, 'trace.json');
  const r = await profile([fixturePath('resnet18-w25.onnx')], { iterations: 2, warmup: 1, trace: file });
  validateProfileReport(JSON.parse(JSON.stringify(r)));
  assert.equal(r.traces, [file]);
  const events = JSON.parse(fs.readFileSync(file, 'utf8')) as { cat?: string; name?: string }[];
  assert.ok(events.some((e) => e.cat === 'Session' && e.name === 'model_run'));
  assert.ok(events.some((e) => e.cat === 'Node'));
  assert.is(r.models[0].perNode.length, 1); // --trace implies per-node
  // negative: without --trace nothing is kept
  const r2 = await profile([fixturePath('resnet18-w25.onnx')], { iterations: 1, warmup: 0, perNode: true });
  assert.equal(r2.traces, []);
});

test.run();
