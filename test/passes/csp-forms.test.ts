/**
 * CSP's emit forms, each computing the same numbers as the form the pass wrote before it:
 *
 * - the merge (convert --to csp --merge-op concat|sum): where part 1 and part 2 meet before
 *   transition 2, the concat form writes Concat + one 1x1 conv, the sum form the same weights split
 *   by input channels as one 1x1 conv per part whose outputs are added (W·[a;b] = W_a·a + W_b·b).
 *
 *   concat:  t1 ──┐                          sum:  t1 ── Conv(W_a, bias) ──┐
 *                 Concat ── Conv(W, bias) ─ act                            Add ── act
 *   part 2 ───────┘                              part 2 ── Conv(W_b) ──────┘
 *
 * - the split (--split-op slice|producer): slice writes a Split after the layer that makes the
 *   stage input x; producer writes that layer once per part, its filters divided.
 *
 *   slice:  ── Conv(C) ─ act ── x ── Split ─┬─ part 1      producer:  ─┬─ Conv(k)   ─ act ── part 1
 *                                           └─ part 2                  └─ Conv(C-k) ─ act ── part 2
 *
 * The reference is onnxruntime's output of the earlier form (concat; slice) on every fixture, with
 * each fusion; then the weights themselves, params / MACs, fallbacks, ELAN's CSP split, bad input.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GptError } from '../../src/errors';
import type { Model } from '../../src/ir/model';
import { loadModel } from '../../src/onnx/io';
import { floatValues } from '../../src/ir/float-data';
import type { Node } from '../../src/ir/graph';
import { recognize } from '../../src/analysis/structure';
import { convert, ConvertOptions } from '../../src/passes/convert';
import { checkCspOptions, FUSIONS, SPLIT_OPS } from '../../src/passes/csp';
import { createSession, runFloat } from '../../src/profile/ort';
import { buildSample } from '../../src/samples';
import { fixturePath, fixtures, readNpy } from '../helpers';

async function outputs(model: Model, feed: { data: Float32Array; dims: number[] }) {
  const s = await createSession(model);
  try {
    return await runFloat(s, { [model.graph.inputs[0].name]: feed });
  } finally {
    await s.release();
  }
}

function assertClose(a: Float32Array, b: Float32Array, what: string): void {
  assert.is(a.length, b.length, what);
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  // float32 sums in another order: a few ulps of the output's scale
  assert.ok(worst <= 1e-5 * Math.max(1, scale), `${what}: max |diff| ${worst} at output scale ${scale}`);
  assert.ok(scale > 0, `${what}: the output is not all zeros`);
}

const ops = (m: Model, op: string) => m.graph.nodes.filter((n) => n.opType === op);

test('every fixture: the sum merge computes what the concat merge computes (onnxruntime), with no Concat left', async () => {
  for (const f of fixtures()) {
    const source = loadModel(fixturePath(f.model));
    const input = readNpy(fixturePath(f.sampleInput));
    const feed = { data: input.data, dims: input.shape };
    for (const fusion of ['both', 'first'] as const) {
      for (const splitOp of SPLIT_OPS) {
        const what = `${f.model} ${fusion}/${splitOp}`;
        const concat = convert(source, { to: 'csp', fusion, splitOp, mergeOp: 'concat' });
        const sum = convert(source, { to: 'csp', fusion, splitOp, mergeOp: 'sum' });
        const stages = concat.report.converted.filter((c) => /^s\d+$/.test(c.block)).length;
        assert.ok(stages > 0, what);
        assert.is(sum.report.converted.filter((c) => /^s\d+$/.test(c.block)).length, stages, what);
        // one Concat fewer per converted stage (a VoVNet OSA module keeps its own), one transition Add
        // per stage instead (a producer split dividing the stage before copies that one's Add too)
        const transitionAdds = (m: Model) => ops(m, 'Add').filter((n) => /transition2\/Add$/.test(n.name)).length;
        assert.is(ops(sum.model, 'Concat').length, ops(concat.model, 'Concat').length - stages, what);
        assert.is(transitionAdds(sum.model), stages, what);
        assert.is(transitionAdds(concat.model), 0, what);
        // the same weights: params and MACs equal (the part-2 conv has no bias of its own)
        assert.is(sum.report.after.params, concat.report.after.params, what);
        assert.is(sum.report.after.macs, concat.report.after.macs, what);
        assert.is(sum.report.weightsCarriedOver, concat.report.weightsCarriedOver, what);
        assert.equal(sum.report.options, { split: 0.5, fusion, splitOp, mergeOp: 'sum' }, what);
        const yc = (await outputs(concat.model, feed))[f.output];
        const ys = (await outputs(sum.model, feed))[f.output];
        assert.equal([...ys.dims], [...yc.dims], what);
        assertClose(ys.data, yc.data, what);
      }
    }
  }
});

test('the sum merge\'s two convs are the concat merge\'s transition 2 split by input channels', () => {
  // Darknet-53 at 1/8 width: stage 0 has 8 channels, part 1 and part 2 are 4 each
  const src = () => buildSample('darknet53', { width: 0.125, resolution: 32, classes: 10 });
  const concat = convert(src(), { to: 'csp', fusion: 'both', mergeOp: 'concat' }).model;
  const sum = convert(src(), { to: 'csp', fusion: 'both', mergeOp: 'sum' }).model;
  const t2 = concat.graph.nodes.find((n) => /csp\.s0\/transition2\/Conv$/.test(n.name))!;
  const w = concat.graph.constantTensor(t2.inputs[1])!;
  assert.equal(w.dims, [8, 8, 1, 1]);
  const wa = sum.graph.nodes.find((n) => /csp\.s0\/transition2\/Conv$/.test(n.name))!;
  const wb = sum.graph.nodes.find((n) => /csp\.s0\/transition2\/part2\/Conv$/.test(n.name))!;
  const A = sum.graph.constantTensor(wa.inputs[1])!;
  const B = sum.graph.constantTensor(wb.inputs[1])!;
  assert.equal(A.dims, [8, 4, 1, 1]);
  assert.equal(B.dims, [8, 4, 1, 1]);
  assert.is(wb.inputs.filter(Boolean).length, 2, 'the part-2 conv has no bias');
  assert.ok(wa.inputs[2], 'the part-1 conv carries the bias');
  const W = floats(concat, t2);
  const Wa = floats(sum, wa);
  const Wb = floats(sum, wb);
  for (let o = 0; o < 8; o++) {
    for (let i = 0; i < 4; i++) {
      assert.is(Wa[o * 4 + i], W[o * 8 + i], `W_a[${o}, ${i}]`);
      assert.is(Wb[o * 4 + i], W[o * 8 + 4 + i], `W_b[${o}, ${i}]`);
    }
  }
  // the Add reads the two convs, and its output feeds the stage's activation (LeakyRelu)
  const add = sum.graph.nodes.find((n) => /csp\.s0\/transition2\/Add$/.test(n.name))!;
  assert.equal(add.inputs.map((v) => v!.producer!.name), [wa.name, wb.name]);
  assert.equal(add.outputs[0]!.consumers.map((u) => u.node.opType), ['LeakyRelu']);
  // negative: the concat form has neither the part-2 conv nor the Add
  assert.not.ok(concat.graph.nodes.some((n) => /transition2\/(part2\/Conv|Add)$/.test(n.name)));
});

function floats(m: Model, conv: Node): Float32Array {
  return Float32Array.from(floatValues(m.graph.constantTensor(conv.inputs[1])!, conv.name));
}

test('every fixture: the producer split computes what the slice split computes (onnxruntime), with the same weights', async () => {
  for (const f of fixtures()) {
    const source = loadModel(fixturePath(f.model));
    const input = readNpy(fixturePath(f.sampleInput));
    const feed = { data: input.data, dims: input.shape };
    for (const fusion of FUSIONS) {
      const what = `${f.model} ${fusion}`;
      const slice = convert(source, { to: 'csp', fusion, splitOp: 'slice' });
      const producer = convert(source, { to: 'csp', fusion, splitOp: 'producer' });
      // the same layers divided differently: params, MACs and the carried-over share are equal
      assert.is(producer.report.after.params, slice.report.after.params, what);
      assert.is(producer.report.after.macs, slice.report.after.macs, what);
      assert.is(producer.report.weightsCarriedOver, slice.report.weightsCarriedOver, what);
      // each stage split by its producer has no Split; a stage that falls back says so
      const fellBack = producer.report.warnings.filter((w) => /--split-op producer: .*split with a Split instead/.test(w)).length;
      const stages = producer.report.converted.filter((c) => /^s\d+$/.test(c.block)).length;
      assert.is(ops(producer.model, 'Split').length, ops(slice.model, 'Split').length - (stages - fellBack), what);
      assert.is(producer.report.converted.filter((c) => /written once per part/.test(c.change)).length, stages - fellBack, what);
      const ys = (await outputs(slice.model, feed))[f.output];
      const yp = (await outputs(producer.model, feed))[f.output];
      assertClose(yp.data, ys.data, what);
    }
  }
});

test('the producer split divides the layer\'s filters: part 1 the kept ones, part 2 the rest, each once', () => {
  // Darknet-53 at 1/8 width: stage 0's input is the stride-2 conv's 16 channels, 8 per part
  const src = buildSample('darknet53', { width: 0.125, resolution: 32, classes: 10 });
  const before = new Map(src.graph.nodes.filter((n) => n.opType === 'Conv').map((n) => [n.name, floats(src, n)]));
  const { model, report } = convert(src, { to: 'csp', fusion: 'both', splitOp: 'producer' });
  assert.equal(report.warnings.filter((w) => /split-op producer/.test(w)), []);
  const part2 = model.graph.nodes.find((n) => /csp\.s0\/part2\/Conv$/.test(n.name))!;
  // the part-2 copy reads what the original reads, and the original is still there, narrowed
  const original = model.graph.nodes.find((n) => n.opType === 'Conv' && n !== part2 && n.inputs[0] === part2.inputs[0])!;
  const W = before.get(original.name)!;
  const rowLen = W.length / 16;
  const rows = (a: Float32Array) => Array.from({ length: a.length / rowLen }, (_, r) => a.slice(r * rowLen, (r + 1) * rowLen).join(','));
  const all = rows(W);
  const p1 = rows(floats(model, original));
  const p2 = rows(floats(model, part2));
  assert.is(p1.length, 8);
  assert.is(p2.length, 8);
  assert.equal([...p1, ...p2].sort(), [...all].sort(), 'every filter once, in one part or the other');
  // negative: the slice split keeps the layer whole (reordered) and adds a Split
  const slice = convert(buildSample('darknet53', { width: 0.125, resolution: 32, classes: 10 }), { to: 'csp', fusion: 'both', splitOp: 'slice' }).model;
  assert.not.ok(slice.graph.nodes.some((n) => /part2\/Conv$/.test(n.name)));
  assert.ok(ops(slice, 'Split').length > 0);
});

test('the producer split divides an earlier stage\'s new transition too, and falls back to a Split where it cannot, saying why', async () => {
  const src = () => buildSample('vovnet39', { width: 0.25, resolution: 64, classes: 10 });
  const feed = { data: Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.cos(i * 0.11)), dims: [1, 3, 64, 64] };
  // VoVNet: stages 1-3 read the previous stage's new transition 2 (conv + Relu) through a MaxPool:
  // that transition is divided once its stage is written
  const both = convert(src(), { to: 'csp', fusion: 'both', splitOp: 'producer' });
  assert.equal(both.report.warnings.filter((w) => /split-op producer/.test(w)), []);
  assert.is(ops(both.model, 'Split').length, 0);
  const sliced = convert(src(), { to: 'csp', fusion: 'both', splitOp: 'slice' });
  assert.is(both.report.after.params, sliced.report.after.params);
  assertClose((await outputs(both.model, feed)).logits.data, (await outputs(sliced.model, feed)).logits.data, 'vovnet39 producer vs slice');
  // fusion last: the previous stage ends in its Concat, which cannot be divided: stages 1-3 are sliced
  const last = convert(src(), { to: 'csp', fusion: 'last', splitOp: 'producer' }).report;
  const fell = last.warnings.filter((w) => /--split-op producer: .*output of a stage converted before it, a Concat; split with a Split instead/.test(w));
  assert.is(fell.length, 3, last.warnings.join('\n'));
  assert.ok(last.converted.some((c) => /written once per part/.test(c.change)), 'stage 0 is divided');
  assert.ok(last.converted.some((c) => /Split \(the layers before it cannot be written per part: .*\) of/.test(c.change)), 'the others are sliced, and say why');
  // the default split op falls back without a warning (the stage's line says it)
  const quiet = convert(src(), { to: 'csp', fusion: 'last' }).report;
  assert.equal(quiet.warnings.filter((w) => /split-op producer/.test(w)), []);
  assert.ok(quiet.converted.some((c) => /cannot be written per part/.test(c.change)));
  // negative: where every stage can be divided (ResNet-50: the entry block's Add, both branches) no warning
  const ok = convert(buildSample('resnet50', { width: 0.25, resolution: 64, classes: 10 }), { to: 'csp', splitOp: 'producer' }).report;
  assert.equal(ok.warnings.filter((w) => /split-op producer/.test(w)), []);
});

test('the recorded structure reads the sum form as the concat form: same stages, the added nodes in them', () => {
  const src = () => buildSample('resnet50', { width: 0.25, resolution: 64, classes: 10 });
  const a = recognize(convert(src(), { to: 'csp', mergeOp: 'concat' }).model);
  const b = recognize(convert(src(), { to: 'csp', mergeOp: 'sum' }).model);
  assert.is(b.stages.length, a.stages.length);
  assert.equal(b.stages.map((s) => s.blocks.length), a.stages.map((s) => s.blocks.length));
  assert.is(b.unmatched.length, 0, b.unmatched.join(', '));
});

test('fusion last ends in the concat: sum is refused when asked with it, and the default fusion falls back to it with a note', () => {
  const m = loadModel(fixturePath('resnet18-w25.onnx'));
  throwsArg(() => convert(m, { to: 'csp', fusion: 'last', mergeOp: 'sum' }), /--merge-op sum needs a transition/);
  // negative beside it: fusion last with the concat merge, or the merge left out, converts
  assert.is(convert(m, { to: 'csp', fusion: 'last', mergeOp: 'concat' }).report.options.mergeOp, 'concat');
  assert.is(convert(m, { to: 'csp', fusion: 'last' }).report.options.mergeOp, 'concat');
  // a model where CSPNet's fusion both grows the model: the default fusion chooses last or first
  const grown = buildSample('vovnet39', { width: 0.25, resolution: 64, classes: 10 });
  const r = convert(grown, { to: 'csp', mergeOp: 'sum' }).report;
  if (r.options.fusion === 'last') {
    assert.is(r.options.mergeOp, 'concat');
    assert.ok(r.notes.some((n) => /--merge-op sum has no transition to split/.test(n)), r.notes.join('\n'));
  } else {
    assert.is(r.options.mergeOp, 'sum');
  }
});

test('ELAN with the CSP split takes both forms: same outputs as its concat / slice form', async () => {
  const src = () => buildSample('darknet53', { width: 0.25, resolution: 64, classes: 10 });
  const feed = { data: Float32Array.from({ length: 3 * 64 * 64 }, (_, i) => Math.sin(i * 0.37)), dims: [1, 3, 64, 64] };
  const a = convert(src(), { to: 'elan', stack: 1, width: 0.5, csp: true, fusion: 'both', mergeOp: 'concat' });
  const b = convert(src(), { to: 'elan', stack: 1, width: 0.5, csp: true, fusion: 'both', mergeOp: 'sum' });
  const c = convert(src(), { to: 'elan', stack: 1, width: 0.5, csp: true, fusion: 'both', splitOp: 'producer' });
  assert.is(b.report.options.mergeOp, 'sum');
  assert.ok(b.report.converted.some((x) => /sum merge/.test(x.change)));
  assert.is(b.report.after.params, a.report.after.params);
  assert.is(c.report.after.params, a.report.after.params);
  assert.is(ops(c.model, 'Split').length, 0);
  const ya = (await outputs(a.model, feed)).logits.data;
  assertClose((await outputs(b.model, feed)).logits.data, ya, 'elan --csp, sum merge');
  assertClose((await outputs(c.model, feed)).logits.data, ya, 'elan --csp, producer split');
});

function throwsArg(fn: () => unknown, re: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.instance(e, GptError);
    assert.is((e as GptError).code, 'E_ARG');
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable('expected E_ARG');
}

test('bad input: an unknown merge op, or one given to PRN', () => {
  throwsArg(() => checkCspOptions({ mergeOp: 'mul' }), /--merge-op 'mul'/);
  throwsArg(() => convert(loadModel(fixturePath('resnet18-w25.onnx')), { to: 'prn', mergeOp: 'sum' } as unknown as ConvertOptions), /mergeOp/);
  // negative: both known ops pass the check
  assert.is(checkCspOptions({ mergeOp: 'sum' }).mergeOp, 'sum');
  assert.is(checkCspOptions({ mergeOp: 'concat' }).mergeOp, 'concat');
});

test.run();
