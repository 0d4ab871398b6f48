/**
 * `gpt convert --to elan` on the command line: --stack and --width left at their defaults are not
 * passed as given, so a neck block takes a setting that does not grow it (no `grows:` line); the
 * same values given explicitly are kept and the model grows, said in one stderr line. The model is
 * the tiny C3-neck detector of test/fixtures/c3-neck-detector.ts (counts in test/passes/elan-fit.test.ts).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { saveModel } from '../../src/onnx/io';
import { c3NeckDetector } from '../fixtures/c3-neck-detector';
import { repoRoot, tmpDir } from '../helpers';

const bin = path.join(repoRoot, 'bin', 'run.js');
const dir = tmpDir('gpt-elan-defaults-');
const model = path.join(dir, 'c3-neck.onnx');
saveModel(c3NeckDetector(), model);

function gpt(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('defaults: the neck C3 takes stack 1 (said on its line), no grows line', () => {
  const r = gpt('convert', model, '--to', 'elan', '--parts', 'neck', '--dry-run');
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /2 chained 3x3 16->8, .*\[default stack 1: stack 2, width 0\.5 would grow the block/);
  assert.not.match(r.stderr, /grows/);
});

test('negative: --stack 2 given explicitly is kept; the model grows and stderr says so in one line with the way out', () => {
  const r = gpt('convert', model, '--to', 'elan', '--parts', 'neck', '--stack', '2', '--dry-run');
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /4 chained 3x3 16->8/);
  const grows = r.stderr.split('\n').filter((l) => l.startsWith('gpt: grows:'));
  assert.is(grows.length, 1, r.stderr);
  assert.match(grows[0], /leaving --stack and --width out/);
});

test.run();
