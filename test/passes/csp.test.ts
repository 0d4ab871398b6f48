/**
 * CSP conversion (convert --to csp): every fixture and every sample converts with each fusion and
 * both split ops and runs in onnxruntime with its I/O unchanged; block and whole-model costs against
 * hand counts from the architectures; L1 channel choice and weight carry-over; peak memory; bad input.
 *
 * CI time: the samples run in ORT at width 0.25 and 64x64; full-size Darknet-53 (256x256) is
 * converted once, in place, and measured without ORT.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GptError } from '../../src/errors';
import type { Value } from '../../src/ir/graph';
import type { Model } from '../../src/ir/model';
import { loadModel } from '../../src/onnx/io';
import { costModel } from '../../src/analysis/cost';
import { recognize } from '../../src/analysis/structure';
import type { Stage } from '../../src/analysis/structure-types';
import { convert, ConvertOptions } from '../../src/passes/convert';
import { checkCspOptions, crossStagePartial, FUSIONS, SPLIT_OPS } from '../../src/passes/csp';
import { cspPass } from '../../src/passes/csp-pass';
import type { Structure } from '../../src/analysis/structure-types';
import { createSession, runFloat } from '../../src/profile/ort';
import { ModelBuilder, SAMPLE_NAMES, buildSample } from '../../src/samples';
import { fixturePath, fixtures, readNpy } from '../helpers';

const COMBOS = FUSIONS.flatMap((fusion) => SPLIT_OPS.map((splitOp) => ({ fusion, splitOp })));

async function runOnce(model: Model, feed: { data: Float32Array; dims: number[] }) {
  const s = await createSession(model);
  return runFloat(s, { [model.graph.inputs[0].name]: feed });
}

function ioOf(m: Model) {
  const io = (v: Value) => ({ name: v.name, shape: v.declared?.shape ?? null });
  return { inputs: m.graph.inputs.map(io), outputs: m.graph.outputs.map(io) };
}

function throwsGpt(fn: () => unknown, code: string, re: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, GptError);
    assert.is((e as GptError).code, code, (e as Error).message);
    assert.match(`${(e as GptError).subject ?? ''} ${(e as Error).message}`, re);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

/** MACs and conv-weight counts of a set of nodes (by name) of a model. */
function costOf(model: Model, names: Iterable<string>) {
  const want = new Set(names);
  const byName = new Map(costModel(model).nodes.map((n) => [n.name, n]));
  let macs = 0;
  let convWeights = 0;
  for (const n of model.graph.nodes) {
    if (!want.has(n.name)) continue;
    macs += byName.get(n.name)!.macs;
    if (n.opType === 'Conv') convWeights += model.graph.constantTensor(n.inputs[1])!.size;
  }
  return { macs, convWeights };
}

test('every fixture converts with each fusion and split op and runs with unchanged I/O', async () => {
  for (const f of fixtures()) {
    const source = loadModel(fixturePath(f.model));
    const input = readNpy(fixturePath(f.sampleInput));
    const expected = readNpy(fixturePath(f.sampleOutput));
    for (const c of COMBOS) {
      const { model, report } = convert(source, { to: 'csp', ...c });
      const what = `${f.model} ${c.fusion}/${c.splitOp}`;
      assert.equal(ioOf(model), ioOf(source), what);
      assert.ok(report.converted.length > 0 && report.unconverted.length === 0, what);
      assert.ok(report.weightsCarriedOver > 0.5 && report.weightsCarriedOver < 1, `${what}: ${report.weightsCarriedOver}`);
      assert.ok(report.notes.some((n) => /must be fine-tuned/.test(n)), what);
      assert.match(model.metadata()['gpt.conversion'], /"target":"csp"/);
      const out = (await runOnce(model, { data: input.data, dims: input.shape }))[f.output];
      assert.equal([...out.dims], expected.shape, what);
      assert.ok(out.data.every(Number.isFinite), what);
    }
  }
});

