/** Execution-provider detection and its messages (src/profile/providers.ts), on described machines: no GPU needed. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { profile } from '../../src/profile';
import { CUDA_INSTALL, ProviderEnvironment, detectProviders, unavailableEpError } from '../../src/profile/providers';
import { fixturePath, tmpDir } from '../helpers';

/** A binding folder holding the given provider libraries. */
function machine(libs: string[], backends = ['cpu', 'webgpu', 'cuda', 'tensorrt'], nvinfer = false): ProviderEnvironment {
  const bin = tmpDir('gpt-ep-bin-');
  for (const l of libs) fs.writeFileSync(path.join(bin, `lib${l}.so`), '');
  const lib = tmpDir('gpt-ep-lib-');
  if (nvinfer) fs.writeFileSync(path.join(lib, 'libnvinfer.so.10'), '');
  return { backends: backends.map((name) => ({ name, bundled: name === 'cpu' || name === 'webgpu' })), binDir: bin, libDirs: [lib], platform: 'linux', arch: 'x64' };
}
const get = (env: ProviderEnvironment, name: string) => detectProviders(env).find((p) => p.name === name)!;

test('the prebuilt binding as npm installs it: CPU only, CUDA with its install command', () => {
  const env = machine([]);
  assert.ok(get(env, 'cpu').available);
  const cuda = get(env, 'cuda');
  assert.is(cuda.compiled, true);
  assert.is(cuda.available, false);
  assert.equal(cuda.missing, ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so']);
  assert.ok(cuda.hint!.includes(CUDA_INSTALL));
  assert.is(get(env, 'tensorrt').available, false);
});

test('after the CUDA install step: cuda available; tensorrt still needs libnvinfer', () => {
  const env = machine(['onnxruntime_providers_shared', 'onnxruntime_providers_cuda', 'onnxruntime_providers_tensorrt']);
  assert.is(get(env, 'cuda').available, true);
  const trt = get(env, 'tensorrt');
  assert.is(trt.available, false);
  assert.equal(trt.missing, ['libnvinfer.so (TensorRT)']);
  const withTrt = machine(['onnxruntime_providers_shared', 'onnxruntime_providers_cuda', 'onnxruntime_providers_tensorrt'], undefined, true);
  assert.is(get(withTrt, 'tensorrt').available, true);
});

test('a binding built without the GPU providers (e.g. macOS)', () => {
  const env = { ...machine([], ['cpu']), platform: 'darwin', arch: 'arm64' };
  const cuda = get(env, 'cuda');
  assert.is(cuda.compiled, false);
  assert.match(cuda.hint!, /no CUDA provider/);
});

test('messages: cuda names the install command; tensorrt names both ways out', () => {
  const env = machine([]);
  const c = unavailableEpError('cuda', get(env, 'cuda'));
  assert.is(c.code, 'E_EP');
  assert.ok(c.oneLine().includes(CUDA_INSTALL));
  assert.not.match(c.oneLine(), /\n/);
  const t = unavailableEpError('tensorrt', get(env, 'tensorrt')).oneLine();
  assert.match(t, /trtexec/);
  assert.match(t, /ONNX Runtime build with the TensorRT provider/);
});

test('this machine: the installed binding is detected, CPU is always there', () => {
  const all = detectProviders();
  assert.equal(all.map((p) => p.name), ['cpu', 'cuda', 'tensorrt']);
  assert.ok(all[0].available);
});

test('profile(): an unavailable EP is E_EP before any model is loaded', async () => {
  const env = machine([]);
  for (const ep of ['cuda', 'tensorrt'] as const) {
    try {
      await profile([fixturePath('resnet18-w25.onnx')], { ep, providerEnvironment: env, trtexec: null, iterations: 1 });
      assert.unreachable(ep);
    } catch (e) {
      assert.is((e as { code: string }).code, 'E_EP', ep);
    }
  }
});

test.run();
