/**
 * ONNX op -> torch call, one emitter per op: the generic, op-by-op half of the PyTorch export. Weight
 * layers become modules (Conv -> nn.ConvNd, BatchNormalization -> nn.BatchNormNd, Gemm -> nn.Linear)
 * so they train and show in the state dict; everything else is a plain torch expression. Activation
 * parameters are read through the op registry (readActivation), like the passes read them.
 */
import { GptError } from '../errors';
import type { Node, Value } from '../ir/graph';
import type { Tensor } from '../ir/tensor';
import { DataType } from '../onnx/schema';
import { readActivation } from '../ops';
import type { EmitContext, Emitter, ModuleState } from './context';
import { pyFloat, pyList, pyNum, pySize, pyStr, torchDtype } from './py';

const f32 = (values: ArrayLike<number>): Uint8Array => {
  const a = Float32Array.from(values);
  return new Uint8Array(a.buffer);
};
const state = (key: string, t: Tensor): ModuleState => ({ key, dataType: t.dataType, dims: t.dims, bytes: t.bytes() });
const floatState = (key: string, dims: number[], values: ArrayLike<number>): ModuleState => ({ key, dataType: DataType.FLOAT, dims, bytes: f32(values) });

function unsupported(n: Node, what: string): GptError {
  return new GptError('E_ARG', `${n.opType} node '${n.name}': ${what} has no PyTorch mapping in the exporter`, {
    subject: n.name,
    hint: 'convert the model with this op replaced, or file an issue with the model',
  });
}

/** Padding for auto_pad SAME_UPPER / SAME_LOWER from the input's static spatial dims. */
function autoPads(n: Node, c: EmitContext, x: Value | null, kernel: number[], strides: number[], dilations: number[]): number[] {
  const k = kernel.length;
  const mode = n.string('auto_pad', 'NOTSET');
  if (mode === 'NOTSET') return n.ints('pads', new Array(2 * k).fill(0));
  if (mode === 'VALID') return new Array(2 * k).fill(0);
  const shape = c.shape(x);
  const begin: number[] = [];
  const end: number[] = [];
  for (let i = 0; i < k; i++) {
    const size = shape?.[2 + i];
    if (typeof size !== 'number') throw unsupported(n, `auto_pad ${mode} on an input of unknown size`);
    const out = Math.ceil(size / strides[i]);
    const total = Math.max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size);
    const small = Math.floor(total / 2);
    begin.push(mode === 'SAME_UPPER' ? small : total - small);
    end.push(mode === 'SAME_UPPER' ? total - small : small);
  }
  return [...begin, ...end];
}

/** Symmetric pads as the layer's padding, asymmetric ones as a _pad() in front (returns the input expr). */
function splitPads(c: EmitContext, xExpr: string, pads: number[], k: number, fill: string): { x: string; padding: number[] } {
  const begin = pads.slice(0, k);
  const end = pads.slice(k);
  if (begin.every((b, i) => b === end[i])) return { x: xExpr, padding: begin };
  const full = [0, 0, ...begin, 0, 0, ...end];
  return { x: `${c.helper('_pad')}(${xExpr}, ${pyList(full)}, "constant", ${fill})`, padding: new Array(k).fill(0) };
}