test('every sample (width 0.25, 64x64) converts with each fusion and split op and runs', async () => {
  for (const name of SAMPLE_NAMES) {
    const source = buildSample(name, { width: 0.25, resolution: 64, classes: 10 });
    const feed = { data: new Float32Array(3 * 64 * 64).fill(0.5), dims: [1, 3, 64, 64] };
    for (const c of COMBOS) {
      const { model, report } = convert(source, { to: 'csp', ...c });
      assert.equal(ioOf(model), ioOf(source), `${name} ${c.fusion}/${c.splitOp}`);
      assert.is(report.unconverted.length, 0);
      const out = (await runOnce(model, feed)).logits;
      assert.equal([...out.dims], [1, 10]);
    }
  }
});

/**
 * Darknet-53 at 256x256, split 0.5, fusion both, slice. Every stage has C²·R² = 64²·128² = 2^26
 * (C doubles as R halves). A residual block (1x1 C->C/2, 3x3 C/2->C) costs 0.5 + 4.5 = 5·C²R² MACs;
 * in part 1 (1x1 C/2->C/2, 3x3 C/2->C/2) 0.25 + 2.25 = 2.5·C²R². The transitions add
 * (C/2)² R² + C² R² = 1.25·C²R² per stage. 23 blocks, 5 stages:
 *   saved = 23·2.5·2^26 - 5·1.25·2^26 = (57.5 - 6.25)·2^26 = 3,439,329,280 MACs.
 * Stage 2 (C = 256, R = 32, 8 blocks): before 8·5·2^26 = 2,684,354,560 MACs in its blocks;
 * after 8·2.5·2^26 + 1.25·2^26 = 1,426,063,360.
 */
test('Darknet-53 256x256: whole-model and stage-2 MACs against the hand count; peak memory', () => {
  const model = buildSample('darknet53');
  const structure = recognize(model);
  const stage2 = structure.stages[2];
  const blockNodes = stage2.blocks.flatMap((b) => b.nodes);
  const stageBefore = costOf(model, blockNodes).macs;
  const liveBefore = stageLivePeaks(model, structure.stages);
  const { report } = convert(model, { to: 'csp', split: 0.5, fusion: 'both', splitOp: 'slice', inPlace: true });
  const C2R2 = 2 ** 26;
  assert.is(stageBefore, 8 * 5 * C2R2);
  assert.is(report.after.macs, report.before.macs - 3_439_329_280);
  assert.ok(report.after.macs / report.before.macs <= 0.7, `ratio ${report.after.macs / report.before.macs}`);
  const added = model.graph.nodes.map((n) => n.name).filter((n) => n.startsWith('/features/csp.s2/'));
  assert.ok(added.length >= 5, 'the new nodes carry the stage prefix');
  assert.is(costOf(model, [...blockNodes, ...added]).macs, 8 * 2.5 * C2R2 + 1.25 * C2R2);
  // params: 41.6 M before (the published Darknet-53 count); CSPNet reports 27.6 M for its CSPDarknet-53
  assert.ok(report.after.params < 0.7 * report.before.params, `${report.after.params}`);

  // Peak activation memory: the whole-model peak is in the stem (32 x 256 x 256 floats, twice, at its
  // first BN), which CSP leaves alone; within each stage the live peak falls: e.g. stage 0 before
  // (64 ch x 128²): x + conv + BN outputs = 3·64 = 192 channel-planes; after: part 2 (32) + part 1's
  // stream (32) + conv (32) + BN (32) = 128, and the final transition's input + output = 64 + 64.
  assert.ok(report.after.peakActivationBytes <= report.before.peakActivationBytes);
  const liveAfter = stageLivePeaks(model, structure.stages, (s) => model.graph.nodes.map((n) => n.name).filter((n) => n.startsWith(`/features/csp.s${s}/`)));
  const plane0 = 128 * 128 * 4;
  assert.is(liveBefore[0], 192 * plane0);
  assert.is(liveAfter[0], 128 * plane0);
  liveAfter.forEach((p, i) => assert.ok(p < liveBefore[i], `stage ${i}: ${p} vs ${liveBefore[i]}`));
});

