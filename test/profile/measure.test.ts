/** Input generation, statistics and interleaving (src/profile/measure.ts), against figures worked out by hand. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../../src/onnx/io';
import { latencyStats, makeFeeds, measureInterleaved, pairedRatio, unpairedRatio, parseShapes, percentile, resolveInputs } from '../../src/profile/measure';
import { fixturePath } from '../helpers';

const close = (a: number, b: number, eps = 1e-9) => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b}`);

test('latencyStats: figures of a small sample computed by hand', () => {
  // samples 1..10: mean 5.5, sample std sqrt(82.5/9) = 3.0277, p50 5.5, p90 9.1 (numpy linear), p99 9.91
  const s = latencyStats([10, 1, 9, 2, 8, 3, 7, 4, 6, 5]);
  close(s.min, 1);
  close(s.max, 10);
  close(s.mean, 5.5);
  close(s.p50, 5.5);
  close(s.p90, 9.1);
  close(s.p99, 9.91);
  close(s.std, Math.sqrt(82.5 / 9));
  close(s.cv, Math.sqrt(82.5 / 9) / 5.5);
  close(percentile([1, 2, 3, 4], 25), 1.75);
});

test('pairedRatio: per-round ratios survive a drift that slows both models alike', () => {
  // the machine slows down 3x over the run; B is always 2x A in the same round
  const a = [1, 1.5, 2, 2.5, 3];
  const b = a.map((x) => 2 * x);
  const r = pairedRatio(b, a);
  close(r.median, 2);
  close(r.p25, 2);
  close(r.p75, 2);
});

test('parseShapes: input shapes and symbols; bad values are E_ARG', () => {
  assert.equal(parseShapes(['input=8x3x64x64', 'height=224', 'x=1,2']), { input: [8, 3, 64, 64], height: [224], x: [1, 2] });
  for (const bad of ['input', 'input=', 'input=8x0', 'input=ax3']) {
    try {
      parseShapes([bad]);
      assert.unreachable(bad);
    } catch (e) {
      assert.is((e as { code: string }).code, 'E_ARG', bad);
    }
  }
});

test('resolveInputs: symbolic batch takes --batch; fixed dims must agree', () => {
  const dyn = loadModel(fixturePath('resnet50-w25.onnx')); // input: [batch, 3, 64, 64]
  const r = resolveInputs(dyn, { batch: 8 });
  assert.equal(r.inputs, [{ name: 'input', type: 'float32', dims: [8, 3, 64, 64] }]);
  assert.equal(r.symbols, { batch: 8 });
  assert.is(r.batch, 8);
  assert.equal(resolveInputs(dyn, {}).inputs[0].dims, [1, 3, 64, 64]);
  assert.equal(resolveInputs(dyn, { shapes: { input: [4, 3, 64, 64] } }).symbols, { batch: 4 });

  const fixed = loadModel(fixturePath('resnet18-w25.onnx')); // input: [1, 3, 64, 64]
  assert.equal(resolveInputs(fixed, {}).inputs[0].dims, [1, 3, 64, 64]);
  const cases: [string, () => unknown, RegExp][] = [
    ['fixed batch', () => resolveInputs(fixed, { batch: 8 }), /fixed batch of 1/],
    ['rank', () => resolveInputs(dyn, { shapes: { input: [1, 3, 64] } }), /rank 4/],
    ['fixed dim', () => resolveInputs(dyn, { shapes: { input: [1, 3, 32, 32] } }), /dim 2 is fixed at 64/],
  ];
  for (const [what, f, re] of cases) {
    try {
      f();
      assert.unreachable(what);
    } catch (e) {
      assert.is((e as { code: string }).code, 'E_ARG', what);
      assert.match((e as Error).message, re, what);
    }
  }
});

test('makeFeeds: the same seed gives the same data, in [-1, 1)', () => {
  const spec = [{ name: 'x', type: 'float32', dims: [2, 3] }, { name: 'ids', type: 'int64', dims: [4] }];
  const a = makeFeeds(spec, 7);
  const b = makeFeeds(spec, 7);
  const c = makeFeeds(spec, 8);
  assert.equal([...(a.x.data as Float32Array)], [...(b.x.data as Float32Array)]);
  assert.not.equal([...(a.x.data as Float32Array)], [...(c.x.data as Float32Array)]);
  assert.ok([...(a.x.data as Float32Array)].every((v) => v >= -1 && v < 1));
  assert.equal(a.ids.dims, [4]);
  assert.is(a.ids.type, 'int64');
});

test('measureInterleaved: warm-up discarded, one sample per model per round, order rotates', async () => {
  const log: string[] = [];
  const target = (label: string) => ({ label, run: async () => void log.push(label) });
  const ticks: number[] = [];
  const s = await measureInterleaved([target('A'), target('B')], { warmup: 2, iterations: 3, onTick: (f) => ticks.push(f) });
  assert.is(s[0].length, 3);
  assert.is(s[1].length, 3);
  assert.equal(log.join(''), 'AB' + 'AB' + 'AB' + 'BA' + 'AB'); // 2 warm-up rounds, then A B / B A / A B
  assert.is(ticks[ticks.length - 1], 1);
});

test('measureInterleaved: --duration runs at least 3 rounds', async () => {
  const s = await measureInterleaved([{ label: 'A', run: async () => undefined }], { warmup: 0, durationS: 0.001 });
  assert.ok(s[0].length >= 3);
});

test('unpairedRatio: models timed one after the other get a ratio of medians and a wide spread', () => {
  // baseline 10, 20, 30, 40, 50 ms: p25 20, p50 30, p75 40 (numpy linear interpolation over 5 values)
  // model    15, 25, 35, 45, 55 ms: p25 25, p50 35, p75 45
  // median ratio 35/30 = 1.1667; spread p25/p75 = 25/40 = 0.625 to p75/p25 = 45/20 = 2.25
  const r = unpairedRatio([55, 15, 35, 25, 45], [10, 50, 20, 40, 30]);
  assert.ok(Math.abs(r.median - 35 / 30) < 1e-12);
  assert.ok(Math.abs(r.p25 - 0.625) < 1e-12);
  assert.ok(Math.abs(r.p75 - 2.25) < 1e-12);
});

test.run();
