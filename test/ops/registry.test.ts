/**
 * The op registry: every op a rule or a pass can name has an entry (with a shape rule), the
 * analyses read it (Celu, which the rules always accepted, now gets shapes, MACs and PRN), and
 * activation parameters are read with ONNX's defaults.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Graph } from '../../src/ir/graph';
import { Tensor } from '../../src/ir/tensor';
import { DataType } from '../../src/onnx/schema';
import { activationNodeSpec, blockActivations, nodeOp, opInfo, readActivation, registeredOps, registerOp } from '../../src/ops';
import { buildSample } from '../../src/samples';
import { convert } from '../../src/passes/convert';
import { costModel } from '../../src/analysis/cost';
import { inferShapes } from '../../src/analysis/shapes';
import { loadRules } from '../../src/analysis/rules';
import { repoRoot } from '../helpers';

/** Capitalised op names in a rule file's `op` fields (units and patterns). */
function opsOfRuleFile(file: string): string[] {
  const out: string[] = [];
  const walk = (x: unknown): void => {
    if (Array.isArray(x)) x.forEach(walk);
    else if (x && typeof x === 'object') {
      for (const [k, v] of Object.entries(x)) {
        if (k === 'op' && typeof v === 'string') out.push(...v.split('|').filter((s) => /^[A-Z]/.test(s)));
        else walk(v);
      }
    }
  };
  walk(JSON.parse(fs.readFileSync(file, 'utf8')));
  return out;
}

/** Op types the passes and the shared surgery emit or look for, read from their source. */
function opsNamedBySource(file: string): string[] {
  const src = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(/opType\s*(?::|===|!==)\s*'([A-Za-z0-9]+)'/g)) out.push(m[1]);
  // op tables: new Set(['Relu', ...])
  for (const m of src.matchAll(/new Set\(\[([^\]]*)\]\)/g)) {
    for (const q of m[1].matchAll(/'([A-Z][A-Za-z0-9]*)'/g)) out.push(q[1]);
  }
  return out;
}

test('every op a rule file names has a registry entry with a shape rule', () => {
  const dirs = [path.join(repoRoot, 'rules'), path.join(repoRoot, 'test', 'fixtures')];
  const files = dirs.flatMap((d) => fs.readdirSync(d).filter((f) => f.endsWith('.json') && !f.endsWith('.schema.json')).map((f) => path.join(d, f)));
  const ops = new Set(files.flatMap(opsOfRuleFile));
  assert.ok(ops.has('Conv') && ops.has('BatchNormalization') && ops.has('Concat'), `found ${[...ops].join(', ')}`);
  for (const op of ops) assert.ok(opInfo(op)?.shape, `rules name ${op}, which has no registry entry with a shape rule`);
  // and every op the compiled rules can match (the @activation class expanded) too
  for (const rule of loadRules()) {
    const walk = (els: typeof rule.pattern): void => {
      for (const el of els) for (const alt of el.alternatives) ('op' in alt ? assert.ok(opInfo(alt.op)?.shape, alt.op) : walk(alt.pattern));
    };
    walk(rule.pattern);
  }
});

test('every op a pass or the surgery can name has a registry entry with a shape rule', () => {
  const dir = path.join(repoRoot, 'src', 'passes');
  const files = [...fs.readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => path.join(dir, f)), path.join(repoRoot, 'src', 'ir', 'surgery.ts')];
  const ops = new Set(files.flatMap(opsNamedBySource));
  assert.ok(ops.has('Conv') && ops.has('Split') && ops.has('Slice') && ops.has('Concat'), `found ${[...ops].join(', ')}`);
  for (const op of ops) assert.ok(opInfo(op)?.shape, `a pass names ${op}, which has no registry entry with a shape rule`);
});

