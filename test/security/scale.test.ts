/**
 * Scale: warnings are aggregated (a million unknown nodes do not print a million lines), a file of
 * empty nodes is refused before a graph is built from it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GptError } from '../../src/errors';
import { aggregateWarnings } from '../../src/report/warnings';
import { loadModel } from '../../src/onnx/io';
import { encodeModel } from '../../src/onnx/codec';
import { inspect } from '../../src/analysis/inspect';
import { model, node, valueInfo } from './craft';

test('aggregateWarnings: the first 3 of a kind, then one line counting the rest; other kinds kept', () => {
  const list = Array.from({ length: 1000 }, (_, i) => `node 'n${i}': shape inference does not know op Foo`);
  list.push('no rule matched any block', list[0]);
  const out = aggregateWarnings(list);
  assert.equal(out, [
    "node 'n0': shape inference does not know op Foo",
    "node 'n1': shape inference does not know op Foo",
    "node 'n2': shape inference does not know op Foo",
    'no rule matched any block',
    "(and 997 more like this: node '…': shape inference does not know op Foo)",
  ]);
  // negative beside positive: distinct kinds are never merged
  assert.equal(aggregateWarnings(['a', 'b', 'c', 'd', 'e']), ['a', 'b', 'c', 'd', 'e']);
});

test('inspect of 5,000 nodes of an unknown op: 8 warning lines, not 10,000', () => {
  const n = 5000;
  const nodes = Array.from({ length: n }, (_, i) => node('Frobnicate', [i ? `v${i}` : 'x'], [`v${i + 1}`], `f${i}`));
  const m = loadModel(encodeModel(model({ nodes, initializers: [], inputs: [valueInfo('x', [1, 4])], outputs: [valueInfo(`v${n}`, [1, 4])] })));
  const r = inspect(m);
  assert.ok(r.warnings.length <= 8, r.warnings.join('\n')); // two kinds: 3 + 1 lines each
  assert.ok(r.warnings.some((w) => /and \d+ more like this/.test(w)), r.warnings.join('\n'));
});

test('200,000 empty nodes (400 KB): refused at load as E_GRAPH, in one line', () => {
  const m = encodeModel(model({ nodes: [], initializers: [] }));
  const empty = Buffer.alloc(400_000);
  for (let i = 0; i < empty.length; i += 2) empty[i] = 0x0a; // NodeProto of length 0
  // splice the nodes into the graph (field 7): re-encode the graph's length
  const graphAt = m.indexOf(0x3a);
  let len = 0, shift = 0, p = graphAt + 1;
  for (;;) {
    const b = m[p++];
    len += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (b < 0x80) break;
  }
  const payload = Buffer.concat([empty, m.subarray(p, p + len)]);
  const lenBytes: number[] = [];
  for (let v = payload.length; ; v = Math.floor(v / 128)) {
    if (v < 128) { lenBytes.push(v); break; }
    lenBytes.push((v % 128) | 0x80);
  }
  const bytes = Buffer.concat([m.subarray(0, graphAt), Buffer.from([0x3a, ...lenBytes]), payload, m.subarray(p + len)]);
  try {
    loadModel(bytes);
    assert.unreachable('loaded');
  } catch (e) {
    assert.instance(e, GptError);
    assert.is((e as GptError).code, 'E_GRAPH');
    assert.match((e as GptError).oneLine(), /node 0 has no op_type \(and 199999 more like it\)/);
  }
});

const noShape = (name: string) => ({ name, metadataProps: [], type: { tensorType: { elemType: 1 } } });

test('an 88-byte model declaring a shape input of [300000000]: no allocation from the declared size', () => {
  // x [1] --Reshape(x, s)--> y, s an INT64 graph input of shape [300000000]: y's rank would be 3e8
  const bytes = encodeModel(model({
    nodes: [node('Reshape', ['x', 's'], ['y'])], initializers: [],
    inputs: [valueInfo('x', [1]), valueInfo('s', [300_000_000], 7)], outputs: [noShape('y')],
  }));
  assert.ok(bytes.length < 120, `${bytes.length} bytes`);
  const m = loadModel(bytes);
  const r = inspect(m);
  assert.ok(r.warnings.every((w) => !/internal/.test(w)));
  // the output's shape is unknown (rank past the cap), not 3e8 unknown dims
  assert.is(m.graph.outputs[0].inferred?.shape ?? null, null);
  // negative beside positive: a shape input of [3] gives rank 3
  const small = loadModel(encodeModel(model({
    nodes: [node('Reshape', ['x', 's'], ['y'])], initializers: [],
    inputs: [valueInfo('x', [1]), valueInfo('s', [3], 7)], outputs: [noShape('y')],
  })));
  inspect(small);
  assert.equal(small.graph.outputs[0].inferred?.shape, [null, null, null]);
});

test.run();
