/**
 * Subgraphs are part of the graph: values an If branch (or a Loop / Scan body) reads from the outer
 * scope keep their producers alive (cleanup), order them (toposort), must be fed (validator), follow
 * a replaceAllUses, and their inner names are never handed out again (uniqueName).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { convert } from '../../src/passes/convert';
import { Graph, Node, Value, floatType } from '../../src/ir/graph';
import { Model } from '../../src/ir/model';
import { outerReads, renameOuterRead } from '../../src/ir/subgraph';
import { Tensor } from '../../src/ir/tensor';
import { validateGraph } from '../../src/ir/validate';
import { decodeGeneric, encodeGeneric } from '../../src/onnx/codec';
import { loadModel, saveModelToBuffer } from '../../src/onnx/io';
import { AttributeProto, AttributeType, DataType, GraphProto, GraphSpec, NodeProto } from '../../src/onnx/schema';
import { createSession, runFloat } from '../../src/profile/ort';
import { fixturePath, maxAbsDiff, readNpy } from '../helpers';

// --- building subgraphs as protos (what an exporter writes)
const nodeProto = (opType: string, input: string[], output: string[], name = '', attribute: AttributeProto[] = []): NodeProto => ({
  opType, input, output, name, attribute, metadataProps: [], deviceConfigurations: [],
});
const vi = (name: string) => ({ name, type: { tensorType: { elemType: DataType.FLOAT } }, metadataProps: [] });
function body(name: string, nodes: NodeProto[], outputs: string[], inputs: string[] = []): Uint8Array {
  const g: GraphProto = {
    name, node: nodes, initializer: [], sparseInitializer: [], input: inputs.map(vi), output: outputs.map(vi),
    valueInfo: [], quantizationAnnotation: [], metadataProps: [],
  };
  return encodeGeneric(GraphSpec, g);
}
const graphAttr = (name: string, g: Uint8Array): AttributeProto => ({
  name, type: AttributeType.GRAPH, g, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [],
});

/** If(cond) with a then branch Identity(thenReads) and an else branch Identity(elseReads). */
function addIf(g: Graph, cond: Value, thenReads: string, elseReads: string, out: string, before?: Node): Node {
  const n = g.addNode({ opType: 'If', name: `if_${out}`, inputs: [cond], outputs: [out] }, before);
  n.copyAttr(graphAttr('then_branch', body('then', [nodeProto('Identity', [thenReads], ['t_out'], 'then_id')], ['t_out'])));
  n.copyAttr(graphAttr('else_branch', body('else', [nodeProto('Identity', [elseReads], ['e_out'], 'else_id')], ['e_out'])));
  return n;
}

function emptyModel(g: Graph, opset = 13): Model {
  return new Model({ irVersion: 7, opsetImport: [{ domain: '', version: opset }], metadataProps: [], trainingInfo: [], functions: [], configuration: [] }, g);
}

/**
 *   x ─ Relu ─ r ┄┄┐ (read inside the then branch only)
 *   x ─────────────┼┄┄ (else branch)
 *   cond ─ If ─ y (graph output)
 */
function ifModel(): { g: Graph; relu: Node; iff: Node; r: Value } {
  const g = new Graph();
  const x = g.addInput('x', floatType([2, 3]));
  const cond = g.addInitializer(Tensor.create('cond', DataType.BOOL, [], Uint8Array.of(1)));
  const relu = g.addNode({ opType: 'Relu', name: 'relu', inputs: [x], outputs: ['r'] });
  const r = relu.outputs[0]!;
  const iff = addIf(g, cond, 'r', 'x', 'y');
  const y = iff.outputs[0]!;
  y.declared = floatType([2, 3]);
  g.addOutput(y);
  return { g, relu, iff, r };
}

test('outerReads: names a branch reads from outside, not the ones it defines; nested bodies too', () => {
  const { iff } = ifModel();
  assert.equal(outerReads(iff.proto), ['r', 'x']);
  // a Loop body whose inner If reads an outer name and a name of the body itself
  const inner = nodeProto('If', ['c'], ['o'], 'inner_if', [
    graphAttr('then_branch', body('t', [nodeProto('Add', ['outer_a', 'local'], ['t1'])], ['t1'])),
    graphAttr('else_branch', body('e', [nodeProto('Identity', ['local'], ['e1'])], ['e1'])),
  ]);
  const loop = nodeProto('Loop', ['', ''], ['z'], 'loop', [
    graphAttr('body', body('b', [nodeProto('Neg', ['outer_b'], ['local']), inner], ['c', 'o'], ['i', 'c'])),
  ]);
  assert.equal(outerReads(loop).sort(), ['outer_a', 'outer_b']);
  assert.equal(outerReads(nodeProto('Relu', ['x'], ['y'])), []); // negative: no subgraph, no reads
});

