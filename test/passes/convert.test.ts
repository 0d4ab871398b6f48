/**
 * convert(), the pipeline: a failing conversion leaves the caller's model exactly as it was (plan,
 * then apply); options of another target are refused; nodes are held by reference, so a model whose
 * nodes have no names converts exactly as the named one does, and each stage's added nodes are
 * recorded in that stage.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadRules } from '../../src/analysis/rules';
import { recognize } from '../../src/analysis/structure';
import { GptError } from '../../src/errors';
import type { Model } from '../../src/ir/model';
import { loadModel, saveModelToBuffer } from '../../src/onnx/io';
import { convert, ConvertOptions } from '../../src/passes/convert';
import { Tiny } from '../fixtures/tiny-graph';
import { fixturePath, repoRoot } from '../helpers';

function throwsGpt(fn: () => unknown, code: string, message: RegExp): GptError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, GptError);
    assert.is((e as GptError).code, code, (e as GptError).message);
    assert.match((e as GptError).message, message);
    return e as GptError;
  }
  throw new assert.Assertion({ message: `expected ${code}`, generated: false, operator: 'throws', expects: code, actual: 'no error' });
}

/** A graph output at the output of stage `stage`'s block `block`: that stage cannot be rewritten. */
function withMidOutput(file: string, stage: number, block: number): Model {
  const m = loadModel(fixturePath(file));
  const mid = m.graph.values.get(recognize(m).stages[stage].blocks[block].output)!;
  mid.declared = mid.type;
  m.graph.addOutput(mid);
  return m;
}

/**
 * One OSA module that narrows its input:  x(32) ─ 3x3(8) ─ 3x3(8) ─ Concat(x, 8, 8) = 48 ─ 1x1 → 16 ─ head.
 * CSP split 0.5: part 2 keeps 16 of x's 32 channels, as many as the stage output has.
 */
function narrowingOsa(): Model {
  const t = new Tiny(32, 8);
  const a = t.convBnAct(t.x, 'osa.l0', 8, 3);
  const b = t.convBnAct(a, 'osa.l1', 8, 3);
  const y = t.convBnAct(t.op('Concat', 'osa.concat', [t.x, a, b], { axis: 1 }), 'osa.t', 16, 1);
  t.head(y).declared = { elemType: 1, shape: [1, 10] };
  return t.model();
}

// ---------------------------------------------------------------------------------------------
// Transactional: a failure leaves the input byte for byte, node for node, as it was

const failing: { what: string; model: () => Model; options: ConvertOptions; error: RegExp }[] = [
  {
    // the downsample rule left out: the stride-2 convs match no rule (23 residual blocks would convert)
    what: 'prn, strict, nodes that match no rule', model: () => loadModel(fixturePath('darknet53-w25.onnx')),
    options: { to: 'prn', strict: true, inPlace: true, rules: loadRules().filter((r) => r.name !== 'downsample-conv') }, error: /match no rule/,
  },
  { what: 'csp, strict, a stage read midway', model: () => withMidOutput('darknet53-w25.onnx', 2, 0), options: { to: 'csp', strict: true, inPlace: true }, error: /stage 2: .* also a graph output/ },
  { what: 'elan, strict, a stage read midway', model: () => withMidOutput('vovnet57-w25-bn.onnx', 2, 1), options: { to: 'elan', strict: true, inPlace: true }, error: /was not converted/ },
  {
    what: 'elan --csp, strict, the split refused after ELAN (split 0.01 leaves part 1 empty)', model: () => loadModel(fixturePath('darknet53-w25.onnx')),
    options: { to: 'elan', csp: true, split: 0.01, strict: true, inPlace: true }, error: /--split 0\.01 leaves part 1/,
  },
  {
    what: 'csp, fusion last with part 2 as wide as the stage output', model: narrowingOsa,
    options: { to: 'csp', fusion: 'last', inPlace: true }, error: /--fusion last needs part 2 \(16 channels\) narrower than the output of stage 0 \(16\)/,
  },
];

