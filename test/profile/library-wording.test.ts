/**
 * profile() speaks the library's words: an option error names the option as the API spells it
 * (ep, durationS, fp16, shapes), never a command-line flag; the CLI says --ep, --duration, --fp16.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isGptError } from '../../src/errors';
import { EpName, profile, ProfileOptions } from '../../src/profile';
import { fixturePath, repoRoot } from '../helpers';

const r18 = fixturePath('resnet18-w25.onnx');

async function argMessage(options: ProfileOptions): Promise<string> {
  try {
    await profile([r18], { warmup: 0, iterations: 1, ...options });
  } catch (e) {
    assert.ok(isGptError(e) && e.code === 'E_ARG', String(e));
    return e.message;
  }
  assert.unreachable('expected E_ARG');
  return '';
}

test('option errors from the library name the option, not a flag', async () => {
  const cases: [ProfileOptions, RegExp][] = [
    [{ ep: 'npu' as EpName }, /^ep 'npu': expected one of cpu, cuda, tensorrt$/],
    [{ iterations: 3, durationS: 1 }, /^iterations and durationS exclude each other$/],
    [{ durationS: 0, iterations: undefined }, /^durationS 0: expected seconds > 0$/],
    [{ fp16: true }, /^fp16 applies to ep 'tensorrt' only$/],
    [{ shapes: { nosuch: [1] } }, /^shape 'nosuch': no input or symbolic dim of that name$/],
  ];
  for (const [options, re] of cases) {
    const msg = await argMessage(options);
    assert.match(msg, re);
    assert.not.match(msg, /--/);
  }
});

test('negative: the CLI names its flags for the same mistakes', () => {
  const gpt = (...args: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'run.js'), 'profile', r18, ...args], { encoding: 'utf8' }).stderr;
  assert.match(gpt('--iterations', '3', '--duration', '1'), /--iterations and --duration exclude each other/);
  assert.match(gpt('--fp16'), /--fp16 applies to --ep tensorrt only/);
});

test.run();
