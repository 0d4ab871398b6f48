/**
 * Stream discovery for the CSP split (csp.ts): the values a stage's channels flow through (its input,
 * each block's output), the convs that write and read them, which of them can be narrowed or
 * reordered, and the L1 importance of each channel. Reads the graph only.
 */
import { GptError } from '../errors';
import type { Stage } from '../analysis/structure-types';
import type { Graph, Node, Value } from '../ir/graph';
import { floatValues } from '../ir/float-data';
import { channelsOf, convProducer, range } from '../ir/surgery';
import { nodeOp } from '../ops/registry';

/**
 * How a channel subset passes through `p`: an op that keeps channels apart (the op registry's
 * 'preserve' flow: activations, pooling, Identity...) with one data input, and per-channel constants
 * only as an activation's slope (PRelu), which then narrows with the channels. Null otherwise.
 */
function perChannel(g: Graph, p: Node): { data: Value; slope?: number } | null {
  const op = nodeOp(p);
  if (op?.channels !== 'preserve') return null;
  const data = g.dataInputs(p);
  if (data.length !== 1) return null;
  let slope: number | undefined;
  for (let i = 0; i < p.inputs.length; i++) {
    const v = p.inputs[i];
    if (!v || v === data[0] || op.metaInputs?.includes(i)) continue;
    const size = g.constantTensor(v)?.size ?? 2;
    if (size <= 1) continue;
    if (op.activation?.slope !== i) return null;
    slope = i;
  }
  return { data: data[0], slope };
}

/** A conv (+BN) that writes stream channels: its filters shrink to the kept ones. */
export interface Writer { conv: Node; bn?: Node }
/** A conv that reads stream channels at input channels [offset, offset + width). */
export interface Reader { conv: Node; offset: number; width: number }

export interface Stream {
  value: Value;
  width: number;
  /** Part 1's width here. */
  k: number;
  writers: Writer[];
  readers: Reader[];
  /** Activations with a per-channel slope on the way to the stream (PRelu): the slope narrows too. */
  slopes: { node: Node; input: number }[];
  /** Index of the stream's class (streams joined by identity shortcuts share their channels). */
  cls: number;
  /**
   * Depthwise convs (+BN) that read the stream directly (a VoVNet _dw module without a 1x1 reduction):
   * they narrow with it, group = the kept channels, and the convs after them (`readers`) read their
   * kept channels.
   */
  depthwise?: Writer[];
  /**
   * Convs inside the block that read a writer's output on the side (a channel attention's squeeze
   * FC reads the pooled features the expand conv writes): their input channels narrow with the stream.
   */
  inner?: Reader[];
}

export function patternError(stage: Stage, message: string, hint?: string): GptError {
  return new GptError('E_PATTERN', `stage ${stage.index}: ${message}`, { subject: `stage ${stage.index}`, hint });
}

export function floats(g: Graph, v: Value | null, what: string): { dims: number[]; data: Float32Array } {
  const t = g.constantTensor(v);
  if (!t) throw new GptError('E_SHAPE', `'${v?.name}' is not a constant`, { subject: what });
  return { dims: t.dims, data: floatValues(t, what) };
}

/** L1 norm of each filter, with a following BN's scale |gamma / sqrt(var + eps)| folded in. */
export function filterL1(g: Graph, w: Writer): Float64Array {
  const { dims, data } = floats(g, w.conv.inputs[1], w.conv.name);
  const row = data.length / dims[0];
  const out = new Float64Array(dims[0]);
  for (let o = 0; o < dims[0]; o++) for (let i = o * row; i < (o + 1) * row; i++) out[o] += Math.abs(data[i]);
  if (w.bn) {
    const gamma = floats(g, w.bn.inputs[1], w.bn.name).data;
    const varc = floats(g, w.bn.inputs[4], w.bn.name).data;
    const eps = w.bn.float('epsilon', 1e-5);
    for (let o = 0; o < dims[0]; o++) out[o] *= Math.abs(gamma[o] / Math.sqrt(varc[o] + eps));
  }
  return out;
}