test('lookups: domains, unknown ops, and every entry is consistent', () => {
  assert.is(opInfo('Conv')?.weightLayer, true);
  assert.is(opInfo('Conv', 'ai.onnx'), opInfo('Conv'));
  assert.is(opInfo('Conv', 'com.example'), undefined);
  assert.is(opInfo('NoSuchOp'), undefined);
  const flows = new Set(['preserve', 'concat', 'split', 'slice', 'conv', 'convTranspose', 'across', 'mix']);
  for (const o of registeredOps()) {
    assert.ok(flows.has(o.channels), `${o.opType}: channels ${o.channels}`);
    if (o.weightLayer) assert.ok(o.macs && o.params?.includes(1), `${o.opType}: a weight layer needs a MAC formula and its weight as a parameter`);
    for (const i of o.params ?? []) assert.not.ok(o.metaInputs?.includes(i), `${o.opType}: input ${i} is both a parameter and a meta input`);
  }
  // the activations a block may end with; gates are not among them
  const acts = blockActivations();
  for (const a of ['Relu', 'LeakyRelu', 'PRelu', 'Celu', 'Mish', 'Clip', 'HardSwish', 'Gelu']) assert.ok(acts.includes(a), a);
  for (const g of ['Sigmoid', 'HardSigmoid', 'Add', 'Conv']) assert.not.ok(acts.includes(g), g);
});

test('registerOp adds a custom-domain op that inference then knows, and restores', () => {
  const model = buildSample('resnet18', { width: 0.25, resolution: 32, classes: 10 });
  const relu = model.graph.nodes.find((n) => n.opType === 'Relu')!;
  relu.proto.opType = 'MyAct';
  relu.proto.domain = 'com.example';
  const unknown = inferShapes(model).warnings;
  assert.ok(unknown.some((w) => w.includes('com.example::MyAct')), unknown.join('\n'));
  const restore = registerOp('MyAct', { ...opInfo('Relu')! }, 'com.example');
  try {
    assert.ok(nodeOp(relu)?.activation);
    assert.equal(inferShapes(model).warnings, []);
  } finally {
    restore();
  }
  assert.is(opInfo('MyAct', 'com.example'), undefined);
});

// ---------------------------------------------------------------------------------------------
// Celu: the rules accepted it, shape inference had no rule, so MACs dropped and PRN converted nothing

/** resnet18 (width 1/4, 64x64) with every Relu replaced by `op`. */
function resnetWith(op: string) {
  const m = buildSample('resnet18', { width: 0.25, resolution: 64, classes: 10 });
  for (const n of m.graph.nodes) if (n.opType === 'Relu') n.proto.opType = op;
  return m;
}

test('Celu everywhere: shapes known, MACs as with Relu (11060480, by hand in cost.test), PRN converts all 8 blocks', () => {
  const m = resnetWith('Celu');
  assert.equal(inferShapes(m).warnings, []);
  assert.is(costModel(m).totals.macs, 11060480);
  const { report } = convert(m, { to: 'prn' });
  assert.is(report.converted.length, 8);
});

test('negative: an op the registry does not know gets no shapes and PRN converts nothing', () => {
  const m = resnetWith('Relu9');
  assert.ok(inferShapes(m).warnings.some((w) => w.includes('Relu9')));
  const { report } = convert(m, { to: 'prn' });
  assert.is(report.converted.length, 0);
});

// ---------------------------------------------------------------------------------------------
// activation parameters

function node(opType: string, attrs: Record<string, number | string | { float: number }> = {}, extra: (g: Graph) => (import('../../src/ir/graph').Value | null)[] = () => []) {
  const g = new Graph();
  const x = g.value('x');
  g.addInput(x);
  const n = g.addNode({ opType, name: 'n', inputs: [x, ...extra(g)], outputs: ['y'], attrs });
  return { g, n };
}

