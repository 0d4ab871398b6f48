/**
 * ModelBuilder: writes a CNN into the Graph IR the way torch.onnx.export (PyTorch 1.13, opset 13,
 * BN not folded) would, so the analysis and passes treat a sample like a real user's export:
 *
 *   node   /layer1/layer1.0/conv1/Conv          value  /layer1/layer1.0/conv1/Conv_output_0
 *   weight layer1.0.conv1.weight                BN     layer1.0.bn1.{weight,bias,running_mean,running_var}
 *
 * Callers name things by the PyTorch module path ('layer1.0.conv1'); the builder derives the rest.
 * It tracks each value's [N, C, H, W] so a conv knows its input width, and refuses a window that
 * does not fit its input (a resolution too small for the network).
 */
import { GptError } from '../errors';
import { Dim, Graph, Value, floatType } from '../ir/graph';
import { Model } from '../ir/model';
import { Tensor } from '../ir/tensor';
import { Rng } from './random';

export const SAMPLE_OPSET = 13;
export const SAMPLE_IR_VERSION = 7;
const BN_EPSILON = 1e-5;
const BN_MOMENTUM = 0.9; // written by the exporter though inference ignores it

export type Activation = 'Relu' | 'LeakyRelu';

/** Module paths of a conv + BN + activation triple, e.g. { conv: 'layer1.0.conv1', bn: 'layer1.0.bn1', act: 'layer1.0.relu' }. */
export interface ConvBnActNames {
  conv: string;
  bn: string;
  act?: string;
}

/**
 * PyTorch's scope for a module path. Every module whose forward runs opens a scope; an indexed
 * child takes its parent's segment as a prefix; a container that is only indexed, never called
 * (an nn.ModuleList, named in `moduleLists`), opens none and prefixes its child instead:
 *   'layer1.0.conv1'                       -> '/layer1/layer1.0/conv1'
 *   'stages.0.0.layers.0.0' (layers listed) -> '/stages/stages.0/stages.0.0/layers.0/layers.0.0'
 */
export function torchScope(modulePath: string, moduleLists: ReadonlySet<string> = new Set()): string {
  if (!modulePath) return '';
  const segs: string[] = [];
  let list: string | undefined;
  for (const p of modulePath.split('.')) {
    if (list !== undefined) {
      segs.push(`${list}.${p}`);
      list = undefined;
    } else if (moduleLists.has(p)) list = p;
    else segs.push(/^\d+$/.test(p) && segs.length > 0 ? `${segs[segs.length - 1]}.${p}` : p);
  }
  return '/' + segs.join('/');
}

export class ModelBuilder {
  readonly graph = new Graph();
  private readonly rng: Rng;
  private readonly batch: Dim;
  private readonly moduleLists: ReadonlySet<string>;

  /** moduleLists: names of nn.ModuleList attributes (see torchScope). */
  constructor(opts: { seed: number; batch: number | string; moduleLists?: string[] }) {
    this.rng = new Rng(opts.seed);
    this.batch = opts.batch;
    this.moduleLists = new Set(opts.moduleLists ?? []);
  }

  /** The graph input "name" of shape [N, channels, h, w]. */
  input(name: string, channels: number, h: number, w: number): Value {
    const v = this.graph.value(name);
    v.declared = floatType([this.batch, channels, h, w]);
    this.graph.addInput(v);
    return v;
  }

  /** [C, H, W] of a value made by this builder (or [C] after flatten). */
  dims(v: Value): number[] {
    return (v.shape ?? []).slice(1) as number[];
  }

  channels(v: Value): number {
    return this.dims(v)[0];
  }

  /** Conv2d without bias (a BN follows), He-normal weights (fan-in, gain sqrt 2). */
  conv(x: Value, module: string, cout: number, k: number, stride = 1, pad = Math.floor(k / 2), groups = 1): Value {
    const [cin, h, w] = this.dims(x);
    const fanIn = (cin / groups) * k * k;
    const weight = this.param(`${module}.weight`, [cout, cin / groups, k, k], this.rng.normals(cout * fanIn, Math.sqrt(2 / fanIn)));
    const y = this.op('Conv', module, [x, weight], {
      dilations: [1, 1], group: groups, kernel_shape: [k, k], pads: [pad, pad, pad, pad], strides: [stride, stride],
    });
    return this.shaped(y, [cout, this.window(module, h, k, stride, pad, false), this.window(module, w, k, stride, pad, false)]);
  }

