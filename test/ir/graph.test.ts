/**
 * Every mutator of the graph IR keeps both sides of each link, the name registry and the constant
 * cache right by itself. Each test builds a tiny graph, sketched above it, and has a negative case.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GptError } from '../../src/errors';
import { Graph, Node, Value, floatType } from '../../src/ir/graph';
import { Tensor } from '../../src/ir/tensor';
import { validateGraph } from '../../src/ir/validate';

const weight = (g: Graph, name: string, n = 2) => g.addInitializer(Tensor.float32(name, [n], new Float32Array(n)));
const code = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    if (e instanceof GptError) return e.code;
    throw e;
  }
  return 'no error';
};
/** Both directions of every link agree. */
function linksAgree(g: Graph): void {
  for (const n of g.nodes) {
    n.inputs.forEach((v, i) => v && assert.ok(v.consumers.some((u) => u.node === n && u.index === i), `${v.name} lists ${n.name}:${i}`));
    n.outputs.forEach((v, i) => v && assert.ok(v.producer === n && v.producerIndex === i, `${v.name} produced by ${n.name}:${i}`));
    assert.is(n.graph, g);
  }
  for (const v of g.values.values()) {
    for (const u of v.consumers) assert.is(u.node.inputs[u.index], v);
    if (v.producer) assert.is(v.producer.outputs[v.producerIndex], v);
  }
}

/** x ─ Relu(a) ─ r ─ Neg(b) ─ y (output) */
function chain(): { g: Graph; x: Value; a: Node; b: Node; r: Value; y: Value } {
  const g = new Graph();
  const x = g.addInput('x', floatType([2]));
  const a = g.addNode({ opType: 'Relu', name: 'a', inputs: [x], outputs: ['r'] });
  const b = g.addNode({ opType: 'Neg', name: 'b', inputs: [a.outputs[0]], outputs: ['y'] });
  const y = g.addOutput(b.outputs[0]!);
  return { g, x, a, b, r: a.outputs[0]!, y };
}

test('the views are read-only: no array to push to or reassign', () => {
  const { g, a } = chain();
  // compile-time: these lines would not type-check; at run time the views are the IR's own arrays
  // @ts-expect-error nodes is a read-only view
  assert.is(typeof g.nodes.push, 'function'); // (the array exists; the type refuses it)
  // @ts-expect-error no setter for nodes
  assert.throws(() => { g.nodes = []; });
  // @ts-expect-error no setter for node inputs
  assert.throws(() => { a.inputs = []; });
  // @ts-expect-error a value's producer is set by Node.setOutput only
  assert.throws(() => { a.outputs[0]!.producer = null; });
});

test('value / uniqueName / newValue: one Value per name; new names avoid values and node names', () => {
  const { g, r } = chain();
  assert.is(g.value('r'), r);
  assert.is(g.uniqueName('r'), 'r_1'); // value name taken
  assert.is(g.uniqueName('a'), 'a_1'); // node name taken
  assert.is(g.uniqueName('free'), 'free');
  assert.is(g.uniqueName('free'), 'free_1'); // handed out once
  const v = g.newValue('r', floatType([3]));
  assert.is(v.name, 'r_2');
  assert.equal(v.inferred, floatType([3]));
  g.reserveNames(['held']);
  assert.is(g.uniqueName('held'), 'held_1');
});

test('addInput / removeInput; a produced value cannot become an input', () => {
  const { g, x, r } = chain();
  const z = g.addInput('z', floatType([1]));
  assert.equal(g.inputs.map((v) => v.name), ['x', 'z']);
  assert.ok(g.isGraphInput(z));
  assert.equal(z.declared, floatType([1]));
  g.removeInput(z);
  assert.equal(g.inputs, [x]);
  assert.is(code(() => g.removeInput(z)), 'E_GRAPH'); // not an input any more
  assert.is(code(() => g.addInput(r)), 'E_GRAPH'); // Relu produces r
});