/** L1 norm of the weights that read input channels offset .. offset + width. */
export function inputL1(g: Graph, r: Reader): Float64Array {
  const { dims, data } = floats(g, r.conv.inputs[1], r.conv.name);
  const [o, i, ...k] = dims;
  const ks = k.reduce((a, b) => a * b, 1);
  const out = new Float64Array(r.width);
  for (let oi = 0; oi < o; oi++) {
    for (let c = 0; c < r.width; c++) {
      const base = (oi * i + r.offset + c) * ks;
      for (let j = 0; j < ks; j++) out[c] += Math.abs(data[base + j]);
    }
  }
  return out;
}

export function meanOne(s: Float64Array): Float64Array {
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
  return mean > 0 ? s.map((v) => v / mean) : s;
}

/** The k highest-scoring channels (ties: lower index first), in ascending order. */
export function topK(score: Float64Array, k: number): number[] {
  return range(0, score.length).sort((a, b) => score[b] - score[a] || a - b).slice(0, k).sort((a, b) => a - b);
}

export function complement(keep: number[], width: number): number[] {
  const s = new Set(keep);
  return range(0, width).filter((c) => !s.has(c));
}

/**
 * The convs that write the channels of `v` inside the block, walking back through per-channel ops and
 * both operands of Add / Mul, stopping at the block input (an identity shortcut).
 */
export function writersOf(g: Graph, v: Value, blockInput: Value, inBlock: Set<Node>, stage: Stage, slopes: Stream['slopes'] = []): Writer[] {
  const out: Writer[] = [];
  const seen = new Set<Value>();
  const stack = [v];
  while (stack.length) {
    const cur = stack.pop()!;
    if (cur === blockInput || seen.has(cur)) continue;
    seen.add(cur);
    const p = cur.producer;
    if (!p || !inBlock.has(p)) throw patternError(stage, `'${cur.name}' reaches the block output from outside the block`);
    const cp = convProducer(g, cur);
    if (cp && inBlock.has(cp.conv)) {
      if (!out.some((w) => w.conv === cp.conv)) out.push(cp);
      continue;
    }
    const through = perChannel(g, p);
    if (through) {
      if (through.slope !== undefined) {
        const t = g.constantTensor(p.inputs[through.slope])!;
        if (t.dims.filter((d) => d !== 1).length !== 1) throw patternError(stage, `the slope of '${p.name}' (${t.dims.join('x')}) is not one value per channel`);
        slopes.push({ node: p, input: through.slope });
      }
      stack.push(through.data);
    } else if ((p.opType === 'Add' || p.opType === 'Mul') && frozenBnOperand(g, p) !== null) {
      // FrozenBatchNorm (torchvision) exported as Mul + Add of per-channel constants: narrowed as a slope is
      slopes.push({ node: p, input: frozenBnOperand(g, p)! });
      stack.push(g.dataInputs(p)[0]);
    } else if (p.opType === 'Add' || p.opType === 'Mul') {
      const data = g.dataInputs(p);
      for (const i of p.inputs) {
        if (!i) continue;
        // ECA's gate follows the width of what it scales by itself: nothing in it to narrow
        if (p.opType === 'Mul' && data.length === 2 && followsWidth(g, i, data[0] === i ? data[1] : data[0], channelsOf(cur), inBlock)) continue;
        if (g.isConstant(i)) {
          if ((g.constantTensor(i)?.size ?? 2) > 1) throw patternError(stage, `'${p.name}' has a per-channel constant operand; it cannot be narrowed`);
        } else stack.push(i);
      }
    } else throw patternError(stage, `cannot narrow the output channels of '${p.name}' (${p.opType})`, 'only conv, BatchNormalization, Add, Mul and pointwise activations can be narrowed');
  }
  return out;
}