/** Live activation bytes while each stage's nodes run (nodes in graph order; a value lives from its producer to its last consumer). */
function stageLivePeaks(model: Model, stages: Stage[], extra: (s: number) => string[] = () => []): number[] {
  const g = model.graph;
  costModel(model); // shapes
  const bytes = (v: Value) => (v.shape ?? []).reduce<number>((a, d) => a * (typeof d === 'number' ? d : 1), 4);
  const last = new Map<Value, number>();
  g.nodes.forEach((n, i) => n.inputs.forEach((v) => v && last.set(v, i)));
  const liveAt = new Map<string, number>();
  let live = g.inputs.reduce((s, v) => s + bytes(v), 0);
  g.nodes.forEach((n, i) => {
    const made = n.outputs.filter((o): o is Value => !!o && !g.isConstant(o));
    live += made.reduce((s, o) => s + bytes(o), 0);
    liveAt.set(n.name, live);
    for (const v of new Set(n.inputs)) if (v && !g.isConstant(v) && last.get(v) === i && !g.isGraphOutput(v)) live -= bytes(v);
    for (const o of made) if (!last.has(o) && !g.isGraphOutput(o)) live -= bytes(o);
  });
  return stages.map((s) => Math.max(...[...s.blocks.flatMap((b) => b.nodes), ...extra(s.index)].map((n) => liveAt.get(n) ?? 0)));
}

/**
 * Computation blocks at split 0.5, per family, against hand counts (R² factored out of MACs):
 * - Darknet residual (C = 64, stage 2 at 64x64 input, R = 8): 1x1 C->C/2 + 3x3 C/2->C = 5C² per
 *   pixel -> 1x1 C/2->C/2 + 3x3 C/2->C/2 = 2.5C²: half.
 * - ResNet basic (ResNet-18 stage 1 after its entry block, C = 32, R = 8): 3x3 C->C twice = 18C²
 *   -> 3x3 C/2->C + 3x3 C->C/2 = 9C² (middle width C kept): half.
 * - ResNet bottleneck (ResNet-50 stage 1, C = 4m = 128, m = 32): 1x1 4m->m, 3x3 m->m, 1x1 m->4m =
 *   17m² -> 1x1 2m->m, 3x3, 1x1 m->2m = 13m²: the middle width m is kept, so 13/17, not half.
 * - VoVNet OSA (VoVNet-39 stage 2's second module, C = 192, middle m = 48): 3x3 C->m, 4 x 3x3 m->m,
 *   1x1 (C + 5m)->C = 9·192·48 + 36·48² + 432·192 = 248,832 -> 9·96·48 + 36·48² + 336·96 = 156,672.
 */
test('computation blocks at split 0.5 against hand counts, per family', () => {
  const cases: { name: 'darknet53' | 'resnet18' | 'resnet50' | 'vovnet39'; stage: number; block: number; before: number; after: number; R2: number }[] = [
    { name: 'darknet53', stage: 2, block: 0, before: 5 * 64 * 64, after: 2.5 * 64 * 64, R2: 64 },
    { name: 'resnet18', stage: 1, block: 1, before: 18 * 32 * 32, after: 9 * 32 * 32, R2: 64 },
    { name: 'resnet50', stage: 1, block: 1, before: 17 * 32 * 32, after: 13 * 32 * 32, R2: 64 },
    { name: 'vovnet39', stage: 2, block: 1, before: 248_832, after: 156_672, R2: 16 },
  ];
  for (const c of cases) {
    const model = buildSample(c.name, { width: 0.25, resolution: 64, classes: 10 });
    const s = recognize(model).stages[c.stage];
    const nodes = s.blocks[c.block].nodes;
    const before = costOf(model, nodes);
    crossStagePartial(model, s, { split: 0.5, fusion: 'both', splitOp: 'slice' });
    costModel(model);
    const after = costOf(model, nodes);
    assert.is(before.convWeights * c.R2, before.macs, `${c.name}: a 1x1 / 3x3 stride-1 conv does one MAC per weight per pixel`);
    assert.is(before.convWeights, c.before, `${c.name} before`);
    assert.is(after.convWeights, c.after, `${c.name} after`);
    assert.is(after.macs, c.after * c.R2, `${c.name} MACs`);
  }
});