const conv: Emitter = (n, c) => {
  const w = c.constTensor(n.inputs[1]);
  const b = c.constTensor(n.inputs[2]);
  const k = w ? w.dims.length - 2 : (c.rank(n.inputs[1]) ?? 4) - 2;
  const kernel = w ? w.dims.slice(2) : n.ints('kernel_shape');
  const strides = n.ints('strides', new Array(k).fill(1));
  const dilations = n.ints('dilations', new Array(k).fill(1));
  const group = n.int('group', 1);
  const pads = autoPads(n, c, n.inputs[0], kernel, strides, dilations);
  const { x, padding } = splitPads(c, c.v(n.inputs[0]), pads, k, '0.0');
  if (!w || (n.inputs[2] && !b)) {
    const bias = n.inputs[2] ? c.v(n.inputs[2]) : 'None';
    return `F.conv${k}d(${x}, ${c.v(n.inputs[1])}, ${bias}, ${pySize(strides)}, ${pySize(padding)}, ${pySize(dilations)}, ${group})`;
  }
  const out = w.dims[0];
  const args = [`${w.dims[1] * group}`, `${out}`, `kernel_size=${pySize(kernel)}`];
  if (strides.some((s) => s !== 1)) args.push(`stride=${pySize(strides)}`);
  if (padding.some((p) => p !== 0)) args.push(`padding=${pySize(padding)}`);
  if (dilations.some((d) => d !== 1)) args.push(`dilation=${pySize(dilations)}`);
  if (group !== 1) args.push(`groups=${group}`);
  const unfold = c.unfoldBn(n);
  if (!b || unfold) args.push('bias=False');
  const convState = [state('weight', w)];
  if (b && !unfold) convState.push(state('bias', b));
  const m = c.addModule(n.name, `nn.Conv${k}d(${args.join(', ')})`, convState);
  if (!unfold) return `${m}(${x})`;
  // --bn unfold: the BatchNorm folded into this conv, back as an identity-initialised layer whose
  // beta is the folded bias (running mean 0, running var 1 - eps, gamma 1): the output is unchanged
  const eps = 1e-5;
  const beta = b ? Array.from(b.data() as Float32Array) : new Array(out).fill(0);
  const bn = c.addModule(`${n.name}/bn`, `nn.BatchNorm${Math.max(1, k)}d(${out})`, [
    floatState('weight', [out], new Array(out).fill(1)),
    floatState('bias', [out], beta),
    floatState('running_mean', [out], new Array(out).fill(0)),
    floatState('running_var', [out], new Array(out).fill(1 - eps)),
    { key: 'num_batches_tracked', dataType: DataType.INT64, dims: [], bytes: new Uint8Array(8) },
  ]);
  return `${bn}(${m}(${x}))`;
};

const convTranspose: Emitter = (n, c) => {
  const w = c.constTensor(n.inputs[1]);
  const b = c.constTensor(n.inputs[2]);
  if (!w) throw unsupported(n, 'a ConvTranspose with a computed weight');
  const k = w.dims.length - 2;
  const group = n.int('group', 1);
  const strides = n.ints('strides', new Array(k).fill(1));
  const dilations = n.ints('dilations', new Array(k).fill(1));
  const pads = n.ints('pads', new Array(2 * k).fill(0));
  const outPad = n.ints('output_padding', new Array(k).fill(0));
  if (n.string('auto_pad', 'NOTSET') !== 'NOTSET' || n.attr('output_shape') || pads.slice(0, k).some((p, i) => p !== pads[k + i])) throw unsupported(n, 'auto_pad / output_shape / asymmetric pads');
  const args = [`${w.dims[0]}`, `${w.dims[1] * group}`, `kernel_size=${pySize(w.dims.slice(2))}`, `stride=${pySize(strides)}`, `padding=${pySize(pads.slice(0, k))}`,
    `output_padding=${pySize(outPad)}`, `dilation=${pySize(dilations)}`, `groups=${group}`];
  if (!b) args.push('bias=False');
  const st = [state('weight', w)];
  if (b) st.push(state('bias', b));
  return `${c.addModule(n.name, `nn.ConvTranspose${k}d(${args.join(', ')})`, st)}(${c.v(n.inputs[0])})`;
};

