/**
 * The cost model against hand-computed figures: params and MACs of tiny graphs and of the ResNet-18
 * fixtures (worked out from the architecture in the fixture README), peak activation memory of a
 * diamond, BN running statistics excluded, weights behind Identity still counted.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Dim, Graph, Node, Value } from '../../src/ir/graph';
import { Model } from '../../src/ir/model';
import { Tensor } from '../../src/ir/tensor';
import { loadModel } from '../../src/onnx/io';
import { DataType } from '../../src/onnx/schema';
import { costModel } from '../../src/analysis/cost';
import { fixturePath } from '../helpers';

type Attrs = Record<string, number | number[] | string>;

function tiny(opset = 17) {
  const g = new Graph();
  const m = new Model({ irVersion: 8, opsetImport: [{ domain: '', version: opset }], metadataProps: [], trainingInfo: [], functions: [], configuration: [] }, g);
  return {
    m,
    g,
    input(name: string, shape: Dim[]): Value {
      const v = g.value(name);
      v.declared = { elemType: DataType.FLOAT, shape };
      g.addInput(v);
      return v;
    },
    weight(name: string, dims: number[]): Value {
      return g.addInitializer(Tensor.float32(name, dims, new Float32Array(dims.reduce((a, b) => a * b, 1))));
    },
    node(opType: string, inputs: (Value | null)[], attrs: Attrs = {}, name = opType.toLowerCase()): Node {
      return g.addNode({ opType, name, inputs, attrs, outputs: [`${name}_out`] });
    },
  };
}
const out = (n: Node) => n.outputs[0]!;

/**
 *   x [1,3,8,8] -> Conv 3x3 pad 1 (W [4,3,3,3], B [4]) -> BN (4 channels) -> Relu
 *     -> GlobalAveragePool -> Flatten -> Gemm (W [10,4] transB, B [10]) -> y [1,10]
 */
function convBnGemm(batch: Dim = 1) {
  const t = tiny();
  const x = t.input('x', [batch, 3, 8, 8]);
  const conv = t.node('Conv', [x, t.weight('cw', [4, 3, 3, 3]), t.weight('cb', [4])], { pads: [1, 1, 1, 1] });
  const bn = t.node('BatchNormalization', [out(conv), ...['scale', 'bias', 'mean', 'var'].map((n) => t.weight(n, [4]))]);
  const relu = t.node('Relu', [out(bn)]);
  const gap = t.node('GlobalAveragePool', [out(relu)]);
  const flat = t.node('Flatten', [out(gap)]);
  const fc = t.node('Gemm', [out(flat), t.weight('fw', [10, 4]), t.weight('fb', [10])], { transB: 1 });
  t.g.addOutput(out(fc));
  return t;
}

test('conv / BN / gemm: params and MACs by hand', () => {
  const r = costModel(convBnGemm().m);
  const by = Object.fromEntries(r.nodes.map((n) => [n.name, n]));
  // Conv: weight 4*3*3*3 = 108 + bias 4 = 112
  assert.is(by.conv.params, 112);
  // BN: scale 4 + bias 4 = 8; the running mean and variance (4 + 4) are not parameters
  assert.is(by.batchnormalization.params, 8);
  // Gemm: 10*4 + 10 = 50
  assert.is(by.gemm.params, 50);
  assert.is(r.totals.params, 112 + 8 + 50);
  // Conv: output elements 4*8*8 = 256 x Cin 3 x 3*3 = 6912; Gemm: M 1 x N 10 x K 4 = 40
  assert.is(by.conv.macs, 6912);
  assert.is(by.gemm.macs, 40);
  assert.is(by.relu.macs, 0);
  assert.is(r.totals.macs, 6952);
  assert.equal(r.assumedSymbols, []);
});

test('symbolic batch: taken as 1 and said so, or as given', () => {
  const def = costModel(convBnGemm('batch').m);
  assert.equal(def.assumedSymbols, ['batch']);
  assert.equal(def.dims, { batch: 1 });
  assert.is(def.totals.macs, 6952);
  // batch 2: (256 x 27) x 2 + (1 x 10 x 4) x 2 = 13824 + 80
  const two = costModel(convBnGemm('batch').m, { dims: { batch: 2 } });
  assert.equal(two.assumedSymbols, []);
  assert.is(two.totals.macs, 13904);
});

test('grouped Conv, ConvTranspose and batched MatMul MACs', () => {
  const t = tiny();
  // grouped: out 16 x 6 x 6 = 576 elements x Cin/groups 2 x 3*3 = 10368
  const g = t.node('Conv', [t.input('x', [1, 8, 6, 6]), t.weight('gw', [16, 2, 3, 3])], { group: 4, pads: [1, 1, 1, 1] }, 'grouped');
  // transposed: input elements 8 x 5 x 5 = 200 x Cout/groups 4 x 3*3 = 7200
  const ct = t.node('ConvTranspose', [t.input('u', [1, 8, 5, 5]), t.weight('tw', [8, 4, 3, 3])], { strides: [2, 2] }, 'up');
  // [2, 3, 4] x [4, 5]: batch 2 x M 3 x N 5 x K 4 = 120
  const mm = t.node('MatMul', [t.input('a', [2, 3, 4]), t.weight('mw', [4, 5])], {}, 'mm');
  const r = costModel(t.m);
  const by = Object.fromEntries(r.nodes.map((n) => [n.name, n]));
  assert.is(by[g.name].macs, 10368);
  assert.is(by[ct.name].macs, 7200);
  assert.is(by[mm.name].macs, 120);
  assert.is(by[mm.name].params, 20);
});

