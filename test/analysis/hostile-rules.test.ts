/**
 * Rule files and the matcher under adversarial input: units used inside units expand exponentially
 * (a 1 KB file could take gigabytes), optional / repeat bombs make backtracking exponential. Both
 * are bounded, with an E_RULE error that says why; long Identity chains are walked without recursion.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GptError } from '../../src/errors';
import { MAX_COMPILED_ELEMENTS, loadRules, validateRuleFile } from '../../src/analysis/rules';
import { MatchContext, matchAll } from '../../src/analysis/matcher';
import { loadModel } from '../../src/onnx/io';
import { encodeModel } from '../../src/onnx/codec';
import { tmpDir } from '../helpers';
import { model, node, tensor, valueInfo } from '../security/craft';

const dir = tmpDir('gpt-rules-');

function ruleFile(name: string, body: object): string {
  const p = path.join(dir, `${name}.json`);
  fs.writeFileSync(p, JSON.stringify({ name, ...body }));
  return p;
}

function ruleError(fn: () => unknown): GptError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, GptError, String(e));
    assert.is((e as GptError).code, 'E_RULE');
    return e as GptError;
  }
  assert.unreachable('accepted');
  throw new Error();
}

test('a unit bomb (each unit uses the one before twice, 30 deep: 2^30 elements) is refused at once', () => {
  const units: Record<string, object> = { u0: { pattern: [{ op: 'Relu' }] } };
  for (let i = 1; i <= 30; i++) units[`u${i}`] = { pattern: [{ id: 'a', op: `u${i - 1}` }, { id: 'b', op: `u${i - 1}` }] };
  const file = ruleFile('bomb', { kind: 'plain', units, pattern: [{ op: 'u30' }] });
  assert.ok(fs.statSync(file).size < 2000);
  const e = ruleError(() => validateRuleFile(file));
  assert.match(e.message, new RegExp(`expand to more than ${MAX_COMPILED_ELEMENTS} elements`));
  // negative beside positive: 8 deep (256 elements) compiles
  const small: Record<string, object> = { v0: { pattern: [{ op: 'Relu' }] } };
  for (let i = 1; i <= 8; i++) small[`v${i}`] = { pattern: [{ id: 'a', op: `v${i - 1}` }, { id: 'b', op: `v${i - 1}` }] };
  assert.is(validateRuleFile(ruleFile('fine', { kind: 'plain', units: small, pattern: [{ op: 'v8' }] })).name, 'fine');
});

test('an optional bomb (24 optional Relus before a Conv) is refused by rules validate', () => {
  const pattern = [...Array.from({ length: 24 }, (_, i) => ({ id: `r${i}`, op: 'Relu', optional: true })), { id: 'c', op: 'Conv' }];
  const e = ruleError(() => validateRuleFile(ruleFile('optional-bomb', { kind: 'plain', pattern })));
  assert.match(e.message, /can be tried in 1\.7e\+7 ways/);
  const few = [...Array.from({ length: 4 }, (_, i) => ({ id: `r${i}`, op: 'Relu', optional: true })), { id: 'c', op: 'Conv' }];
  assert.is(validateRuleFile(ruleFile('few-optional', { kind: 'plain', pattern: few })).name, 'few-optional');
});

test('alternatives that start with different ops exclude each other at a node; ones that share a first op add up', () => {
  // a unit with 4 alternatives, each 3 optional-free nodes long; the pattern uses it 12 times, plus one optional:
  // disjoint first ops (Relu / Sigmoid / Tanh / Elu): 1 way per use, so 2 ways in all (the optional);
  // one shared first op (4 x Relu-first): 4 ways per use, 4^12 x 2 = 3.4e7 ways, over the bound
  const unitsWith = (first: string[]) => Object.fromEntries(first.map((op, i) => [`a${i}`, { pattern: [{ id: 'p', op }, { id: 'q', op: 'Mul', inputs: ['$in', 'p'] }, { id: 'r', op: 'Neg' }] }]));
  const pattern = (n: number) => [...Array.from({ length: 12 }, (_, i) => ({ id: `u${i}`, op: Array.from({ length: n }, (_, k) => `a${k}`).join('|') })), { id: 'o', op: 'Relu', optional: true }];
  assert.is(validateRuleFile(ruleFile('disjoint', { kind: 'plain', units: unitsWith(['Relu', 'Sigmoid', 'Tanh', 'Elu']), pattern: pattern(4) })).name, 'disjoint');
  const e = ruleError(() => validateRuleFile(ruleFile('shared', { kind: 'plain', units: unitsWith(['Relu', 'Relu', 'Relu', 'Relu']), pattern: pattern(4) })));
  assert.match(e.message, /can be tried in 3\.4e\+7 ways/);
});

/** x -> Relu x n -> y (a chain), as a model. */
function reluChain(n: number, op = 'Relu') {
  const nodes = Array.from({ length: n }, (_, i) => node(op, [i ? `v${i}` : 'x'], [`v${i + 1}`], `n${i}`));
  return loadModel(encodeModel(model({ nodes, initializers: [], inputs: [valueInfo('x', [1, 4, 2, 2])], outputs: [valueInfo(`v${n}`, [1, 4, 2, 2])] })));
}