const batchNorm: Emitter = (n, c) => {
  const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => c.constTensor(n.inputs[i]));
  const eps = n.float('epsilon', 1e-5);
  const momentum = 1 - n.float('momentum', 0.9);
  // training-mode BN (5 outputs before opset 14, training_mode=1 from 14): ONNX Runtime normalises
  // with the batch's statistics, so the module does too, in eval mode as in train mode
  const batchStats = n.int('training_mode', 0) === 1 || (c.opset < 14 && n.outputs.filter(Boolean).length > 1);
  const rank = c.rank(n.inputs[0]) ?? 4;
  const cls = rank === 5 ? 'nn.BatchNorm3d' : rank === 4 ? 'nn.BatchNorm2d' : 'nn.BatchNorm1d';
  if (!scale || !bias || !mean || !variance) {
    return `F.batch_norm(${c.v(n.inputs[0])}, ${c.v(n.inputs[3])}, ${c.v(n.inputs[4])}, ${c.v(n.inputs[1])}, ${c.v(n.inputs[2])}, False, 0.0, ${pyFloat(eps)})`;
  }
  const ch = scale.dims[0];
  const args = [`${ch}`];
  if (Math.abs(eps - 1e-5) > 1e-9) args.push(`eps=${pyFloat(Number(eps.toPrecision(7)))}`);
  if (Math.abs(momentum - 0.1) > 1e-7) args.push(`momentum=${pyFloat(Number(momentum.toPrecision(6)))}`);
  const st = [state('weight', scale), state('bias', bias)];
  st.push(state('running_mean', mean), state('running_var', variance), { key: 'num_batches_tracked', dataType: DataType.INT64, dims: [], bytes: new Uint8Array(8) });
  const m = c.addModule(n.name, `${cls}(${args.join(', ')})`, st);
  const x = c.v(n.inputs[0]);
  // in eval mode too, the batch's statistics (momentum 0: the running ones stay as they are)
  const y = batchStats ? `(${m}(${x}) if self.training else F.batch_norm(${x}, ${m}.running_mean, ${m}.running_var, ${m}.weight, ${m}.bias, True, 0.0, ${m}.eps))` : `${m}(${x})`;
  const extra = n.outputs.length - 1;
  if (extra > 0 && n.outputs.slice(1).some((o) => o && o.isRead)) {
    // the statistics outputs: what the layer holds (training-mode outputs are rarely read)
    const more = [`${m}.running_mean`, `${m}.running_var`];
    while (more.length < extra) more.push('None');
    return { expr: `(${y}, ${more.slice(0, extra).join(', ')})`, tuple: extra + 1 };
  }
  return y;
};

const gemm: Emitter = (n, c) => {
  const transA = n.int('transA', 0);
  const transB = n.int('transB', 0);
  const alpha = n.float('alpha', 1);
  const beta = n.float('beta', 1);
  const b = c.constTensor(n.inputs[1]);
  const bias = c.constTensor(n.inputs[2]);
  const biasOk = !n.inputs[2] || (bias !== null && (bias.dims.length === 1 || (bias.dims.length === 2 && bias.dims[0] === 1)));
  if (transA === 0 && b && b.dataType === DataType.FLOAT && biasOk) {
    const [k, m] = transB ? [b.dims[1], b.dims[0]] : b.dims;
    const src = b.data() as Float32Array;
    const w = new Float32Array(m * k);
    for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) w[i * k + j] = alpha * (transB ? src[i * k + j] : src[j * m + i]);
    const st = [floatState('weight', [m, k], w)];
    if (bias) {
      const bv = Array.from(bias.data() as Float32Array, (x) => beta * x);
      st.push(floatState('bias', [m], bv.length === 1 ? new Array(m).fill(bv[0]) : bv));
    }
    return `${c.addModule(n.name, `nn.Linear(${k}, ${m}${bias ? '' : ', bias=False'})`, st)}(${c.v(n.inputs[0])})`;
  }
  let a = c.v(n.inputs[0]);
  let bb = c.v(n.inputs[1]);
  if (transA) a = `${a}.t()`;
  if (transB) bb = `${bb}.t()`;
  let e = `torch.matmul(${a}, ${bb})`;
  if (alpha !== 1) e = `${pyFloat(alpha)} * ${e}`;
  if (n.inputs[2]) e = `${e} + ${beta !== 1 ? `${pyFloat(beta)} * ` : ''}${c.v(n.inputs[2])}`;
  return e;
};