  /**
   * BatchNormalization in inference form (one output) with non-trivial random statistics. gamma is
   * drawn so that gamma / sqrt(running_var) is about `gain`: He-normal convs keep the signal's scale,
   * and so does each BN. A residual branch's last BN gets a small gain (Goyal et al. 2017, torchvision's
   * zero_init_residual, but not zero) so that 16-23 residual Adds do not blow the logits up.
   */
  batchNorm(x: Value, module: string, gain = 1): Value {
    const c = this.channels(x);
    const r = this.rng;
    const runningVar = r.uniforms(c, 0.5, 1.5);
    const gamma = runningVar.map((v) => gain * Math.sqrt(v) * r.uniform(0.8, 1.2));
    const inputs = [
      x,
      this.param(`${module}.weight`, [c], gamma),
      this.param(`${module}.bias`, [c], r.normals(c, 0.1)),
      this.param(`${module}.running_mean`, [c], r.normals(c, 0.1)),
      this.param(`${module}.running_var`, [c], runningVar),
    ];
    const y = this.op('BatchNormalization', module, inputs, { epsilon: { float: BN_EPSILON }, momentum: { float: BN_MOMENTUM } });
    return this.shaped(y, this.dims(x));
  }

  /** Relu, or LeakyRelu with Darknet's slope 0.1. */
  activation(x: Value, module: string, kind: Activation): Value {
    const y = this.op(kind, module, [x], kind === 'LeakyRelu' ? { alpha: { float: 0.1 } } : {});
    return this.shaped(y, this.dims(x));
  }

  /** conv -> BN -> activation (the activation is left out when names.act is). bnGain: see batchNorm. */
  convBnAct(x: Value, names: ConvBnActNames, cout: number, k: number, stride: number, act: Activation, bnGain = 1, groups = 1): Value {
    const y = this.batchNorm(this.conv(x, names.conv, cout, k, stride, Math.floor(k / 2), groups), names.bn, bnGain);
    return names.act ? this.activation(y, names.act, act) : y;
  }

  /** A 1x1 conv with a bias (an attention's FC as a conv), PyTorch's default uniform init. */
  fcConv(x: Value, module: string, cout: number): Value {
    const [cin, h, w] = this.dims(x);
    const bound = 1 / Math.sqrt(cin);
    const weight = this.param(`${module}.weight`, [cout, cin, 1, 1], this.rng.uniforms(cout * cin, -bound, bound));
    const bias = this.param(`${module}.bias`, [cout], this.rng.uniforms(cout, -bound, bound));
    const y = this.op('Conv', module, [x, weight, bias], { dilations: [1, 1], group: 1, kernel_shape: [1, 1], pads: [0, 0, 0, 0], strides: [1, 1] });
    return this.shaped(y, [cout, h, w]);
  }

  /** A pointwise op with no parameters (Sigmoid, HardSigmoid...), shaped like its input. */
  pointwise(x: Value, module: string, opType: string, attrs: Parameters<Graph['addNode']>[0]['attrs'] = {}): Value {
    return this.shaped(this.op(opType, module, [x], attrs), this.dims(x));
  }

  /** x.mean((2, 3), keepdim=True) as the exporter writes it. */
  reduceMean(x: Value, module: string): Value {
    return this.shaped(this.op('ReduceMean', module, [x], { axes: [2, 3], keepdims: 1 }), [this.channels(x), 1, 1]);
  }

  /** a * b (b broadcast over H, W). */
  mul(a: Value, b: Value, module: string): Value {
    return this.shaped(this.op('Mul', module, [a, b]), this.dims(a));
  }

  /** nn.AvgPool2d(k, stride, ceil_mode, count_include_pad) (ResNet-D's shortcut pool). */
  avgPool(x: Value, module: string, k: number, stride: number, ceil: boolean, countIncludePad: boolean): Value {
    const [c, h, w] = this.dims(x);
    const y = this.op('AveragePool', module, [x], { ceil_mode: ceil ? 1 : 0, count_include_pad: countIncludePad ? 1 : 0, kernel_shape: [k, k], pads: [0, 0, 0, 0], strides: [stride, stride] });
    return this.shaped(y, [c, this.window(module, h, k, stride, 0, ceil), this.window(module, w, k, stride, 0, ceil)]);
  }

  maxPool(x: Value, module: string, k: number, stride: number, pad: number, ceil: boolean): Value {
    const [c, h, w] = this.dims(x);
    const y = this.op('MaxPool', module, [x], { ceil_mode: ceil ? 1 : 0, kernel_shape: [k, k], pads: [pad, pad, pad, pad], strides: [stride, stride] });
    return this.shaped(y, [c, this.window(module, h, k, stride, pad, ceil), this.window(module, w, k, stride, pad, ceil)]);
  }

  globalAveragePool(x: Value, module: string): Value {
    return this.shaped(this.op('GlobalAveragePool', module, [x]), [this.channels(x), 1, 1]);
  }

