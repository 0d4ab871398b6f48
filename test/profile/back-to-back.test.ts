/**
 * Two back-to-back `profile(A, B)` runs of the same pair agree within their reported intervals: the
 * samples of each run come from a seeded recording of a noisy machine (a shared drift per round that
 * slows both models alike, ~10% jitter per run, a few 3x outliers), fed through profile() itself, so
 * the ratio and interval are the ones the report prints. No timing is involved. Negative: a second
 * run whose model really is 30% slower does not agree with the first.
 *
 *   run 1: rounds ─ p50(B) / p50(A) [low, high] ─┐
 *   run 2: rounds ─ p50(B) / p50(A) [low, high] ─┴─ intervals overlap (same pair) / apart (B slower)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MeasureOptions, MeasureTarget, Measured, setSampleSource } from '../../src/profile/measure';
import { profile } from '../../src/profile';
import { seededRandom } from '../../src/profile/stats';
import { fixturePath } from '../helpers';

const r18 = fixturePath('resnet18-w25.onnx');

/** One recorded run: `rounds` interleaved rounds of A (10 ms) and B (ratio x 10 ms). */
function recording(seed: number, ratio: number, rounds = 40): number[][] {
  const rnd = seededRandom(seed);
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const drift = 1 + 0.3 * Math.sin(r / 5 + seed); // the machine's load, shared by the round
    const jitter = () => (1 + 0.1 * (rnd() * 2 - 1)) * (rnd() < 0.05 ? 3 : 1);
    a.push(10 * drift * jitter());
    b.push(10 * ratio * drift * jitter());
  }
  return [a, b];
}

async function run(samples: number[][]) {
  setSampleSource(async (_t: MeasureTarget[], _o: MeasureOptions): Promise<Measured> => ({ samples, stoppedBy: 'budget', halfWidth: 0.05 }));
  try {
    const r = await profile([r18, r18], { labels: ['A', 'B'] });
    const v = r.models[1].runs[0].vsBaseline!;
    return { ratio: v.latencyRatio, low: v.latencyRatioLow, high: v.latencyRatioHigh };
  } finally {
    setSampleSource(null);
  }
}

const overlap = (x: { low: number; high: number }, y: { low: number; high: number }) => x.low <= y.high && y.low <= x.high;

test('the same pair, back to back: the two intervals overlap, for each of 10 recorded pairs of runs', async () => {
  for (let s = 0; s < 10; s++) {
    const first = await run(recording(2 * s + 1, 0.9));
    const second = await run(recording(2 * s + 2, 0.9));
    assert.ok(overlap(first, second), `seed ${s}: [${first.low}, ${first.high}] vs [${second.low}, ${second.high}]`);
    // and each interval holds the ratio the recording was made with
    assert.ok(first.low <= 0.9 && 0.9 <= first.high, `seed ${s}: ${first.low}..${first.high}`);
  }
});

test('negative: a second run whose model is 30% slower does not agree with the first', async () => {
  for (let s = 0; s < 4; s++) {
    const first = await run(recording(100 + s, 0.9));
    const slower = await run(recording(200 + s, 0.9 * 1.3));
    assert.not.ok(overlap(first, slower), `seed ${s}: [${first.low}, ${first.high}] vs [${slower.low}, ${slower.high}]`);
  }
});

test.run();
