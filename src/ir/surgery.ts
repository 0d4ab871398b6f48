/**
 * Graph surgery shared by the passes: channel split / slice / concat in the opset's own form, and
 * shrinking a conv (+ its BatchNormalization) to a subset of its output or input channels. New
 * tensors are always new initializers: a source tensor is never edited in place (it may be shared).
 */
import { GptError } from '../errors';
import { DataType } from '../onnx/schema';
import type { Model } from './model';
import { Dim, Graph, Node, TensorType, Value } from './graph';
import { Tensor } from './tensor';
import { floatTensor, floatValues } from './float-data';

/** Channel count (axis 1) of a value, when known. */
export function channelsOf(v: Value | null | undefined): number | null {
  const d = v?.shape?.[1];
  return typeof d === 'number' ? d : null;
}

export function requireChannels(v: Value, what: string): number {
  const c = channelsOf(v);
  if (c === null) throw new GptError('E_SHAPE', `the channel count of '${v.name}' is unknown`, { subject: what, hint: 'run shape inference first' });
  return c;
}

/** Round half to even, as Python's round() (the fixtures' k = round(C / 2) uses it). */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const diff = x - f;
  if (Math.abs(diff - 0.5) < 1e-9) return f % 2 === 0 ? f : f + 1;
  return Math.round(x);
}

/** The type with its channel dim (dim 1) set to c. */
export function withChannels(t: TensorType | undefined, c: number): TensorType | undefined {
  if (!t?.shape) return t ? { ...t } : undefined;
  const shape: Dim[] = [...t.shape];
  shape[1] = c;
  return { elemType: t.elemType, shape };
}

/** Split x along channels into parts of the given sizes (a single Split node). */
export function splitChannels(model: Model, x: Value, sizes: number[], base: string, before?: Node): Value[] {
  const g = model.graph;
  if (sizes.some((s) => s <= 0)) throw new GptError('E_ARG', `cannot split '${x.name}' into parts of ${sizes.join('/')} channels`, { hint: 'every part needs at least one channel' });
  if (sizes.length === 1) return [x];
  const outs = sizes.map((s, i) => g.newValue(`${base}_part${i}`, withChannels(x.type, s)));
  const opset = model.opset() ?? 13;
  if (opset >= 13) {
    const split = g.addInitializer(Tensor.int64(g.uniqueName(`${base}_split`), [sizes.length], sizes));
    g.addNode({ opType: 'Split', name: g.uniqueName(`${base}/Split`), inputs: [x, split], outputs: outs, attrs: { axis: 1 } }, before);
  } else {
    g.addNode({ opType: 'Split', name: g.uniqueName(`${base}/Split`), inputs: [x], outputs: outs, attrs: { axis: 1, split: sizes } }, before);
  }
  return outs;
}

/** Channels [start, end) of x (one Slice node). */
export function sliceChannels(model: Model, x: Value, start: number, end: number, base: string, before?: Node): Value {
  const g = model.graph;
  const out = g.newValue(`${base}_slice`, withChannels(x.type, end - start));
  const opset = model.opset() ?? 13;
  if (opset >= 10) {
    const mk = (n: string, v: number) => g.addInitializer(Tensor.int64(g.uniqueName(`${base}_${n}`), [1], [v]));
    g.addNode({ opType: 'Slice', name: g.uniqueName(`${base}/Slice`), inputs: [x, mk('starts', start), mk('ends', end), mk('axes', 1)], outputs: [out] }, before);
  } else {
    g.addNode({ opType: 'Slice', name: g.uniqueName(`${base}/Slice`), inputs: [x], outputs: [out], attrs: { starts: [start], ends: [end], axes: [1] } }, before);
  }
  return out;
}

/** Concatenate along channels; writes into `output` when given (so downstream names stay). */
export function concatChannels(model: Model, inputs: Value[], base: string, before?: Node, output?: Value): Value {
  const g = model.graph;
  const total = inputs.reduce((n, v) => n + (channelsOf(v) ?? NaN), 0);
  const out = output ?? g.newValue(`${base}_concat`);
  if (Number.isFinite(total)) out.inferred = withChannels(inputs[0].type, total);
  g.addNode({ opType: 'Concat', name: g.uniqueName(`${base}/Concat`), inputs, outputs: [out], attrs: { axis: 1 } }, before);
  return out;
}