test('addOutput / setOutput / replaceOutput / removeOutput', () => {
  //   x ─ a ─ r ─ b ─ y ;  outputs [y] -> [y, r] -> [r, r] -> [x, x] -> []
  const { g, x, r, y } = chain();
  g.addOutput(r);
  assert.equal(g.outputs, [y, r]);
  g.setOutput(0, r);
  assert.equal(g.outputs, [r, r]);
  assert.ok(g.isGraphOutput(r) && !g.isGraphOutput(y));
  assert.is(g.replaceOutput(r, x), 2);
  assert.equal(g.outputs, [x, x]);
  assert.is(g.replaceOutput(r, y), 0); // negative: nothing to replace
  g.removeOutput(x);
  assert.equal(g.outputs, []);
  assert.is(code(() => g.removeOutput(x)), 'E_GRAPH');
  assert.is(code(() => g.setOutput(3, x)), 'E_GRAPH');
  // a Value of another graph is refused: names must stay one-to-one
  const other = new Graph().value('y');
  assert.is(code(() => g.addOutput(other)), 'E_GRAPH');
});

test('addValueInfo / removeValueInfo', () => {
  const { g, r } = chain();
  g.addValueInfo(r);
  g.addValueInfo(r);
  assert.equal(g.valueInfo, [r, r]);
  assert.is(g.removeValueInfo(r), true);
  assert.equal(g.valueInfo, []);
  assert.is(g.removeValueInfo(r), false);
});

test('addInitializer: a taken name is made unique; a graph input name is refused (E_GRAPH)', () => {
  //   x (input) ─ a ─ r ─ b ─ y
  const { g, x, r } = chain();
  const w = weight(g, 'w');
  assert.ok(w.isInitializer && g.initializers.includes(w));
  assert.equal(w.declared, { elemType: 1, shape: [2] });
  assert.is(weight(g, 'w').name, 'w_1'); // another initializer has it
  assert.is(weight(g, 'r').name, 'r_1'); // a node produces it
  assert.is(r.tensor, undefined);
  // the caller feeds x: an initializer of that name would silently replace the feed
  const e = (() => {
    try {
      weight(g, 'x');
    } catch (err) {
      return err as GptError;
    }
    return null;
  })();
  assert.ok(e instanceof GptError && e.code === 'E_GRAPH' && e.subject === 'x', String(e));
  assert.is(x.tensor, undefined, 'the input is left as it was');
  assert.ok(!g.initializers.some((v) => v.name === 'x'));
  // unless the tensor is meant as the input's default (IR < 4 models list initializers as inputs)
  const d = g.addInitializer(Tensor.float32('x', [2], Float32Array.of(1, 2)), { asInputDefault: true });
  assert.is(d, x);
  assert.ok(x.isInitializer && g.isGraphInput(x));
  assert.equal(x.declared, floatType([2]), 'the input keeps its declared type');
});

test('removeInitializer: the value stays, dangling when read; the constant cache follows', () => {
  //   w ─ Add(x, w) ─ s
  const g = new Graph();
  const x = g.addInput('x', floatType([2]));
  const w = weight(g, 'w');
  const add = g.addNode({ opType: 'Add', name: 'add', inputs: [x, w], outputs: ['s'] });
  g.addOutput(add.outputs[0]!);
  assert.is(g.isConstant(w), true);
  g.removeInitializer(w);
  assert.is(g.isConstant(w), false, 'no touch() needed');
  assert.ok(!w.isInitializer && !g.initializers.includes(w));
  assert.equal(validateGraph(g).map((p) => p.kind), ['dangling-input']);
  assert.is(code(() => g.removeInitializer(w)), 'E_GRAPH');
});

