/**
 * The op registry: everything gpt knows about an ONNX operator, one entry per op, read through
 * `opInfo` (a Map lookup). To support a new op, add its entry to OPS below; see the README's
 * "How it is built" for Mish as the worked example.
 *
 * Ops of other domains (com.microsoft...) are keyed 'domain::OpType'; `registerOp` adds them at
 * run time.
 */
import * as ew from '../analysis/shapes/elementwise';
import * as layout from '../analysis/shapes/layout';
import * as linear from '../analysis/shapes/linear';
import { argReduce, reduce, topK } from '../analysis/shapes/reduce';
import { resize } from '../analysis/shapes/resize';
import * as win from '../analysis/shapes/window';
import { convMacs, convTransposeMacs, gemmMacs, matmulMacs } from '../analysis/macs';
import { DataType } from '../onnx/schema';
import type { ActivationSpec, OpInfo, OpSpec } from './types';

/** A pointwise activation: shape of its input, channels preserved. */
const act = (activation: ActivationSpec = {}): OpSpec => ({ shape: ew.same, channels: 'preserve', activation });
/** A pointwise op that is not an activation. */
const unary: OpSpec = { shape: ew.unary, channels: 'preserve' };
const arithmetic: OpSpec = { shape: ew.broadcasting(), channels: 'preserve' };
const commutative: OpSpec = { ...arithmetic, commutative: true };
const comparison: OpSpec = { shape: ew.broadcasting(DataType.BOOL), channels: 'preserve' };
const pool: OpSpec = { shape: win.pool, channels: 'preserve' };
const globalPool: OpSpec = { shape: win.globalPool, channels: 'preserve' };
const reduction: OpSpec = { shape: reduce, channels: 'mix', metaInputs: [1] };

const OPS: Record<string, OpSpec> = {
  // weight layers
  Conv: { shape: win.conv, channels: 'conv', params: [1, 2], weightLayer: true, macs: convMacs },
  ConvTranspose: { shape: win.convTranspose, channels: 'convTranspose', params: [1, 2], weightLayer: true, macs: convTransposeMacs },
  Gemm: { shape: linear.gemm, channels: 'mix', params: [0, 1, 2], weightLayer: true, macs: gemmMacs },
  MatMul: { shape: linear.matmul, channels: 'mix', params: [0, 1], weightLayer: true, macs: matmulMacs },

  // normalization: scale and bias are learned; BN's running mean and variance are statistics
  BatchNormalization: { shape: ew.batchNorm, channels: 'preserve', params: [1, 2] },
  InstanceNormalization: { shape: ew.same, channels: 'preserve', params: [1, 2] },
  GroupNormalization: { shape: ew.same, channels: 'across', params: [1, 2] },
  LayerNormalization: { shape: ew.layerNorm, channels: 'across', params: [1, 2] },
  LRN: { shape: ew.same, channels: 'across' },

  // activations (ONNX defaults)
  Relu: act(),
  LeakyRelu: act({ floats: { alpha: 0.01 } }),
  PRelu: { shape: ew.broadcasting(), channels: 'preserve', activation: { slope: 1 }, params: [1] },
  Elu: act({ floats: { alpha: 1 } }),
  Celu: act({ floats: { alpha: 1 } }),
  Selu: act({ floats: { alpha: 1.67326319217681884765625, gamma: 1.05070102214813232421875 } }),
  ThresholdedRelu: act({ floats: { alpha: 1 } }),
  Gelu: act({ strings: { approximate: 'none' } }),
  Clip: { ...act({ bounds: { names: ['min', 'max'], inputsSince: 11, defaults: [-3.4028234663852886e38, 3.4028234663852886e38] } }), metaInputs: [1, 2] },
  Sigmoid: act({ gate: true }),
  HardSigmoid: act({ floats: { alpha: 0.2, beta: 0.5 }, gate: true }),
  HardSwish: act(),
  Tanh: act(),
  Softplus: act(),
  Softsign: act(),
  Mish: act(),
  Swish: act({ floats: { alpha: 1 } }),

  // element-wise, one input
  Identity: unary, Dropout: { shape: ew.dropout, channels: 'preserve', metaInputs: [1, 2] },
  Exp: unary, Log: unary, Sqrt: unary, Abs: unary, Neg: unary, Erf: unary, Floor: unary, Ceil: unary,
  Round: unary, Reciprocal: unary, Sign: unary, Sin: unary, Cos: unary, Not: unary,
  Softmax: { shape: ew.same, channels: 'across' }, LogSoftmax: { shape: ew.same, channels: 'across' },
  Cast: { shape: ew.cast, channels: 'preserve' },
  CastLike: { shape: ew.castLike, channels: 'preserve', metaInputs: [1] },
  DequantizeLinear: { shape: ew.dequantize, channels: 'preserve', metaInputs: [1, 2] },
  QuantizeLinear: { shape: ew.quantize, channels: 'preserve', metaInputs: [1, 2] },

  // element-wise, broadcasting
  Add: commutative, Mul: commutative, Sum: commutative, Max: commutative, Min: commutative, Mean: commutative,
  Sub: arithmetic, Div: arithmetic, Pow: arithmetic, Mod: arithmetic,
  And: arithmetic, Or: arithmetic, Xor: arithmetic,
  Equal: comparison, Less: comparison, Greater: comparison, LessOrEqual: comparison, GreaterOrEqual: comparison,
  Where: { shape: ew.where, channels: 'preserve' },

  // pooling and resampling
  MaxPool: pool, AveragePool: pool, LpPool: pool,
  GlobalAveragePool: globalPool, GlobalMaxPool: globalPool, GlobalLpPool: globalPool,
  Resize: { shape: resize, channels: 'preserve', metaInputs: [1, 2, 3] },
  Upsample: { shape: resize, channels: 'preserve', metaInputs: [1] },
  // regions of interest (Faster / Mask R-CNN): rois and batch indices say where to look, they carry no features
  RoiAlign: { shape: win.roiPool, channels: 'preserve', metaInputs: [1, 2] },
  MaxRoiPool: { shape: win.roiPool, channels: 'preserve', metaInputs: [1] },
  Pad: { shape: layout.pad, channels: 'preserve', metaInputs: [1, 2, 3] },

  // moving elements
  Concat: { shape: layout.concat, channels: 'concat' },
  Split: { shape: layout.split, channels: 'split', metaInputs: [1] },
  Slice: { shape: layout.slice, channels: 'slice', metaInputs: [1, 2, 3, 4] },
  Flatten: { shape: layout.flatten, channels: 'mix' },
  Reshape: { shape: layout.reshape, channels: 'mix', metaInputs: [1] },
  Transpose: { shape: layout.transpose, channels: 'mix' },
  Squeeze: { shape: layout.squeeze, channels: 'mix', metaInputs: [1] },
  Unsqueeze: { shape: layout.unsqueeze, channels: 'mix', metaInputs: [1] },
  Gather: { shape: layout.gather, channels: 'mix', metaInputs: [1] },
  Expand: { shape: layout.expand, channels: 'mix', metaInputs: [1] },
  Tile: { shape: layout.tile, channels: 'mix', metaInputs: [1] },
  ScatterND: { shape: layout.scatter, channels: 'mix', metaInputs: [1] },
  ScatterElements: { shape: layout.scatter, channels: 'mix', metaInputs: [1] },

  // shape computations
  Shape: { shape: layout.shapeOp, channels: 'mix' },
  Constant: { shape: layout.constant, channels: 'mix' },
  ConstantOfShape: { shape: layout.constantOfShape, channels: 'mix' },
  Range: { shape: layout.range, channels: 'mix', metaInputs: [0, 1, 2] },

  // reductions
  ReduceMean: reduction, ReduceMax: reduction, ReduceMin: reduction, ReduceSum: reduction, ReduceProd: reduction,
  ReduceL1: reduction, ReduceL2: reduction, ReduceLogSum: reduction, ReduceLogSumExp: reduction, ReduceSumSquare: reduction,
  ArgMax: { shape: argReduce, channels: 'mix' }, ArgMin: { shape: argReduce, channels: 'mix' },
  TopK: { shape: topK, channels: 'mix', metaInputs: [1] },
};

