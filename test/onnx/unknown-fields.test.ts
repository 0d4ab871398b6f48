/**
 * Fields newer than onnx-proto's schema (ONNX 1.10 / IR 8) must survive load -> save. The model
 * bytes are assembled by hand here, field by field, with the numbers from onnx.proto.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { onnx } from 'onnx-proto';
import { loadModel, saveModelToBuffer } from '../../src/onnx/io';
import { DataType } from '../../src/onnx/schema';

// --- a minimal protobuf writer, independent of the project's codec
function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 128) {
    out.push((n % 128) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const vfield = (no: number, v: number) => [...varint(no * 8), ...varint(v)];
const bfield = (no: number, payload: number[]) => [...varint(no * 8 + 2), ...varint(payload.length), ...payload];
const sfield = (no: number, s: string) => bfield(no, [...Buffer.from(s, 'utf8')]);
const entry = (no: number, k: string, v: string) => bfield(no, [...sfield(1, k), ...sfield(2, v)]);

const tensorType = (elem: number, dims: number[]) => bfield(1, [...vfield(1, elem), ...bfield(2, dims.flatMap((d) => bfield(1, vfield(1, d))))]);

// NodeProto: input(1) output(2) name(3) op_type(4) domain(7) overload(8, ONNX 1.16) metadata_props(9, ONNX 1.16)
const node = [...sfield(1, 'x'), ...sfield(2, 'y'), ...sfield(3, 'relu0'), ...sfield(4, 'Relu'), ...sfield(7, ''), ...sfield(8, 'fast'), ...entry(9, 'source', 'torch.nn.ReLU')];
// TensorProto of FLOAT8E4M3FN (data type 17, ONNX 1.14): dims(1) data_type(2) name(8) raw_data(9)
const tensor = [...vfield(1, 4), ...vfield(2, DataType.FLOAT8E4M3FN), ...sfield(8, 'scale8'), ...bfield(9, [0x38, 0x40, 0x44, 0x48])];
const graph = [
  ...bfield(1, node),
  ...sfield(2, 'g'),
  ...bfield(5, tensor),
  ...bfield(11, [...sfield(1, 'x'), ...bfield(2, tensorType(DataType.FLOAT, [4]))]),
  ...bfield(12, [...sfield(1, 'y'), ...bfield(2, tensorType(DataType.FLOAT, [4]))]),
  ...entry(16, 'graph-note', 'GraphProto.metadata_props is ONNX 1.16'),
];
const model = Buffer.from([
  ...vfield(1, 10), // ir_version 10
  ...sfield(2, 'handmade'),
  ...bfield(7, graph),
  ...bfield(8, [...sfield(1, ''), ...vfield(2, 21)]),
  ...entry(14, 'author', 'test'),
  ...vfield(99, 7), // a field no schema knows yet
  ...bfield(100, [1, 2, 3]),
]);

test('onnx-proto (the old schema) drops the newer fields: the trap this codec avoids', () => {
  const reencoded = Buffer.from(onnx.ModelProto.encode(onnx.ModelProto.decode(model)).finish());
  assert.ok(reencoded.length < model.length, 'a plain decode/encode loses bytes');
});

test('load -> save keeps every field, known and unknown, byte for byte', () => {
  const m = loadModel(model);
  const out = saveModelToBuffer(m);
  assert.ok(Buffer.compare(out, model) === 0);
});

test('newer fields are decoded where the schema knows them', () => {
  const m = loadModel(model);
  const n = m.graph.nodes[0];
  assert.is(n.proto.overload, 'fast');
  assert.equal(n.proto.metadataProps, [{ key: 'source', value: 'torch.nn.ReLU' }]);
  assert.equal(m.graph.rest.metadataProps, [{ key: 'graph-note', value: 'GraphProto.metadata_props is ONNX 1.16' }]);
  const t = m.graph.initializers[0].tensor!;
  assert.is(t.dataType, DataType.FLOAT8E4M3FN);
  assert.equal(Array.from(t.bytes()), [0x38, 0x40, 0x44, 0x48]);
  assert.is(m.proto.$unknown?.length, 2);
});

test('unknown fields survive an edit of the graph', () => {
  const m = loadModel(model);
  m.graph.nodes[0].name = 'renamed';
  m.setMetadata('converted', 'yes');
  const again = loadModel(saveModelToBuffer(m));
  assert.is(again.graph.nodes[0].name, 'renamed');
  assert.is(again.graph.nodes[0].proto.overload, 'fast');
  assert.equal(again.proto.$unknown?.map((u) => Array.from(u)), [vfield(99, 7), bfield(100, [1, 2, 3])]);
  assert.is(again.metadata().converted, 'yes');
});

test('int64 values beyond 2^53 (Slice ends = INT64_MAX) survive exactly', () => {
  // AttributeProto: name(1) ints(8) type(20)=INTS(7); 9223372036854775807 as a 9-byte varint
  const max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
  const attr = [...sfield(1, 'ends'), ...varint(8 * 8), ...max, ...vfield(20, 7)];
  const n2 = [...sfield(1, 'x'), ...sfield(2, 'y'), ...sfield(3, 'slice0'), ...sfield(4, 'Slice'), ...bfield(5, attr)]; // named: gpt names unnamed nodes on load
  const g2 = [...bfield(1, n2), ...bfield(11, [...sfield(1, 'x')]), ...bfield(12, [...sfield(1, 'y')])];
  const m2 = Buffer.from([...vfield(1, 7), ...bfield(7, g2), ...bfield(8, [...vfield(2, 9)])]);
  const m = loadModel(m2);
  assert.is(m.graph.nodes[0].attr('ends')!.ints[0], 9223372036854775807n);
  assert.ok(Buffer.compare(saveModelToBuffer(m), m2) === 0);
});

test('repeated value_info entries of one name are each kept', () => {
  // GraphProto.value_info(13) twice for 'y', with different doc_string(3): both survive, in order
  const vi = (doc: string) => bfield(13, [...sfield(1, 'y'), ...bfield(2, tensorType(DataType.FLOAT, [4])), ...sfield(3, doc)]);
  const n = [...sfield(1, 'x'), ...sfield(2, 'y'), ...sfield(3, 'relu0'), ...sfield(4, 'Relu')]; // named: gpt names unnamed nodes on load
  const g = [...bfield(1, n), ...bfield(11, [...sfield(1, 'x')]), ...bfield(12, [...sfield(1, 'y')]), ...vi('first'), ...vi('second')];
  const bytes = Buffer.from([...vfield(1, 7), ...bfield(7, g), ...bfield(8, [...vfield(2, 13)])]);
  assert.ok(Buffer.compare(saveModelToBuffer(loadModel(bytes)), bytes) === 0);
});

test.run();