/**
 * A one-stage Darknet-like net, 8 channels:
 *
 *   input 3x16x16 ── conv 3x3 3->8 (stem) ── x ─┬─ 1x1 8->4 ── 3x3 4->8 ── Add ── GAP ── Gemm
 *                                               └──────────────────────────┘
 *
 * The 3x3's filters 1, 5, 6, 7 are scaled by 100: those stream channels have the largest L1 norm,
 * so part 1 (4 of 8) is {1, 5, 6, 7}; the stem's filters are reordered to put them first.
 */
function tinyDarknet(): Model {
  const b = new ModelBuilder({ seed: 3, batch: 1 });
  const x = b.convBnAct(b.input('input', 3, 16, 16), { conv: 'stem.0', bn: 'stem.1', act: 'stem.2' }, 8, 3, 1, 'LeakyRelu');
  const mid = b.convBnAct(x, { conv: 'block.b1.0', bn: 'block.b1.1', act: 'block.b1.2' }, 4, 1, 1, 'LeakyRelu');
  const branch = b.convBnAct(mid, { conv: 'block.b2.0', bn: 'block.b2.1', act: 'block.b2.2' }, 8, 3, 1, 'LeakyRelu');
  const y = b.add(x, branch, 'block');
  const m = b.finish(b.gemm(b.flatten(b.globalAveragePool(y, 'pool')), 'fc', 10, 'logits'), 'tiny');
  const conv = m.graph.nodes.find((n) => n.name === '/block/b2/b2.0/Conv')!;
  const w = m.graph.constantTensor(conv.inputs[1])!;
  const data = Float32Array.from(w.data() as Float32Array);
  for (const o of [1, 5, 6, 7]) for (let i = o * 36; i < (o + 1) * 36; i++) data[i] *= 100;
  w.setData(w.dims, data);
  return m;
}

test('part 1 keeps the highest-L1 channels; their trained weights carry over', () => {
  const model = tinyDarknet();
  const g = model.graph;
  const weights = (name: string) => {
    const n = g.nodes.find((x) => x.name === name)!;
    return Array.from(g.constantTensor(n.inputs[1])!.data() as Float32Array);
  };
  const stemBefore = weights('/stem/stem.0/Conv');
  const b2Before = weights('/block/b2/b2.0/Conv');
  const stage = recognize(model).stages[0];
  const change = crossStagePartial(model, stage, { split: 0.5, fusion: 'both', splitOp: 'slice' });
  assert.is(change.selection, 'l1');
  assert.equal(change.permuted, ['/stem/stem.0/Conv']);
  const stemAfter = weights('/stem/stem.0/Conv');
  const b2After = weights('/block/b2/b2.0/Conv'); // [4, 4, 3, 3]: filters 1, 5, 6, 7 of the source
  const order = [1, 5, 6, 7, 0, 2, 3, 4];
  order.forEach((o, j) => assert.equal(stemAfter.slice(j * 27, (j + 1) * 27), stemBefore.slice(o * 27, (o + 1) * 27)));
  [1, 5, 6, 7].forEach((o, j) => assert.equal(b2After.slice(j * 36, (j + 1) * 36), b2Before.slice(o * 36, (o + 1) * 36)));
  // fresh parameters: transition1 4x4 + 4, transition2 8x8 + 8 = 92
  assert.is(change.freshParams, 92);
});

test('the conv split starts as the slice split: same logits', async () => {
  const feed = { data: Float32Array.from({ length: 3 * 16 * 16 }, (_, i) => Math.sin(i)), dims: [1, 3, 16, 16] };
  const a = convert(tinyDarknet(), { to: 'csp', splitOp: 'slice' }).model;
  const b = convert(tinyDarknet(), { to: 'csp', splitOp: 'conv' }).model;
  const ya = (await runOnce(a, feed)).logits.data;
  const yb = (await runOnce(b, feed)).logits.data;
  ya.forEach((v, i) => assert.ok(Math.abs(v - yb[i]) <= 1e-4 * Math.max(1, Math.abs(v)), `${v} vs ${yb[i]}`));
});