for (const f of failing) {
  test(`a failing in-place conversion changes nothing: ${f.what}`, () => {
    const model = f.model();
    const bytes = saveModelToBuffer(model);
    const nodes = [...model.graph.nodes];
    throwsGpt(() => convert(model, f.options), f.what.startsWith('csp, fusion') || f.what.includes('split 0.01') ? 'E_ARG' : 'E_PATTERN', f.error);
    assert.ok(Buffer.from(saveModelToBuffer(model)).equals(Buffer.from(bytes)), 'the model saves byte-identical');
    assert.equal(model.graph.nodes.length, nodes.length);
    assert.ok(model.graph.nodes.every((n, i) => n === nodes[i]), 'the same node objects, in the same order');
  });
}

test('negative beside positive: the same models convert when not strict (the rest is converted)', () => {
  const dk = convert(loadModel(fixturePath('darknet53-w25.onnx')), { to: 'prn', rules: loadRules().filter((r) => r.name !== 'downsample-conv') });
  assert.is(dk.report.converted.length, 23);
  const dk2 = convert(withMidOutput('darknet53-w25.onnx', 2, 0), { to: 'csp' });
  assert.equal(dk2.report.unconverted.map((u) => u.block), ['s2']);
  assert.ok(dk2.report.converted.some((c) => c.block === 's1'));
  // fusion both fits the narrowing module: transition 1 (8 -> 8), concat with part 2 (16), transition 2 (24 -> 16)
  assert.match(convert(narrowingOsa(), { to: 'csp' }).report.converted[0].change, /transition 8->8, concat with part 2, transition 24->16/);
});

// ---------------------------------------------------------------------------------------------
// Options belong to a target

test('an option of another target is E_ARG naming it; an unknown option too', () => {
  const m = loadModel(fixturePath('resnet18-w25.onnx'));
  const bad = (o: unknown) => o as ConvertOptions;
  throwsGpt(() => convert(m, bad({ to: 'csp', ratio: 0.3 })), 'E_ARG', /^option 'ratio' does not apply to target 'csp'$/);
  throwsGpt(() => convert(m, bad({ to: 'prn', stack: 2 })), 'E_ARG', /^option 'stack' does not apply to target 'prn'$/);
  throwsGpt(() => convert(m, bad({ to: 'prn', fusion: 'both' })), 'E_ARG', /^option 'fusion' does not apply to target 'prn'$/);
  throwsGpt(() => convert(m, bad({ to: 'elan', split: 0.5 })), 'E_ARG', /^option 'split' does not apply to target 'elan' without csp: true$/);
  throwsGpt(() => convert(m, bad({ to: 'csp', colour: 'red' })), 'E_ARG', /^unknown option 'colour'$/);
  throwsGpt(() => convert(m, bad({ to: 'yolo' })), 'E_ARG', /unknown target 'yolo'/);
  // @ts-expect-error: ratio is PRN's option; this must not compile
  const typed: ConvertOptions = { to: 'csp', ratio: 0.3 };
  assert.ok(typed);
  // positive: each target's own options, and an option left undefined
  assert.ok(convert(m, { to: 'prn', ratio: 0.25, asymmetric: true }).report.converted.length > 0);
  assert.ok(convert(m, { to: 'csp', split: 0.5, fusion: 'first', splitOp: 'conv', dims: {} }).report.converted.length > 0);
  assert.ok(convert(m, { to: 'elan', stack: 1, width: 0.5, csp: true, split: 0.5 }).report.converted.length > 0);
  assert.ok(convert(m, bad({ to: 'csp', ratio: undefined })).report.converted.length > 0);
});

// ---------------------------------------------------------------------------------------------
// Nodes by reference: unnamed nodes, and the stage each added node is recorded in

function unnamed(file: string): Model {
  const m = loadModel(fixturePath(file));
  for (const n of m.graph.nodes) n.name = '';
  return m;
}

/** The converted model's recorded structure: node names per stage. */
function recorded(m: Model): { index: number; blocks: { id: string; nodes: string[] }[] }[] {
  return JSON.parse(m.metadata()['gpt.structure']).stages;
}