test('implicitInputs link both ways and follow removeNode', () => {
  const { g, iff, r } = ifModel();
  assert.equal(iff.implicitInputs.map((v) => v.name), ['r', 'x']);
  assert.equal(r.subgraphReaders, [iff]);
  assert.is(r.isRead, true);
  assert.is(r.consumers.length, 0); // no input slot reads it
  g.removeNode(iff);
  assert.equal(r.subgraphReaders, []);
  assert.is(r.isRead, false);
});

test('cleanup keeps a producer whose value only a branch reads, and onnxruntime runs the result', async () => {
  const { g, relu } = ifModel();
  g.cleanup();
  assert.ok(g.nodes.includes(relu), 'Relu survives: the then branch reads r');
  assert.equal(validateGraph(g), []);
  const s = await createSession(saveModelToBuffer(emptyModel(g)));
  const x = Float32Array.of(-1, 2, -3, 4, -5, 6);
  const out = await runFloat(s, { x: { data: x, dims: [2, 3] } });
  assert.equal(Array.from(out.y.data), [0, 2, 0, 4, 0, 6]); // relu(x): cond is true
});

test('cleanup still removes what nothing reads (negative)', () => {
  const { g, iff } = ifModel();
  const dead = g.addNode({ opType: 'Neg', name: 'dead', inputs: [g.inputs[0]], outputs: ['unused'] });
  // the If's own output stays, an Identity nobody reads goes
  const gone = g.addNode({ opType: 'Identity', name: 'gone', inputs: [iff.outputs[0]], outputs: ['nobody'] });
  g.cleanup();
  assert.ok(!g.nodes.includes(dead) && !g.nodes.includes(gone));
  assert.ok(!g.values.has('unused'));
});

test('toposort puts a node after the producer of what its subgraph reads', () => {
  //   If (reads r inside) listed first, Relu (produces r) listed after it
  const g = new Graph();
  const x = g.addInput('x', floatType([2]));
  const cond = g.addInitializer(Tensor.create('cond', DataType.BOOL, [], Uint8Array.of(1)));
  const iff = addIf(g, cond, 'r', 'x', 'y');
  g.addOutput(iff.outputs[0]!);
  const relu = g.addNode({ opType: 'Relu', name: 'relu', inputs: [x], outputs: [g.value('r')] });
  assert.equal(g.nodes.map((n) => n.name), ['if_y', 'relu']);
  assert.is(validateGraph(g).length, 0); // order is not the validator's business
  g.toposort();
  assert.equal(g.nodes.map((n) => n.name), ['relu', 'if_y']);
  assert.ok(g.nodes.indexOf(relu) < g.nodes.indexOf(iff));
});

test('toposort and the validator see a cycle through a subgraph read (negative)', () => {
  //   If reads r in its branch; r = Relu(y) where y is the If's output
  const g = new Graph();
  const cond = g.addInitializer(Tensor.create('cond', DataType.BOOL, [], Uint8Array.of(1)));
  g.addInput('x', floatType([2]));
  const iff = addIf(g, cond, 'r', 'x', 'y');
  g.addNode({ opType: 'Relu', name: 'relu', inputs: [iff.outputs[0]], outputs: [g.value('r')] });
  g.addOutput(g.value('r'));
  assert.throws(() => g.toposort(), /cycle/);
  assert.ok(validateGraph(g).some((p) => p.kind === 'cycle'));
});

test('the validator reports a subgraph read that nothing produces', () => {
  const { g, relu } = ifModel();
  assert.equal(validateGraph(g), []);
  g.removeNode(relu); // r now dangles: only the then branch reads it
  const p = validateGraph(g);
  assert.is(p.length, 1);
  assert.is(p[0].kind, 'dangling-input');
  assert.match(p[0].message, /subgraph of node 'if_y' reads 'r'/);
});