test('weights carried over: Darknet-53 fixture, hand count of the new parameters', () => {
  // transitions per stage (fusion both, split 0.5): (C/2)² + C/2 + C² + C = 1.25C² + 1.5C,
  // C = 16, 32, 64, 128, 256: 1.25 · 87,296 + 1.5 · 496 = 109,864 new parameters
  const { report } = convert(loadModel(fixturePath('darknet53-w25.onnx')), { to: 'csp' });
  assert.ok(Math.abs(report.weightsCarriedOver - (1 - 109_864 / report.after.params)) < 1e-12);
});

test('bad input: split, zero-channel part, no computation block, unknown fusion or split op', () => {
  const model = loadModel(fixturePath('resnet18-w25.onnx'));
  for (const split of [0, 1, -0.5, 1.5, NaN]) throwsGpt(() => convert(model, { to: 'csp', split }), 'E_ARG', /--split/);
  throwsGpt(() => convert(model, { to: 'csp', fusion: 'middle' } as unknown as ConvertOptions), 'E_ARG', /--fusion 'middle'/);
  throwsGpt(() => checkCspOptions({ splitOp: 'gather' }), 'E_ARG', /--split-op/);
  // an 8-channel stage at 0.05: round(0.4) = 0 channels in part 1
  const narrow = buildSample('darknet53', { width: 0.125, resolution: 32, classes: 10 });
  throwsGpt(() => convert(narrow, { to: 'csp', split: 0.05 }), 'E_ARG', /stage 0 .*8 channels|part 1 of stage 0/);
  // and at 0.95 part 2 is empty
  throwsGpt(() => convert(narrow, { to: 'csp', split: 0.95 }), 'E_ARG', /part 2 of stage 0/);
  // a ResNet stage with only its projecting entry block, and a stage with no block at all
  const structure = recognize(model);
  const entryOnly = { ...structure.stages[1], blocks: structure.stages[1].blocks.slice(0, 1) };
  throwsGpt(() => crossStagePartial(model, entryOnly), 'E_PATTERN', /stage 1.*no computation block after its entry block s1\.b0/);
  throwsGpt(() => crossStagePartial(model, { ...structure.stages[2], blocks: [] }), 'E_PATTERN', /stage 2.*no computation block/);
  // with --strict that stage fails the conversion; without, it is listed as unconverted
  const runCsp = (strict: boolean) => {
    const m = loadModel(fixturePath('resnet18-w25.onnx'));
    const st = recognize(m);
    const cut: Structure = { ...st, stages: [st.stages[0], { ...st.stages[1], blocks: st.stages[1].blocks.slice(0, 1) }] };
    const ctx = { model: m, structure: cut, subject: 'm', strict, step: () => undefined };
    const opts = cspPass.options({ to: 'csp' });
    return cspPass.apply(ctx, cspPass.plan(ctx, opts), opts);
  };
  throwsGpt(() => runCsp(true), 'E_PATTERN', /stage 1/);
  const lenient = runCsp(false);
  assert.equal(lenient.converted.filter((c) => c.block === 's0').length, 1);
  assert.equal(lenient.unconverted.map((u) => u.block), ['s1']);
  // nothing recognised at all: nothing to convert
  throwsGpt(() => convert(model, { to: 'csp', rules: [] }), 'E_PATTERN', /nothing to convert/);
});

test('negative beside positive: a full stage converts, the same stage cut to its entry block does not', () => {
  const model = loadModel(fixturePath('resnet18-w25.onnx'));
  const s = recognize(model).stages[1];
  const change = crossStagePartial(model, s);
  assert.equal(change.entryBlocks, ['s1.b0']);
  assert.equal(change.blocks, ['s1.b1']);
  assert.is(change.part1 + change.part2, 32);
});

test.run();
