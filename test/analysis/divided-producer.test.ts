/**
 * A layer written once per part (CSP's producer split) is found as one layer divided in two: part 2
 * the copy a channel Concat alone reads, part 1 its twin, node for node. The graph, built here:
 *
 *   input ─ Conv(stem) ─ f ─┬─ Conv a (3x3 s2, 4) ─ act ─ p1 ─ Conv(body) ─ act ─ t ─┐
 *                           └─ Conv b (3x3 s2, 4) ─ act ─ p2 ──────────────────────── Concat ─ out
 *
 * with act a LeakyRelu(0.1) or SiLU written out (x * Sigmoid(x)); the negative cases change one
 * thing of copy b each.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DividedProducers } from '../../src/analysis/divided-producer';
import { Graph, Value, floatType } from '../../src/ir/graph';
import { Tensor } from '../../src/ir/tensor';

interface Variant {
  silu?: boolean;
  /** Copy b: its stride, its LeakyRelu's alpha, the value its conv reads, its output also read by a Relu. */
  strideB?: number;
  alphaB?: number;
  readsStem?: boolean;
  p2ReadTwice?: boolean;
}

function build(v: Variant = {}): { g: Graph; p1: Value; p2: Value } {
  const g = new Graph();
  let n = 0;
  const val = (name: string, c: number, hw: number): Value => {
    const x = g.value(name);
    x.inferred = floatType([1, c, hw, hw]);
    return x;
  };
  const conv = (name: string, x: Value, cin: number, cout: number, k: number, stride: number, hw: number): Value => {
    const w = g.addInitializer(Tensor.float32(`${name}.w`, [cout, cin, k, k], new Float32Array(cout * cin * k * k).fill(0.01 * ++n)));
    const out = val(`${name}_out`, cout, hw);
    g.addNode({ opType: 'Conv', name, inputs: [x, w], outputs: [out], attrs: { kernel_shape: [k, k], strides: [stride, stride], pads: [k >> 1, k >> 1, k >> 1, k >> 1] } });
    return out;
  };
  const act = (name: string, x: Value, c: number, hw: number, alpha = 0.1): Value => {
    const out = val(`${name}_out`, c, hw);
    if (v.silu) {
      const s = val(`${name}_sig`, c, hw);
      g.addNode({ opType: 'Sigmoid', name: `${name}/Sigmoid`, inputs: [x], outputs: [s] });
      g.addNode({ opType: 'Mul', name: `${name}/Mul`, inputs: [x, s], outputs: [out] });
    } else {
      g.addNode({ opType: 'LeakyRelu', name, inputs: [x], outputs: [out], attrs: { alpha: { float: alpha } } });
    }
    return out;
  };
  const input = g.value('input');
  input.declared = floatType([1, 3, 16, 16]);
  g.addInput(input);
  const stem = act('stem_act', conv('stem', input, 3, 8, 3, 1, 16), 8, 16);
  const p1 = act('a_act', conv('a', stem, 8, 4, 3, 2, 8), 4, 8);
  const bIn = v.readsStem ? conv('other', stem, 8, 8, 1, 1, 16) : stem;
  const p2 = act('b_act', conv('b', bIn, 8, 4, 3, v.strideB ?? 2, 8), 4, 8, v.alphaB ?? 0.1);
  const t = act('body_act', conv('body', p1, 4, 4, 3, 1, 8), 4, 8);
  const out = val('out', 8, 8);
  g.addNode({ opType: 'Concat', name: 'concat', inputs: [t, p2], outputs: [out], attrs: { axis: 1 } });
  g.addOutput(out);
  if (v.p2ReadTwice) {
    const r = val('p2_relu', 4, 8);
    g.addNode({ opType: 'Relu', name: 'p2_relu', inputs: [p2], outputs: [r] });
    g.addOutput(r);
  }
  return { g, p1, p2 };
}

for (const silu of [false, true]) {
  test(`a conv + ${silu ? 'SiLU (x * Sigmoid(x))' : 'LeakyRelu'} written once per part: one layer divided, part 2 the copy the Concat reads`, () => {
    const { g, p1, p2 } = build({ silu });
    const d = new DividedProducers(g);
    assert.equal([...d.byPart1.keys()], [p1]);
    const found = d.byPart1.get(p1)!;
    assert.is(found.part2, p2);
    assert.is(found.concat.name, 'concat');
    const names = silu ? ['/Sigmoid', '/Mul'] : [''];
    assert.equal(found.nodes2.map((x) => x.name), ['b', ...names.map((s) => `b_act${s}`)]);
    assert.equal(found.nodes1.map((x) => x.name), ['a', ...names.map((s) => `a_act${s}`)]);
    assert.equal(found.nodes2.map((x) => d.twin.get(x)!.name), found.nodes1.map((x) => x.name));
    assert.ok(found.nodes2.every((x) => d.part2Nodes.has(x)));
  });
}

const NEGATIVE: [string, Variant][] = [
  ['copy b with stride 1 (another layer, not a copy)', { strideB: 1 }],
  ['copy b with LeakyRelu alpha 0.2', { alphaB: 0.2 }],
  ['copy b reading another value than copy a', { readsStem: true }],
  ['part 2 read by a Relu too (not only by the Concat)', { p2ReadTwice: true }],
];
for (const [what, v] of NEGATIVE) {
  test(`negative: ${what}: no divided layer`, () => {
    const d = new DividedProducers(build(v).g);
    assert.is(d.byPart1.size, 0);
    assert.is(d.twin.size, 0);
  });
}

test.run();
