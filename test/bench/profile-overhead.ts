/**
 * What gpt's measurement adds over a bare onnxruntime-node loop on the same model: p50 of
 * `profile([model])` against p50 of `await session.run(feeds)` timed by hand, with the same data,
 * warm-up and run count, and a fresh session each time. The two alternate over several rounds and the
 * median of the per-round p50 ratios is reported, with its 95% bootstrap interval, so a machine
 * whose speed drifts during the bench does not show up as overhead (or as a gain).
 */
import * as ort from 'onnxruntime-node';
import { loadModel } from '../../src/onnx/io';
import { profile } from '../../src/profile';
import { latencyStats, makeFeeds, resolveInputs } from '../../src/profile/measure';
import { percentile, seededRandom } from '../../src/profile/stats';

const WARMUP = 10;
const ITERATIONS = 60;
const ROUNDS = Number(process.env.GPT_BENCH_OVERHEAD_ROUNDS ?? 9);

async function bareP50(modelPath: string): Promise<number> {
  const session = await ort.InferenceSession.create(modelPath, { executionProviders: ['cpu'] });
  try {
    const feeds = makeFeeds(resolveInputs(loadModel(modelPath), {}).inputs, 1);
    for (let i = 0; i < WARMUP; i++) await session.run(feeds);
    const samples: number[] = [];
    for (let i = 0; i < ITERATIONS; i++) {
      const t = performance.now();
      await session.run(feeds);
      samples.push(performance.now() - t);
    }
    return latencyStats(samples).p50;
  } finally {
    await session.release();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** The median of the per-round ratios with its 95% bootstrap interval (2,000 seeded resamples of the rounds). */
export function medianWithInterval(xs: number[], resamples = 2000): { median: number; low: number; high: number } {
  const rnd = seededRandom(1);
  const meds = new Float64Array(resamples);
  const a = new Float64Array(xs.length);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < xs.length; i++) a[i] = xs[Math.floor(rnd() * xs.length)];
    meds[r] = percentile(a.sort(), 50);
  }
  meds.sort();
  return { median: median(xs), low: percentile(meds, 2.5), high: percentile(meds, 97.5) };
}

export async function profileOverhead(modelPath: string): Promise<{ gptP50: number; bareP50: number; diffPct: number; lowPct: number; highPct: number; rounds: number }> {
  const gpt: number[] = [];
  const bare: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    // alternate who goes first
    const first = r % 2 === 0;
    const b1 = first ? await bareP50(modelPath) : undefined;
    const report = await profile([modelPath], { ep: 'cpu', warmup: WARMUP, iterations: ITERATIONS });
    const g = report.models[0].runs[0].latencyMs.p50;
    const b = b1 ?? (await bareP50(modelPath));
    gpt.push(g);
    bare.push(b);
    ratios.push(g / b);
  }
  const m = medianWithInterval(ratios);
  return { gptP50: median(gpt), bareP50: median(bare), diffPct: (m.median - 1) * 100, lowPct: (m.low - 1) * 100, highPct: (m.high - 1) * 100, rounds: ROUNDS };
}