/** The input index of a per-channel constant ([C], [1,C,1,1]...) of a Mul / Add with one data operand, else null. */
function frozenBnOperand(g: Graph, p: Node): number | null {
  if (p.inputs.length !== 2 || g.dataInputs(p).length !== 1) return null;
  const i = p.inputs.findIndex((v) => !!v && g.isConstant(v));
  const t = i >= 0 ? g.constantTensor(p.inputs[i]) : null;
  return t && t.size > 1 && t.dims.filter((d) => d !== 1).length === 1 ? i : null;
}

const SHAPE_OPS = new Set(['Reshape', 'Expand', 'Squeeze', 'Unsqueeze', 'Flatten', 'Transpose', 'Shape', 'GlobalAveragePool', 'ReduceMean']);

/**
 * Whether `gate` (a Mul's operand inside the block) is a channel attention computed from `x` (the
 * other operand) whose width follows x by itself: ECA's pool -> row -> 1-D conv with one input and one
 * output channel (a single kernel slid along the channel axis) -> gate -> back -> Expand to x's shape.
 * Its weights fit any width, so narrowing x changes nothing in it. The kernel size stays the trained
 * one: timm picks it from the width (k = odd(|log2 C + 1| / 2), at least 3), but that is a design-time
 * choice, and a new k would discard the learned taps. A constant shape that names x's width would have
 * to change: not followed (the stage is refused as before).
 */
export function followsWidth(g: Graph, gate: Value, x: Value, width: number | null, inBlock: Set<Node>): boolean {
  const seen = new Set<Value>();
  const stack = [gate];
  let fromX = false;
  while (stack.length) {
    const v = stack.pop()!;
    if (v === x) {
      fromX = true;
      continue;
    }
    if (seen.has(v)) continue;
    seen.add(v);
    const p = v.producer;
    if (!p || !inBlock.has(p)) return false;
    const constants = p.inputs.filter((i): i is Value => !!i && g.isConstant(i)).map((i) => g.constantTensor(i));
    if (p.opType === 'Conv') {
      const w = constants[0];
      if (!w || w.dims[0] !== 1 || w.dims[1] !== 1 || p.int('group', 1) !== 1) return false;
    } else if (SHAPE_OPS.has(p.opType)) {
      if (width === null || constants.some((t) => !t || ((p.opType === 'Reshape' || p.opType === 'Expand') && t.numbers().some((n) => n === width)))) return false;
    } else if (nodeOp(p)?.channels === 'preserve' || ['Add', 'Mul', 'Div', 'Sub'].includes(p.opType)) {
      // an activation or a written-out gate (HardSigmoid as (x + 3) / 6): scalar constants only
      if (constants.some((t) => !t || t.size !== 1)) return false;
    } else return false;
    stack.push(...g.dataInputs(p));
  }
  return fromX;
}

/** Another writer's conv that `conv`'s data input comes from, inside the block, or null. */
export function upstreamWriter(g: Graph, conv: Node, writers: Writer[], blockInput: Value, inBlock: Set<Node>): Node | null {
  const convs = new Set(writers.map((w) => w.conv).filter((c) => c !== conv));
  const seen = new Set<Value>();
  const stack = g.dataInputs(conv);
  while (stack.length) {
    const v = stack.pop()!;
    if (v === blockInput || seen.has(v)) continue;
    seen.add(v);
    const p = v.producer;
    if (!p || !inBlock.has(p)) continue;
    if (convs.has(p)) return p;
    stack.push(...g.dataInputs(p));
  }
  return null;
}

/**
 * Convs inside the block that read what `w` writes on a side path: forward from the writer's output
 * through per-channel ops, pooling and reductions that keep the channel axis (ReduceMean over H, W)
 * and Add / Mul, to a conv's data input. The stream itself leaves the block and is not followed.
 */
