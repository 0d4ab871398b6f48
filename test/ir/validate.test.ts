/** The structural validator: one tiny graph per problem kind, beside the valid graph it breaks. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GptError } from '../../src/errors';
import { Graph, floatType } from '../../src/ir/graph';
import { Tensor } from '../../src/ir/tensor';
import { assertValid, validateGraph } from '../../src/ir/validate';
import { DataType } from '../../src/onnx/schema';

/** x ─ Relu(a) ─ r ─ Neg(b) ─ y (output) */
function chain() {
  const g = new Graph();
  const x = g.addInput('x', floatType([2]));
  const a = g.addNode({ opType: 'Relu', name: 'a', inputs: [x], outputs: ['r'] });
  const b = g.addNode({ opType: 'Neg', name: 'b', inputs: [a.outputs[0]], outputs: ['y'] });
  g.addOutput(b.outputs[0]!);
  return { g, x, a, b };
}
const kinds = (g: Graph) => validateGraph(g).map((p) => p.kind);

test('a valid graph has no problem, and assertValid passes', () => {
  const { g } = chain();
  assert.equal(validateGraph(g), []);
  assertValid(g);
});

test('dangling input: read but produced by nothing', () => {
  const { g, b } = chain();
  b.setInput(1, g.value('ghost'));
  const p = validateGraph(g);
  assert.equal(p.map((q) => q.kind), ['dangling-input']);
  assert.is(p[0].node, 'b');
  assert.throws(() => assertValid(g, 'm.onnx'), (e: GptError) => e.code === 'E_GRAPH' && e.subject === 'm.onnx' && /ghost/.test(e.message) && !!e.hint);
});

test('duplicate node names, duplicate graph input entries', () => {
  const { g, a, b, x } = chain();
  b.name = 'a';
  assert.equal(kinds(g), ['duplicate-name']);
  b.name = 'b';
  a.name = 'a';
  g.addInput(x);
  assert.equal(kinds(g), ['duplicate-name']);
  assert.match(validateGraph(g)[0].message, /graph input 'x' is listed twice/);
});

test('an initializer that a node also produces (as a model file can say)', () => {
  const { g, a } = chain();
  const w = g.addInitializer(Tensor.float32('w', [2], new Float32Array(2)));
  assert.equal(kinds(g), []);
  g.addNode({ opType: 'Neg', name: 'mk', inputs: [a.outputs[0]], outputs: [w] });
  const p = validateGraph(g);
  assert.equal(p.map((q) => q.kind), ['duplicate-name']);
  assert.match(p[0].message, /'w' is both an initializer and the output of node 'mk'/);
  // addInitializer itself never makes one: a produced name is renamed
  assert.is(g.addInitializer(Tensor.float32('r', [2], new Float32Array(2))).name, 'r_1');
});

test('graph output produced by nothing', () => {
  const { g } = chain();
  g.addOutput(g.value('nowhere'));
  assert.equal(kinds(g), ['missing-output']);
});

test('graph inputs a caller cannot feed: produced by a node, or a default of another type', () => {
  //   x ─ a ─ r ;  r also listed as a graph input (edited in the model proto by hand)
  const g = new Graph();
  const r = g.value('r');
  g.addInput(r, floatType([2]));
  const x = g.addInput('x', floatType([2]));
  g.addNode({ opType: 'Relu', name: 'a', inputs: [x], outputs: [r] });
  g.addOutput(r);
  const p = validateGraph(g);
  assert.equal(p.map((q) => q.kind), ['bad-input']);
  assert.match(p[0].message, /graph input 'r' is also the output of node 'a'/);
  // an initializer listed as an input is that input's default: fine when the two agree ...
  const h = new Graph();
  const d = h.addInput('d', floatType([2]));
  h.addInitializer(Tensor.float32('d', [2], new Float32Array(2)), { asInputDefault: true });
  h.addOutput(h.addNode({ opType: 'Neg', name: 'n', inputs: [d], outputs: ['o'] }).outputs[0]!);
  assert.equal(kinds(h), []);
  // ... a problem when they do not
  const k = new Graph();
  const e = k.addInput('e', { elemType: DataType.FLOAT, shape: [3] });
  k.addInitializer(Tensor.int64('e', [2], [1, 2]), { asInputDefault: true });
  k.addOutput(k.addNode({ opType: 'Neg', name: 'n', inputs: [e], outputs: ['o'] }).outputs[0]!);
  assert.equal(kinds(k), ['bad-input']);
});

test('a cycle is reported once, naming a node on it', () => {
  const { g, a, b } = chain();
  a.setInput(0, b.outputs[0]);
  const p = validateGraph(g);
  assert.equal(p.map((q) => q.kind), ['cycle']);
  assert.ok(['a', 'b'].includes(p[0].node!));
});

test.run();
