/**
 * What src/export/prn-whole.ts must not join, and what it must keep (no Python needed): the parts
 * form is recognised by gpt's conversion record or by the input-split conv itself, never by a node's
 * name alone; layers whose parts are not one layer's (other attributes, a bias on one part, parts
 * of two layers, grouped convs, other element types) stay in parts with a note and the outputs stay
 * the same (onnxruntime); weights keep their element type bit for bit; a conversion whose record the
 * shipped rules do not read back keeps its record.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { analyzeModel } from '../../src/analysis/analyze';
import { recordedStructure, STRUCTURE_KEY } from '../../src/analysis/recorded-structure';
import { loadRules } from '../../src/analysis/rules';
import { exportPytorch } from '../../src/export/pytorch';
import { hasPrnParts, prnPartsToWhole } from '../../src/export/prn-whole';
import type { Node } from '../../src/ir/graph';
import type { Model } from '../../src/ir/model';
import { Tensor } from '../../src/ir/tensor';
import { loadModel } from '../../src/onnx/io';
import { DataType } from '../../src/onnx/schema';
import { convert } from '../../src/passes/convert';
import { createSession, runFloat } from '../../src/profile/ort';
import { compareOutputs } from '../../src/verify/compare';
import { fixturePath, readNpy } from '../helpers';

const parts = (file: string, opts: Parameters<typeof convert>[1] = { to: 'prn' }) => convert(loadModel(fixturePath(`${file}.onnx`)), opts).model;
const node = (m: Model, name: string): Node => {
  const n = m.graph.nodes.find((x) => x.name === name);
  assert.ok(n, `no node '${name}'`);
  return n!;
};

async function outputs(model: Model, input: string): Promise<Float32Array> {
  const s = await createSession(model);
  const x = readNpy(fixturePath(input));
  const out = await runFloat(s, { [s.inputNames[0]]: { data: x.data, dims: x.shape } });
  const o = out[s.outputNames[0]].data;
  await s.release();
  return o;
}

/** The edited parts model joined: a note matching `note` names `names[0]`, those nodes stay, and onnxruntime gives both the same outputs. */
async function staysInParts(m: Model, file: string, note: RegExp, names: string[]): Promise<void> {
  const joined = prnPartsToWhole(m)!;
  assert.ok(joined, 'nothing joined at all');
  assert.ok(joined.outcome.notes.some((n) => n.includes(names[0]) && note.test(n)), joined.outcome.notes.join('\n'));
  for (const n of names) assert.ok(joined.model.graph.nodes.some((x) => x.name === n), `'${n}' was joined`);
  const d = compareOutputs(await outputs(joined.model, `${file}.input.npy`), await outputs(m, `${file}.input.npy`));
  assert.ok(d.withinTolerance, `${d.maxAbsDiff} > ${d.tolerance}`);
}

test('a node\'s name is no evidence: a plain ResNet-18 with nodes named `.../parts/Add` and `x/part0` exports unchanged, no PRN note, its names kept', () => {
  const m = loadModel(fixturePath('resnet18-w25.onnx'));
  const add = m.graph.nodes.find((n) => n.opType === 'Add')!;
  add.name = '/layer1/layer1.0/conv1/Conv/parts/Add';
  const conv = m.graph.nodes.find((n) => n.opType === 'Conv')!;
  conv.name = '/mine/part0';
  assert.not.ok(hasPrnParts(m));
  assert.is(prnPartsToWhole(m), null);
  const e = exportPytorch(m);
  assert.not.ok(e.notes.some((n) => /PRN/.test(n)), e.notes.join('\n'));
  assert.is(e.code, exportPytorch(m, { prnParts: 'keep' }).code);
});

test('without gpt\'s record the input-split conv itself (Conv `/in0` + Conv `/in1` of one layer -> Add) is the evidence: ResNet-18\'s parts form with its metadata stripped still joins all 20 convs; with the `/in1` convs renamed it is not recognised', () => {
  const m = parts('resnet18-w25');
  m.setMetadata('gpt.conversion', '');
  m.setMetadata(STRUCTURE_KEY, '');
  assert.ok(hasPrnParts(m));
  assert.is(prnPartsToWhole(m)!.outcome.layers, 20);
  for (const n of m.graph.nodes) if (/\/in1$/.test(n.name)) n.name = n.name.replace(/\/in1$/, '/second');
  assert.not.ok(hasPrnParts(m));
  assert.is(prnPartsToWhole(m), null);
});

