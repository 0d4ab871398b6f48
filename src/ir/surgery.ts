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

function withChannels(t: TensorType | undefined, c: number): TensorType | undefined {
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

function floatData(g: Graph, v: Value | null, what: string): { t: Tensor; data: Float32Array } {
  const t = g.constantTensor(v);
  if (!t) throw new GptError('E_GRAPH', `'${v?.name}' is not a constant tensor`, { subject: what });
  if (t.dataType !== DataType.FLOAT) throw new GptError('E_SHAPE', `only float32 weights can be rewritten, '${t.name}' is ${t.dataType}`, { subject: what });
  return { t, data: t.data() as Float32Array };
}

/** Pick rows (along axis 0, each `rowSize` long) of a float tensor into a new initializer. */
function pickRows(g: Graph, v: Value | null, rows: number[], suffix: string, what: string): Value {
  const { t, data } = floatData(g, v, what);
  const dims = t.dims;
  const rowSize = dims.slice(1).reduce((a, b) => a * b, 1);
  const out = new Float32Array(rows.length * rowSize);
  rows.forEach((r, i) => out.set(data.subarray(r * rowSize, (r + 1) * rowSize), i * rowSize));
  return g.addInitializer(Tensor.float32(g.uniqueName(`${t.name}${suffix}`), [rows.length, ...dims.slice(1)], out));
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
  return g.addInitializer(Tensor.float32(g.uniqueName(`${t.name}${suffix}`), [o, chans.length, ...k], out));
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
      if (o) o.inferred = i === 0 ? withChannels(o.type, keep.length) : { elemType: DataType.FLOAT, shape: [keep.length] };
    });
  }
  g.touch();
}

/** Keep only input channels `keep` of a (non-grouped) conv. */
export function keepInputChannels(model: Model, conv: Node, keep: number[]): void {
  const g = model.graph;
  if (conv.int('group', 1) !== 1) throw new GptError('E_SHAPE', 'cannot shrink the input channels of a grouped conv', { subject: conv.name });
  conv.setInput(1, pickInputChannels(g, conv.inputs[1], keep, `_in${keep.length}`, conv.name));
  g.touch();
}

export function range(start: number, end: number): number[] {
  return Array.from({ length: end - start }, (_, i) => start + i);
}
