/**
 * The `gpt` command line end to end (bin/run.js): output, exit status, one-line errors on stderr,
 * no partial output, input untouched.
 */
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { validateInspectReport } from '../../src/analysis/inspect';
import { validateAnalyzeReport } from '../../src/report/analyze-report';
import { validateConvertReport } from '../../src/report/convert-report';
import { fixturePath, fixturesDir, repoRoot, tmpDir } from '../helpers';

const bin = path.join(repoRoot, 'bin', 'run.js');
const dir = tmpDir('gpt-cli-');

function gpt(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function expectOneLineError(r: ReturnType<typeof gpt>, pattern: RegExp): void {
  assert.ok(r.code !== 0, `exit status ${r.code}`);
  const lines = r.stderr.trim().split('\n');
  assert.is(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], /^gpt: /);
  assert.match(lines[0], pattern);
}

const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

test('inspect: text and JSON (schema-valid), with the fixture figures', () => {
  const t = gpt('inspect', fixturePath('resnet18-w25.onnx'));
  assert.is(t.code, 0, t.stderr);
  assert.match(t.stdout, /params\s+702\.19 K/);
  const j = gpt('inspect', fixturePath('resnet50-w25.onnx'), '--json', '--dim', 'batch=4');
  assert.is(j.code, 0, j.stderr);
  const report = JSON.parse(j.stdout);
  validateInspectReport(report);
  assert.equal(report.inputs[0].shape, ['batch', 3, 64, 64]);
});

test('sample -> inspect: a quarter-width ResNet-18 at 64x64', () => {
  const out = path.join(dir, 'r18.onnx');
  const s = gpt('sample', 'resnet18', '-o', out, '--width', '0.25', '--resolution', '64', '--classes', '10');
  assert.is(s.code, 0, s.stderr);
  assert.match(s.stdout, /wrote .*r18\.onnx/);
  const j = JSON.parse(gpt('inspect', out, '--json').stdout);
  // same architecture as the resnet18-w25 fixture, whose BN is folded into conv biases:
  // the sample keeps BN as nodes (2 params per channel) instead of a conv bias (1 per channel),
  // so it has exactly one extra parameter per BN channel: 16 + 4*(16+16) + 32*4 + 32 + 64*4 + 64 + 128*4 + 128 = 1200
  assert.is(j.params, 702186 + 1200);
});

test('bad input through the CLI: one line naming the file, non-zero exit', () => {
  fs.writeFileSync(path.join(dir, 'empty.onnx'), '');
  fs.writeFileSync(path.join(dir, 'notes.onnx'), 'hello, this is text\n');
  expectOneLineError(gpt('inspect', 'empty.onnx'), /empty\.onnx: the file is empty/);
  expectOneLineError(gpt('inspect', 'notes.onnx'), /notes\.onnx: .*text file/);
  expectOneLineError(gpt('inspect', 'missing.onnx'), /missing\.onnx: no such file/);
  const bytes = fs.readFileSync(fixturePath('resnet18-w25.onnx'));
  fs.writeFileSync(path.join(dir, 'cut.onnx'), bytes.subarray(0, 100000));
  expectOneLineError(gpt('inspect', 'cut.onnx'), /cut\.onnx: the model is truncated/);
  expectOneLineError(gpt('sample', 'alexnet', '-o', 'x.onnx'), /unknown sample 'alexnet'/);
  assert.not.ok(fs.existsSync(path.join(dir, 'x.onnx')));
});

test('an error about the loaded model names the file once, as it was typed (not also by its resolved path)', () => {
  const rel = path.relative(dir, path.join(fixturesDir, '..', 'fixtures-detectors', 'yolov3-tiny-w25.onnx'));
  // yolov3-tiny has no residual: PRN under --strict refuses it (CSP and ELAN convert its plain conv stages)
  const r = gpt('convert', rel, '--to', 'prn', '--strict', '-o', 'tiny-prn.onnx');
  expectOneLineError(r, /no residual block was recognised/);
  assert.ok(r.stderr.startsWith(`gpt: ${rel}: no residual`), r.stderr);
  assert.is(r.stderr.split('yolov3-tiny-w25.onnx').length - 1, 1, r.stderr);
  assert.not.ok(fs.existsSync(path.join(dir, 'tiny-prn.onnx')));
});

