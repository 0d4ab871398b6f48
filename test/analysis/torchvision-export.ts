/**
 * Runs one of the torchvision export scripts beside this file (a detector built and exported by
 * PyTorch at test time, into a fresh temp dir) for the torchvision detector tests. Without a Python
 * that has torch and torchvision the test is skipped (counted); under CI=true (.ci/run installs both)
 * that is a failure.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { findTorchPython } from '../../src/export/python';
import { repoRoot, skipTest, tmpDir } from '../helpers';

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
