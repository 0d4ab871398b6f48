/** `gpt profile` through the CLI (node bin/run.js after tsc): output, JSON, and one-line errors. */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, saveModel } from '../../src/onnx/io';
import { validateProfileReport } from '../../src/profile';
import { fixturePath, repoRoot, tmpDir } from '../helpers';

const gpt = (...args: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'run.js'), 'profile', ...args], { encoding: 'utf8', timeout: 120_000 });
const r18 = fixturePath('resnet18-w25.onnx');
const r50 = fixturePath('resnet50-w25.onnx');

test('two models: a table with the latency ratio next to the MACs ratio', () => {
  const r = gpt(r18, r50, '--iterations', '5', '--warmup', '1');
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /latency ratio \[95% CI\]\s+MACs ratio/);
  assert.match(r.stdout, /latency ratio: ratio of medians, 95% bootstrap CI/);
  assert.match(r.stdout, /resnet50-w25\.onnx .* \d+\.\d{3}x \[[\d.]+, [\d.]+\]\s+2\.049x/); // 22.66 M / 11.06 M MACs
  // no progress bar when stderr is not a TTY; stability warnings (timing-dependent) are one line each
  assert.ok(r.stderr.split('\n').filter(Boolean).every((l) => /^gpt: warning: (unstable|inconclusive): /.test(l)), r.stderr);
});

test('--json validates against the shipped schema; --batch on a symbolic batch', () => {
  const r = gpt(r50, '--iterations', '3', '--warmup', '0', '--batch', '1,4', '--json', '--per-node');
  assert.is(r.status, 0, r.stderr);
  const doc = JSON.parse(r.stdout);
  validateProfileReport(doc);
  assert.equal(doc.models[0].runs.map((x: { batch: number }) => x.batch), [1, 4]);
  assert.is(doc.models[0].perNode.length, 2);
});

function oneLineError(args: string[], code: number, re: RegExp): void {
  const r = gpt(...args);
  assert.is(r.status, code, `${args.join(' ')}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.is(lines.length, 1, r.stderr);
  assert.match(lines[0], /^gpt: /);
  assert.match(lines[0], re);
  assert.is(r.stdout, '');
}

test('bad input: one line on stderr, non-zero exit', () => {
  oneLineError([r18, '--ep', 'cuda'], 1, /execution provider 'cuda' is not available.*ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules\/onnxruntime-node\/script\/install/);
  oneLineError([r18, '--ep', 'tensorrt'], 1, /'tensorrt' is not available.*trtexec/);
  oneLineError([r18, '--ep', 'npu'], 2, /--ep=npu to be one of: cpu, cuda, tensorrt/);
  oneLineError([r18, '--iterations', '0'], 2, /--iterations 0/);
  oneLineError([r18, '--shape', 'input=1x3x32x32'], 2, /dim 2 is fixed at 64/);
  oneLineError([r50, '--shape', 'input=1x3x64'], 2, /rank 4/);
  oneLineError([r18, '--batch', '8'], 2, /fixed batch of 1/);
  const model = loadModel(r18);
  model.graph.nodes[1].opType = 'NoSuchOp';
  const bad = path.join(tmpDir(), 'rejected.onnx');
  saveModel(model, bad);
  oneLineError([bad, '--iterations', '1'], 1, /rejected\.onnx: onnxruntime rejected the model/);
});

test.run();
