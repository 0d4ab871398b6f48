/**
 * What gpt's measurement adds over a bare onnxruntime-node loop on the same model: p50 of
 * `profile([model])` against p50 of `await session.run(feeds)` timed by hand (same data, warm-up and
 * run count). The bare loop runs before and after gpt and its two p50s are averaged, so a machine
 * drifting during the bench does not show up as overhead.
 */
import * as ort from 'onnxruntime-node';
import { loadModel } from '../../src/onnx/io';
import { profile } from '../../src/profile';
import { latencyStats, makeFeeds, resolveInputs } from '../../src/profile/measure';

const WARMUP = 10;
const ITERATIONS = 200;

async function bareP50(modelPath: string): Promise<number> {
  const session = await ort.InferenceSession.create(modelPath);
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

export async function profileOverhead(modelPath: string): Promise<{ gptP50: number; bareP50: number; diffPct: number }> {
  const before = await bareP50(modelPath);
  const report = await profile([modelPath], { warmup: WARMUP, iterations: ITERATIONS });
  const after = await bareP50(modelPath);
  const gptP50 = report.models[0].runs[0].latencyMs.p50;
  const bare = (before + after) / 2;
  return { gptP50, bareP50: bare, diffPct: ((gptP50 - bare) / bare) * 100 };
}
