/**
 * Outputs never harm inputs: every output of every command is checked against every input file and
 * input sidecar as real files (device + inode), so the same file under another path (a symlinked
 * folder, a hard link, the input's own sidecar) is caught; and a failed command writes nothing.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GptError } from '../../src/errors';
import { checkOutputs } from '../../src/onnx/files';
import { loadModel, saveModel } from '../../src/onnx/io';
import { fixturePath, repoRoot, tmpDir } from '../helpers';
import { snapshot } from './craft';

const bin = path.join(repoRoot, 'bin', 'run.js');

function gpt(cwd: string, ...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A folder holding in.onnx with its weights in in.onnx.data (from the ResNet-18 fixture). */
function workspace(): string {
  const dir = tmpDir('gpt-out-');
  saveModel(loadModel(fixturePath('resnet18-w25.onnx')), path.join(dir, 'in.onnx'), { externalData: true });
  assert.ok(fs.existsSync(path.join(dir, 'in.onnx.data')));
  return dir;
}

function refused(dir: string, args: string[], re: RegExp): void {
  const before = snapshot(dir);
  const r = gpt(dir, ...args);
  assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
  assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, re);
  assert.equal(snapshot(dir), before, `${args.join(' ')} changed the folder`);
}

test('analyze / convert / profile: --chart, --html, -o naming the input or its sidecar are refused; nothing changes', () => {
  const dir = workspace();
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.symlinkSync('..', path.join(dir, 'sub', 'here'));
  fs.linkSync(path.join(dir, 'in.onnx'), path.join(dir, 'hard.onnx'));
  refused(dir, ['analyze', 'in.onnx', '--chart', 'in.onnx'], /--chart in\.onnx is the input file/);
  refused(dir, ['analyze', 'in.onnx', '--chart', 'in.onnx.data'], /--chart in\.onnx\.data is the input file/);
  refused(dir, ['convert', 'in.onnx', '--to', 'prn', '-o', 'sub/here/in.onnx'], /-o sub\/here\/in\.onnx is the input file .*same file under another path/);
  refused(dir, ['convert', 'in.onnx', '--to', 'prn', '-o', 'hard.onnx'], /is the input file/);
  refused(dir, ['convert', 'in.onnx', '--to', 'prn', '-o', 'in.onnx.data'], /is the input file/);
  refused(dir, ['convert', 'in.onnx', '--to', 'prn', '-o', 'out.onnx', '--chart', 'in.onnx'], /--chart in\.onnx is the input file/);
  refused(dir, ['convert', 'in.onnx', '--to', 'prn', '-o', 'out.onnx', '--chart', 'out.onnx'], /is the same file as -o out\.onnx/);
  refused(dir, ['profile', 'in.onnx', '--html', 'sub/here/in.onnx.data', '--iterations', '1'], /--html .* is the input file/);
});

test('the positive case: outputs beside the input are written, the input untouched', () => {
  const dir = workspace();
  const before = snapshot(dir);
  const r = gpt(dir, 'convert', 'in.onnx', '--to', 'prn', '-o', 'out.onnx', '--chart', 'paths.svg');
  assert.is(r.code, 0, r.stderr);
  const after = snapshot(dir);
  for (const [f, h] of before) assert.is(after.get(f), h, f);
  assert.ok(after.has('out.onnx') && after.has('paths.svg'));
});

test('checkOutputs (API): real files, not strings', () => {
  const dir = workspace();
  const input = path.join(dir, 'in.onnx');
  const err = (fn: () => void) => {
    try {
      fn();
    } catch (e) {
      assert.instance(e, GptError);
      return (e as GptError).code;
    }
    return 'none';
  };
  assert.is(err(() => checkOutputs([{ path: path.join(dir, '.', 'in.onnx'), flag: '-o' }], [input])), 'E_ARG');
  assert.is(err(() => checkOutputs([{ path: path.join(dir, 'new.onnx'), flag: '-o' }], [input])), 'none');
  assert.is(err(() => checkOutputs([{ path: path.join(dir, 'a'), flag: '-o' }, { path: path.join(dir, 'a'), flag: '--chart' }], [])), 'E_ARG');
});

test.run();