const key = (opType: string, domain: string) => (domain === '' || domain === 'ai.onnx' ? opType : `${domain}::${opType}`);

const registry = new Map<string, OpInfo>();
for (const [opType, spec] of Object.entries(OPS)) registry.set(opType, Object.freeze({ ...spec, opType, domain: '' }));

/** The registry entry of an op, or undefined when gpt does not know it. `domain` '' and 'ai.onnx' are the same. */
export function opInfo(opType: string, domain = ''): OpInfo | undefined {
  return registry.get(key(opType, domain));
}

/** The entry of a node's op. */
export function nodeOp(node: { opType: string; domain: string }): OpInfo | undefined {
  return registry.get(key(node.opType, node.domain));
}

/** Every registered op, sorted by domain and name. */
export function registeredOps(): OpInfo[] {
  return [...registry.values()].sort((a, b) => key(a.opType, a.domain).localeCompare(key(b.opType, b.domain)));
}

/**
 * Add (or replace) an entry at run time, e.g. for a custom-domain op a model uses. Returns a
 * function that restores what was there before.
 */
export function registerOp(opType: string, spec: OpSpec, domain = ''): () => void {
  const k = key(opType, domain);
  const before = registry.get(k);
  registry.set(k, Object.freeze({ ...spec, opType, domain: domain === 'ai.onnx' ? '' : domain }));
  return () => {
    if (before) registry.set(k, before);
    else registry.delete(k);
  };
}

/** Remove an entry (a test showing what one entry is worth); returns a function that puts it back. */
export function unregisterOp(opType: string, domain = ''): () => void {
  const k = key(opType, domain);
  const before = registry.get(k);
  registry.delete(k);
  return () => {
    if (before) registry.set(k, before);
  };
}

/** Op types of the default domain that are pointwise activations and not mostly gates: what rules' `@activation` accepts. */
export function blockActivations(): string[] {
  return [...registry.values()].filter((o) => o.domain === '' && o.activation && !o.activation.gate).map((o) => o.opType).sort();
}
