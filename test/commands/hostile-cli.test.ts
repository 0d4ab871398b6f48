/**
 * The command line against hostile names and options: names from the model are escaped (one line,
 * no terminal escapes), every numeric option has a range checked at the boundary, --dim must name a
 * dim of the model, a dim called 'constructor' is just a name.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { escapeStrings, escapeText } from '../../src/report/escape';
import { loadModel } from '../../src/onnx/io';
import { costModel } from '../../src/analysis/cost';
import { encodeModel } from '../../src/onnx/codec';
import { fixturePath, repoRoot, tmpDir } from '../helpers';
import { floats, model, node, tensor, valueInfo, write } from '../security/craft';

const bin = path.join(repoRoot, 'bin', 'run.js');
const dir = tmpDir('gpt-hostile-');

function gpt(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const ESC = '\u001b';

test('escapeText: controls, ANSI, bidi overrides and lone surrogates become visible escapes', () => {
  assert.is(escapeText('a\nb'), 'a\\nb');
  assert.is(escapeText(`${ESC}[31mred${ESC}[0m`), '\\e[31mred\\e[0m');
  assert.is(escapeText('x\u202eevil'), 'x\\u202eevil');
  assert.is(escapeText('\u0007\u009b\ud800'), '\\x07\\x9b\\ud800');
  // negative beside positive: ordinary names, accents, emoji and CJK pass unchanged
  for (const s of ['layer1.0/conv.weight', 'café', '卷积', '🙂 ok']) assert.is(escapeText(s), s);
  assert.equal(escapeStrings({ a: ['x\ny', { b: `${ESC}` }], n: 3 }), { a: ['x\\ny', { b: '\\e' }], n: 3 });
});

test('a node name with a newline and ANSI escapes: the error stays one line, no escape reaches the terminal', () => {
  const evil = `conv\ngpt: fake second line${ESC}[2J${ESC}]0;title\u0007`;
  // a node reading a value nobody produces: the validator names the node
  const m = model({ nodes: [node('Add', ['x', 'missing'], ['y'], evil)], initializers: [] });
  write(dir, 'evil.onnx', encodeModel(m));
  const r = gpt('inspect', 'evil.onnx');
  assert.is(r.code, 1);
  assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.not.ok(r.stderr.includes(ESC) || r.stderr.includes('\u0007'));
  assert.match(r.stderr, /^gpt: evil\.onnx: .*conv\\ngpt: fake second line\\e\[2J/);
});

test('names in human reports are escaped too (inspect of a model whose input is named with escapes)', () => {
  const m = model({ inputs: [valueInfo(`x${ESC}[31m\n`, [1, 2])], nodes: [node('Add', [`x${ESC}[31m\n`, 'w'], ['y'])] });
  write(dir, 'named.onnx', encodeModel(m));
  const r = gpt('inspect', 'named.onnx');
  assert.is(r.code, 0, r.stderr);
  assert.not.ok(r.stdout.includes(ESC));
  assert.match(r.stdout, /x\\e\[31m\\n/);
  // JSON keeps the name as it is (JSON escapes it itself)
  const j = gpt('inspect', 'named.onnx', '--json');
  assert.is(JSON.parse(j.stdout).inputs[0].name, `x${ESC}[31m\n`);
});

test('every numeric option has a range: out-of-range values are one-line E_ARG errors (exit 2)', () => {
  const m = fixturePath('resnet18-w25.onnx');
  const cases: [string[], RegExp][] = [
    [['convert', m, '--to', 'elan', '--stack', '1000000', '--dry-run'], /--stack 1000000 is outside 1\.\.16/],
    [['convert', m, '--to', 'elan', '--width', '1e309', '--dry-run'], /--width 1e309 is outside \(0, 1\]/],
    [['profile', m, '--duration', '1e309'], /--duration 1e309 is outside \(0, 3600\]/],
    [['profile', m, '--batch', '100000000'], /--batch 100000000 is outside 1\.\.4096/],
    [['profile', m, '--threads', '100000'], /--threads 100000 is outside 1\.\.1024/],
    [['profile', m, '--iterations', '0'], /--iterations 0 is outside 1\.\.1000000/],
    [['profile', m, '--warmup', '-1'], /--warmup -1 is outside 0\.\.10000/],
    [['profile', m, '--shape', 'input=100000000x3x224x224'], /--shape .*at most 2\^31 elements/],
    [['sample', 'resnet18', '-o', 's.onnx', '--width', '1000'], /--width 1000 is outside \(0, 4\]/],
    [['sample', 'resnet18', '-o', 's.onnx', '--classes', '2147483648'], /--classes 2147483648 is outside 1\.\.100000/],
    [['sample', 'resnet18', '-o', 's.onnx', '--resolution', '100000'], /--resolution 100000 is outside 1\.\.1024/],
    [['inspect', m, '--dim', 'batch=99999999999'], /--dim batch=99999999999: expected NAME=N with N from 1 to 1048576/],
  ];
  for (const [args, re] of cases) {
    const r = gpt(...args);
    assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, re);
  }
  // negative beside positive: values inside the ranges run
  assert.is(gpt('convert', m, '--to', 'elan', '--stack', '16', '--width', '1', '--dry-run').code, 0);
});

test('--dim must name a symbolic dim of the model; a dim named constructor is just a name', () => {
  const m = fixturePath('resnet50-w25.onnx');
  const typo = gpt('inspect', m, '--dim', 'btach=4');
  assert.is(typo.code, 2);
  assert.match(typo.stderr, /--dim btach: .* has no symbolic dimension of that name \(its symbolic dims: batch\)/);
  assert.is(gpt('inspect', m, '--dim', 'batch=4').code, 0);
  // symbolic dims named like Object.prototype members
  for (const name of ['constructor', 'toString', '__proto__']) {
    const file = write(dir, `${name}.onnx`, encodeModel(model({
      inputs: [valueInfo('x', [name, 2])], outputs: [valueInfo('y', [name, 2])],
      nodes: [node('Relu', ['x'], ['y'])], initializers: [],
    })));
    const c = costModel(loadModel(file), { dims: Object.assign(Object.create(null), { [name]: 3 }) });
    // Relu output [3, 2] of float32: 3 x 2 x 4 bytes, by hand
    assert.is(c.totals.activationBytes, 24, name);
    const r = gpt('inspect', file, '--dim', `${name}=3`, '--json');
    assert.is(r.code, 0, r.stderr);
    assert.is(JSON.parse(r.stdout).activationBytes ?? JSON.parse(r.stdout).totals?.activationBytes, 24, r.stdout.slice(0, 400));
  }
});

test('kernel_shape that disagrees with the weight: an E_SHAPE error that starts with the file', () => {
  const conv = (k: number[]) => encodeModel(model({
    nodes: [node('Conv', ['x', 'w'], ['y'], 'conv', [{ name: 'kernel_shape', type: 7, ints: k, floats: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] }])],
    initializers: [tensor('w', [4, 4, 3, 3], { rawData: new Uint8Array(4 * 4 * 9 * 4) })],
    inputs: [valueInfo('x', [1, 4, 8, 8])], outputs: [valueInfo('y', [1, 4, 6, 6])],
  }));
  write(dir, 'kernel.onnx', conv([1, 1]));
  for (const cmd of [['inspect'], ['analyze'], ['convert', '--to', 'prn', '--dry-run']]) {
    const r = gpt(cmd[0], 'kernel.onnx', ...cmd.slice(1));
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, /^gpt: kernel\.onnx: conv: Conv: kernel_shape \[1, 1\] disagrees with the weight \[4, 4, 3, 3\]\n$/);
  }
  // negative beside positive: the matching kernel_shape
  write(dir, 'kernel-ok.onnx', conv([3, 3]));
  const ok = gpt('inspect', 'kernel-ok.onnx', '--json');
  assert.is(ok.code, 0, ok.stderr);
  assert.is(JSON.parse(ok.stdout).macs, 1 * 4 * 6 * 6 * 4 * 9); // N x Cout x H x W x Cin x k x k, by hand
});

test("onnxruntime's own coloured log does not reach stderr (an unused initializer makes it warn)", () => {
  const m = model({ nodes: [node('Relu', ['x'], ['y'])], initializers: [tensor('unused', [2], { rawData: floats([0, 0]) })] });
  write(dir, 'unused.onnx', encodeModel(m));
  const r = gpt('profile', 'unused.onnx', '--iterations', '1', '--warmup', '0');
  assert.is(r.code, 0, r.stderr);
  assert.not.ok(r.stderr.includes(ESC), r.stderr);
  assert.not.match(r.stderr, /onnxruntime|Removing initializer/);
});

test.run();
