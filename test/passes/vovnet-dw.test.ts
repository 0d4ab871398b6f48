/**
 * Depthwise OSA modules (VoVNet _dw: each layer a depthwise 3x3 then a pointwise 1x1, timm's
 * SeparableConvNormAct) through every pass: the PyTorch exports under test/fixtures/ese-vovnet19b-dw
 * (written by its make.py; the expected outputs are torch's), and tiny stages with hand counts.
 * A depthwise conv keeps group = channels whatever a pass narrows.
 */
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { recognize } from '../../src/analysis/structure';
import { GptError } from '../../src/errors';
import type { Value } from '../../src/ir/graph';
import type { Model } from '../../src/ir/model';
import { loadModel, saveModelToBuffer } from '../../src/onnx/io';
import { convert, ConvertOptions } from '../../src/passes/convert';
import { createSession, runFloat } from '../../src/profile/ort';
import { Tiny } from '../fixtures/tiny-graph';
import { maxAbsDiff, readNpy, repoRoot } from '../helpers';

const DIR = path.join(repoRoot, 'test', 'fixtures', 'ese-vovnet19b-dw');
const at = (f: string) => path.join(DIR, f);
const MODELS = ['ese-vovnet19b-dw-w19', 'ese-vovnet19b-slim-dw-w19'];

async function run(m: Model, name: string): Promise<{ names: string[]; dims: number[]; data: Float32Array }> {
  const s = await createSession(saveModelToBuffer(m));
  const x = readNpy(at(`${name}.input.npy`));
  const y = (await runFloat(s, { [s.inputNames[0]]: { data: x.data, dims: x.shape } }))[s.outputNames[0]];
  return { names: [...s.inputNames, ...s.outputNames], dims: [...y.dims], data: y.data };
}

/** Every grouped conv of the model is depthwise-valid: group = input channels = weight rows / multiplier. */
function depthwiseValid(m: Model): number {
  let n = 0;
  for (const c of m.graph.nodes.filter((x) => x.opType === 'Conv' && x.int('group', 1) > 1)) {
    const w = m.graph.constantTensor(c.inputs[1])!.dims;
    assert.is(w[1], 1, `${c.name}: one input channel per group`);
    assert.is(c.int('group', 1), w[0], `${c.name}: group = channels`);
    n++;
  }
  return n;
}

for (const name of MODELS) {
  test(`${name}: every OSA module recognised (100%), the export equals torch's output in onnxruntime`, async () => {
    const m = loadModel(at(`${name}.onnx`));
    const s = recognize(m);
    assert.is(s.family, 'vovnet');
    assert.equal(s.stages.map((st) => st.blocks.map((b) => b.rule)), [['vovnet-osa'], ['vovnet-osa'], ['vovnet-osa'], ['vovnet-osa']]);
    assert.equal(s.unmatched, []);
    // 3 separable layers per module, 4 modules; the stem's 2 separable convs stay in the stem
    assert.is(s.stages.flatMap((st) => st.blocks).flatMap((b) => b.roles.conv).filter((n) => n.endsWith('conv_dw/Conv')).length, 12);
    assert.is(depthwiseValid(m), 14);
    const y = await run(m, name);
    const { diff, tol } = maxAbsDiff(y.data, readNpy(at(`${name}.output.npy`)).data);
    assert.ok(diff <= tol, `max abs diff ${diff} > ${tol}`);
  });

  test(`${name}: PRN writes it unchanged (no residual Add; the same output as torch), CSP and ELAN run with the same I/O, depthwise convs valid`, async () => {
    const src = loadModel(at(`${name}.onnx`));
    const expected = readNpy(at(`${name}.output.npy`));
    const prn = convert(src, { to: 'prn' });
    assert.ok(prn.report.warnings.some((w) => /no residual connections/.test(w)));
    assert.ok(maxAbsDiff((await run(prn.model, name)).data, expected.data).diff <= maxAbsDiff(expected.data, expected.data).tol);
    const csp = convert(src, { to: 'csp' });
    assert.equal(csp.report.coverage.left, []);
    assert.ok(csp.report.after.params < csp.report.before.params && csp.report.after.macs <= csp.report.before.macs);
    assert.is(depthwiseValid(csp.model), 14);
    // every stage has one module, already ELAN's form: written unchanged, said in a warning
    const elan = convert(src, { to: 'elan' });
    assert.ok(elan.report.warnings.some((w) => /ELAN has nothing to convert; the model is written unchanged/.test(w)));
    for (const m of [csp.model, elan.model]) {
      const y = await run(m, name);
      assert.equal(y.names, ['input', 'logits']);
      assert.equal(y.dims, expected.shape);
      assert.ok(y.data.every(Number.isFinite));
    }
  });
}

test('ese-vovnet19b-slim-dw: stage 0 has no 1x1 reduction (input 12 = layer width); CSP narrows its first depthwise conv to part 1 (6 channels, group 6)', () => {
  const { model, report } = convert(loadModel(at('ese-vovnet19b-slim-dw-w19.onnx')), { to: 'csp' });
  const node = (n: string) => model.graph.nodes.find((x) => x.name === n)!;
  const dims = (n: string) => model.graph.constantTensor(node(n).inputs[1])!.dims;
  const dw = '/stages/stages.0/block0/conv_mid.0/conv_dw/Conv';
  assert.equal(dims(dw), [6, 1, 3, 3]);
  assert.is(node(dw).int('group', 1), 6);
  // its pointwise conv reads the 6 kept channels and keeps the layer width 12; the next layers are untouched
  assert.equal(dims('/stages/stages.0/block0/conv_mid.0/conv_pw/Conv'), [12, 6, 1, 1]);
  assert.equal(dims('/stages/stages.0/block0/conv_mid.1/conv_dw/Conv'), [12, 1, 3, 3]);
  assert.match(report.converted.find((c) => c.block === 's0.b0')!.change, /depthwise conv\(s\) reading the input narrowed with it, group = channels \('.*conv_mid\.0\/conv_dw\/Conv' 6\)/);
});