/** A config input (axes, pads, shape...) as a Python list when constant, else the tensor via _ints. */
function listArg(c: EmitContext, v: Value | null | undefined): string {
  const k = c.constNumbers(v);
  return k ? pyList(k) : `${c.helper('_ints')}(${c.v(v)})`;
}

/** axes from an attribute (older opsets) or input `i` (newer); null when absent. */
function axesOf(n: Node, c: EmitContext, input: number): string | null {
  if (n.attr('axes')) return pyList(n.ints('axes'));
  if (n.inputs[input]) return listArg(c, n.inputs[input]);
  return null;
}

function pool(kind: 'max' | 'avg'): Emitter {
  return (n, c) => {
    const kernel = n.ints('kernel_shape');
    const k = kernel.length;
    const strides = n.ints('strides', new Array(k).fill(1));
    const dilations = n.ints('dilations', new Array(k).fill(1));
    const pads = autoPads(n, c, n.inputs[0], kernel, strides, dilations);
    const ceil = n.int('ceil_mode', 0) === 1;
    const countPad = n.int('count_include_pad', 0) === 1;
    const fill = kind === 'max' ? "-float('inf')" : '0.0';
    const asym = pads.slice(0, k).some((p, i) => p !== pads[k + i]);
    if (asym && kind === 'avg' && !countPad) throw unsupported(n, 'asymmetric padding without count_include_pad');
    const { x, padding } = splitPads(c, c.v(n.inputs[0]), pads, k, fill);
    const args = [x, pySize(kernel), pySize(strides)];
    if (padding.some((p) => p !== 0)) args.push(`padding=${pySize(padding)}`);
    if (kind === 'max' && dilations.some((d) => d !== 1)) args.push(`dilation=${pySize(dilations)}`);
    if (ceil) args.push('ceil_mode=True');
    if (kind === 'avg') args.push(`count_include_pad=${countPad || asym ? 'True' : 'False'}`);
    return `F.${kind}_pool${k}d(${args.join(', ')})`;
  };
}

function globalPool(kind: 'avg' | 'max'): Emitter {
  return (n, c) => {
    const r = c.rank(n.inputs[0]);
    const x = c.v(n.inputs[0]);
    if (r && r >= 3 && r <= 5) return `F.adaptive_${kind}_pool${r - 2}d(${x}, 1)`;
    return kind === 'avg' ? `${x}.mean(dim=tuple(range(2, ${x}.dim())), keepdim=True)` : `${x}.amax(dim=tuple(range(2, ${x}.dim())), keepdim=True)`;
  };
}

const bin = (op: string): Emitter => (n, c) => `${c.v(n.inputs[0])} ${op} ${c.v(n.inputs[1])}`;
const call = (fn: string): Emitter => (n, c) => `${fn}(${n.inputs.filter(Boolean).map((v) => c.v(v)).join(', ')})`;
const variadic = (fn: string): Emitter => (n, c) => n.inputs.filter(Boolean).map((v) => c.v(v)).reduce((a, b) => `${fn}(${a}, ${b})`);

