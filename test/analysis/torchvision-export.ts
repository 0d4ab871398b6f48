/**
 * Runs one of the torchvision export scripts beside this file (a detector built and exported by
 * PyTorch at test time, into a fresh temp dir) for the torchvision detector tests. Without a Python
 * that has torch and torchvision the test is skipped (counted); under CI=true (.ci/run installs both)
 * that is a failure.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import * as assert from 'uvu/assert';
import { findTorchPython } from '../../src/export/python';
import type { Model } from '../../src/ir/model';
import { saveModelToBuffer } from '../../src/onnx/io';
import { readNpy, repoRoot, skipTest, tmpDir } from '../helpers';

/** The folder the script wrote, or null after a counted skip. `what` names the model in the skip line. */
export function exportTorchvision(script: string, what: string): string | null {
  const file = path.join(repoRoot, 'test', 'analysis', script);
  const { python, tried } = findTorchPython();
  const vision = python ? spawnSync(python, ['-c', 'import torchvision'], { encoding: 'utf8' }).status === 0 : false;
  if (!python || !vision) {
    const why = `no Python with torch and torchvision (tried ${tried.join(', ')}; apt-get install python3-torchvision)`;
    if (process.env.CI) throw new Error(`${why}: the torchvision detector test cannot run under CI`);
    skipTest(`${why}: torchvision ${what} export not checked`);
    return null;
  }
  const dir = tmpDir('gpt-torchvision-');
  const r = spawnSync(python, [file, dir], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${file} failed: ${r.stderr.slice(-2000)}`);
  return dir;
}

/** Runs a detector of `dir` on the script's input.npy (graph input `image`) at one ORT level. */
export async function runDetector(model: Model, dir: string, level: 'disabled' | 'all'): Promise<Record<string, ort.Tensor>> {
  const s = await ort.InferenceSession.create(saveModelToBuffer(model), { graphOptimizationLevel: level });
  const x = readNpy(path.join(dir, 'input.npy'));
  try {
    return await s.run({ image: new ort.Tensor('float32', x.data, x.shape) });
  } finally {
    await s.release();
  }
}

/**
 * torchvision's detections after NMS: a data-dependent row count (at most `max`, the detections per
 * image), so what a converted model can be held to is the layout: boxes n x 4, scores and labels n.
 */
export function assertDetections(out: Record<string, ort.Tensor>, max: number, level: string): void {
  const n = out.boxes.dims[0];
  assert.ok(n <= max, `${level}: ${n} rows`);
  assert.equal([...out.boxes.dims], [n, 4]);
  assert.equal([...out.scores.dims], [n]);
  assert.equal([...out.labels.dims], [n]);
  assert.ok((out.boxes.data as Float32Array).every(Number.isFinite));
}