test('the matcher counts its steps: an adversarial pattern on a long chain ends with E_RULE, not hours', () => {
  // 16 optional Relus then a Conv, on a chain of 40 Relus with no Conv: every subset is tried
  const pattern = [...Array.from({ length: 16 }, (_, i) => ({ id: `r${i}`, op: 'Relu', optional: true })), { id: 'c', op: 'Conv' }];
  const file = ruleFile('slow', { kind: 'plain', pattern });
  const rules = loadRules([file]).filter((r) => r.name === 'slow');
  const m = reluChain(40);
  const ctx = new MatchContext(m.graph);
  const e = ruleError(() => matchAll(m.graph, rules, ctx));
  assert.match(e.message, /rule 'slow' took more than 100000 matching steps/);
  // the shipped rules on the same chain: no match, no error
  assert.equal(matchAll(m.graph, loadRules()), []);
});

test('a chain of 5,000 Identity nodes: matched through without a stack overflow', () => {
  const m = reluChain(5000, 'Identity');
  assert.equal(matchAll(m.graph, loadRules()), []);
});

test('20,000 shapeless nodes before a residual block: channel counts walked with a stack', () => {
  //   x -> Foo (unknown op: no shapes below it) -> Relu x 20000 -> v -> Conv -> Relu -> Conv -> Add(., v) -> Relu -> y
  const n = 20_000;
  const nodes = [node('Foo', ['x'], ['v0'], 'foo')];
  for (let i = 0; i < n; i++) nodes.push(node('Relu', [`v${i}`], [`v${i + 1}`], `r${i}`));
  nodes.push(node('Conv', [`v${n}`, 'w1'], ['c1'], 'c1'), node('Relu', ['c1'], ['a1'], 'a1'), node('Conv', ['a1', 'w2'], ['c2'], 'c2'),
    node('Add', ['c2', `v${n}`], ['s'], 'add'), node('Relu', ['s'], ['y'], 'out'));
  const w = (name: string) => tensor(name, [4, 4, 1, 1], { rawData: new Uint8Array(64) });
  const m = loadModel(encodeModel(model({ nodes, initializers: [w('w1'), w('w2')], inputs: [valueInfo('x', [1, 4, 2, 2])], outputs: [valueInfo('y', [1, 4, 2, 2])] })));
  const ctx = new MatchContext(m.graph);
  const v = m.graph.nodes[n].outputs[0]!;
  assert.is(ctx.channels(v), null, 'no shape and no conv upstream: unknown');
  assert.is(ctx.channels(m.graph.nodes[n + 1].outputs[0]!), 4, 'a Conv output: its weight has 4 output channels');
  assert.ok(Array.isArray(matchAll(m.graph, loadRules())));
});

test.run();
