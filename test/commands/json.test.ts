/**
 * `--json` on every command: each report starts with the same envelope (tool, version, $schema,
 * kind) and validates against the shipped schema its `$schema` names (checked here with a fresh ajv,
 * not the command's own validator); with --json an error is a JSON document on stdout
 * ({ error: { code, message, subject, hint } }) with the exit status the plain error has.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixturePath, repoRoot, tmpDir } from '../helpers';

const bin = path.join(repoRoot, 'bin', 'run.js');
const dir = tmpDir('gpt-json-');
const version = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).version as string;
const schemaDir = path.join(repoRoot, 'src', 'schemas');
const schemas = new Map<string, object>();
for (const f of fs.readdirSync(schemaDir)) {
  const s = JSON.parse(fs.readFileSync(path.join(schemaDir, f), 'utf8'));
  schemas.set(s.$id, s);
}

function gpt(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, NO_COLOR: '1' } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Run with --json: exit 0, one JSON document, the envelope, and valid against the schema it names. */
function report(kind: string, ...args: string[]): Record<string, unknown> {
  const r = gpt(...args, '--json');
  assert.is(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  const doc = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(Object.keys(doc).slice(0, 4), ['tool', 'version', '$schema', 'kind'], 'the envelope comes first');
  assert.is(doc.tool, 'gpt');
  assert.is(doc.version, version);
  assert.is(doc.kind, kind);
  assert.is(doc.$schema, `https://gpt.local/schemas/${kind}.schema.json`);
  const schema = schemas.get(doc.$schema as string);
  assert.ok(schema, `a shipped schema has $id ${doc.$schema}`);
  const validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(schema!);
  assert.ok(validate(doc), JSON.stringify(validate.errors?.slice(0, 3)));
  return doc;
}

test('every command but help declares --json', () => {
  const ids: string[] = [];
  const walk = (d: string, prefix: string[]) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name), [...prefix, e.name]);
      else if (e.name.endsWith('.js')) {
        const cmd = require(path.join(d, e.name)).default as { flags?: Record<string, unknown> };
        ids.push([...prefix, e.name.replace(/\.js$/, '')].join(' '));
        if (ids[ids.length - 1] === 'help') continue; // help is text for people, nothing to parse
        assert.ok(cmd.flags?.json, `gpt ${ids[ids.length - 1]} has --json`);
      }
    }
  };
  walk(path.join(repoRoot, 'dist', 'src', 'commands'), []);
  assert.ok(ids.length >= 7, ids.join(', '));
});

test('inspect, analyze, convert, sample, rules list, rules validate: one envelope, each valid against its schema', () => {
  const m = fixturePath('resnet18-w25.onnx');
  const i = report('inspect', 'inspect', m);
  assert.is(i.params, 702186); // the fixture's own count (test/commands/cli.test.ts derives it)
  report('analyze', 'analyze', m);
  report('convert', 'convert', m, '--to', 'prn', '--dry-run');
  const s = report('sample', 'sample', 'resnet18', '-o', 's.onnx', '--width', '0.25', '--resolution', '32', '--classes', '10');
  assert.is(s.bytes, fs.statSync(path.join(dir, 's.onnx')).size);
  const l = report('rules', 'rules', 'list');
  assert.ok((l.rules as { name: string }[]).some((r) => r.name === 'resnet-basic'));
  const v = report('rule-check', 'rules', 'validate', path.join(repoRoot, 'test', 'fixtures', 'grouped-basic.rule.json'));
  assert.is(v.rule, 'grouped-basic');
});

test('analyze A B --json is an object holding one analyze report per model, in order', () => {
  const a = fixturePath('resnet18-w25.onnx');
  const b = fixturePath('vovnet39-w25.onnx');
  const doc = report('analyze-comparison', 'analyze', a, b);
  const models = doc.models as Record<string, unknown>[];
  assert.is(models.length, 2);
  const one = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(schemas.get('https://gpt.local/schemas/analyze.schema.json')!);
  for (const r of models) assert.ok(one(r), JSON.stringify(one.errors?.slice(0, 3)));
  assert.equal(models.map((r) => r.file), [a, b]);
  assert.is((models[1].gradientPaths as { maxShortest: number }).maxShortest, 10);
});

test('profile --json: the same envelope', () => {
  const doc = report('profile', 'profile', fixturePath('resnet18-w25.onnx'), '--warmup', '1', '--iterations', '3');
  assert.is((doc.models as unknown[]).length, 1);
});

test('errors under --json: a JSON document on stdout, nothing on stderr, the same exit status as without', () => {
  const m = fixturePath('resnet18-w25.onnx');
  const cases: [string[], string, number][] = [
    [['inspect', 'missing.onnx'], 'E_IO', 1],
    [['convert', m, '--to', 'prn', '--ratio', '2', '--dry-run'], 'E_ARG', 2],
    [['convert', m, '--to', 'prn', '--bogus'], 'E_ARG', 2],
    [['rules', 'validate', 'missing.json'], 'E_RULE', 1],
    [['sample', 'nosuch', '-o', 'x.onnx'], 'E_ARG', 2],
  ];
  for (const [args, code, exit] of cases) {
    const plain = gpt(...args);
    assert.is(plain.code, exit, `${args.join(' ')}: exit status without --json`);
    assert.is(plain.stdout, '');
    const j = gpt(...args, '--json');
    assert.is(j.code, exit, `${args.join(' ')} --json: exit status`);
    assert.is(j.stderr, '', `${args.join(' ')} --json: stderr`);
    const doc = JSON.parse(j.stdout) as { error: Record<string, unknown> };
    assert.equal(Object.keys(doc), ['error']);
    assert.equal(Object.keys(doc.error), ['code', 'message', 'subject', 'hint']);
    assert.is(doc.error.code, code, `${args.join(' ')}`);
    // the message is the plain line's text, not a different wording
    assert.ok(plain.stderr.includes(doc.error.message as string), `${plain.stderr} / ${doc.error.message}`);
  }
  const missing = JSON.parse(gpt('inspect', 'missing.onnx', '--json').stdout);
  assert.is(missing.error.subject, 'missing.onnx');
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