// ---------------------------------------------------------------------------------------------
// Tiny depthwise stages (BN as a node: 2 params per channel, no MACs; 16x16 = 256 pixels)

/** One separable layer: depthwise 3x3 (no BN / act), then pointwise 1x1-BN-ReLU. */
function separable(t: Tiny, x: Value, name: string, c: number, multiplier = 1): Value {
  return t.convBnAct(t.conv(x, `${name}.dw`, c * multiplier, 3, { group: c }), `${name}.pw`, c, 1);
}

/**
 * Two _dw modules in one stage (timm cannot build this: its OsaBlock asserts no residual where a
 * reduction is needed, so a second _dw module needs residual off):
 *
 *   x(16) ─ red 1x1 -> 8 ─ sep ─ sep ─ Concat[x, a0, b0] (32) ─ T0 -> 16 ─ red 1x1 -> 8 ─ sep ─ sep ─ Concat[T0, a1, b1] (32) ─ T1 -> 16 ─ head
 */
function dwStage(): Model {
  const t = new Tiny(16);
  const module = (x: Value, p: string) => {
    const a = separable(t, t.convBnAct(x, `${p}.red`, 8, 1), `${p}.l0`, 8);
    const b = separable(t, a, `${p}.l1`, 8);
    return t.convBnAct(t.op('Concat', `${p}.concat`, [x, a, b], { axis: 1 }), `${p}.transition`, 16, 1);
  };
  t.head(module(module(t.x, 'm0'), 'm1'));
  return t.model();
}

// T0 removed: 32*16 + BN 32 = 544 params, 512*256 MACs; kept T1: 32 -> [x, a0, b0, a1, b1] = 48 inputs, +16*16 = +256
//   concat (default here, it does not grow): m1.red reads C0 (32): 8*(32 - 16) = +128 -> -544 + 128 + 256 = -160 params, (-512 + 128 + 256)*256 = -32768 MACs
//   last: m1.red reads b0 (8): 8*(8 - 16) = -64 -> -352 params, (-512 - 64 + 256)*256 = -81920 MACs
for (const [osaInput, params, macs, red] of [[undefined, -160, -32768, 32], ['last', -352, -81920, 8]] as const) {
  test(`two _dw modules, ELAN ${osaInput ?? 'default (concat)'}: the 1x1 reduction reads ${red} channels; ${params} params by hand; depthwise convs untouched`, async () => {
    const src = dwStage();
    const { model, report } = convert(src, { to: 'elan', ...(osaInput ? { osaInput } : {}) } as ConvertOptions);
    assert.is(report.after.params - report.before.params, params);
    assert.is(report.after.macs - report.before.macs, macs);
    assert.equal(model.graph.constantTensor(model.graph.nodes.find((n) => n.name === 'm1.red.conv')!.inputs[1])!.dims, [8, red, 1, 1]);
    assert.is(depthwiseValid(model), 4);
    for (const n of model.graph.nodes.filter((x) => x.name.endsWith('.dw'))) assert.equal(model.graph.constantTensor(n.inputs[1])!.dims, [8, 1, 3, 3]);
    const s = await createSession(saveModelToBuffer(model));
    const y = await runFloat(s, { x: { data: new Float32Array(16 * 16 * 16).fill(0.5), dims: [1, 16, 16, 16] } });
    assert.equal([...y[s.outputNames[0]].dims], [1, 10]);
  });
}

test('negative: a second _dw module without a reduction reads the module input with a depthwise conv: that stage keeps its transitions (E_PATTERN, nothing else)', () => {
  //   x(8) ─ sep ─ sep ─ Concat (24) ─ T0 -> 8 ─ sep(dw reads T0) ─ sep ─ Concat (24) ─ T1 -> 8 ─ head
  const t = new Tiny(8);
  const module = (x: Value, p: string) => {
    const a = separable(t, x, `${p}.l0`, 8);
    const b = separable(t, a, `${p}.l1`, 8);
    return t.convBnAct(t.op('Concat', `${p}.concat`, [x, a, b], { axis: 1 }), `${p}.transition`, 8, 1);
  };
  t.head(module(module(t.x, 'm0'), 'm1'));
  assert.throws(() => convert(t.model(), { to: 'elan' }), (e: GptError) => e.code === 'E_PATTERN' && /its first conv 'm1\.l0\.dw' is grouped/.test(e.message));
});

test('negative: a depthwise conv with channel multiplier 2 (16 filters over 8 groups) is not narrowed by CSP: the stage stays (E_PATTERN, nothing else), with the reason', () => {
  //   input conv -> 8 ─ MaxPool ─ [ sep (dw 8 -> 16, group 8; pw 16 -> 8) ─ sep ─ Concat[x, a, b] (24) ─ T -> 16 ] ─ head
  const t = new Tiny(3, 32);
  const x = t.op('MaxPool', 'pool', [t.convBnAct(t.x, 'stem', 8, 3, { stride: 2 })], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] });
  const a = separable(t, x, 'l0', 8, 2);
  const b = separable(t, a, 'l1', 8);
  t.head(t.convBnAct(t.op('Concat', 'concat', [x, a, b], { axis: 1 }), 'transition', 16, 1));
  assert.throws(() => convert(t.model(), { to: 'csp' }), (e: GptError) => e.code === 'E_PATTERN' && /s0: stage 0: 'l0\.dw' is a grouped conv; its channels cannot be narrowed/.test(e.message));
});

test.run();