test('the count is of convs written whole (BNs, activations not counted): ResNet-18 20 (stem 1, 8 conv2 split by output, 8 conv1 and 3 projections split by input); ResNet-50-bn 34 (16 conv3, 15 conv1 after the first block, 3 projections; the first block\'s input is not in parts); the export\'s note says it', () => {
  assert.is(prnPartsToWhole(parts('resnet18-w25'))!.outcome.layers, 20);
  const m = parts('resnet50-w25-bn');
  assert.is(prnPartsToWhole(m)!.outcome.layers, 34);
  assert.ok(exportPytorch(m).notes.some((n) => /: 34 conv\(s\) written whole from their parts, 16 masked residual/.test(n)));
});

test('two output-part BNs with different epsilon stay in parts with a note; onnxruntime\'s outputs unchanged', async () => {
  const m = parts('resnet50-w25-bn');
  const b1 = m.graph.nodes.find((n) => n.opType === 'BatchNormalization' && /\/part1$/.test(n.name))!;
  const b0 = node(m, b1.name.replace(/part1$/, 'part0'));
  b1.setAttr('epsilon', { float: 1e-3 });
  await staysInParts(m, 'resnet50-w25-bn', /attributes differ/, [b0.name, b1.name]);
});

test('a bias on only one output part: that layer stays in parts with a note; outputs unchanged', async () => {
  const m = parts('resnet18-w25');
  const c1 = m.graph.nodes.find((n) => n.opType === 'Conv' && /conv2\/Conv\/part1$/.test(n.name) && n.inputs[2])!;
  c1.setInput(2, null);
  await staysInParts(m, 'resnet18-w25', /input 2 on one part only/, [c1.name.replace(/part1$/, 'part0'), c1.name]);
});

test('`/in0` and `/in1` convs of different layers summed by one Add stay as they are with a note; outputs unchanged', async () => {
  const m = parts('resnet18-w25');
  const c1 = m.graph.nodes.find((n) => n.opType === 'Conv' && /layer1\.1\/conv1\/Conv\/in1$/.test(n.name))!;
  c1.name = '/layer1/layer1.1/other/Conv/in1';
  await staysInParts(m, 'resnet18-w25', /parts of different layers/, [c1.name.replace('other', 'conv1').replace(/in1$/, 'in0'), c1.name]);
});

test('grouped convs are not concatenated: `/in0` + `/in1` with group 2, and `/part0` + `/part1` with group 2, stay with a note', () => {
  const m = parts('resnet18-w25');
  const in0 = node(m, '/layer1/layer1.1/conv1/Conv/in0'), in1 = node(m, '/layer1/layer1.1/conv1/Conv/in1');
  const p0 = node(m, '/layer1/layer1.1/conv2/Conv/part0'), p1 = node(m, '/layer1/layer1.1/conv2/Conv/part1');
  // valid grouped convs: half the input channels per filter
  for (const n of [in0, in1, p0, p1]) {
    const [o, i, kh, kw] = m.graph.constantTensor(n.inputs[1])!.dims;
    n.setInput(1, m.graph.addInitializer(Tensor.float32(m.graph.uniqueName('grouped'), [o, i / 2, kh, kw], new Float32Array(o * (i / 2) * kh * kw).fill(0.01))));
    n.setAttr('group', 2);
  }
  const j = prnPartsToWhole(m)!;
  assert.ok(j.outcome.notes.some((n) => n.includes('conv1/Conv/parts/Add') && /group 2/.test(n)), j.outcome.notes.join('\n'));
  assert.ok(j.outcome.notes.some((n) => n.includes(p0.name) && /group 2/.test(n)), j.outcome.notes.join('\n'));
  for (const n of [in0, in1, p0, p1]) assert.ok(j.model.graph.nodes.some((x) => x.name === n.name), n.name);
  // the other layers are still joined
  assert.ok(j.outcome.layers >= 15, `${j.outcome.layers}`);
});

