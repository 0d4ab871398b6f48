/**
 * Hostile bytes at the wire level: deep nesting is walked without recursion, lengths over 32 bits
 * are refused (not read modulo 2^32), text files are "not an ONNX model" (not "truncated"), and a
 * wrong argument to loadModel is a typed error.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GptError } from '../../src/errors';
import { loadModel, saveModelToBuffer } from '../../src/onnx/io';
import { encodeGeneric, encodeModel } from '../../src/onnx/codec';
import { GraphSpec } from '../../src/onnx/schema';
import type { GraphProto, NodeProto } from '../../src/onnx/schema';
import { model, node, valueInfo } from '../security/craft';

function errorOf(fn: () => unknown): GptError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, GptError, String(e));
    return e as GptError;
  }
  assert.unreachable('no error');
  throw new Error();
}

function varint(n: bigint): number[] {
  const out: number[] = [];
  while (n >= 128n) {
    out.push(Number(n & 127n) | 128);
    n >>= 7n;
  }
  out.push(Number(n));
  return out;
}

test('100k nested protobuf groups: kept as an unknown field, byte for byte, no stack overflow', () => {
  const base = encodeModel(model());
  const depth = 100_000;
  const group = Buffer.concat([
    Buffer.from(varint(BigInt((99 << 3) | 3))),
    Buffer.alloc(depth, 0x0b), // field 1, start group
    Buffer.alloc(depth, 0x0c), // field 1, end group
    Buffer.from(varint(BigInt((99 << 3) | 4))),
  ]);
  const bytes = Buffer.concat([base, group]);
  const m = loadModel(bytes);
  assert.is(m.graph.nodes.length, 1);
  assert.ok(Buffer.from(saveModelToBuffer(m)).equals(bytes), 'round trip keeps the groups');
  // unbalanced: typed, not a crash
  const open = Buffer.concat([base, group.subarray(0, group.length - depth - 2)]);
  assert.is(errorOf(() => loadModel(open)).code, 'E_TRUNCATED');
});

/** An If whose then_branch holds an If whose then_branch ... `depth` levels deep. */
function nestedIfs(depth: number): Buffer {
  const graph = (nodes: NodeProto[]): GraphProto => ({ node: nodes, initializer: [], sparseInitializer: [], input: [], output: [], valueInfo: [], quantizationAnnotation: [], metadataProps: [] });
  const ifNode = (g: Uint8Array): NodeProto => node('If', ['c'], ['o'], 'if', [{ name: 'then_branch', type: 5, g, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] }]);
  let g: Uint8Array = encodeGeneric(GraphSpec, graph([]));
  for (let i = 1; i < depth; i++) g = encodeGeneric(GraphSpec, graph([ifNode(g)]));
  return encodeModel(model({ nodes: [ifNode(g)], initializers: [], inputs: [valueInfo('c', [1], 9)], outputs: [valueInfo('o', [1])] }));
}

test('subgraphs nested 4,000 deep (170 KB): E_GRAPH at load, not a stack overflow; 10 deep loads', () => {
  const deep = nestedIfs(4000);
  assert.ok(deep.length < 200_000);
  const e = errorOf(() => loadModel(deep));
  assert.is(e.code, 'E_GRAPH');
  assert.match(e.message, /subgraphs are nested more than 64 deep/);
  assert.is(loadModel(nestedIfs(10)).graph.nodes.length, 1);
});

test('a length of 2^32 + 5 is refused, not read as 5', () => {
  const base = encodeModel(model());
  const name = Buffer.from('hello');
  const sneaky = Buffer.concat([Buffer.from([0x12, ...varint(2n ** 32n + 5n)]), name, base]);
  const e = errorOf(() => loadModel(sneaky));
  assert.is(e.code, 'E_NOT_ONNX');
  assert.match(e.message, /over protobuf's 32-bit limit/);
  // negative beside positive: the honest length 5 loads, with the producer name it gives
  const honest = Buffer.concat([Buffer.from([0x12, 5]), name, base]);
  assert.is(loadModel(honest).graph.nodes.length, 1);
});

test('text files are "not an ONNX model", whatever their first byte', () => {
  for (const text of ['\n# model notes\nthis is a README, not a model\n', '(hello)\n', 'hello, this is text\n', '{"model": "resnet", "layers": 50}\n']) {
    const e = errorOf(() => loadModel(Buffer.from(text)));
    assert.is(e.code, 'E_NOT_ONNX', JSON.stringify(text));
    assert.match(e.message, /not onnx\.ModelProto/);
  }
});

test('loadModel(undefined), loadModel(null), loadModel(42), loadModel(""): E_ARG', () => {
  for (const bad of [undefined, null, 42, '', {}]) {
    const e = errorOf(() => loadModel(bad as unknown as string));
    assert.is(e.code, 'E_ARG', String(bad));
  }
});

test.run();
