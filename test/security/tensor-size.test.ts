/**
 * Every tensor's byte size is checked against its type and dims when the model is read: raw_data
 * shorter or longer, typed values too few or too many, dims of 2^40 over a few bytes, negative dims,
 * an external length larger than the tensor. Errors are typed and name the file and the tensor.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GptError } from '../../src/errors';
import { loadModel } from '../../src/onnx/io';
import { encodeModel } from '../../src/onnx/codec';
import { DataType } from '../../src/onnx/schema';
import { tmpDir } from '../helpers';
import { externalModel, floats, model, node, tensor, write } from './craft';

function loadError(bytes: Uint8Array, dir = tmpDir()): GptError {
  const file = write(dir, 'bad.onnx', bytes);
  try {
    loadModel(file);
  } catch (e) {
    assert.instance(e, GptError, String(e));
    const g = e as GptError;
    assert.match(g.oneLine(), /^\S*bad\.onnx: /, 'the file comes first');
    return g;
  }
  assert.unreachable('loaded');
  throw new Error();
}

const withW = (w: ReturnType<typeof tensor>) => encodeModel(model({ initializers: [w] }));

test('raw_data exactly as long as type x dims: 8 bytes for float32 [1, 2]', () => {
  assert.ok(loadModel(withW(tensor('w', [1, 2], { rawData: floats([1, 2]) }))));
  const short = loadError(withW(tensor('w', [1, 2], { rawData: floats([1]) })));
  assert.is(short.code, 'E_SHAPE');
  assert.match(short.oneLine(), /tensor 'w' has 4 bytes of raw_data, but FLOAT \[1, 2\] takes 8/);
  assert.match(loadError(withW(tensor('w', [1, 2], { rawData: floats([1, 2, 3]) }))).oneLine(), /12 bytes of raw_data, but FLOAT \[1, 2\] takes 8/);
});

test('typed fields: as many values as the dims say', () => {
  assert.ok(loadModel(withW(tensor('w', [1, 2], { floatData: [1, 2] }))));
  assert.match(loadError(withW(tensor('w', [1, 2], { floatData: [1] }))).oneLine(), /1 values in floatData, but FLOAT \[1, 2\] takes 2/);
  assert.match(loadError(withW(tensor('w', [3], { dataType: DataType.INT64, int64Data: [1, 2] }))).oneLine(), /INT64 \[3\] takes 3/);
  assert.match(loadError(withW(tensor('w', [1, 2]))).oneLine(), /tensor 'w' has no data/);
});

test('dims of 2^40 over 576 bytes and negative dims: refused, not counted as params', () => {
  const huge = loadError(withW(tensor('w', [2 ** 20, 2 ** 20], { rawData: new Uint8Array(576) })));
  assert.is(huge.code, 'E_SHAPE');
  assert.match(huge.oneLine(), /tensor 'w' has 576 bytes of raw_data, but FLOAT \[1048576, 1048576\] takes 4398046511104/);
  assert.match(loadError(withW(tensor('w', [2 ** 30, 2 ** 30, 2 ** 30], { rawData: new Uint8Array(8) }))).oneLine(), /more than any model can hold/);
  const neg = loadError(withW(tensor('w', [-2, -1], { rawData: floats([1, 2]) })));
  assert.match(neg.oneLine(), /tensor 'w' has a dimension of -2/);
  // the positive case: a real [1, 2] has 2 elements
  const ok = loadModel(withW(tensor('w', [1, 2], { rawData: floats([1, 2]) })));
  assert.is(ok.graph.initializers[0].tensor!.size, 2);
});

test('a Constant with a short value is caught too; the element type is named, not numbered', () => {
  const bytes = encodeModel(model({
    nodes: [node('Constant', [], ['w'], 'const', [{ name: 'value', type: 4, t: tensor('v', [4], { dataType: DataType.FLOAT16, rawData: new Uint8Array(6) }), floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] }]), node('Add', ['x', 'w'], ['y'])],
    initializers: [],
  }));
  assert.match(loadError(bytes).oneLine(), /tensor 'v' has 6 bytes of raw_data, but FLOAT16 \[4\] takes 8/);
});

test('an external length larger than the tensor is refused', () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.alloc(4096));
  const g = loadError(encodeModel(externalModel('w.bin', { length: '4096' })), dir);
  assert.is(g.code, 'E_EXTERNAL_DATA');
  assert.match(g.oneLine(), /external length of 4096 bytes, but its type and dims make 8/);
});

test.run();