test('convert --to prn: writes the model and a report; --json validates', () => {
  const out = path.join(dir, 'r18-prn.onnx');
  const r = gpt('convert', fixturePath('resnet18-w25.onnx'), '--to', 'prn', '-o', out);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /masked residual/);
  assert.match(r.stdout, /weights carried over: 100\.0%/);
  assert.ok(fs.existsSync(out));
  const j = gpt('convert', fixturePath('darknet53-w25.onnx'), '--to', 'prn', '--ratio', '0.25', '-o', path.join(dir, 'dk.onnx'), '--json');
  assert.is(j.code, 0, j.stderr);
  const report = JSON.parse(j.stdout);
  validateConvertReport(report);
  assert.is(report.converted.length, 23);
});

test('convert: --dry-run writes nothing; bad ratio, output = input, VoVNet under --strict', () => {
  const before = fs.readdirSync(dir).length;
  const d = gpt('convert', fixturePath('resnet50-w25.onnx'), '--to', 'prn', '--dry-run');
  assert.is(d.code, 0, d.stderr);
  assert.match(d.stdout, /dry run: nothing written/);
  assert.is(fs.readdirSync(dir).length, before);
  expectOneLineError(gpt('convert', fixturePath('resnet18-w25.onnx'), '--to', 'prn', '--ratio', '1.5', '-o', 'o.onnx'), /--ratio 1\.5 is outside \(0, 1\]/);
  expectOneLineError(gpt('convert', fixturePath('resnet18-w25.onnx'), '--to', 'prn', '--ratio', '0', '-o', 'o.onnx'), /outside/);
  const input = path.join(dir, 'same.onnx');
  fs.copyFileSync(fixturePath('resnet18-w25.onnx'), input);
  const h = sha(input);
  expectOneLineError(gpt('convert', input, '--to', 'prn', '-o', input), /is the input file/);
  assert.is(sha(input), h, 'input untouched');
  const v = gpt('convert', fixturePath('vovnet39-w25.onnx'), '--to', 'prn', '--strict', '-o', 'v.onnx');
  expectOneLineError(v, /VoVNet has no residual/);
  assert.not.ok(fs.existsSync(path.join(dir, 'v.onnx')));
  const w = gpt('convert', fixturePath('vovnet39-w25.onnx'), '--to', 'prn', '-o', 'v.onnx');
  assert.is(w.code, 0);
  assert.match(w.stdout, /warning: a VoVNet has no residual connections/);
  assert.ok(fs.existsSync(path.join(dir, 'v.onnx')));
  expectOneLineError(gpt('convert', fixturePath('resnet18-w25.onnx'), '--to', 'prn', '-o', path.join(dir, 'nope', 'o.onnx')), /does not exist/);
});

test('parse errors are one line too: unknown flag, missing argument, bad option value, bad number', () => {
  const m = fixturePath('resnet18-w25.onnx');
  const cases: [string[], RegExp][] = [
    [['convert', m, '--to', 'prn', '--bogus', '-o', 'o.onnx'], /Nonexistent flag: --bogus \(see gpt convert --help\)$/],
    [['convert', '--to', 'prn'], /Missing 1 required arg: model/],
    [['convert', m, '-o', 'o.onnx'], /Missing required flag to/],
    [['convert', m, '--to', 'xyz', '-o', 'o.onnx'], /Expected --to=xyz to be one of: prn, csp, elan/],
    [['sample', 'resnet18', '-o', 'o.onnx', '--seed', '1.5'], /--seed 1\.5: expected a whole number from 0 to 2147483647/],
    [['convert', m, '--to', 'prn', '--ratio', '0x1', '-o', 'o.onnx'], /--ratio 0x1: expected a decimal number/],
    [['sample', 'resnet18', '-o', 'o.onnx', '--width', '0x10'], /--width 0x10: expected a decimal number/],
    [['sample', 'resnet18', '-o', 'o.onnx', '--batch', '-1'], /batch must be a positive integer or a dim name, got '-1'/],
  ];
  for (const [args, re] of cases) {
    const r = gpt(...args);
    expectOneLineError(r, re);
    assert.is(r.code, 2, `${args.join(' ')}: exit status`);
  }
  assert.not.ok(fs.existsSync(path.join(dir, 'o.onnx')));
});

