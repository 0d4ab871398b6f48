/**
 * Lossless I/O on real exporter output: every fixture loads, round-trips through the IR byte for byte,
 * and field by field as decoded by an independent decoder (onnx-proto on protobufjs).
 */
import * as fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { onnx } from 'onnx-proto';
import { loadModel, saveModelToBuffer } from '../../src/onnx/io';
import { fixturePath, fixtures } from '../helpers';

function plain(bytes: Uint8Array): unknown {
  const m = onnx.ModelProto.decode(bytes);
  return onnx.ModelProto.toObject(m, { longs: String, bytes: String, defaults: false, arrays: true });
}

for (const fx of fixtures()) {
  test(`${fx.model}: load -> save is byte-identical and field-identical`, () => {
    const file = fixturePath(fx.model);
    const original = fs.readFileSync(file);
    const model = loadModel(file);
    assert.is(model.irVersion, fx.irVersion);
    assert.is(model.opset(), fx.opset);
    assert.is(model.graph.inputs[0].name, fx.input.name);
    assert.equal(model.graph.inputs[0].declared?.shape, fx.input.shape);
    assert.is(model.graph.outputs[0].name, fx.output);
    const saved = saveModelToBuffer(model);
    assert.equal(plain(saved), plain(original), 'every field as decoded by onnx-proto');
    assert.ok(Buffer.compare(saved, original) === 0, 'byte-identical');
  });
}

test('loading from a Buffer gives the same model as from a path', () => {
  const file = fixturePath('resnet18-w25.onnx');
  const a = saveModelToBuffer(loadModel(file));
  const b = saveModelToBuffer(loadModel(fs.readFileSync(file)));
  assert.ok(Buffer.compare(a, b) === 0);
});

test('weights behind Identity nodes resolve to their initializer', () => {
  const m = loadModel(fixturePath('resnet18-w25-nofold.onnx'));
  const convs = m.graph.nodes.filter((n) => n.opType === 'Conv');
  assert.ok(convs.length === 20);
  for (const c of convs) {
    const w = m.graph.constantTensor(c.inputs[1]);
    assert.ok(w, `weight of ${c.name}`);
    assert.is(w!.dims.length, 4);
  }
});

test.run();