/** Activations, their parameters read through the registry. */
const activation: Emitter = (n, c) => {
  const g = n.graph;
  const p = g ? readActivation(n, g, c.opset) : null;
  const x = c.v(n.inputs[0]);
  const fl = p?.floats ?? {};
  switch (n.opType) {
    case 'Relu': return `torch.relu(${x})`;
    case 'LeakyRelu': return `F.leaky_relu(${x}, ${pyFloat(fl.alpha)})`;
    case 'Sigmoid': return `torch.sigmoid(${x})`;
    case 'Tanh': return `torch.tanh(${x})`;
    case 'HardSwish': return `F.hardswish(${x})`;
    case 'Mish': return `F.mish(${x})`;
    case 'Softplus': return `F.softplus(${x})`;
    case 'Softsign': return `F.softsign(${x})`;
    case 'Elu': return `F.elu(${x}, ${pyFloat(fl.alpha)})`;
    case 'Celu': return `F.celu(${x}, ${pyFloat(fl.alpha)})`;
    case 'Selu': return `${pyFloat(fl.gamma)} * torch.where(${x} > 0, ${x}, ${pyFloat(fl.alpha)} * (torch.exp(${x}) - 1))`;
    case 'ThresholdedRelu': return `torch.where(${x} > ${pyFloat(fl.alpha)}, ${x}, torch.zeros_like(${x}))`;
    case 'Gelu': return `F.gelu(${x}${p?.strings.approximate === 'tanh' ? ', approximate="tanh"' : ''})`;
    case 'HardSigmoid':
      if (Math.abs(fl.alpha - 1 / 6) < 1e-7 && fl.beta === 0.5) return `F.hardsigmoid(${x})`;
      return `torch.clamp(${x} * ${pyFloat(fl.alpha)} + ${pyFloat(fl.beta)}, 0.0, 1.0)`;
    case 'Clip': {
      const lo = p?.bounds.min;
      const hi = p?.bounds.max;
      if (lo === null || hi === null || lo === undefined || hi === undefined) {
        // run-time bounds
        const args = [x, n.inputs[1] ? `${c.helper('_scalar')}(${c.v(n.inputs[1])})` : 'None', n.inputs[2] ? `${c.helper('_scalar')}(${c.v(n.inputs[2])})` : 'None'];
        return `torch.clamp(${args.join(', ')})`;
      }
      const big = 3.4e38;
      if (lo === 0 && hi === 6) return `F.relu6(${x})`;
      return `torch.clamp(${x}${lo > -big ? `, min=${pyFloat(lo)}` : ''}${hi < big ? `, max=${pyFloat(hi)}` : ''})`;
    }
    case 'PRelu': {
      const slope = c.constTensor(n.inputs[1]) ? c.addParameter(n.inputs[1] as Value) : c.v(n.inputs[1]);
      return `torch.where(${x} >= 0, ${x}, ${x} * ${slope})`;
    }
  }
  throw unsupported(n, 'this activation');
};

function castTo(n: Node): string {
  const d = torchDtype(n.int('to', DataType.FLOAT));
  if (!d) throw unsupported(n, `a Cast to element type ${n.int('to', 0)}`);
  return d;
}