  flatten(x: Value, module = ''): Value {
    const d = this.dims(x);
    return this.shaped(this.op('Flatten', module, [x], { axis: 1 }), [d.reduce((a, b) => a * b, 1)]);
  }

  /** A Linear layer as the exporter writes it (Gemm, transB), with PyTorch's default uniform init. */
  gemm(x: Value, module: string, cout: number, outputName?: string): Value {
    const [cin] = this.dims(x);
    const bound = 1 / Math.sqrt(cin);
    const weight = this.param(`${module}.weight`, [cout, cin], this.rng.uniforms(cout * cin, -bound, bound));
    const bias = this.param(`${module}.bias`, [cout], this.rng.uniforms(cout, -bound, bound));
    const y = this.op('Gemm', module, [x, weight, bias], { alpha: { float: 1 }, beta: { float: 1 }, transB: 1 }, outputName);
    return this.shaped(y, [cout]);
  }

  add(a: Value, b: Value, module: string): Value {
    return this.shaped(this.op('Add', module, [a, b]), this.dims(a));
  }

  concat(xs: Value[], module: string): Value {
    const [, h, w] = this.dims(xs[0]);
    const c = xs.reduce((n, v) => n + this.channels(v), 0);
    return this.shaped(this.op('Concat', module, xs, { axis: 1 }), [c, h, w]);
  }

  /** A conv with a bias and no BN or activation (a detection head's last 1x1), output named `outputName`. */
  convBias(x: Value, module: string, cout: number, outputName: string): Value {
    const [cin, h, w] = this.dims(x);
    const weight = this.param(`${module}.weight`, [cout, cin, 1, 1], this.rng.normals(cout * cin, Math.sqrt(1 / cin)));
    const bias = this.param(`${module}.bias`, [cout], this.rng.normals(cout, 0.1));
    const y = this.op('Conv', module, [x, weight, bias], { dilations: [1, 1], group: 1, kernel_shape: [1, 1], pads: [0, 0, 0, 0], strides: [1, 1] }, outputName);
    return this.shaped(y, [cout, h, w]);
  }

  /** nn.Upsample(scale_factor, mode='nearest') as opset 13 exports it: Resize with a scales initializer. */
  upsample(x: Value, module: string, scale: number): Value {
    const [c, h, w] = this.dims(x);
    const roi = this.param(`${module}.roi`, [0], new Float32Array(0));
    const scales = this.param(`${module}.scales`, [4], Float32Array.from([1, 1, scale, scale]));
    const y = this.op('Resize', module, [x, roi, scales], {
      coordinate_transformation_mode: 'asymmetric', cubic_coeff_a: { float: -0.75 }, mode: 'nearest', nearest_mode: 'floor',
    });
    return this.shaped(y, [c, h * scale, w * scale]);
  }

  /** The finished model: `output` (or several) become the graph outputs, typed [N, ...]. */
  finish(output: Value | Value[], graphName: string, docString?: string): Model {
    const outs = Array.isArray(output) ? output : [output];
    for (const o of outs) o.declared = o.inferred;
    for (const o of [...this.graph.outputs]) this.graph.removeOutput(o);
    for (const o of outs) this.graph.addOutput(o);
    this.graph.rest = { name: graphName };
    return new Model(
      {
        irVersion: SAMPLE_IR_VERSION,
        opsetImport: [{ domain: '', version: SAMPLE_OPSET }],
        producerName: 'gpt',
        docString,
        metadataProps: [],
        trainingInfo: [],
        functions: [],
        configuration: [],
      },
      this.graph,
    );
  }

  private param(name: string, dims: number[], data: Float32Array): Value {
    return this.graph.addInitializer(Tensor.float32(name, dims, data));
  }

  /** One node named from its module's scope, output "<node name>_output_0" (or outputName). */
  private op(opType: string, module: string, inputs: Value[], attrs: Parameters<Graph['addNode']>[0]['attrs'] = {}, outputName?: string): Value {
    const name = this.graph.uniqueName(`${torchScope(module, this.moduleLists)}/${opType}`);
    const out = this.graph.value(outputName ?? `${name}_output_0`);
    this.graph.addNode({ opType, name, inputs, outputs: [out], attrs });
    return out;
  }

  private shaped(v: Value, dims: number[]): Value {
    v.inferred = floatType([this.batch, ...dims]);
    return v;
  }

  /** Output length of a conv / pool window along one axis, as PyTorch computes it. */
  private window(module: string, size: number, k: number, stride: number, pad: number, ceil: boolean): number {
    const span = size + 2 * pad - k;
    if (span < 0) {
      throw new GptError('E_ARG', `resolution too small: '${module}' gets a ${size}-pixel input, smaller than its ${k}x${k} window`, {
        subject: 'resolution', hint: 'use a larger --resolution',
      });
    }
    return (ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  }
}
