/**
 * The latency ratio, its interval, the adaptive stopping rule and the stability warnings
 * (src/profile/stats.ts, src/profile/measure.ts) on recorded samples and a fake clock: no test here
 * depends on how fast anything runs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { measureAdaptive } from '../../src/profile/measure';
import { CV_LIMIT, MIN_ROUNDS, latencyStats, precise, ratioOfMedians, relativeHalfWidth, seededRandom, stabilityWarnings } from '../../src/profile/stats';

const close = (a: number, b: number, eps = 1e-12) => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b}`);

test('ratio of medians: p50 / p50, by hand', () => {
  // baseline 10..50: p50 30; model 15..55: p50 35 -> 35 / 30
  const r = ratioOfMedians([55, 15, 35, 25, 45], [10, 50, 20, 40, 30]);
  close(r.ratio, 35 / 30);
  assert.ok(r.low <= r.ratio && r.ratio <= r.high);
  // even count: p50 of [1, 2, 3, 4] is 2.5, of [2, 4, 6, 8] is 5 -> 2
  close(ratioOfMedians([8, 2, 6, 4], [3, 1, 4, 2]).ratio, 2);
});

test('the ratio column always equals p50 / p50 of the columns beside it (recorded samples)', () => {
  // the case: a cv-119% baseline whose mean and median disagree wildly
  const rnd = seededRandom(42);
  for (let t = 0; t < 50; t++) {
    const n = 3 + Math.floor(rnd() * 40);
    const base = Array.from({ length: n }, () => 5 + rnd() * 20 * (rnd() < 0.2 ? 10 : 1));
    const model = Array.from({ length: n }, () => 4 + rnd() * 15);
    const r = ratioOfMedians(model, base, { resamples: 50 });
    close(r.ratio, latencyStats(model).p50 / latencyStats(base).p50, 1e-12);
    assert.ok(r.low <= r.ratio + 1e-12 && r.ratio <= r.high + 1e-12, `${r.low} ${r.ratio} ${r.high}`);
  }
});

test('paired bootstrap: a drift that slows both models alike leaves the interval at the ratio; unpaired it does not', () => {
  // the machine slows 3x over the run; the model is always 2x the baseline in the same round
  const base = Array.from({ length: 30 }, (_, i) => 1 + (2 * i) / 29);
  const model = base.map((x) => 2 * x);
  const paired = ratioOfMedians(model, base);
  close(paired.ratio, 2);
  close(paired.low, 2, 1e-9);
  close(paired.high, 2, 1e-9);
  const apart = ratioOfMedians(model, base, { paired: false });
  close(apart.ratio, 2);
  assert.ok(apart.high - apart.low > 0.3, `unpaired interval ${apart.low}..${apart.high} should be wide`);
});

test('the interval is reproducible (seeded) and one sample set gives the median\'s own interval', () => {
  const a = [10, 11, 9, 10.5, 12, 9.5, 10, 10.2];
  assert.equal(ratioOfMedians(a, [9, 9, 9, 9, 9, 9, 9, 9]), ratioOfMedians(a, [9, 9, 9, 9, 9, 9, 9, 9]));
  const own = ratioOfMedians(a, null);
  close(own.ratio, 1);
  assert.ok(own.low < 1 && own.high > 1);
  // constant samples: no spread at all
  assert.equal(ratioOfMedians([5, 5, 5], [5, 5, 5]), { ratio: 1, low: 1, high: 1 });
  close(relativeHalfWidth({ ratio: 2, low: 1.9, high: 2.02 }), 0.05);
});

test('stopping rule: not before MIN_ROUNDS rounds; done when the interval is within ±2%, not when it is wider', () => {
  const steady = (n: number, v: number) => Array.from({ length: n }, (_, i) => v * (1 + ((i % 3) - 1) * 0.001));
  assert.is(precise([steady(MIN_ROUNDS - 1, 10), steady(MIN_ROUNDS - 1, 12)]).done, false);
  assert.is(precise([steady(MIN_ROUNDS, 10), steady(MIN_ROUNDS, 12)]).done, true);
  const rnd = seededRandom(3);
  const noisy = Array.from({ length: 40 }, () => 10 + rnd() * 10);
  const p = precise([steady(40, 10), noisy]);
  assert.is(p.done, false);
  assert.ok(p.worst > 0.02, `worst ${p.worst}`);
});

/** Targets whose runs take recorded times on a fake clock. */
function fakeTargets(durations: ((round: number) => number)[]) {
  let t = 0;
  const calls = durations.map(() => 0);
  const targets = durations.map((d, i) => ({ label: `m${i}`, run: async () => void (t += d(calls[i]++)) }));
  return { targets, now: () => t };
}