/** The conv (and BN node, if any) whose output is `v`, looking through Identity. */
export function convProducer(g: Graph, v: Value): { conv: Node; bn?: Node } | null {
  let cur: Value | null = v;
  let bn: Node | undefined;
  for (let hops = 0; cur && hops < 8; hops++) {
    const p: Node | null = cur.producer;
    if (!p) return null;
    if (p.opType === 'Conv') return { conv: p, bn };
    if (p.opType === 'BatchNormalization' && !bn) {
      bn = p;
      cur = p.inputs[0];
    } else if (p.opType === 'Identity') cur = p.inputs[0];
    else return null;
  }
  return null;
}

/** A constant float tensor's values as float32 (any float type; new tensors are written back in it). */
function floatData(g: Graph, v: Value | null, what: string): { t: Tensor; data: Float32Array } {
  const t = g.constantTensor(v);
  if (!t) throw new GptError('E_GRAPH', `'${v?.name}' is not a constant tensor`, { subject: what });
  return { t, data: floatValues(t, what) };
}

/** The element type of a value, float32 when unknown. */
export function elemTypeOf(v: Value | null | undefined): number {
  return v?.type?.elemType || DataType.FLOAT;
}

/** Pick rows (along axis 0, each `rowSize` long) of a float tensor into a new initializer. */
function pickRows(g: Graph, v: Value | null, rows: number[], suffix: string, what: string): Value {
  const { t, data } = floatData(g, v, what);
  const dims = t.dims;
  const rowSize = dims.slice(1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(rows.length * rowSize);
  rows.forEach((r, i) => out.set(data.subarray(r * rowSize, (r + 1) * rowSize), i * rowSize));
  return g.addInitializer(floatTensor(g.uniqueName(`${t.name}${suffix}`), [rows.length, ...dims.slice(1)], out, t.dataType));
}

/** Pick input channels (axis 1) of a conv weight [O, I, kh, kw] into a new initializer. */
function pickInputChannels(g: Graph, v: Value | null, chans: number[], suffix: string, what: string): Value {
  const { t, data } = floatData(g, v, what);
  const [o, i, ...k] = t.dims;
  const ks = k.reduce((a, b) => a * b, 1);
  const out = new Float32Array(o * chans.length * ks);
  for (let oi = 0; oi < o; oi++) {
    chans.forEach((c, j) => out.set(data.subarray((oi * i + c) * ks, (oi * i + c + 1) * ks), (oi * chans.length + j) * ks));
  }
  return g.addInitializer(floatTensor(g.uniqueName(`${t.name}${suffix}`), [o, chans.length, ...k], out, t.dataType));
}

/**
 * Keep only output channels `keep` of a conv (and of the BN right after it): new filters, bias and BN
 * parameters are copies of the kept ones, so the kept channels compute exactly what they did.
 */
export function keepOutputChannels(model: Model, conv: Node, bn: Node | undefined, keep: number[]): void {
  const g = model.graph;
  if (conv.int('group', 1) !== 1) throw new GptError('E_SHAPE', 'cannot shrink the output channels of a grouped conv', { subject: conv.name });
  conv.setInput(1, pickRows(g, conv.inputs[1], keep, `_out${keep.length}`, conv.name));
  if (conv.inputs[2]) conv.setInput(2, pickRows(g, conv.inputs[2], keep, `_out${keep.length}`, conv.name));
  const outConv = conv.outputs[0]!;
  outConv.inferred = withChannels(outConv.type, keep.length);
  if (bn) {
    for (let i = 1; i <= 4; i++) if (bn.inputs[i]) bn.setInput(i, pickRows(g, bn.inputs[i], keep, `_out${keep.length}`, bn.name));
    bn.outputs.forEach((o, i) => {
      if (o) o.inferred = i === 0 ? withChannels(o.type, keep.length) : { elemType: elemTypeOf(o), shape: [keep.length] };
    });
  }
}

/**
 * Keep only channels `keep` of a depthwise conv (group = channels, one input channel per filter; a
 * following BN too): its filters and input channels go together, and group follows the new width.
 */
export function keepDepthwiseChannels(model: Model, conv: Node, bn: Node | undefined, keep: number[]): void {
  const g = model.graph;
  const dims = g.constantTensor(conv.inputs[1] ?? null)?.dims;
  if (!dims || dims[1] !== 1 || conv.int('group', 1) !== dims[0]) throw new GptError('E_SHAPE', 'not a depthwise conv (group = channels, one input channel per filter)', { subject: conv.name });
  conv.setAttr('group', 1);
  keepOutputChannels(model, conv, bn, keep);
  conv.setAttr('group', keep.length);
}

/** Keep only input channels `keep` of a (non-grouped) conv. */
export function keepInputChannels(model: Model, conv: Node, keep: number[]): void {
  const g = model.graph;
  if (conv.int('group', 1) !== 1) throw new GptError('E_SHAPE', 'cannot shrink the input channels of a grouped conv', { subject: conv.name });
  conv.setInput(1, pickInputChannels(g, conv.inputs[1], keep, `_in${keep.length}`, conv.name));
}

export function range(start: number, end: number): number[] {
  return Array.from({ length: end - start }, (_, i) => start + i);
}

// ---------------------------------------------------------------------------------------------
// New conv + BN + activation layers and widened inputs, with seeded initial values (the ELAN pass;
// the numbers come from seedOf / heNormalWeights below, shared with the CSP pass).

/** The activation a new layer copies: op type and attributes (e.g. LeakyRelu's alpha) of a template node. */
export interface ActivationTemplate {
  opType: string;
  attrs: Record<string, number | number[] | string | { float: number } | { floats: number[] }>;
}

export function activationOf(node: Node): ActivationTemplate {
  const attrs: ActivationTemplate['attrs'] = {};
  for (const a of node.attributes) {
    if (!a.name) continue;
    if (a.f !== undefined) attrs[a.name] = { float: a.f };
    else if (a.i !== undefined) attrs[a.name] = Number(a.i);
    else if (a.ints.length) attrs[a.name] = a.ints.map(Number);
    else if (a.floats.length) attrs[a.name] = { floats: a.floats };
  }
  return { opType: node.opType, attrs };
}

export interface ConvBnActSpec {
  /** Node scope, e.g. '/layer2/layer2.1/elan/cv1': nodes become '<scope>/Conv', '<scope>/BatchNormalization', ...; it also seeds the weights. */
  scope: string;
  cout: number;
  kernel: number;
  stride?: number;
  /** Conv groups (default 1); must divide the input width and cout. */
  group?: number;
  /** A BatchNormalization after the conv (else the conv gets a bias, as an exporter that folds BN writes it). */
  batchNorm: boolean;
  /** BN epsilon (default 1e-5). */
  epsilon?: number;
  /** The activation after conv (+BN); null: none. */
  act: ActivationTemplate | null;
  /** Added to seedOf(scope), e.g. a user's seed (default 0). */
  seed?: number;
  /** Insert the new nodes before this node (default: at the end; toposort() puts them in place). */
  before?: Node;
  /** Write the last node's result into this value (it must have no producer), so downstream names stay. */
  output?: Value;
}

export interface ConvBnAct {
  output: Value;
  conv: Node;
  bn?: Node;
  act?: Node;
  /** Parameters of the new layer (weights, bias, BN scale and shift; not running statistics). */
  params: number;
}

/**
 * A new conv (+BN) (+activation) with seeded initial values:
 *   weight: heNormalWeights(seedOf(scope) + seed, ...), N(0, 2 / (Cin x k x k));
 *   conv bias 0; BN scale 1, shift 0, running mean 0, running variance 1 (BN starts as the identity).
 * Pads k // 2 on every side, so a stride-1 layer keeps the resolution.
 */
export function addConvBnAct(model: Model, x: Value, spec: ConvBnActSpec): ConvBnAct {
  const g = model.graph;
  const cin = requireChannels(x, spec.scope);
  const k = spec.kernel;
  const stride = spec.stride ?? 1;
  const pad = Math.floor(k / 2);
  // new weights take the element type of the layer input they join (float16 in a float16 model)
  const param = (suffix: string, dims: number[], data: Float32Array) => g.addInitializer(floatTensor(g.uniqueName(`${spec.scope}.${suffix}`), dims, data, elemTypeOf(x)));
  const group = spec.group ?? 1;
  if (cin % group !== 0 || spec.cout % group !== 0) {
    throw new GptError('E_ARG', `group ${group} does not divide ${cin} input and ${spec.cout} output channels`, { subject: spec.scope, hint: 'choose a group that divides both widths' });
  }
  const weight = param('weight', [spec.cout, cin / group, k, k], heNormalWeights((seedOf(spec.scope) + (spec.seed ?? 0)) >>> 0, spec.cout, cin / group, k));
  const inputs: Value[] = [x, weight];
  let params = (spec.cout * cin * k * k) / group;
  if (!spec.batchNorm) {
    inputs.push(param('bias', [spec.cout], new Float32Array(spec.cout)));
    params += spec.cout;
  }
  const shape = x.shape;
  const sp = (d: Dim): Dim => (typeof d === 'number' ? Math.floor((d + 2 * pad - k) / stride) + 1 : stride === 1 ? d : null);
  const type: TensorType | undefined = shape && shape.length === 4
    ? { elemType: elemTypeOf(x), shape: [shape[0], spec.cout, sp(shape[2]), sp(shape[3])] }
    : withChannels(x.type, spec.cout);
  const steps = 1 + (spec.batchNorm ? 1 : 0) + (spec.act ? 1 : 0);
  let step = 0;
  /** The value for the next node's output: the given output for the last node, else a new one. */
  const next = (name: string): Value => {
    if (++step === steps && spec.output) {
      if (spec.output.producer) throw new GptError('E_GRAPH', `value '${spec.output.name}' already has a producer`, { subject: spec.scope, hint: 'remove its producer first' });
      spec.output.inferred = type;
      return spec.output;
    }
    const v = g.value(g.uniqueName(`${name}_output_0`));
    v.inferred = type;
    return v;
  };
  const convName = g.uniqueName(`${spec.scope}/Conv`);
  const conv = g.addNode({
    opType: 'Conv', name: convName, inputs, outputs: [next(convName)],
    attrs: { dilations: [1, 1], group, kernel_shape: [k, k], pads: [pad, pad, pad, pad], strides: [stride, stride] },
  }, spec.before);
  let y = conv.outputs[0]!;
  let bn: Node | undefined;
  if (spec.batchNorm) {
    const c = spec.cout;
    const bnName = g.uniqueName(`${spec.scope}/BatchNormalization`);
    bn = g.addNode({
      opType: 'BatchNormalization', name: bnName,
      inputs: [y, param('bn.weight', [c], new Float32Array(c).fill(1)), param('bn.bias', [c], new Float32Array(c)),
        param('bn.running_mean', [c], new Float32Array(c)), param('bn.running_var', [c], new Float32Array(c).fill(1))],
      outputs: [next(bnName)], attrs: { epsilon: { float: spec.epsilon ?? 1e-5 } },
    }, spec.before);
    params += 2 * c;
    y = bn.outputs[0]!;
  }
  let act: Node | undefined;
  if (spec.act) {
    const actName = g.uniqueName(`${spec.scope}/${spec.act.opType}`);
    act = g.addNode({ opType: spec.act.opType, name: actName, inputs: [y], outputs: [next(actName)], attrs: spec.act.attrs }, spec.before);
    y = act.outputs[0]!;
  }
  return { output: y, conv, bn, act, params };
}

/**
 * Give a (non-grouped) conv `cin` input channels. New input channel j reads old channel `from(j)`'s
 * filter slice when that is a number (the same feature as before: a carried-over weight), else it
 * gets seeded values: the slice of heNormalWeights(seedOf(conv name + '/in' + cin) + seed, O, cin, k),
 * N(0, 2 / (cin x kh x kw)), He with the fan-in of the widened layer. Returns the number of new
 * (not carried-over) weight values.
 */
export function widenInputChannels(model: Model, conv: Node, cin: number, from: (j: number) => number | null, seed = 0): number {
  const g = model.graph;
  if (conv.int('group', 1) !== 1) throw new GptError('E_SHAPE', 'cannot widen the input channels of a grouped conv', { subject: conv.name });
  const { t, data } = floatData(g, conv.inputs[1], conv.name);
  const [o, iOld, kh, kw] = t.dims;
  if (kh !== kw) throw new GptError('E_SHAPE', `cannot widen '${conv.name}': its ${kh}x${kw} kernel is not square`, { subject: conv.name });
  const ks = kh * kw;
  const out = heNormalWeights((seedOf(`${conv.name}/in${cin}`) + seed) >>> 0, o, cin, kh);
  let fresh = 0;
  for (let j = 0; j < cin; j++) {
    const src = from(j);
    if (src === null) {
      fresh += o * ks;
      continue;
    }
    if (src < 0 || src >= iOld) throw new GptError('E_SHAPE', `input channel ${src} of '${conv.name}' does not exist (it has ${iOld})`, { subject: conv.name });
    for (let oi = 0; oi < o; oi++) out.set(data.subarray((oi * iOld + src) * ks, (oi * iOld + src + 1) * ks), (oi * cin + j) * ks);
  }
  conv.setInput(1, g.addInitializer(floatTensor(g.uniqueName(`${t.name}_in${cin}`), [o, cin, kh, kw], out, t.dataType)));
  return fresh;
}

/** A 32-bit FNV-1a hash of a string: a stable seed for a named new layer. */
export function seedOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32 uniforms in [0, 1) (the same generator as the sample models' Rng). */
function uniforms(seed: number, n: number): Float64Array {
  const out = new Float64Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    let t = (s = (s + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  return out;
}

/**
 * He (Kaiming) normal weights for a new conv [out, in, k, k]: N(0, 2 / fan_in), fan_in = in·k·k — the
 * initialisation that keeps activation variance through a ReLU-family layer (He et al. 2015). Seeded:
 * the same seed gives the same numbers (Box-Muller over mulberry32).
 */
export function heNormalWeights(seed: number, outC: number, inC: number, k = 1): Float32Array {
  const n = outC * inC * k * k;
  const std = Math.sqrt(2 / (inC * k * k));
  const u = uniforms(seed, n + (n % 2));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - u[i]));
    const a = 2 * Math.PI * u[i + 1];
    out[i] = std * r * Math.cos(a);
    if (i + 1 < n) out[i + 1] = std * r * Math.sin(a);
  }
  return out;
}

/** Weights [rows.length, inC, 1, 1] of a 1x1 conv that copies input channel rows[j] to output j. */
export function selectionWeights(rows: number[], inC: number): Float32Array {
  const out = new Float32Array(rows.length * inC);
  rows.forEach((r, j) => (out[j * inC + r] = 1));
  return out;
}

export interface NewConvSpec {
  /** Node name; its weights are named <name>.weight / <name>.bias. */
  name: string;
  outChannels: number;
  /** [out, in, k, k] values. */
  weight: Float32Array;
  /** Per output channel; zeros when omitted; null: no bias input (a conv whose output is added to a biased one's). */
  bias?: Float32Array | null;
  kernel?: number;
}

/** A new (ungrouped, stride-1, same-padded) Conv on x with its own new initializers. Returns its output. */
export function addConv(model: Model, x: Value, spec: NewConvSpec, before?: Node): Value {
  const g = model.graph;
  const k = spec.kernel ?? 1;
  const inC = requireChannels(x, spec.name);
  if (spec.weight.length !== spec.outChannels * inC * k * k) {
    throw new GptError('E_SHAPE', `weights of ${spec.weight.length} values do not fit a ${spec.outChannels}x${inC}x${k}x${k} conv`, { subject: spec.name });
  }
  const elem = elemTypeOf(x);
  const w = g.addInitializer(floatTensor(g.uniqueName(`${spec.name}.weight`), [spec.outChannels, inC, k, k], spec.weight, elem));
  const b = spec.bias === null ? [] : [g.addInitializer(floatTensor(g.uniqueName(`${spec.name}.bias`), [spec.outChannels], spec.bias ?? new Float32Array(spec.outChannels), elem))];
  const out = g.newValue(`${spec.name}_output_0`, withChannels(x.type, spec.outChannels));
  const p = (k - 1) >> 1;
  g.addNode({
    opType: 'Conv', name: g.uniqueName(spec.name), inputs: [x, w, ...b], outputs: [out],
    attrs: { dilations: [1, 1], group: 1, kernel_shape: [k, k], pads: [p, p, p, p], strides: [1, 1] },
  }, before);
  return out;
}

/** A copy of a pointwise activation node (same op, attributes and constant inputs, e.g. Clip's bounds) applied to x. */
export function copyActivation(model: Model, template: Node, x: Value, name: string, before?: Node): Value {
  const g = model.graph;
  const out = g.newValue(`${name}_output_0`, x.type ? { ...x.type } : undefined);
  const node = g.addNode({ opType: template.opType, domain: template.domain || undefined, name: g.uniqueName(name), inputs: [x, ...template.inputs.slice(1)], outputs: [out] }, before);
  for (const a of template.attributes) node.copyAttr(a);
  return out;
}
