/**
 * PRN's parts form written as the architecture for the PyTorch export (src/export/prn-whole.ts), no
 * Python needed. The reference is the split form (convert --emit split): prn.ts writes it from the
 * plain model with no parts at all, whole tensors and the masked residual as
 * Concat(Split(B)[0] + S[:k], Split(B)[1]). Joining the parts form must give that same network:
 *
 *   parts:  yA = Relu(Add(Conv/part0(x), S[:k]))   yB = Relu(Conv/part1(x))
 *           z  = Conv/in0(yA) + Conv/in1(yB)   (+ a second BN on BN-as-node models)
 *   whole:  y  = Relu(Concat(Split(Conv(x))[0] + S[:k], Split(Conv(x))[1]))    z = Conv(y)
 *
 * and onnxruntime gives the joined graph the parts graph's outputs.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exportPytorch } from '../../src/export/pytorch';
import { prnPartsToWhole } from '../../src/export/prn-whole';
import { readSafetensors } from '../../src/export/safetensors';
import type { Model } from '../../src/ir/model';
import { floatTensor, floatValues } from '../../src/ir/float-data';
import { loadModel } from '../../src/onnx/io';
import { convert } from '../../src/passes/convert';
import { createSession, runFloat } from '../../src/profile/ort';
import { compareOutputs } from '../../src/verify/compare';
import { fixturePath, readNpy } from '../helpers';

/** model.py without its first line (it names the source model). */
const body = (code: string) => code.split('\n').slice(1).join('\n');

async function outputs(model: Model, input: string): Promise<Float32Array> {
  const s = await createSession(model);
  const x = readNpy(fixturePath(input));
  const out = await runFloat(s, { [s.inputNames[0]]: { data: x.data, dims: x.shape } });
  const o = out[s.outputNames[0]].data;
  await s.release();
  return o;
}

// ResNet-18 with BN folded into the convs, ResNet-50 with BN nodes (the parts form's second BN)
for (const [file, convs, blocks] of [['resnet18-w25', 20, 8], ['resnet50-w25-bn', 53, 16]] as const) {
  test(`${file}: the parts form (the default) exports as the split form does: the same model.py and weights, ${convs} Conv2d as the architecture has, ${blocks} MaskedResidual`, () => {
    const src = loadModel(fixturePath(`${file}.onnx`));
    const parts = convert(src, { to: 'prn' }).model;
    assert.ok(parts.graph.nodes.some((n) => /\/in1$/.test(n.name)), 'the default conversion is not in parts');
    const split = exportPytorch(convert(src, { to: 'prn', emit: 'split' }).model);
    const whole = exportPytorch(parts);
    assert.is(body(whole.code), body(split.code));
    const a = readSafetensors(whole.weights), b = readSafetensors(split.weights);
    assert.equal(Object.keys(a.header).sort(), Object.keys(b.header).sort());
    for (const n of Object.keys(a.header)) assert.ok(Buffer.from(a.data(n)).equals(Buffer.from(b.data(n))), n);
    assert.is(whole.modules.Conv2d, convs);
    assert.is(Object.entries(whole.blocks).filter(([k]) => k.startsWith('MaskedResidual')).reduce((n, [, c]) => n + c, 0), blocks);
    assert.not.match(whole.code, /part[01]|\bin[01]\b|_in[01]/);
    assert.ok(whole.notes.some((n) => /written as the architecture/.test(n)), whole.notes.join('\n'));
    // as is, on request: the partial convs, each with its BN
    const kept = exportPytorch(parts, { prnParts: 'keep' });
    assert.match(kept.code, /self\.in1 = nn\.Conv2d/);
    assert.ok(kept.modules.Conv2d > convs);
  });
}

test('resnet50-w25-bn: the joined graph gives onnxruntime the parts graph\'s outputs (1e-4 relative)', async () => {
  const parts = convert(loadModel(fixturePath('resnet50-w25-bn.onnx')), { to: 'prn' }).model;
  const joined = prnPartsToWhole(parts)!;
  assert.is(joined.outcome.notes.length, 0, joined.outcome.notes.join('\n'));
  assert.not.ok(joined.model.graph.nodes.some((n) => /\/(part|in)[01]$|\/parts\//.test(n.name)));
  const d = compareOutputs(await outputs(joined.model, 'resnet50-w25-bn.input.npy'), await outputs(parts, 'resnet50-w25-bn.input.npy'));
  assert.ok(d.withinTolerance, `${d.maxAbsDiff} > ${d.tolerance}`);
});

test('the negative case: a second BN that is not a zero-shift copy of the first is not dropped: that conv stays in parts and a note says why; the outputs stay the same', async () => {
  const parts = convert(loadModel(fixturePath('resnet50-w25-bn.onnx')), { to: 'prn' }).model;
  const g = parts.graph;
  const bn = g.nodes.find((n) => n.opType === 'BatchNormalization' && /\/in1$/.test(n.name) && n.inputs[0]?.producer?.opType === 'Conv')!;
  assert.ok(bn, 'no second BN in the parts form');
  // as after fine-tuning the parts form: its own shift
  const t = g.constantTensor(bn.inputs[2])!;
  bn.setInput(2, g.addInitializer(floatTensor(g.uniqueName('shifted'), t.dims, floatValues(t, t.name).map(() => 0.25))));
  const joined = prnPartsToWhole(parts)!;
  assert.ok(joined.outcome.notes.some((n) => n.includes(bn.name) && /not a copy/.test(n)), joined.outcome.notes.join('\n'));
  assert.ok(joined.model.graph.nodes.some((n) => n.name === bn.name), 'the edited BN was merged away');
  const d = compareOutputs(await outputs(joined.model, 'resnet50-w25-bn.input.npy'), await outputs(parts, 'resnet50-w25-bn.input.npy'));
  assert.ok(d.withinTolerance, `${d.maxAbsDiff} > ${d.tolerance}`);
  // a model in no parts form is left to the exporter as it is
  assert.is(prnPartsToWhole(convert(loadModel(fixturePath('resnet50-w25-bn.onnx')), { to: 'prn', emit: 'mask' }).model), null);
});

test.run();
