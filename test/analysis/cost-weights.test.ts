/**
 * Weights computed from constants: fp16 weights behind Cast and int8 weights behind
 * DequantizeLinear (QDQ) count their params and MACs, as the gradient-path analysis counts their
 * layer. Each model also runs in onnxruntime, so it is a real fp16 / QDQ model.
 *
 *   fp16:  W16 -> Cast -> Conv <- Cast <- B16            x [1, 3, 8, 8] -> Conv 3x3 p1 -> [1, 4, 8, 8]
 *   QDQ:   x -> Q -> DQ -> Conv <- DQ(W8, scale[4], zp[4], axis 0)
 *                            ^--- DQ(B32, scale[4])
 *
 * By hand: weight 4 x 3 x 3 x 3 = 108, bias 4: 112 params (scales and zero points are not
 * parameters). MACs = output elements 4 x 8 x 8 = 256, times Cin x k x k = 27: 6912.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { costModel } from '../../src/analysis/cost';
import { gradientPaths } from '../../src/analysis/gradient-path';
import { Graph, Value } from '../../src/ir/graph';
import { Model } from '../../src/ir/model';
import { Tensor } from '../../src/ir/tensor';
import { DataType } from '../../src/onnx/schema';
import { createSession, runFloat } from '../../src/profile/ort';

const PARAMS = 4 * 3 * 3 * 3 + 4;
const MACS = 4 * 8 * 8 * (3 * 3 * 3);
const CONV = { kernel_shape: [3, 3], pads: [1, 1, 1, 1] };

function base(opset = 13) {
  const g = new Graph();
  const m = new Model({ irVersion: 8, opsetImport: [{ domain: '', version: opset }], metadataProps: [], trainingInfo: [], functions: [], configuration: [] }, g);
  const x = g.addInput('x', { elemType: DataType.FLOAT, shape: [1, 3, 8, 8] });
  return { g, m, x };
}

function output(g: Graph, v: Value): void {
  v.declared = { elemType: DataType.FLOAT, shape: null };
  g.addOutput(v);
}

/** fp16 weights and bias, each through a Cast to float; `shared` adds a second conv on the same Cast. */
function fp16Conv(shared = false): Model {
  const { g, m, x } = base();
  const w16 = g.addInitializer(Tensor.create('w16', DataType.FLOAT16, [4, 3, 3, 3], new Uint16Array(108).fill(0x3c00))); // 1.0
  const b16 = g.addInitializer(Tensor.create('b16', DataType.FLOAT16, [4], new Uint16Array(4).fill(0x3800))); // 0.5
  const w = g.addNode({ opType: 'Cast', name: 'w_cast', inputs: [w16], outputs: ['w'], attrs: { to: DataType.FLOAT } }).outputs[0]!;
  const b = g.addNode({ opType: 'Cast', name: 'b_cast', inputs: [b16], outputs: ['b'], attrs: { to: DataType.FLOAT } }).outputs[0]!;
  const y = g.addNode({ opType: 'Conv', name: 'conv', inputs: [x, w, b], outputs: ['y'], attrs: CONV }).outputs[0]!;
  output(g, y);
  if (shared) output(g, g.addNode({ opType: 'Conv', name: 'conv2', inputs: [x, w, b], outputs: ['y2'], attrs: CONV }).outputs[0]!);
  return m;
}

/** QDQ: activations quantized per tensor, weights per output channel, the bias int32. */
function qdqConv(): Model {
  const { g, m, x } = base();
  const s = g.addInitializer(Tensor.float32('x_scale', [], Float32Array.of(0.05)));
  const z = g.addInitializer(Tensor.create('x_zp', DataType.UINT8, [], Uint8Array.of(128)));
  const xq = g.addNode({ opType: 'QuantizeLinear', name: 'x_q', inputs: [x, s, z], outputs: ['xq'] }).outputs[0]!;
  const xd = g.addNode({ opType: 'DequantizeLinear', name: 'x_dq', inputs: [xq, s, z], outputs: ['xd'] }).outputs[0]!;
  const w8 = g.addInitializer(Tensor.create('w_q', DataType.INT8, [4, 3, 3, 3], new Int8Array(108).fill(3)));
  const ws = g.addInitializer(Tensor.float32('w_scale', [4], Float32Array.of(0.1, 0.2, 0.3, 0.4)));
  const wz = g.addInitializer(Tensor.create('w_zp', DataType.INT8, [4], new Int8Array(4)));
  const w = g.addNode({ opType: 'DequantizeLinear', name: 'w_dq', inputs: [w8, ws, wz], outputs: ['w'], attrs: { axis: 0 } }).outputs[0]!;
  const b32 = g.addInitializer(Tensor.create('b_q', DataType.INT32, [4], Int32Array.of(10, 20, 30, 40)));
  const bs = g.addInitializer(Tensor.float32('b_scale', [4], Float32Array.of(0.005, 0.01, 0.015, 0.02)));
  const b = g.addNode({ opType: 'DequantizeLinear', name: 'b_dq', inputs: [b32, bs], outputs: ['b'], attrs: { axis: 0 } }).outputs[0]!;
  output(g, g.addNode({ opType: 'Conv', name: 'conv', inputs: [xd, w, b], outputs: ['y'], attrs: CONV }).outputs[0]!);
  return m;
}

async function runsInOrt(m: Model): Promise<readonly number[]> {
  const s = await createSession(m, { logSeverityLevel: 3 });
  const out = await runFloat(s, { x: { data: new Float32Array(192).fill(1), dims: [1, 3, 8, 8] } });
  return out.y.dims;
}

test(`fp16 weights through Cast: ${PARAMS} params and ${MACS} MACs, by hand; the layer is a gradient-path weight layer`, async () => {
  const m = fp16Conv();
  assert.equal(await runsInOrt(m), [1, 4, 8, 8]);
  const c = costModel(m);
  assert.is(c.totals.params, PARAMS);
  assert.is(c.totals.macs, MACS);
  assert.equal(gradientPaths(m).layers.map((l) => l.name), ['conv']);
});

test(`QDQ conv: ${PARAMS} params (not the scales or zero points) and ${MACS} MACs, by hand`, async () => {
  const m = qdqConv();
  assert.equal(await runsInOrt(m), [1, 4, 8, 8]);
  const c = costModel(m);
  assert.is(c.totals.params, PARAMS);
  assert.is(c.totals.macs, MACS);
  const conv = c.nodes.find((n) => n.name === 'conv')!;
  assert.is(conv.params, PARAMS);
  // the quantize / dequantize nodes hold no parameters
  assert.ok(c.nodes.filter((n) => n.name !== 'conv').every((n) => n.params === 0 && n.macs === 0));
  assert.equal(gradientPaths(m).layers.map((l) => l.name), ['conv']);
});

test('negative: a weight behind one Cast shared by two convs counts once; MACs count twice', () => {
  const c = costModel(fp16Conv(true));
  assert.is(c.totals.params, PARAMS);
  assert.is(c.totals.macs, 2 * MACS);
});

test('negative: a weight that is a graph input (not constant) is no parameter and no weight layer', () => {
  const { g, m, x } = base();
  const w = g.addInput('w', { elemType: DataType.FLOAT, shape: [4, 3, 3, 3] });
  output(g, g.addNode({ opType: 'Conv', name: 'conv', inputs: [x, w], outputs: ['y'], attrs: CONV }).outputs[0]!);
  const c = costModel(m);
  assert.is(c.totals.params, 0);
  assert.equal(gradientPaths(m).layers, []);
});

test.run();