const EMITTERS: Record<string, Emitter> = {
  Conv: conv,
  ConvTranspose: convTranspose,
  BatchNormalization: batchNorm,
  Gemm: gemm,
  MatMul: (n, c) => `torch.matmul(${c.v(n.inputs[0])}, ${c.constTensor(n.inputs[1]) ? c.addParameter(n.inputs[1] as Value) : c.v(n.inputs[1])})`,

  Relu: activation, LeakyRelu: activation, Sigmoid: activation, Tanh: activation, HardSwish: activation, Mish: activation,
  Softplus: activation, Softsign: activation, Elu: activation, Celu: activation, Selu: activation, ThresholdedRelu: activation,
  Gelu: activation, HardSigmoid: activation, Clip: activation, PRelu: activation,

  Add: bin('+'), Sub: bin('-'), Mul: bin('*'),
  Div: (n, c) => (isFloat(c, n.inputs[0]) ? bin('/')(n, c) : `${c.helper('_div')}(${c.v(n.inputs[0])}, ${c.v(n.inputs[1])})`),
  Pow: call('torch.pow'), Max: variadic('torch.maximum'), Min: variadic('torch.minimum'), Sum: variadic('torch.add'),
  Mean: (n, c) => `(${n.inputs.filter(Boolean).map((v) => c.v(v)).join(' + ')}) / ${n.inputs.filter(Boolean).length}`,
  Exp: call('torch.exp'), Log: call('torch.log'), Sqrt: call('torch.sqrt'), Neg: call('torch.neg'), Abs: call('torch.abs'),
  Reciprocal: call('torch.reciprocal'), Floor: call('torch.floor'), Ceil: call('torch.ceil'), Round: call('torch.round'),
  Erf: call('torch.erf'), Sin: call('torch.sin'), Cos: call('torch.cos'), Sign: call('torch.sign'),
  Not: call('torch.logical_not'), And: call('torch.logical_and'), Or: call('torch.logical_or'), Xor: call('torch.logical_xor'),
  Equal: call('torch.eq'), Greater: call('torch.gt'), Less: call('torch.lt'), GreaterOrEqual: call('torch.ge'), LessOrEqual: call('torch.le'),
  Where: (n, c) => `torch.where(${c.v(n.inputs[0])}.bool(), ${c.v(n.inputs[1])}, ${c.v(n.inputs[2])})`,

  Identity: (n, c) => c.v(n.inputs[0]),
  Dropout: (n, c) => (n.outputs.length > 1 && n.outputs[1] ? { expr: `(${c.v(n.inputs[0])}, torch.ones_like(${c.v(n.inputs[0])}, dtype=torch.bool))`, tuple: 2 } : c.v(n.inputs[0])),
  Cast: (n, c) => `${c.v(n.inputs[0])}.to(${castTo(n)})`,

  Concat: (n, c) => `torch.cat([${n.inputs.filter(Boolean).map((v) => c.v(v)).join(', ')}], dim=${n.int('axis', 1)})`,
  Split: (n, c) => {
    const axis = n.int('axis', 0);
    const outs = n.outputs.length;
    let sizes: string;
    if (n.attr('split')) sizes = pyList(n.ints('split'));
    else if (n.inputs[1]) sizes = listArg(c, n.inputs[1]);
    else {
      const dim = c.shape(n.inputs[0])?.[axis < 0 ? (c.rank(n.inputs[0]) ?? 0) + axis : axis];
      if (typeof dim !== 'number') return { expr: `torch.tensor_split(${c.v(n.inputs[0])}, ${outs}, dim=${axis})`, tuple: outs };
      const each = Math.ceil(dim / outs);
      sizes = pyList(Array.from({ length: outs }, (_, i) => Math.max(0, Math.min(each, dim - i * each))));
    }
    return { expr: `torch.split(${c.v(n.inputs[0])}, ${sizes}, dim=${axis})`, tuple: outs };
  },
  Slice: (n, c) => {
    const x = c.v(n.inputs[0]);
    if (c.opset < 10) {
      const axes = n.attr('axes') ? pyList(n.ints('axes')) : 'None';
      return `${c.helper('_slice')}(${x}, ${pyList(n.ints('starts'))}, ${pyList(n.ints('ends'))}, ${axes})`;
    }
    const [starts, ends, axes, steps] = [1, 2, 3, 4].map((i) => (n.inputs[i] ? c.constNumbers(n.inputs[i]) : undefined));
    const rank = c.rank(n.inputs[0]);
    // constant bounds, positive steps: plain indexing, which clamps as ONNX does
    if (starts && ends && axes !== null && steps !== null && rank && (steps ?? []).every((s) => s > 0)) {
      const idx: string[] = new Array(rank).fill(':');
      const ax = (axes ?? starts.map((_, i) => i)).map((a) => (a < 0 ? a + rank : a));
      const big = 2 ** 31;
      ax.forEach((a, i) => {
        const s = starts[i] <= -big ? '' : starts[i] >= big ? String(big) : String(starts[i]);
        const e = ends[i] >= big ? '' : ends[i] <= -big ? String(-big) : String(ends[i]);
        const st = steps?.[i] ?? 1;
        idx[a] = `${s === '0' ? '' : s}:${e}${st !== 1 ? `:${st}` : ''}`;
      });
      while (idx.length > 1 && idx[idx.length - 1] === ':') idx.pop();
      return `${x}[${idx.join(', ')}]`;
    }
    const arg = (i: number) => (n.inputs[i] ? listArg(c, n.inputs[i]) : 'None');
    return `${c.helper('_slice')}(${x}, ${arg(1)}, ${arg(2)}, ${arg(3)}, ${arg(4)})`;
  },
  Gather: (n, c) => {
    const axis = n.int('axis', 0);
    const idx = c.constTensor(n.inputs[1]);
    if (idx && idx.dims.length === 0) {
      const k = idx.numbers()[0];
      return `${c.v(n.inputs[0])}.select(${axis}, ${k})`;
    }
    return `${c.helper('_gather')}(${c.v(n.inputs[0])}, ${c.v(n.inputs[1])}, ${axis})`;
  },
  Flatten: (n, c) => {
    const axis = n.int('axis', 1);
    return axis === 1 ? `torch.flatten(${c.v(n.inputs[0])}, 1)` : `${c.helper('_flatten')}(${c.v(n.inputs[0])}, ${axis})`;
  },
  Reshape: (n, c) => {
    const shape = c.constNumbers(n.inputs[1]);
    const allowzero = n.int('allowzero', 0);
    if (shape && !shape.includes(0)) return `${c.v(n.inputs[0])}.reshape(${shape.join(', ')}${shape.length === 1 ? ',' : ''})`;
    return `${c.helper('_reshape')}(${c.v(n.inputs[0])}, ${listArg(c, n.inputs[1])}${allowzero ? ', 1' : ''})`;
  },
  Transpose: (n, c) => {
    const perm = n.attr('perm') ? n.ints('perm') : null;
    return perm ? `${c.v(n.inputs[0])}.permute(${perm.join(', ')})` : `${c.v(n.inputs[0])}.permute(*reversed(range(${c.v(n.inputs[0])}.dim())))`;
  },
  Unsqueeze: (n, c) => `${c.helper('_unsqueeze')}(${c.v(n.inputs[0])}, ${axesOf(n, c, 1) ?? '[]'})`,
  Squeeze: (n, c) => `${c.helper('_squeeze')}(${c.v(n.inputs[0])}${axesOf(n, c, 1) ? `, ${axesOf(n, c, 1)}` : ''})`,
  Shape: (n, c) => {
    const start = n.int('start', 0);
    const end = n.attr('end') ? n.int('end', 0) : null;
    return `${c.helper('_shape')}(${c.v(n.inputs[0])}${start || end !== null ? `, ${start}${end !== null ? `, ${end}` : ''}` : ''})`;
  },
  Size: (n, c) => `torch.tensor(${c.v(n.inputs[0])}.numel(), dtype=torch.int64)`,
  ConstantOfShape: (n, c) => {
    const t = n.tensorAttr('value');
    const value = t ? t.numbers()[0] : 0;
    const dtype = torchDtype(t?.dataType ?? DataType.FLOAT) ?? 'torch.float32';
    return `torch.full(${listArg(c, n.inputs[0])}, ${t && !t.isFloat ? pyNum(value) : pyFloat(value)}, dtype=${dtype}, device=${c.device})`;
  },
  Expand: (n, c) => `${c.helper('_expand')}(${c.v(n.inputs[0])}, ${listArg(c, n.inputs[1])})`,
  Range: (n, c) => {
    const dtype = torchDtype(c.elemType(n.inputs[0]) ?? DataType.INT64) ?? 'torch.int64';
    const s = (i: number) => `${c.helper('_scalar')}(${c.v(n.inputs[i])})`;
    return `torch.arange(${s(0)}, ${s(1)}, ${s(2)}, dtype=${dtype}, device=${c.device})`;
  },
  ScatterND: (n, c) => {
    if (n.string('reduction', 'none') !== 'none') throw unsupported(n, 'a ScatterND reduction');
    return `${c.helper('_scatter_nd')}(${c.v(n.inputs[0])}, ${c.v(n.inputs[1])}, ${c.v(n.inputs[2])})`;
  },
  Tile: (n, c) => `${c.v(n.inputs[0])}.repeat(${listArg(c, n.inputs[1])})`,
  Pad: (n, c) => {
    if (n.inputs[3]) throw unsupported(n, 'Pad with axes');
    const pads = c.opset < 11 ? pyList(n.ints('pads')) : listArg(c, n.inputs[1]);
    const value = c.opset < 11 ? pyFloat(n.float('value', 0)) : n.inputs[2] ? `${c.helper('_scalar')}(${c.v(n.inputs[2])})` : '0.0';
    return `${c.helper('_pad')}(${c.v(n.inputs[0])}, ${pads}, ${pyStr(n.string('mode', 'constant'))}, ${value})`;
  },
  MaxPool: pool('max'),
  AveragePool: pool('avg'),
  GlobalAveragePool: globalPool('avg'),
  GlobalMaxPool: globalPool('max'),
  ReduceMean: reduceOp('mean'), ReduceSum: reduceOp('sum'), ReduceMax: reduceOp('amax'), ReduceMin: reduceOp('amin'),
  Softmax: (n, c) => `torch.softmax(${c.v(n.inputs[0])}, ${n.int('axis', c.opset >= 13 ? -1 : 1)})`,
  LogSoftmax: (n, c) => `torch.log_softmax(${c.v(n.inputs[0])}, ${n.int('axis', c.opset >= 13 ? -1 : 1)})`,
  Resize: resize,
  Upsample: resize,
};