for (const [file, to] of [['resnet18-w25.onnx', 'prn'], ['darknet53-w25.onnx', 'prn'], ['resnet50-w25.onnx', 'csp'], ['darknet53-w25.onnx', 'elan']] as const) {
  test(`${file} --to ${to}: with no node names it converts exactly as with names; every node stays in its stage`, () => {
    const named = convert(loadModel(fixturePath(file)), { to });
    // in place: loading would name the nodes (the IR names unnamed nodes at load); in memory they stay
    // unnamed through the pass, and convert() names them when it records the structure
    const source = unnamed(file);
    assert.ok(source.graph.nodes.every((n) => !n.proto.name));
    const plain = convert(source, { to, inPlace: true });
    assert.ok(plain.model.graph.nodes.every((n) => !!n.proto.name), 'every node is named in the output');
    assert.is(plain.report.converted.length, named.report.converted.length);
    assert.equal(plain.report.after, named.report.after);
    assert.equal(plain.report.stages.after, named.report.stages.after, 'per-stage figures (the added nodes in the right stages)');
    assert.equal(plain.report.gradientPaths.after, named.report.gradientPaths.after);
    // the record names live nodes only, and every residual Add is still in it
    const live = new Set(plain.model.graph.nodes.map((n) => n.name));
    const stages = recorded(plain.model);
    assert.ok(stages.every((s) => s.blocks.every((b) => b.nodes.every((n) => live.has(n)))));
    const adds = (m: Model) => {
      const op = new Map(m.graph.nodes.map((n) => [n.name, n.opType]));
      return recorded(m).map((s) => s.blocks.flatMap((b) => b.nodes).filter((n) => op.get(n) === 'Add').length);
    };
    assert.equal(adds(plain.model), adds(named.model));
    // saved and loaded again, the record is used (every name it holds is in the model)
    const again = loadModel(saveModelToBuffer(plain.model));
    assert.is(recognize(again).stages.length, named.structure.stages.length);
    assert.equal(recognize(again).unmatched, recognize(loadModel(saveModelToBuffer(named.model))).unmatched);
  });
}

test('PRN: each stage\'s closing Concat is recorded in its own stage, not the next', () => {
  // ResNet-18: two basic blocks per stage, each masked residual (split form) adds one Split and one Concat
  const { model } = convert(loadModel(fixturePath('resnet18-w25.onnx')), { to: 'prn', emit: 'split' });
  const byStage = recorded(model).map((s) => s.blocks.flatMap((b) => b.nodes).filter((n) => n.endsWith('/prn/Concat')).length);
  assert.equal(byStage, [2, 2, 2, 2]);
  // negative: the Concats are named after the stage's own Adds (layerN), not the next stage's
  recorded(model).forEach((s, i) => {
    for (const n of s.blocks.flatMap((b) => b.nodes).filter((x) => x.endsWith('/prn/Concat'))) assert.match(n, new RegExp(`layer${i + 1}`), n);
  });
});

test('PRN, mask form: each block\'s mask Mul is recorded in its own stage; no Concat', () => {
  const { model } = convert(loadModel(fixturePath('resnet18-w25.onnx')), { to: 'prn', emit: 'mask' });
  const nodes = recorded(model).map((s) => s.blocks.flatMap((b) => b.nodes));
  assert.equal(nodes.map((ns) => ns.filter((n) => /\/prn\/Mul/.test(n)).length), [2, 2, 2, 2]);
  assert.equal(nodes.map((ns) => ns.filter((n) => n.endsWith('/prn/Concat')).length), [0, 0, 0, 0]);
  nodes.forEach((ns, i) => {
    for (const n of ns.filter((x) => /\/prn\/Mul/.test(x))) assert.match(n, new RegExp(`layer${i + 1}`), n);
  });
});

// ---------------------------------------------------------------------------------------------
// The shape of src/passes: no import cycle between convert.ts and the passes

test('src/passes: the import graph has no cycle; passes do not import convert.ts', () => {
  const dir = path.join(repoRoot, 'src', 'passes');
  const imports = new Map<string, string[]>();
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.ts'))) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    imports.set(f.replace(/\.ts$/, ''), [...text.matchAll(/from '\.\/([\w-]+)'/g)].map((m) => m[1]));
  }
  for (const [f, deps] of imports) if (f !== 'convert') assert.not.ok(deps.includes('convert'), `${f} imports convert.ts`);
  const state = new Map<string, 'open' | 'done'>();
  const visit = (f: string, trail: string[]): void => {
    if (state.get(f) === 'done') return;
    assert.not.ok(state.get(f) === 'open', `import cycle: ${[...trail, f].join(' -> ')}`);
    state.set(f, 'open');
    for (const d of imports.get(f) ?? []) visit(d, [...trail, f]);
    state.set(f, 'done');
  };
  for (const f of imports.keys()) visit(f, []);
  assert.ok(imports.has('registry') && imports.get('convert')!.includes('registry'));
});

test.run();
