/**
 * External data: sidecar files read lazily, written above a threshold, and models whose weights
 * exceed protobuf's 2 GiB limit (built here over a sparse sidecar file).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../../src/onnx/codec';
import { loadModel, saveModel } from '../../src/onnx/io';
import { DataLocation, DataType, ModelProto } from '../../src/onnx/schema';
import { fixturePath, maxAbsDiff, readNpy, tmpDir } from '../helpers';

async function runFile(file: string, inputNpy: string): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(file);
  const x = readNpy(inputNpy);
  const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x.data, x.shape) });
  return out[s.outputNames[0]].data as Float32Array;
}

test('save with external data: small model file, sidecar, same outputs in onnxruntime', async () => {
  const dir = tmpDir();
  const src = fixturePath('resnet50-w25-bn.onnx');
  const m = loadModel(src);
  const r = saveModel(m, path.join(dir, 'ext.onnx'), { externalData: true, externalThreshold: 1024 });
  assert.ok(r.externalPath && fs.existsSync(r.externalPath));
  assert.ok(fs.statSync(path.join(dir, 'ext.onnx')).size < 200_000, 'weights are no longer inline');
  const again = loadModel(path.join(dir, 'ext.onnx'));
  const ext = again.graph.initializers.filter((v) => v.tensor!.isExternal);
  assert.ok(ext.length > 50);
  for (const v of ext) assert.is(v.tensor!.external!.offset % 4096, 0, 'page-aligned offsets');
  // lazy: values equal to the source's
  const a = m.graph.values.get(ext[3].name)!.tensor!.data();
  assert.equal(Array.from(ext[3].tensor!.data() as Float32Array), Array.from(a as Float32Array));
  const y = await runFile(path.join(dir, 'ext.onnx'), fixturePath('resnet50-w25-bn.input.npy'));
  const { diff, tol } = maxAbsDiff(y, readNpy(fixturePath('resnet50-w25-bn.output.npy')).data);
  assert.ok(diff <= tol, `diff ${diff} > ${tol}`);
  // saving the external-data model again ('auto') keeps external data, into the new sidecar
  const r2 = saveModel(again, path.join(dir, 'ext2.onnx'));
  assert.ok(r2.externalPath?.endsWith('ext2.onnx.data'));
  const y2 = await runFile(path.join(dir, 'ext2.onnx'), fixturePath('resnet50-w25-bn.input.npy'));
  assert.equal(Array.from(y2), Array.from(y));
  fs.rmSync(dir, { recursive: true });
});

test('missing sidecar and short sidecar: one-line E_EXTERNAL_DATA naming the file', () => {
  const dir = tmpDir();
  saveModel(loadModel(fixturePath('resnet18-w25.onnx')), path.join(dir, 'm.onnx'), { externalData: true });
  const sidecar = path.join(dir, 'm.onnx.data');
  const size = fs.statSync(sidecar).size;
  fs.truncateSync(sidecar, size - 100);
  try {
    loadModel(path.join(dir, 'm.onnx'));
    assert.unreachable();
  } catch (e: any) {
    assert.is(e.code, 'E_EXTERNAL_DATA');
    assert.match(e.oneLine(), 'm.onnx');
    assert.match(e.message, /needs bytes/);
  }
  fs.rmSync(sidecar);
  try {
    loadModel(path.join(dir, 'm.onnx'));
    assert.unreachable();
  } catch (e: any) {
    assert.is(e.code, 'E_EXTERNAL_DATA');
    assert.match(e.message, /missing/);
    assert.not.match(e.oneLine(), /\n/);
  }
  fs.rmSync(dir, { recursive: true });
});

const GiB = 2 ** 30;

test('a model whose weights exceed 2 GiB loads lazily and saves through external data', () => {
  const dir = tmpDir();
  // three float32 tensors of 800 MB each = 2.4 GB of weights over a sparse sidecar
  const count = 200_000_000;
  const bytesEach = count * 4;
  const sidecar = path.join(dir, 'big.bin');
  fs.writeFileSync(sidecar, '');
  fs.truncateSync(sidecar, 3 * bytesEach);
  const fd = fs.openSync(sidecar, 'r+');
  const marker = (i: number) => Buffer.from(new Float32Array([i + 0.5, -(i + 1.25)]).buffer);
  for (let i = 0; i < 3; i++) {
    fs.writeSync(fd, marker(i), 0, 8, i * bytesEach); // first two values of tensor i
    fs.writeSync(fd, marker(i + 10), 0, 8, i * bytesEach + bytesEach - 8); // last two values
  }
  fs.closeSync(fd);
  const vi = (name: string) => ({ name, metadataProps: [], type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimValue: count }] } } } });
  const tensor = (i: number) => ({
    name: `w${i}`, dims: [count], dataType: DataType.FLOAT, floatData: [], int32Data: [], stringData: [], int64Data: [], doubleData: [], uint64Data: [], metadataProps: [],
    dataLocation: DataLocation.EXTERNAL,
    externalData: [{ key: 'location', value: 'big.bin' }, { key: 'offset', value: String(i * bytesEach) }, { key: 'length', value: String(bytesEach) }],
  });
  const proto: ModelProto = {
    irVersion: 8, opsetImport: [{ domain: '', version: 13 }], producerName: 'test', metadataProps: [], trainingInfo: [], functions: [], configuration: [],
    graph: {
      name: 'big',
      node: [
        { input: ['w0', 'w1'], output: ['s'], opType: 'Add', name: 'add0', attribute: [], metadataProps: [], deviceConfigurations: [] },
        { input: ['s', 'w2'], output: ['y'], opType: 'Add', name: 'add1', attribute: [], metadataProps: [], deviceConfigurations: [] },
      ],
      initializer: [tensor(0), tensor(1), tensor(2)],
      input: [], output: [vi('y')], valueInfo: [], sparseInitializer: [], quantizationAnnotation: [], metadataProps: [],
    },
  };
  fs.writeFileSync(path.join(dir, 'big.onnx'), encodeModel(proto));

  const rssBefore = process.memoryUsage().rss;
  const m = loadModel(path.join(dir, 'big.onnx'));
  assert.ok(process.memoryUsage().rss - rssBefore < 200 * 2 ** 20, 'loading does not read the weights');
  const total = m.graph.initializers.reduce((n, v) => n + v.tensor!.byteLength, 0);
  assert.ok(total > 2 * GiB);

  // inline is impossible: a clear error, no output left behind, and the weights are not read to find that out
  const rssBeforeInline = process.memoryUsage().rss;
  try {
    saveModel(m, path.join(dir, 'inline.onnx'), { externalData: false });
    assert.unreachable();
  } catch (e: any) {
    assert.is(e.code, 'E_TOO_LARGE');
    assert.match(e.oneLine(), /external-data/);
    assert.match(e.oneLine(), /inline\.onnx/);
  }
  assert.ok(process.memoryUsage().rss - rssBeforeInline < 500 * 2 ** 20, 'the 2.4 GB of weights were not read');
  assert.equal(fs.readdirSync(dir).sort(), ['big.bin', 'big.onnx']);

  const r = saveModel(m, path.join(dir, 'copy.onnx'), { externalData: true });
  assert.ok(r.externalBytes! >= 3 * bytesEach);
  const copy = loadModel(path.join(dir, 'copy.onnx'));
  const out = fs.openSync(r.externalPath!, 'r');
  for (let i = 0; i < 3; i++) {
    const ext = copy.graph.initializers[i].tensor!.external!;
    assert.is(ext.length, bytesEach);
    const head = Buffer.alloc(8);
    const tail = Buffer.alloc(8);
    fs.readSync(out, head, 0, 8, ext.offset);
    fs.readSync(out, tail, 0, 8, ext.offset + bytesEach - 8);
    assert.ok(head.equals(marker(i)) && tail.equals(marker(i + 10)), `tensor ${i} copied intact`);
  }
  fs.closeSync(out);
  fs.rmSync(dir, { recursive: true });
});

test('a Constant whose value lives in external data: readable, and saved elsewhere it comes along inline', async () => {
  //   x[4] ── Add ── y        c = Constant(value = [1, 2, 3, 4] in consts.bin at offset 8)
  //   c ──────┘
  const dirA = tmpDir();
  const dirB = tmpDir();
  fs.writeFileSync(path.join(dirA, 'consts.bin'), Buffer.concat([Buffer.alloc(8), Buffer.from(new Float32Array([1, 2, 3, 4]).buffer)]));
  const vi = (name: string) => ({ name, metadataProps: [], type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimValue: 4 }] } } } });
  const value = {
    dims: [4], dataType: DataType.FLOAT, floatData: [], int32Data: [], stringData: [], int64Data: [], doubleData: [], uint64Data: [], metadataProps: [],
    dataLocation: DataLocation.EXTERNAL,
    externalData: [{ key: 'location', value: 'consts.bin' }, { key: 'offset', value: '8' }, { key: 'length', value: '16' }],
  };
  const attr = { name: 'value', type: 4, t: value, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] };
  const proto: ModelProto = {
    irVersion: 8, opsetImport: [{ domain: '', version: 13 }], metadataProps: [], trainingInfo: [], functions: [], configuration: [],
    graph: {
      name: 'c',
      node: [
        { input: [], output: ['c'], opType: 'Constant', name: 'const', attribute: [attr], metadataProps: [], deviceConfigurations: [] },
        { input: ['x', 'c'], output: ['y'], opType: 'Add', name: 'add', attribute: [], metadataProps: [], deviceConfigurations: [] },
      ],
      initializer: [], input: [vi('x')], output: [vi('y')], valueInfo: [], sparseInitializer: [], quantizationAnnotation: [], metadataProps: [],
    },
  };
  fs.writeFileSync(path.join(dirA, 'c.onnx'), encodeModel(proto));
  const m = loadModel(path.join(dirA, 'c.onnx'));
  assert.equal(Array.from(m.graph.constantTensor(m.graph.values.get('c')!)!.data() as Float32Array), [1, 2, 3, 4]);
  saveModel(m, path.join(dirB, 'c.onnx'));
  assert.equal(fs.readdirSync(dirB), ['c.onnx'], 'no sidecar needed in the new folder');
  const s = await ort.InferenceSession.create(path.join(dirB, 'c.onnx'));
  const out = await s.run({ x: new ort.Tensor('float32', new Float32Array([10, 20, 30, 40]), [4]) });
  assert.equal(Array.from(out.y.data as Float32Array), [11, 22, 33, 44]);
  fs.rmSync(dirA, { recursive: true });
  fs.rmSync(dirB, { recursive: true });
});

test.run();