test('replaceAllUses renames the read inside the branch; a name the branch defines itself is shadowed', async () => {
  const { g, r, iff } = ifModel();
  const x = g.inputs[0];
  const neg = g.addNode({ opType: 'Neg', name: 'neg', inputs: [x], outputs: ['n'] }, iff);
  g.replaceAllUses(r, neg.outputs[0]!);
  assert.equal(iff.implicitInputs.map((v) => v.name).sort(), ['n', 'x']);
  assert.equal(r.subgraphReaders, []);
  g.cleanup();
  assert.ok(!g.nodes.some((n) => n.name === 'relu'), 'Relu is dead now');
  const s = await createSession(saveModelToBuffer(emptyModel(g)));
  const out = await runFloat(s, { x: { data: Float32Array.of(1, -2, 3, -4, 5, -6), dims: [2, 3] } });
  assert.equal(Array.from(out.y.data), [-1, 2, -3, 4, -5, 6]);
  // shadowing: a branch that defines 'r' itself does not read the outer 'r'
  const p = nodeProto('If', ['c'], ['o'], 'shadow', [graphAttr('then_branch', body('t', [nodeProto('Neg', ['x'], ['r']), nodeProto('Identity', ['r'], ['o1'])], ['o1']))]);
  assert.equal(outerReads(p), ['x']);
  assert.is(renameOuterRead(p, 'r', 'zzz'), false);
  const inner = decodeGeneric<GraphProto>(GraphSpec, p.attribute[0].g!);
  assert.equal(inner.node[1].input, ['r']);
});

test('uniqueName never hands out a name a subgraph defines', () => {
  const { g } = ifModel();
  // the then branch defines value 't_out' and node 'then_id'
  assert.is.not(g.uniqueName('t_out'), 't_out');
  assert.is.not(g.uniqueName('then_id'), 'then_id');
  assert.is(g.uniqueName('fresh'), 'fresh'); // negative: free names are handed out as they are
});

test('at load, an unnamed node is not given a name that a later node\'s subgraph uses', () => {
  //   x ─ (unnamed) Relu ─ a ┄┄ If: then branch has a node named 'Relu'
  const g = new Graph();
  const x = g.addInput('x', floatType([2]));
  const cond = g.addInitializer(Tensor.create('cond', DataType.BOOL, [], Uint8Array.of(1)));
  g.addNode({ opType: 'Relu', name: 'will_be_unnamed', inputs: [x], outputs: [g.value('a')] });
  const n = g.addNode({ opType: 'If', name: 'if', inputs: [cond], outputs: ['y'] });
  n.copyAttr(graphAttr('then_branch', body('then', [nodeProto('Identity', ['a'], ['t_out'], 'Relu')], ['t_out'])));
  n.copyAttr(graphAttr('else_branch', body('else', [nodeProto('Identity', ['x'], ['e_out'], 'Relu_1')], ['e_out'])));
  g.addOutput(n.outputs[0]!);
  g.nodes[0].proto.name = '';
  const m = loadModel(saveModelToBuffer(emptyModel(g)));
  assert.equal(m.graph.nodes.map((k) => k.name), ['Relu_2', 'if']);
});

test('convert --to prn keeps a producer read only inside an If branch; onnxruntime runs the result', async () => {
  // resnet18-w25 with an If appended:
  //   logits ─ Mul(·, 2) ─ scaled ┄┄ read in the then branch only
  //   cond ─ If ─ chosen (second graph output); logits stays the first output
  const m = loadModel(fixturePath('resnet18-w25.onnx'));
  const g = m.graph;
  const logits = g.outputs[0];
  const two = g.addInitializer(Tensor.float32('two', [], Float32Array.of(2)));
  g.addNode({ opType: 'Mul', name: 'scale', inputs: [logits, two], outputs: ['scaled'] });
  const cond = g.addInitializer(Tensor.create('cond', DataType.BOOL, [], Uint8Array.of(1)));
  const iff = addIf(g, cond, 'scaled', logits.name, 'chosen');
  const chosen = iff.outputs[0]!;
  chosen.declared = { elemType: DataType.FLOAT, shape: null };
  g.addOutput(chosen);

  const { model } = convert(m, { to: 'prn' });
  assert.ok(model.graph.nodes.some((n) => n.name === 'scale'), 'the Mul read by the branch survives');
  const s = await createSession(saveModelToBuffer(model));
  const x = readNpy(fixturePath('resnet18-w25.input.npy'));
  const out = await runFloat(s, { [model.graph.inputs[0].name]: { data: x.data, dims: x.shape } });
  // logits against PyTorch's own PRN output; the If output is twice that
  const want = readNpy(fixturePath('resnet18-w25.prn-output.npy')).data;
  const d = maxAbsDiff(out[logits.name].data, want);
  assert.ok(d.diff <= d.tol, `PRN logits differ by ${d.diff}`);
  const d2 = maxAbsDiff(out.chosen.data, want.map((v) => 2 * v));
  assert.ok(d2.diff <= 2 * d.tol, `If output differs by ${d2.diff}`);
});

test.run();
