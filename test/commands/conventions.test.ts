/**
 * The CLI habits users bring from other oclif tools: -h / --help / help [COMMAND], version /
 * --version / -v, "did you mean" for mistyped commands and flags, choices and defaults in the help,
 * and human output in units, wrapped to the terminal.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { closest, editDistance } from '../../src/cli/suggest';
import { formatOptions, table } from '../../src/report/format';
import { fixturePath, repoRoot } from '../helpers';

const bin = path.join(repoRoot, 'bin', 'run.js');
const version = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version as string;

function gpt(args: string[], env: NodeJS.ProcessEnv = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', COLUMNS: '', ...env } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test('help: -h, --help and help show the command list; help convert, convert -h and convert --help the same page', () => {
  for (const a of [['-h'], ['--help'], ['help']]) {
    const r = gpt(a);
    assert.is(r.code, 0, `${a}: ${r.stderr}`);
    assert.match(r.stdout, /USAGE/);
    for (const c of ['inspect', 'analyze', 'convert', 'profile', 'sample']) assert.match(r.stdout, new RegExp(`\\n  ${c} `));
  }
  const pages = [['help', 'convert'], ['convert', '-h'], ['convert', '--help']].map((a) => gpt(a));
  for (const p of pages) {
    assert.is(p.code, 0, p.stderr);
    assert.match(p.stdout, /\$ gpt convert MODEL --to prn\|csp\|elan/);
  }
  assert.is(pages[0].stdout, pages[1].stdout);
  assert.is(gpt(['help', 'rules', 'validate']).stdout, gpt(['rules', 'validate', '--help']).stdout);
});

test('version, --version and -v print the package version', () => {
  for (const a of ['version', '--version', '-v']) {
    const r = gpt([a]);
    assert.is(r.code, 0);
    assert.is(r.stdout.trim().split('\n').length, 1);
    assert.ok(r.stdout.startsWith(`gpt-gradient-path/${version} `), r.stdout);
  }
});

test('a mistyped command: "did you mean", the command alone in quotes, exit status 2', () => {
  const r = gpt(['inspct', 'model.onnx']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /^gpt: unknown command 'inspct'; did you mean 'inspect'\?/);
  assert.not.match(r.stderr, /'inspct model\.onnx'/);
  assert.match(gpt(['rules', 'valdate', 'x.json']).stderr, /unknown command 'rules valdate'; did you mean 'rules validate'\?/);
  assert.match(gpt(['analyse', 'm.onnx']).stderr, /did you mean 'analyze'\?/);
  // negative: nothing close, no guess
  const far = gpt(['zzzz']);
  assert.is(far.code, 2);
  assert.not.match(far.stderr, /did you mean/);
});

test('a mistyped flag: "did you mean --json"; a flag far from every other gets no guess', () => {
  const m = fixturePath('resnet18-w25.onnx');
  const r = gpt(['inspect', m, '--jsn']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /Nonexistent flag: --jsn; did you mean --json\?/);
  assert.match(gpt(['convert', m, '--to', 'prn', '--dryrun']).stderr, /did you mean --dry-run\?/);
  assert.not.match(gpt(['convert', m, '--to', 'prn', '--bogus']).stderr, /did you mean/);
});

test('edit distance: insert, delete, substitute, and a swap of neighbours each count 1', () => {
  assert.is(editDistance('kitten', 'sitting'), 3);
  assert.is(editDistance('inspct', 'inspect'), 1);
  assert.is(editDistance('jsno', 'json'), 1);
  assert.is(editDistance('', 'abc'), 3);
  assert.is(closest('cnovert', ['analyze', 'convert', 'inspect']), 'convert');
  assert.is(closest('xyz', ['analyze', 'convert', 'inspect']), undefined);
  assert.is(closest('ep', ['ep', 'batch']), 'ep');
});

test('help shows choices and defaults the oclif way', () => {
  const p = gpt(['profile', '--help']).stdout;
  assert.match(p, /--ep=<option>\s+\[default: cpu\]/);
  assert.match(p, /<options: cpu\|cuda\|tensorrt>/);
  assert.match(p, /--warmup=<value>\s+\[default: 5\]/);
  const s = gpt(['sample', '--help']).stdout;
  assert.match(s, /NAME\s+the sample to build: resnet18, resnet50, vovnet39, vovnet57, darknet53/);
  assert.match(s, /--classes=<value>\s+\[default: 1000\]/);
  assert.match(gpt(['profile', 'm.onnx', '--ep', 'gpu']).stderr, /Expected --ep=gpu to be one of: cpu, cuda, tensorrt/);
});

test('tables wrap their widest text column to the width; piped output without COLUMNS stays one line per row', () => {
  const rows = [['a', 'one two three four five six seven eight nine ten eleven twelve'], ['b', 'short']];
  const narrow = table(['id', 'text'], rows, 30).split('\n');
  assert.ok(narrow.every((l) => l.length <= 30), narrow.join('\n'));
  assert.ok(narrow.length > 4, 'continuation lines');
  assert.is(table(['id', 'text'], rows, Infinity).split('\n').length, 4);
  const listed = gpt(['rules', 'list'], { COLUMNS: '80' }).stdout.trimEnd().split('\n');
  assert.ok(listed.every((l) => l.length <= 80), listed.find((l) => l.length > 80));
  const piped = gpt(['rules', 'list']).stdout.trimEnd().split('\n');
  assert.ok(piped.some((l) => l.length > 80), 'unwrapped when piped with no COLUMNS');
});

test('human output: units and words, not raw integers or JSON option objects', () => {
  const r = gpt(['convert', fixturePath('darknet53-w25.onnx'), '--to', 'elan', '--dry-run']);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /-> ELAN \(stack 2, width 0\.5, csp off; family darknet53\)/);
  assert.not.match(r.stdout, /\{"/);
  // the note names the plain model's MACs as inspect counts them, in M
  const macs = JSON.parse(gpt(['inspect', fixturePath('darknet53-w25.onnx'), '--json']).stdout).macs as number;
  assert.ok(r.stdout.includes(`MACs ${(macs / 1e6).toFixed(2)} M -> `), r.stdout);
  assert.not.match(r.stdout, /\d{7,}/);
  assert.is(formatOptions({ ratio: 0.5, asymmetric: false, fusion: 'both' }), 'ratio 0.5, asymmetric off, fusion both');
});

test('-q drops warnings from stderr (the report stays); without it the warning is there; -v is accepted everywhere', () => {
  const args = ['convert', fixturePath('vovnet39-w25.onnx'), '--to', 'prn', '--dry-run', '--json'];
  const loud = gpt(args);
  assert.is(loud.code, 0, loud.stderr);
  assert.match(loud.stderr, /warning: a VoVNet has no residual connections/);
  const quiet = gpt([...args, '-q']);
  assert.is(quiet.code, 0);
  assert.is(quiet.stderr, '');
  assert.equal(JSON.parse(quiet.stdout).kind, 'convert');
  assert.is(gpt(['inspect', fixturePath('resnet18-w25.onnx'), '-v']).code, 0);
  assert.match(gpt(['inspect', '--help']).stdout, /-q, --quiet[\s\S]*-v, --verbose/);
});

test.run();
