/**
 * Model <-> proto: unnamed nodes are named once at load (stable through rewiring, unique against the
 * model's own names, written on save), the digest of what was loaded, IR < 4 input defaults.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GptError } from '../../src/errors';
import { Graph, floatType } from '../../src/ir/graph';
import { Model, modelFromProto } from '../../src/ir/model';
import { Tensor } from '../../src/ir/tensor';
import { validateGraph } from '../../src/ir/validate';
import { encodeModel } from '../../src/onnx/codec';
import { loadModel, saveModel, saveModelToBuffer } from '../../src/onnx/io';
import { DataType, ModelProto, NodeProto, TensorProto } from '../../src/onnx/schema';
import { sha256Of } from '../../src/passes/convert';
import { fixturePath, tmpDir } from '../helpers';

const node = (opType: string, input: string[], output: string[], name?: string): NodeProto => ({
  opType, input, output, name, attribute: [], metadataProps: [], deviceConfigurations: [],
});
const vi = (name: string, dims: number[] = [2]) => ({
  name, type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } }, metadataProps: [],
});
function modelProto(nodes: NodeProto[], inputs: string[], outputs: string[], initializer: TensorProto[] = [], irVersion = 8): ModelProto {
  return {
    irVersion, opsetImport: [{ domain: '', version: 13 }], metadataProps: [], trainingInfo: [], functions: [], configuration: [],
    graph: { name: 'g', node: nodes, initializer, sparseInitializer: [], input: inputs.map((n) => vi(n)), output: outputs.map((n) => vi(n)), valueInfo: [], quantizationAnnotation: [], metadataProps: [] },
  };
}

/**
 *   x ─ Relu ─ a ─ Relu ─ b ─ Neg ─ y      (the two Relus and the Neg unnamed; another node is named 'Relu')
 *   x ─ Abs 'Relu' ─ c
 */
function unnamed(): Uint8Array {
  return encodeModel(modelProto([
    node('Relu', ['x'], ['a']), node('Relu', ['a'], ['b']), node('Neg', ['b'], ['y']), node('Abs', ['x'], ['c'], 'Relu'),
  ], ['x'], ['y', 'c']));
}

test('unnamed nodes get unique names once, at load, never an existing node name', () => {
  const m = loadModel(unnamed());
  const names = m.graph.nodes.map((n) => n.name);
  assert.equal(names, ['Relu_1', 'Relu_2', 'Neg', 'Relu']);
  assert.is(new Set(names).size, names.length);
  assert.equal(validateGraph(m.graph), []);
  // negative: a model whose nodes all have names keeps them as they are
  const named = loadModel(fixturePath('resnet18-w25.onnx'));
  assert.ok(named.graph.nodes.every((n) => n.name.startsWith('/')), 'exporter names untouched');
});

test('a generated name stays when the graph is rewired', () => {
  //   Relu_2 read a; rewire it to read x and to write a new value: still Relu_2
  const m = loadModel(unnamed());
  const g = m.graph;
  const relu2 = g.nodes[1];
  relu2.setInput(0, g.value('x'));
  const fresh = g.newValue('b2');
  g.replaceAllUses(relu2.outputs[0]!, fresh);
  relu2.setOutput(0, fresh);
  assert.is(relu2.name, 'Relu_2');
  assert.equal(g.nodes.map((n) => n.name), ['Relu_1', 'Relu_2', 'Neg', 'Relu']);
});

test('generated names are written on save and read back the same', () => {
  const bytes = saveModelToBuffer(loadModel(unnamed()));
  const again = loadModel(bytes);
  assert.equal(again.graph.nodes.map((n) => n.proto.name), ['Relu_1', 'Relu_2', 'Neg', 'Relu']);
  // and a second round trip is byte-identical (every node has a name now)
  assert.ok(Buffer.compare(saveModelToBuffer(again), bytes) === 0);
});

test('sourceSha256 is the digest of the bytes loaded, not of the file now or of the model now', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'm.onnx');
  const original = fs.readFileSync(fixturePath('resnet18-w25.onnx'));
  fs.writeFileSync(file, original);
  const want = crypto.createHash('sha256').update(original).digest('hex');
  const m = loadModel(file);
  fs.writeFileSync(file, unnamed()); // the file changes after the load
  m.graph.addOutput(m.graph.nodes[3].outputs[0]!); // and the model in memory
  assert.is(m.sourceSha256, want);
  assert.is(sha256Of(m), want, 'convert records the same digest');
  // from bytes: the digest of those bytes
  const b = unnamed();
  assert.is(loadModel(b).sourceSha256, crypto.createHash('sha256').update(b).digest('hex'));
  // negative: a model built in memory has none; convert then hashes what it would save
  const g = new Graph();
  g.addOutput(g.addNode({ opType: 'Neg', inputs: [g.addInput('x', floatType([2]))], outputs: ['y'] }).outputs[0]!);
  const built = new Model({ irVersion: 8, opsetImport: [{ domain: '', version: 13 }], metadataProps: [], trainingInfo: [], functions: [], configuration: [] }, g);
  assert.is(built.sourceSha256, undefined);
  assert.is(sha256Of(built), crypto.createHash('sha256').update(saveModelToBuffer(built)).digest('hex'));
});

test('IR < 4: an initializer listed among the inputs loads as that input\'s default', () => {
  //   w (input and initializer) ─┐
  //   x ───────────────────────── Add ─ y
  const w: TensorProto = { ...Tensor.float32('w', [2], Float32Array.of(1, 2)).proto };
  const proto = modelProto([node('Add', ['x', 'w'], ['y'], 'add')], ['x', 'w'], ['y'], [w], 3);
  const m = modelFromProto(proto);
  const wv = m.graph.values.get('w')!;
  assert.ok(m.graph.isGraphInput(wv) && wv.isInitializer);
  assert.equal(validateGraph(m.graph), []);
  assert.ok(Buffer.compare(saveModelToBuffer(loadModel(encodeModel(proto))), encodeModel(proto)) === 0);
  // negative: through the API, an initializer may not silently take over an input
  assert.throws(() => m.graph.addInitializer(Tensor.float32('x', [2], new Float32Array(2))), (e: GptError) => e.code === 'E_GRAPH');
});

test('a model saved to a file and loaded again keeps names and digest of the new file', () => {
  const dir = tmpDir();
  const out = path.join(dir, 'named.onnx');
  saveModel(loadModel(unnamed()), out);
  const m = loadModel(out);
  assert.equal(m.graph.nodes.map((n) => n.name), ['Relu_1', 'Relu_2', 'Neg', 'Relu']);
  assert.is(m.sourceSha256, crypto.createHash('sha256').update(fs.readFileSync(out)).digest('hex'));
});

test.run();