test('readActivation: ONNX defaults, given attributes, Clip bounds as inputs (opset 11+) or attributes (before)', () => {
  let t = node('LeakyRelu');
  assert.equal(readActivation(t.n, t.g, 17)?.floats, { alpha: 0.01 });
  t = node('LeakyRelu', { alpha: { float: 0.125 } });
  assert.equal(readActivation(t.n, t.g, 17)?.floats, { alpha: 0.125 });
  t = node('Selu');
  assert.equal(readActivation(t.n, t.g, 17)?.floats, { alpha: 1.67326319217681884765625, gamma: 1.05070102214813232421875 });
  t = node('HardSigmoid', { beta: { float: 0.375 } });
  assert.equal(readActivation(t.n, t.g, 17)?.floats, { alpha: 0.2, beta: 0.375 });
  t = node('Gelu', { approximate: 'tanh' });
  assert.equal(readActivation(t.n, t.g, 20)?.strings, { approximate: 'tanh' });
  t = node('Celu');
  assert.equal(readActivation(t.n, t.g, 17)?.floats, { alpha: 1 });

  // ReLU6 at opset 13: bounds are scalar inputs
  t = node('Clip', {}, (g) => [g.addInitializer(Tensor.float32('lo', [], Float32Array.of(0))), g.addInitializer(Tensor.float32('hi', [], Float32Array.of(6)))]);
  assert.equal(readActivation(t.n, t.g, 13)?.bounds, { min: 0, max: 6 });
  // only min given: max is +FLT_MAX
  t = node('Clip', {}, (g) => [g.addInitializer(Tensor.float32('lo', [], Float32Array.of(0)))]);
  assert.equal(readActivation(t.n, t.g, 13)?.bounds, { min: 0, max: 3.4028234663852886e38 });
  // opset 6: attributes
  t = node('Clip', { min: { float: 0 }, max: { float: 6 } });
  assert.equal(readActivation(t.n, t.g, 6)?.bounds, { min: 0, max: 6 });
  // a bound that is not constant
  t = node('Clip', {}, (g) => [g.inputs[0]]);
  assert.equal(readActivation(t.n, t.g, 13)?.bounds.min, null);

  // PRelu: the slope tensor
  t = node('PRelu', {}, (g) => [g.addInitializer(Tensor.float32('slope', [4, 1, 1], Float32Array.of(0.1, 0.2, 0.3, 0.4)))]);
  const p = readActivation(t.n, t.g, 13)!;
  assert.equal(p.slope?.dims, [4, 1, 1]);
  assert.is(p.slope?.dataType, DataType.FLOAT);
});

test('activationNodeSpec: the attributes and bound inputs that write the same activation on a new node', () => {
  let t = node('LeakyRelu', { alpha: { float: 0.125 } });
  assert.equal(activationNodeSpec(readActivation(t.n, t.g, 13)!, 13), { opType: 'LeakyRelu', domain: '', attrs: { alpha: { float: 0.125 } }, boundInputs: [] });
  t = node('Gelu');
  assert.equal(activationNodeSpec(readActivation(t.n, t.g, 20)!, 20).attrs, { approximate: 'none' });
  // ReLU6 read at opset 13 (inputs), written at opset 13 (inputs) and at opset 6 (attributes)
  t = node('Clip', {}, (g) => [g.addInitializer(Tensor.float32('lo', [], Float32Array.of(0))), g.addInitializer(Tensor.float32('hi', [], Float32Array.of(6)))]);
  const p = readActivation(t.n, t.g, 13)!;
  assert.equal(activationNodeSpec(p, 13), { opType: 'Clip', domain: '', attrs: {}, boundInputs: [0, 6] });
  assert.equal(activationNodeSpec(p, 6).attrs, { min: { float: 0 }, max: { float: 6 } });
});

test('activationNodeSpec: a Clip bound computed at run time cannot be copied (E_PATTERN)', () => {
  const t = node('Clip', {}, (g) => [g.inputs[0]]);
  try {
    activationNodeSpec(readActivation(t.n, t.g, 13)!, 13);
    assert.unreachable();
  } catch (e) {
    assert.is((e as { code?: string }).code, 'E_PATTERN');
  }
});

test('readActivation: not an activation gives null', () => {
  for (const op of ['Conv', 'Add', 'Concat', 'NoSuchOp']) {
    const t = node(op);
    assert.is(readActivation(t.n, t.g, 17), null, op);
  }
});

test.run();