test('convert: an option of another target is an error, not silently ignored', () => {
  const m = fixturePath('resnet18-w25.onnx');
  const cases: [string[], RegExp][] = [
    [['--to', 'csp', '--ratio', '0.25'], /--ratio does not apply to --to csp/],
    [['--to', 'elan', '--asymmetric'], /--asymmetric does not apply to --to elan/],
    [['--to', 'prn', '--split', '0.25'], /--split does not apply to --to prn/],
    [['--to', 'elan', '--fusion', 'last'], /--fusion does not apply to --to elan without --csp/],
    [['--to', 'csp', '--stack', '3'], /--stack does not apply to --to csp/],
    [['--to', 'prn', '--csp'], /--csp does not apply to --to prn/],
    [['--to', 'prn', '--merge-op', 'sum'], /--merge-op does not apply to --to prn/],
    [['--to', 'elan', '--merge-op', 'sum'], /--merge-op does not apply to --to elan without --csp/],
    [['--to', 'csp', '--fusion', 'last', '--merge-op', 'sum'], /--merge-op sum needs a transition after the parts meet/],
  ];
  for (const [args, re] of cases) {
    const r = gpt('convert', m, ...args, '--dry-run');
    expectOneLineError(r, re);
    assert.is(r.code, 2);
  }
  // negative beside positive: the same options with their own target, and the defaults, are fine
  assert.is(gpt('convert', m, '--to', 'prn', '--ratio', '0.25', '--asymmetric', '--dry-run').code, 0);
  assert.is(gpt('convert', m, '--to', 'elan', '--csp', '--fusion', 'last', '--split', '0.5', '--stack', '1', '--dry-run').code, 0);
  assert.is(gpt('convert', m, '--to', 'csp', '--fusion', 'first', '--merge-op', 'sum', '--dry-run').code, 0);
  assert.is(gpt('convert', m, '--to', 'elan', '--csp', '--merge-op', 'concat', '--stack', '1', '--dry-run').code, 0);
});

test('analyze: two models on one chart, JSON validates', () => {
  const prn = path.join(dir, 'r18-prn2.onnx');
  assert.is(gpt('convert', fixturePath('resnet18-w25.onnx'), '--to', 'prn', '-o', prn).code, 0);
  const chart = path.join(dir, 'cmp.svg');
  const a = gpt('analyze', fixturePath('resnet18-w25.onnx'), prn, '--chart', chart);
  assert.is(a.code, 0, a.stderr);
  const svg = fs.readFileSync(chart, 'utf8');
  assert.match(svg, /resnet18-w25\.onnx/);
  assert.match(svg, /r18-prn2\.onnx/);
  const j = gpt('analyze', fixturePath('vovnet39-w25.onnx'), '--json');
  const report = JSON.parse(j.stdout);
  validateAnalyzeReport(report);
  assert.is(report.gradientPaths.maxShortest, 10);
});

test('rules: list and validate (a broken file gives file, pointer and expectation)', () => {
  const l = gpt('rules', 'list');
  assert.is(l.code, 0, l.stderr);
  assert.match(l.stdout, /resnet-basic/);
  fs.writeFileSync(path.join(dir, 'bad.rule.json'), JSON.stringify({ name: 'bad', kind: 'residual', bogus: 1 }));
  const v = gpt('rules', 'validate', 'bad.rule.json');
  expectOneLineError(v, /bad\.rule\.json/);
});

test('an unknown command is one line and exit status 2', () => {
  const r = gpt('nosuch');
  expectOneLineError(r, /unknown command 'nosuch'.*convert/);
  assert.is(r.code, 2);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
