/** Input generation, statistics and interleaving (src/profile/measure.ts), against figures worked out by hand. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../../src/onnx/io';
import { latencyStats, makeFeeds, measureInterleaved, parseShapes, percentile, resolveInputs } from '../../src/profile/measure';
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

test.run();