test('DOUBLE weights keep their values bit for bit (concatenated as stored, biases summed in double); parts of two element types stay with a note', () => {
  const m = parts('resnet18-w25');
  const g = m.graph;
  const in0 = node(m, '/layer1/layer1.1/conv1/Conv/in0'), in1 = node(m, '/layer1/layer1.1/conv1/Conv/in1');
  const [O, I0, kh, kw] = g.constantTensor(in0.inputs[1])!.dims, I1 = g.constantTensor(in1.inputs[1])!.dims[1];
  const inner = kh * kw;
  // values float32 cannot hold: 0.1 + a tiny step per element
  const d0 = Float64Array.from({ length: O * I0 * inner }, (_, i) => 0.1 + i * 1e-12);
  const d1 = Float64Array.from({ length: O * I1 * inner }, (_, i) => -0.1 - i * 1e-12);
  in0.setInput(1, g.addInitializer(Tensor.create('w0d', DataType.DOUBLE, [O, I0, kh, kw], d0)));
  in1.setInput(1, g.addInitializer(Tensor.create('w1d', DataType.DOUBLE, [O, I1, kh, kw], d1)));
  in0.setInput(2, g.addInitializer(Tensor.create('b0d', DataType.DOUBLE, [O], new Float64Array(O).fill(0.1))));
  in1.setInput(2, g.addInitializer(Tensor.create('b1d', DataType.DOUBLE, [O], new Float64Array(O).fill(0.2))));
  const j = prnPartsToWhole(m)!;
  const conv = j.model.graph.nodes.find((n) => n.opType === 'Conv' && n.name === '/layer1/layer1.1/conv1/Conv')!;
  assert.ok(conv, j.outcome.notes.join('\n'));
  const w = j.model.graph.constantTensor(conv.inputs[1])!;
  assert.is(w.dataType, DataType.DOUBLE);
  const expected = new Float64Array(O * (I0 + I1) * inner);
  for (let o = 0; o < O; o++) {
    expected.set(d0.subarray(o * I0 * inner, (o + 1) * I0 * inner), o * (I0 + I1) * inner);
    expected.set(d1.subarray(o * I1 * inner, (o + 1) * I1 * inner), (o * (I0 + I1) + I0) * inner);
  }
  assert.equal([...(w.data() as Float64Array)], [...expected]);
  const b = j.model.graph.constantTensor(conv.inputs[2])!;
  assert.is(b.dataType, DataType.DOUBLE);
  assert.ok([...(b.data() as Float64Array)].every((v) => v === 0.1 + 0.2), 'bias not summed in double');
  // the negative case: one part double, the other float
  const m2 = parts('resnet18-w25');
  node(m2, '/layer1/layer1.1/conv1/Conv/in0').setInput(1, m2.graph.addInitializer(Tensor.create('w0d', DataType.DOUBLE, [O, I0, kh, kw], d0)));
  const j2 = prnPartsToWhole(m2)!;
  assert.ok(j2.outcome.notes.some((n) => /different element types/.test(n)), j2.outcome.notes.join('\n'));
  assert.ok(j2.model.graph.nodes.some((n) => n.name === '/layer1/layer1.1/conv1/Conv/in0'));
});

test('a conversion with its own rules (resnet-basic under another name) keeps its record, names mapped to the joined layers, with a note; the default conversion gets the rules\' reading, no note', () => {
  const rules = loadRules().map((r) => (r.name === 'resnet-basic' ? { ...r, name: 'my-basic' } : r));
  const custom = prnPartsToWhole(parts('resnet18-w25', { to: 'prn', rules }))!;
  assert.ok(custom.outcome.notes.some((n) => /conversion's record is kept/.test(n)), custom.outcome.notes.join('\n'));
  assert.ok(recordedStructure(custom.model), 'the kept record names nodes that are gone');
  assert.not.match(custom.model.metadata()[STRUCTURE_KEY], /\/(part|in)[01]"|\/parts\//);
  // ResNet-18: 4 stages of 2 basic blocks, as the conversion recorded them
  assert.equal(analyzeModel(custom.model).report.stages.map((s) => s.blockRules['my-basic']), [2, 2, 2, 2]);
  const plain = prnPartsToWhole(parts('resnet18-w25'))!;
  assert.not.ok(plain.outcome.notes.some((n) => /record is kept/.test(n)), plain.outcome.notes.join('\n'));
  assert.equal(analyzeModel(plain.model).report.stages.map((s) => s.blockRules['resnet-basic']), [2, 2, 2, 2]);
});

test.run();