test('adaptive runs stop on precision with steady samples, after MIN_ROUNDS rounds', async () => {
  const { targets, now } = fakeTargets([(r) => 10 + (r % 2) * 0.01, (r) => 12 + (r % 3) * 0.01]);
  const m = await measureAdaptive(targets, { warmup: 2, maxTimeS: 60, now });
  assert.is(m.stoppedBy, 'precision');
  assert.is(m.samples[0].length, MIN_ROUNDS);
  assert.ok(m.halfWidth <= 0.02);
  close(ratioOfMedians(m.samples[1], m.samples[0]).ratio, 12.01 / 10.005, 0.002);
});

test('adaptive runs stop on the budget with noisy samples; --iterations fixes the count', async () => {
  const rnd = seededRandom(9);
  const { targets, now } = fakeTargets([() => 10, () => 5 + rnd() * 30]);
  const m = await measureAdaptive(targets, { warmup: 0, maxTimeS: 2, now }); // 2 s of fake time
  assert.is(m.stoppedBy, 'budget');
  assert.ok(m.halfWidth > 0.02);
  const total = m.samples.flat().reduce((a, b) => a + b, 0);
  assert.ok(total >= 2000 && total < 2000 + 80, `stopped at ${total} ms of fake time`);
  const fixed = await measureAdaptive(fakeTargets([() => 10, () => 5 + rnd() * 30]).targets, { warmup: 0, iterations: 7 });
  assert.is(fixed.stoppedBy, 'iterations');
  assert.is(fixed.samples[1].length, 7);
});

test('stability warnings: budget, cv over 10%, interval containing 1.0 each say so with what to try; a clean run has none', () => {
  const base = { label: 'b.onnx', batch: 1, rounds: 40, maxTimeS: 60, halfWidth: 0.01 };
  assert.equal(stabilityWarnings({ ...base, ratio: { ratio: 0.9, low: 0.89, high: 0.91 }, cv: 0.02, stoppedBy: 'precision' }), []);
  const budget = stabilityWarnings({ ...base, ratio: { ratio: 0.9, low: 0.8, high: 0.95 }, cv: 0.02, stoppedBy: 'budget', halfWidth: 0.111 }, [3.5, 3, 2]);
  assert.is(budget.length, 1);
  assert.match(budget[0], /^unstable: b\.onnx, batch 1: the 60 s budget ran out after 40 rounds with the 95% interval at ±11\.1% \(target ±2\.0%\) \(load average 3\.50\); try --max-time 120/);
  const cv = stabilityWarnings({ ...base, ratio: null, cv: CV_LIMIT + 0.01, stoppedBy: 'iterations' });
  assert.equal(cv.length, 1);
  assert.match(cv[0], /^unstable: .*cv 11\.0% over 10\.0%.*try /);
  assert.equal(stabilityWarnings({ ...base, ratio: null, cv: CV_LIMIT, stoppedBy: 'iterations' }), []);
  const one = stabilityWarnings({ ...base, ratio: { ratio: 1.01, low: 0.99, high: 1.03 }, cv: 0.01, stoppedBy: 'precision' });
  assert.is(one.length, 1);
  assert.match(one[0], /^inconclusive: .*\[0\.990, 1\.030\] contains 1\.0.*try /);
  assert.ok(one.every((w) => !w.includes('\n')));
});

test.run();