function reduceOp(fn: string): Emitter {
  return (n, c) => {
    const keep = n.int('keepdims', 1) === 1;
    const axes = axesOf(n, c, 1);
    const x = c.v(n.inputs[0]);
    if (!axes) return keep ? `${x}.${fn}(dim=tuple(range(${x}.dim())), keepdim=True)` : `${x}.${fn}()`;
    return `${x}.${fn}(dim=${axes}, keepdim=${keep ? 'True' : 'False'})`;
  };
}

function isFloat(c: EmitContext, v: Value | null | undefined): boolean {
  const t = c.elemType(v);
  return t === DataType.FLOAT || t === DataType.FLOAT16 || t === DataType.DOUBLE || t === DataType.BFLOAT16;
}

/** Resize / Upsample as F.interpolate: the modes torch has the same arithmetic for. */
function resize(n: Node, c: EmitContext): string {
  const mode = n.string('mode', 'nearest');
  const ctm = n.opType === 'Upsample' ? 'asymmetric' : n.string('coordinate_transformation_mode', 'half_pixel');
  const nearestMode = n.string('nearest_mode', 'round_prefer_floor');
  const x = c.v(n.inputs[0]);
  let scales: number[] | null = null;
  let sizes: number[] | null = null;
  if (n.opType === 'Upsample') scales = n.attr('scales') ? n.floats('scales') : c.constNumbers(n.inputs[1]);
  else {
    const si = c.opset >= 11 ? 2 : 1;
    const s = c.constNumbers(n.inputs[si]);
    if (s && s.length) scales = s;
    const z = c.opset >= 11 ? c.constNumbers(n.inputs[3]) : null;
    if (z && z.length) sizes = z;
  }
  let how: string;
  if (mode === 'nearest') {
    if (ctm === 'asymmetric' && nearestMode === 'floor') how = 'mode="nearest"';
    else throw unsupported(n, `nearest resize with ${ctm} / ${nearestMode}`);
  } else if (mode === 'linear') {
    if (ctm === 'align_corners') how = 'mode="bilinear", align_corners=True';
    else if (ctm === 'half_pixel' || ctm === 'pytorch_half_pixel') how = 'mode="bilinear", align_corners=False';
    else throw unsupported(n, `linear resize with ${ctm}`);
  } else throw unsupported(n, `${mode} resize`);
  if (sizes) return `F.interpolate(${x}, size=${pySize(sizes.slice(2))}, ${how})`;
  if (scales) return `F.interpolate(${x}, scale_factor=${pySize(scales.slice(2))}, ${how})`;
  throw unsupported(n, 'a resize with computed scales and sizes');
}

export function emitterFor(n: Node): Emitter | undefined {
  if (n.domain !== '' && n.domain !== 'ai.onnx') return undefined;
  return EMITTERS[n.opType];
}

export function exportableOps(): string[] {
  return Object.keys(EMITTERS).sort();
}
