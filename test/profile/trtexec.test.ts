/**
 * --ep tensorrt through trtexec (src/profile/trtexec.ts), with the recorded exports and the fake
 * trtexec of test/fixtures/trtexec (see its README): no GPU, no TensorRT.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { profile, validateProfileReport } from '../../src/profile';
import type { ProviderEnvironment } from '../../src/profile/providers';
import { findTrtexec, parseTrtexecProfile, parseTrtexecTimes, trtexecArgs } from '../../src/profile/trtexec';
import { fixturePath, repoRoot, tmpDir, assertNear } from '../helpers';

const recorded = path.join(repoRoot, 'test', 'fixtures', 'trtexec');

/** The fake trtexec copied into a fresh folder (executable whatever the checkout kept of the mode bits). */
function fakeTrtexecDir(): string {
  const dir = tmpDir('gpt-trtexec-bin-');
  for (const f of ['trtexec', 'times.json', 'profile.json']) fs.copyFileSync(path.join(recorded, f), path.join(dir, f));
  fs.chmodSync(path.join(dir, 'trtexec'), 0o755);
  return dir;
}
/** A binding without the TensorRT provider (as onnxruntime-node's prebuilt one is). */
const noTrt: ProviderEnvironment = { backends: [{ name: 'cpu', bundled: true }], binDir: tmpDir('gpt-empty-'), libDirs: [], platform: 'linux', arch: 'x64' };

test('parse the recorded exports', () => {
  const times = parseTrtexecTimes(JSON.parse(fs.readFileSync(path.join(recorded, 'times.json'), 'utf8')));
  assert.is(times.length, 10);
  assert.is(times[2], 0.52);
  const prof = parseTrtexecProfile(JSON.parse(fs.readFileSync(path.join(recorded, 'profile.json'), 'utf8')));
  assert.is(prof.count, 10);
  assert.is(prof.layers.length, 8);
  assert.is(prof.layers[1].name, '/conv1/Conv + /relu/Relu');
});

test('trtexecArgs: shapes only for a dynamic model; warm-up runs counted in iterations', () => {
  const base = { onnx: 'm.onnx', inputs: [{ name: 'input', type: 'float32', dims: [8, 3, 64, 64] }], fp16: true, warmup: 2, iterations: 8, workDir: '/w' };
  const dyn = trtexecArgs({ ...base, dynamic: true }).args;
  assert.ok(dyn.includes('--shapes=input:8x3x64x64'));
  assert.ok(dyn.includes('--fp16'));
  assert.ok(dyn.includes('--iterations=10'));
  assert.ok(dyn.includes('--warmUp=0'));
  assert.ok(dyn.includes('--exportTimes=/w/times.json') && dyn.includes('--exportProfile=/w/profile.json'));
  assert.not.ok(trtexecArgs({ ...base, dynamic: false }).args.some((a) => a.startsWith('--shapes')));
});

test('findTrtexec: on PATH or nowhere', () => {
  const dir = fakeTrtexecDir();
  assert.is(findTrtexec(`/nonexistent${path.delimiter}${dir}`, ''), path.join(dir, 'trtexec'));
  assert.is(findTrtexec('/nonexistent', ''), null);
});

test('profile --ep tensorrt without the ORT provider: measured by trtexec, mapped into the report', async () => {
  const dir = fakeTrtexecDir();
  const log = path.join(dir, 'args.log');
  process.env.FAKE_TRTEXEC_LOG = log;
  process.env.FAKE_TRTEXEC_STATIC = '1'; // resnet18-w25 is static: trtexec would refuse --shapes
  const oldPath = process.env.PATH;
  process.env.PATH = `${dir}${path.delimiter}${oldPath}`;
  try {
    const r = await profile([fixturePath('resnet18-w25.onnx')], { ep: 'tensorrt', providerEnvironment: noTrt, warmup: 2, iterations: 8, perNode: true, fp16: true });
    validateProfileReport(r);
    assert.is(r.backend, 'trtexec');
    assert.ok(r.warnings.some((w) => w.includes('trtexec')));
    const run = r.models[0].runs[0];
    // the recorded latencies after the 2 warm-up runs: 0.52 0.50 0.51 0.49 0.53 0.50 0.52 0.48
    assert.is(run.iterations, 8);
    assertNear(run.latencyMs.mean, 4.05 / 8, 1e-9);
    assertNear(run.latencyMs.p50, 0.505, 1e-9);
    assert.is(run.latencyMs.min, 0.48);
    const p = r.models[0].perNode[0];
    // the layer "/conv1/Conv + /relu/Relu" (0.060 ms) splits over Conv and Relu; the sum is the profile's 0.184 ms
    assert.ok(Math.abs(p.nodeSumMs - 0.184) < 1e-9);
    assert.ok(Math.abs(p.byOpType.find((o) => o.opType === 'Relu')!.ms - (0.030 + 0.015 + 0.034 / 3 + 0.014)) < 1e-9);
    assert.ok(p.byOpType.some((o) => o.opType === 'Reformat'));
    assert.equal(p.byProvider.map((x) => x.provider), ['tensorrt']);
    assert.ok(p.byStage.some((s) => s.stage === 'stem'));
    const args = JSON.parse(fs.readFileSync(log, 'utf8').trim().split('\n')[0]) as string[];
    assert.ok(args.includes('--fp16'));
    assert.ok(args.includes('--iterations=10'));
    assert.not.ok(args.some((a) => a.startsWith('--shapes')));
  } finally {
    process.env.PATH = oldPath;
    delete process.env.FAKE_TRTEXEC_LOG;
    delete process.env.FAKE_TRTEXEC_STATIC;
  }
});

test('a dynamic model gets --shapes; a trtexec failure is one E_ORT line', async () => {
  const dir = fakeTrtexecDir();
  const log = path.join(dir, 'args.log');
  process.env.FAKE_TRTEXEC_LOG = log;
  try {
    await profile([fixturePath('resnet50-w25.onnx')], { ep: 'tensorrt', providerEnvironment: noTrt, trtexec: path.join(dir, 'trtexec'), batches: [8], warmup: 2, iterations: 8 });
    assert.ok(fs.readFileSync(log, 'utf8').includes('--shapes=input:8x3x64x64'));
    process.env.FAKE_TRTEXEC_FAIL = '1';
    try {
      await profile([fixturePath('resnet50-w25.onnx')], { ep: 'tensorrt', providerEnvironment: noTrt, trtexec: path.join(dir, 'trtexec'), iterations: 2 });
      assert.unreachable();
    } catch (e) {
      assert.is((e as { code: string }).code, 'E_ORT');
      assert.match((e as Error).message, /trtexec failed: .*fake failure/);
    }
  } finally {
    delete process.env.FAKE_TRTEXEC_LOG;
    delete process.env.FAKE_TRTEXEC_FAIL;
  }
});

test('neither the ORT provider nor trtexec: E_EP naming both', async () => {
  try {
    await profile([fixturePath('resnet18-w25.onnx')], { ep: 'tensorrt', providerEnvironment: noTrt, trtexec: null });
    assert.unreachable();
  } catch (e) {
    assert.is((e as { code: string }).code, 'E_EP');
    assert.match((e as Error).message, /trtexec is not on PATH/);
  }
});

test.run();
