/**
 * profile --backend torch: the exported modules timed by the Python runner (few iterations: this
 * checks that it runs and reports like the onnxruntime path, not any latency).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { profile, validateProfileReport } from '../../src/profile';
import { fixturePath, repoRoot } from '../helpers';
import { torchPythonOrSkip } from '../export/harness';

test('a fixture pair on torch cpu: interleaved samples, the same statistics and report as onnxruntime, valid against the schema', async () => {
  const python = torchPythonOrSkip('profile --backend torch');
  if (!python) return;
  const r = await profile([fixturePath('resnet18-w25.onnx'), fixturePath('darknet53-w25.onnx')], { backend: 'torch', device: 'cpu', iterations: 3, warmup: 1 });
  validateProfileReport(JSON.parse(JSON.stringify(r)));
  // the runner's torch, as the interpreter itself reports it, and the BLAS files it maps exist
  const version = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).stdout.trim();
  assert.is(r.environment.torch?.version, version);
  for (const lib of r.environment.torch!.blas) assert.ok(fs.existsSync(lib), lib);
  assert.is(r.warnings.some((w) => /reference BLAS/.test(w)), r.environment.torch!.blasKind === 'reference');
  assert.is(r.backend, 'torch');
  assert.is(r.ep, 'cpu');
  assert.ok(r.settings.interleaved);
  assert.is(r.models.length, 2);
  for (const m of r.models) {
    assert.equal(m.runs.map((x) => x.batch), [1]);
    for (const run of m.runs) {
      assert.is(run.samplesMs.length, 3);
      assert.ok(run.samplesMs.every((s) => s > 0));
      assert.ok(run.latencyMs.min <= run.latencyMs.p50 && run.latencyMs.p50 <= run.latencyMs.max);
    }
  }
  assert.is(r.models[0].runs[0].vsBaseline, null);
  const vs = r.models[1].runs[0].vsBaseline!;
  assert.ok(vs.latencyRatioLow <= vs.latencyRatio && vs.latencyRatio <= vs.latencyRatioHigh);
  // the MACs ratio is the cost model's (Darknet-53 w25 36.93 M over ResNet-18 w25's, batch 1)
  assert.ok(Math.abs(vs.macsRatio - r.models[1].runs[0].macs / r.models[0].runs[0].macs) < 1e-12);
});

test('the same fixture pair on torch cpu and on onnxruntime cpu: both give a latency ratio with its interval, in the same report shape (few iterations: that it runs, not what it measures)', async () => {
  if (!torchPythonOrSkip('profile --backend torch against onnxruntime')) return;
  const pair = [fixturePath('resnet18-w25.onnx'), fixturePath('darknet53-w25.onnx')];
  const opts = { device: 'cpu' as const, ep: 'cpu' as const, iterations: 3, warmup: 1 };
  const torch = await profile(pair, { ...opts, backend: 'torch' });
  const ort = await profile(pair, opts);
  assert.is(torch.backend, 'torch');
  assert.is.not(ort.backend, 'torch');
  for (const r of [torch, ort]) validateProfileReport(JSON.parse(JSON.stringify(r)));
  // the same models, batches and columns on both paths
  assert.equal(torch.models.map((m) => m.runs.map((x) => x.batch)), ort.models.map((m) => m.runs.map((x) => x.batch)));
  assert.equal(torch.models.map((m) => m.runs.map((x) => x.macs)), ort.models.map((m) => m.runs.map((x) => x.macs)));
  assert.equal(Object.keys(torch.models[1].runs[0].vsBaseline!).sort(), Object.keys(ort.models[1].runs[0].vsBaseline!).sort());
  for (const r of [torch, ort]) {
    for (const run of r.models[1].runs) {
      const vs = run.vsBaseline!;
      assert.ok(Number.isFinite(vs.latencyRatio) && Math.sign(vs.latencyRatio) === 1, `${r.backend}: ratio ${vs.latencyRatio}`);
      assert.ok(vs.latencyRatioLow <= vs.latencyRatio && vs.latencyRatio <= vs.latencyRatioHigh, `${r.backend}: interval`);
    }
    for (const run of r.models[0].runs) assert.is(run.vsBaseline, null);
  }
  // the negative case: a baseline has no ratio on either path, checked above; and the MACs ratio does not depend on the backend
  assert.equal(torch.models[1].runs.map((x) => x.vsBaseline!.macsRatio), ort.models[1].runs.map((x) => x.vsBaseline!.macsRatio));
});

test('torch backend refuses what it cannot do: --per-node (E_ARG), cuda where torch has none (E_EP)', async () => {
  let refused: unknown = null;
  await profile([fixturePath('resnet18-w25.onnx')], { backend: 'torch', perNode: true, iterations: 1 }).catch((e) => (refused = e));
  assert.is((refused as { code?: string } | null)?.code, 'E_ARG');
  assert.match((refused as Error).message, /onnxruntime and trtexec backends only/);
  if (!torchPythonOrSkip('profile --backend torch --device cuda')) return;
  try {
    await profile([fixturePath('resnet18-w25.onnx')], { backend: 'torch', device: 'cuda', iterations: 1, warmup: 0 });
    // a machine with a CUDA build of PyTorch and a GPU: it ran, nothing to refuse
  } catch (e) {
    assert.is((e as { code: string }).code, 'E_EP');
    assert.match((e as Error).message, /cuda/);
  }
});

test('gpt profile --backend torch --device cuda where torch has no CUDA: one line on stderr naming the cause, exit 1, nothing on stdout; --device cpu runs', () => {
  const python = torchPythonOrSkip('gpt profile --backend torch --device cuda (CLI)');
  if (!python) return;
  const gpt = (...args: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'run.js'), 'profile', fixturePath('resnet18-w25.onnx'), '--backend', 'torch', '--iterations', '1', '--warmup', '0', ...args], { encoding: 'utf8', timeout: 120_000 });
  // the positive case: the same command on the CPU gives the report
  const cpu = gpt('--device', 'cpu');
  assert.is(cpu.status, 0, cpu.stderr);
  assert.match(cpu.stdout, /resnet18-w25\.onnx/);
  assert.match(cpu.stdout, /torch default threads/); // torch's thread count, not onnxruntime's
  // torch's own answer decides what --device cuda must do on this machine
  const hasCuda = spawnSync(python, ['-c', 'import torch; print(torch.cuda.is_available())'], { encoding: 'utf8' }).stdout.trim() === 'True';
  const r = gpt('--device', 'cuda');
  if (hasCuda) {
    assert.is(r.status, 0, r.stderr); // a GPU machine: it runs, there is nothing to refuse
    return;
  }
  assert.is(r.status, 1, r.stderr);
  assert.is(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  assert.is(lines.length, 1, r.stderr);
  assert.match(lines[0], /^gpt: the torch runner stopped: torch\.cuda\.is_available\(\) is False .*use --device cpu/);
});

test.run();