test('a weight behind an Identity is counted; a shared weight counts once', () => {
  const t = tiny();
  const x = t.input('x', [1, 3, 4, 4]);
  const w = t.weight('w', [2, 3, 1, 1]); // 6 elements
  const id = t.node('Identity', [w], {}, 'id');
  t.node('Conv', [x, out(id)], {}, 'c1');
  t.node('Conv', [x, w], {}, 'c2'); // the same tensor again
  const r = costModel(t.m);
  const by = Object.fromEntries(r.nodes.map((n) => [n.name, n]));
  assert.is(by.c1.params, 6);
  assert.is(by.c2.params, 0);
  assert.is(r.totals.params, 6);
  // the Identity of a weight is folded away: no activation, no memory traffic
  assert.is(by.id.outputBytes, 0);
  assert.is(by.id.memoryAccessBytes, 0);
});

/**
 * Diamond:           x [1,4,8,8]
 *                        |
 *                 a = Conv 1x1 -> [1,8,8,8]
 *                    /        \
 *            b = Relu(a)    c = Sigmoid(a)
 *                    \        /
 *                   d = Add(b, c)
 *                        |
 *            e = GlobalAveragePool -> [1,8,1,1]  (graph output)
 */
test('peak activation memory of a diamond, by hand', () => {
  const t = tiny();
  const x = t.input('x', [1, 4, 8, 8]);
  const a = t.node('Conv', [x, t.weight('w', [8, 4, 1, 1])], {}, 'conv');
  const b = t.node('Relu', [out(a)], {}, 'relu');
  const c = t.node('Sigmoid', [out(a)], {}, 'sigmoid');
  const d = t.node('Add', [out(b), out(c)], {}, 'add');
  const e = t.node('GlobalAveragePool', [out(d)], {}, 'gap');
  t.g.addOutput(out(e));
  const r = costModel(t.m);
  // float32: x 256 el = 1024 B; a, b, c, d 512 el = 2048 B each; e 8 el = 32 B
  // start: x                       1024
  // conv:    + a 2048 = 3072  (peak) then x freed -> 2048
  // relu:    + b 2048 = 4096  (peak); a still needed by sigmoid
  // sigmoid: + c 2048 = 6144  (peak) then a freed -> 4096
  // add:     + d 2048 = 6144  (not higher) then b, c freed -> 2048
  // gap:     + e   32 = 2080  then d freed -> 32 (e is a graph output, never freed)
  assert.is(r.totals.peakActivationBytes, 6144);
  assert.is(r.totals.peakActivationNode, 'sigmoid');
  // a + b + c + d + e = 4 x 2048 + 32
  assert.is(r.totals.activationBytes, 8224);
  const by = Object.fromEntries(r.nodes.map((n) => [n.name, n]));
  // conv reads x 1024 + w 8*4*4 = 128, writes a 2048
  assert.is(by.conv.memoryAccessBytes, 3200);
  // add reads b and c (4096), writes d (2048)
  assert.is(by.add.memoryAccessBytes, 6144);
});

/*
 * ResNet-18 at quarter width (fixture README: widths 16/32/64/128, 10 classes, input 64x64), BN
 * folded into conv biases. Params (weights + biases):
 *   stem 7x7 3->16: 16*3*49 + 16 = 2368
 *   layer1: 4 x (3x3 16->16) = 4 x (2304 + 16) = 9280
 *   layer2: 16->32 (4608+32) + 32->32 (9216+32) + 1x1 shortcut (512+32) + 2 x (9216+32) = 32928
 *   layer3: 32->64 (18432+64) + 64->64 (36864+64) + shortcut (2048+64) + 2 x 36928 = 131392
 *   layer4: 64->128 (73728+128) + 128->128 (147456+128) + shortcut (8192+128) + 2 x 147584 = 524928
 *   fc: 128*10 + 10 = 1290                                           total 702186
 * MACs (output elements x Cin x k x k):
 *   stem: 32*32*16 x 3*49 = 2408448
 *   layer1 at 16x16: 4 x (4096 x 16*9) = 2359296
 *   layer2 at 8x8 (2048 el): 2048x16x9 + 3 x 2048x32x9 + 2048x16 (shortcut) = 2097152
 *   layer3 at 4x4 (1024 el): 1024x32x9 + 3 x 1024x64x9 + 1024x32 = 2097152
 *   layer4 at 2x2 (512 el):  512x64x9 + 3 x 512x128x9 + 512x64 = 2097152
 *   fc: 1 x 10 x 128 = 1280                                          total 11060480
 */
test('resnet18-w25 (BN folded) and -nofold (weights behind Identity): 702186 params, 11060480 MACs', () => {
  for (const f of ['resnet18-w25.onnx', 'resnet18-w25-nofold.onnx']) {
    const r = costModel(loadModel(fixturePath(f)));
    assert.is(r.totals.params, 702186, f);
    assert.is(r.totals.macs, 11060480, f);
  }
});

test('resnet18-w25-bntrain: conv weights without bias + BN scale and bias, not the running stats', () => {
  // conv biases in the folded model: 16 + 4x16 + 5x32 + 5x64 + 5x128 = 1200 channels;
  // unfolded: convs carry no bias (-1200), each BN adds scale + bias (+2 x 1200): 702186 + 1200 = 703386
  // (counting the running mean / variance too would give 705786)
  const r = costModel(loadModel(fixturePath('resnet18-w25-bntrain.onnx')));
  assert.is(r.totals.params, 703386);
  assert.is(r.totals.macs, 11060480);
});

test.run();