test('addNode: inserted before a node or at the end, named, wired both ways', () => {
  //   x ─ a ─ r ─ b ─ y    then   x ─ [Sigmoid] ─ s   inserted before b
  const { g, x, b } = chain();
  const n = g.addNode({ opType: 'Sigmoid', inputs: [x], outputs: ['s'], attrs: { k: 3, f: { float: 0.5 }, s: 'txt', l: [1, 2], fl: { floats: [1.5] } } }, b);
  assert.equal(g.nodes.map((m) => m.name), ['a', 'Sigmoid', 'b']);
  assert.is(n.int('k', 0), 3);
  assert.is(n.float('f', 0), 0.5);
  assert.is(n.string('s', ''), 'txt');
  assert.equal(n.ints('l'), [1, 2]);
  assert.equal(n.floats('fl'), [1.5]);
  assert.equal(g.consumersOf(x).map((m) => m.name), ['a', 'Sigmoid']);
  linksAgree(g);
  const n2 = g.addNode({ opType: 'Sigmoid', inputs: [x], outputs: ['s'] });
  assert.is(n2.name, 'Sigmoid_1');
  assert.is(n2.outputs[0]!.name, 's_1');
  assert.is(g.nodes[g.nodes.length - 1], n2);
  // negative: an output value that another node produces
  assert.is(code(() => g.addNode({ opType: 'Relu', inputs: [x], outputs: [n.outputs[0]!] })), 'E_GRAPH');
});

test('insertNode: a free node joins, gets a name once; a node already in a graph is refused', () => {
  const { g, x, a, b } = chain();
  const free = new Node({ input: [], output: [], attribute: [], metadataProps: [], deviceConfigurations: [], opType: 'Abs' });
  free.setInput(0, x);
  free.setOutput(0, g.value('abs_out'));
  g.insertNode(free, a);
  assert.is(free.proto.name, 'Abs');
  assert.is(free.graph, g);
  assert.equal(g.nodes, [free, a, b]);
  linksAgree(g);
  assert.is(code(() => g.insertNode(free)), 'E_GRAPH');
  const stray = new Node({ input: [], output: [], attribute: [], metadataProps: [], deviceConfigurations: [], opType: 'Abs' });
  assert.is(code(() => g.insertNode(stray, new Node({ input: [], output: [], attribute: [], metadataProps: [], deviceConfigurations: [] }))), 'E_GRAPH');
  assert.ok(!g.nodes.includes(stray), 'a refused node is not half-inserted');
});

test('removeNode: disconnects both sides; outputs live on without a producer until cleanup', () => {
  const { g, x, a, r } = chain();
  g.removeNode(a);
  assert.ok(!g.nodes.includes(a));
  assert.is(a.graph, null);
  assert.is(r.producer, null);
  assert.equal(x.consumers, []);
  assert.ok(g.values.has('r'));
  linksAgree(g);
  assert.equal(validateGraph(g).map((p) => p.kind), ['dangling-input']);
});

test('reorderNodes: a permutation only', () => {
  const { g, a, b } = chain();
  g.reorderNodes([b, a]);
  assert.equal(g.nodes, [b, a]);
  assert.is(code(() => g.reorderNodes([a])), 'E_GRAPH');
  assert.is(code(() => g.reorderNodes([a, a])), 'E_GRAPH');
  assert.equal(g.nodes, [b, a], 'unchanged after a refusal');
});

test('Node.setInput / setOutput / detach keep both sides; an output has one producer', () => {
  //   x ─ a ─ r ─ b ─ y   rewire b to read x, then a to write a new value
  const { g, x, a, b, r } = chain();
  b.setInput(0, x);
  assert.equal(r.consumers, []);
  assert.equal(g.consumersOf(x), [a, b]);
  b.setInput(2, r); // slots grow, with an omitted optional input in between
  assert.equal(b.inputs, [x, null, r]);
  const r2 = g.newValue('r2');
  a.setOutput(0, r2);
  assert.is(r.producer, null);
  assert.is(r2.producer, a);
  assert.is(code(() => b.setOutput(0, r2)), 'E_GRAPH');
  assert.is(b.outputs[0]!.producer, b, 'unchanged after the refusal');
  linksAgree(g);
  a.detach();
  assert.equal(a.inputs, [null]);
  assert.is(r2.producer, null);
});

test('replaceAllUses: consumers and graph outputs move; `except` keeps its read', () => {
  //   x ─ a ─ r ─ b ─ y,  r is also a graph output;  c = Neg(r)
  const { g, x, b, r } = chain();
  g.addOutput(r);
  const c = g.addNode({ opType: 'Neg', name: 'c', inputs: [r], outputs: ['z'] });
  g.replaceAllUses(r, x, c);
  assert.is(b.inputs[0], x);
  assert.is(c.inputs[0], r);
  assert.ok(g.isGraphOutput(x) && !g.isGraphOutput(r));
  linksAgree(g);
});