export function innerReadersOf(g: Graph, w: Writer, inBlock: Set<Node>): Reader[] {
  const out: Reader[] = [];
  const start = (w.bn ?? w.conv).outputs[0]!;
  const width = g.constantTensor(w.conv.inputs[1] ?? null)?.dims[0] ?? 0;
  const seen = new Set<Value>();
  const stack = [start];
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    for (const { node, index } of v.consumers) {
      if (!inBlock.has(node) || !node.outputs[0]) continue;
      if (node.opType === 'Conv') {
        if (index === 0 && node !== w.conv && !out.some((r) => r.conv === node)) out.push({ conv: node, offset: 0, width });
        continue;
      }
      const flow = nodeOp(node)?.channels;
      const keepsAxis = node.opType.startsWith('Reduce') ? !node.ints('axes').includes(1) && node.int('keepdims', 1) === 1 : true;
      if ((flow === 'preserve' || node.opType === 'Add' || node.opType === 'Mul' || node.opType === 'GlobalAveragePool' || node.opType.startsWith('Reduce')) && keepsAxis) stack.push(node.outputs[0]);
    }
  }
  return out;
}

/**
 * A squeeze inside the block: an inner reader conv (an SE's fc1) whose output is read, through
 * per-channel ops only, by convs alone (the SE's fc2). Its width can shrink with the stream: the
 * reader keeps some filters and the convs after it the same input channels. Null otherwise.
 */
export function squeezeAfter(g: Graph, r: Reader, inBlock: Set<Node>): { conv: Node; next: Node[]; width: number } | null {
  const out = r.conv.outputs[0];
  const width = g.constantTensor(r.conv.inputs[1] ?? null)?.dims[0];
  if (!out || !width || r.conv.int('group', 1) !== 1) return null;
  const next: Node[] = [];
  const stack = [out];
  const seen = new Set<Value>();
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    if (g.isGraphOutput(v)) return null;
    for (const { node, index } of v.consumers) {
      if (!inBlock.has(node)) return null;
      if (node.opType === 'Conv' && index === 0 && node.int('group', 1) === 1) {
        if (!next.includes(node)) next.push(node);
      } else if (perChannel(g, node) && perChannel(g, node)!.slope === undefined && node.outputs[0]) stack.push(node.outputs[0]);
      else if ((node.opType === 'Mul' || node.opType === 'Add') && g.dataInputs(node).every((d) => seen.has(d)) && node.outputs[0]) stack.push(node.outputs[0]); // SiLU written out
      else if (node.opType === 'Mul' || node.opType === 'Add') continue; // its other operand is not in yet: reached again through it
      else return null;
    }
  }
  return next.length ? { conv: r.conv, next, width } : null;
}

/** A depthwise conv: group = input channels = filters, one input channel per filter. */
export function isDepthwise(g: Graph, conv: Node): boolean {
  const dims = g.constantTensor(conv.inputs[1] ?? null)?.dims;
  return !!dims && dims[1] === 1 && dims[0] > 1 && conv.int('group', 1) === dims[0];
}

/**
 * A depthwise reader of a stream passes the stream's channels on one for one: the depthwise conv
 * (and a BN after it) narrows with the stream, and the convs reading its output through pointwise
 * activations read the same kept channels. Depthwise convs in a row are followed too.
 */
export function throughDepthwise(g: Graph, readers: Reader[], inBlock: Set<Node>, widthOf: (x: Value) => number, stage: Stage): { readers: Reader[]; depthwise: Writer[] } {
  const out: Reader[] = [];
  const depthwise: Writer[] = [];
  const queue = [...readers];
  while (queue.length) {
    const r = queue.shift()!;
    if (!isDepthwise(g, r.conv)) {
      out.push(r);
      continue;
    }
    if (r.offset !== 0 || g.constantTensor(r.conv.inputs[1])!.dims[0] !== r.width) throw patternError(stage, `the depthwise conv '${r.conv.name}' reads only part of the stream`);
    let v = r.conv.outputs[0]!;
    let bn: Node | undefined;
    const only = v.consumers.length === 1 ? v.consumers[0].node : undefined;
    if (only?.opType === 'BatchNormalization' && inBlock.has(only)) {
      bn = only;
      v = only.outputs[0]!;
    }
    depthwise.push({ conv: r.conv, bn });
    // pointwise activations between the depthwise conv and its readers keep the channels apart
    let next = v;
    while (next.consumers.length === 1 && inBlock.has(next.consumers[0].node) && perChannel(g, next.consumers[0].node)?.data === next && perChannel(g, next.consumers[0].node)!.slope === undefined) next = next.consumers[0].node.outputs[0]!;
    queue.push(...readersOf(g, next, r.width, inBlock, widthOf, stage));
  }
  return { readers: out, depthwise };
}

/** The convs that read the channels of `v` inside the block: directly, or through a Concat at an offset. */
export function readersOf(g: Graph, v: Value, width: number, inBlock: Set<Node>, widthOf: (x: Value) => number, stage: Stage): Reader[] {
  const out: Reader[] = [];
  for (const { node, index } of v.consumers) {
    if (!inBlock.has(node)) throw patternError(stage, `'${v.name}' is also read by '${node.name}' outside the block`, 'a CSP stage needs its inner features read only by its blocks');
    if (node.opType === 'Conv' && index === 0) out.push({ conv: node, offset: 0, width });
    else if (node.opType === 'Add') continue; // the identity shortcut: narrowed with the stream
    else if (node.opType === 'Concat' && node.int('axis', 1) === 1) {
      let offset = 0;
      for (let i = 0; i < index; i++) offset += widthOf(node.inputs[i]!);
      for (const use of node.outputs[0]!.consumers) {
        if (use.node.opType !== 'Conv' || use.index !== 0 || !inBlock.has(use.node)) {
          throw patternError(stage, `the concat '${node.name}' is read by '${use.node.name}', not by a transition conv`);
        }
        out.push({ conv: use.node, offset, width });
      }
    } else throw patternError(stage, `cannot narrow the input channels of '${node.name}' (${node.opType})`);
  }
  return out;
}

/**
 * The convs whose filters can be reordered so that a permutation of x's channels comes out: walk back
 * from x through per-channel ops, pooling and both operands of Add, to convs (+BN). Null when some
 * value on the way is read elsewhere or comes from anything else (a Concat, a graph input).
 * `rewritten`: outputs of stages planned before this one, which their apply gives a new producer
 * (a transition conv: `deferred`, resolved when that stage is applied; a Concat: not permutable).
 */
export function permutableProducers(g: Graph, x: Value, rewritten: Map<Value, 'conv' | 'concat'> = new Map()): { writers: Writer[]; deferred: Value[] } | null {
  const out: Writer[] = [];
  const deferred: Value[] = [];
  const seen = new Set<Value>();
  const stack = [x];
  while (stack.length) {
    const cur = stack.pop()!;
    if (seen.has(cur)) continue;
    seen.add(cur);
    if (g.isGraphOutput(cur) || g.inputs.includes(cur)) return null;
    if (cur !== x && cur.consumers.length !== 1) return null;
    // a value an earlier planned stage rewrites: its new producer is a transition conv, or a Concat
    const planned = rewritten.get(cur);
    if (planned === 'concat') return null;
    if (planned === 'conv') {
      deferred.push(cur);
      continue;
    }
    const p = cur.producer;
    if (!p) return null;
    const cp = convProducer(g, cur);
    if (cp) {
      if (cp.conv.int('group', 1) !== 1) return null;
      const convOut = cp.conv.outputs[0]!;
      if (cp.bn && (convOut.consumers.length !== 1 || cp.bn.outputs[0] !== cur && cp.bn.outputs[0]!.consumers.length !== 1)) return null;
      if (!cp.bn && convOut !== cur && convOut.consumers.length !== 1) return null;
      out.push(cp);
    } else if (perChannel(g, p) && perChannel(g, p)!.slope === undefined) stack.push(perChannel(g, p)!.data);
    else if (p.opType === 'Add') {
      const data = p.inputs.filter((i): i is Value => !!i && !g.isConstant(i));
      if (data.length !== p.inputs.filter(Boolean).length) return null;
      stack.push(...data);
    } else return null;
  }
  return { writers: out, deferred };
}