test('isConstant / constantTensor / dataInputs follow edits without touch()', () => {
  //   w ─ Identity ─ wi ─┐
  //   x ───────────────── Mul ─ m
  const g = new Graph();
  const x = g.addInput('x', floatType([2]));
  const w = g.addInitializer(Tensor.float32('w', [2], Float32Array.of(3, 4)));
  const id = g.addNode({ opType: 'Identity', name: 'id', inputs: [w], outputs: ['wi'] });
  const wi = id.outputs[0]!;
  const mul = g.addNode({ opType: 'Mul', name: 'mul', inputs: [x, wi], outputs: ['m'] });
  const c = g.addNode({ opType: 'Constant', name: 'c', inputs: [], outputs: ['k'], attrs: { value_floats: { floats: [5, 6] } } });
  assert.is(g.isConstant(wi), true);
  assert.is(g.isConstant(mul.outputs[0]), false);
  assert.equal(g.constantTensor(wi)!.numbers(), [3, 4]);
  assert.equal(g.constantTensor(c.outputs[0])!.numbers(), [5, 6]);
  assert.equal(g.dataInputs(mul), [x]);
  // rewire the Identity to read x: wi stops being constant at once
  id.setInput(0, x);
  assert.is(g.isConstant(wi), false);
  assert.is(g.constantTensor(wi), undefined);
  assert.equal(g.dataInputs(mul), [x, wi]);
  // and back through an opType change
  id.setInput(0, w);
  assert.is(g.isConstant(wi), true);
  id.opType = 'Relu';
  assert.is(g.isConstant(wi), true, 'Relu of a constant is still constant');
  assert.is(g.constantTensor(wi), undefined, 'but not a tensor one can read without running it');
});

test('toposort: stable where valid, reorders where not; a cycle is E_GRAPH naming a node', () => {
  const { g, a, b } = chain();
  g.reorderNodes([b, a]);
  g.toposort();
  assert.equal(g.nodes, [a, b]);
  g.toposort();
  assert.equal(g.nodes, [a, b], 'already sorted: unchanged');
  a.setInput(0, b.outputs[0]);
  assert.throws(() => g.toposort(), (e: GptError) => e.code === 'E_GRAPH' && /cycle through node '(a|b)'/.test(e.message));
});

test('cleanup: dead nodes, unread initializers, orphan values and their value_info go; live ones stay', () => {
  //   x ─ a ─ r ─ b ─ y (output);  dead: Neg(x) ─ d;  w unread; r2 only in value_info
  const { g, x, a, b, r } = chain();
  const dead = g.addNode({ opType: 'Neg', name: 'dead', inputs: [x, weight(g, 'read_by_dead')], outputs: ['d'] });
  const w = weight(g, 'w');
  const kept = weight(g, 'kept');
  g.addOutput(kept);
  g.addValueInfo(r);
  g.addValueInfo(dead.outputs[0]!);
  g.cleanup();
  assert.equal(g.nodes, [a, b]);
  assert.equal(g.initializers, [kept], 'an initializer that is a graph output stays');
  assert.ok(!g.values.has('w') && !g.values.has('d') && !g.values.has('read_by_dead'));
  assert.is(w.isInitializer, false);
  assert.equal(g.valueInfo, [r]);
  linksAgree(g);
  assert.equal(validateGraph(g), []);
});

test('node names: set once, kept through rewiring, registered for uniqueName', () => {
  //   unnamed Relu on x: its name does not follow its output
  const g = new Graph();
  const x = g.addInput('x', floatType([2]));
  const n = g.addNode({ opType: 'Relu', inputs: [x], outputs: ['first'] });
  assert.is(n.name, 'Relu');
  n.setOutput(0, g.newValue('second'));
  assert.is(n.name, 'Relu');
  n.name = 'renamed';
  assert.is(g.uniqueName('renamed'), 'renamed_1');
  assert.is(n.toString(), 'renamed (Relu)');
});

test.run();
