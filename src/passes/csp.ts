/**
 * CSP, the stage-level strategy (paper §3.2, "Cross Stage Partial Networks"; Wang et al. 2020, CSPNet,
 * Fig. 2 and Fig. 5): split the stage's features by channel, send part 1 through the stage's
 * computation blocks and let part 2 cross the stage, then fuse.
 *
 *                     ┌─ part 1 (k) ── block ── … ── block ── [transition1] ─┐
 *   entry ── x ── Split                                                      Concat ── [transition2] ── y
 *                     └─ part 2 (C-k) ───────────────────────────────────────┘
 *
 *   fusion both  (CSPNet's own): transition1 (1x1, k->k), Concat, transition2 (1x1 -> C)
 *   fusion first (fusion first): Concat, transition2
 *   fusion last  (fusion last):  transition1 (1x1, k -> C - part 2), Concat
 *
 * - entry: what changes resolution or width stays in front of the split: Darknet's stride-2 conv,
 *   VoVNet's MaxPool, and ResNet's projecting first block (it changes width and stride, and a
 *   residual block cannot be split without its shortcut); the split covers the remaining blocks.
 * - part 1's blocks keep their middle widths; their input and output (residual stream, OSA concat
 *   input part, transition output) shrink to part 1's width.
 * - weight carry-over: the kept stream channels are the most important ones by L1 norm (the
 *   pruning heuristic of Li et al. 2017): a channel's score sums the L1 norms of the effective
 *   weights that write it (a filter, BN scale folded in) and read it (an input slice), each layer's
 *   scores scaled to mean 1. Channels joined by an identity shortcut share one choice. With the
 *   slice split, the layer that produces x is permuted so that part 1 is channels [0, k); where it
 *   cannot be (x comes out of a Concat, say), part 1 is x's first k channels.
 * - new layers: 1x1 conv + bias with He-normal weights N(0, 2/fan_in) seeded by the layer's name,
 *   zero bias, then the stage's own activation. The conv split's two 1x1 convs (no activation) start
 *   as channel selections, so they compute what the slice split would.
 */
import { GptError, isGptError } from '../errors';
import type { Block, Stage, Structure } from '../analysis/structure-types';
import type { ConvertOptions, PassOutcome, PassRunner } from './convert';
import type { Graph, Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { inferShapes } from '../analysis/shapes';
import { DataType } from '../onnx/schema';
import {
  addConv, channelsOf, concatChannels, convProducer, copyActivation, heNormalWeights, keepInputChannels, keepOutputChannels,
  range, roundHalfEven, seedOf, selectionWeights, splitChannels,
} from '../ir/surgery';

export const FUSIONS = ['both', 'first', 'last'] as const;
export const SPLIT_OPS = ['slice', 'conv'] as const;
export type Fusion = (typeof FUSIONS)[number];
export type SplitOp = (typeof SPLIT_OPS)[number];

export interface CspOptions {
  /** Share of the stage's channels in part 1 (through the blocks), in (0, 1). */
  split: number;
  fusion: Fusion;
  splitOp: SplitOp;
}

export interface CrossStagePartialChange {
  stage: number;
  /** Blocks kept in front of the split (ResNet's projecting first block). */
  entryBlocks: string[];
  /** Blocks part 1 goes through. */
  blocks: string[];
  /** Width of the stage input x and of the stage output y. */
  channelsIn: number;
  channelsOut: number;
  /** Part 1 / part 2 widths of x; part 1's width at the blocks' output. */
  part1: number;
  part2: number;
  part1Out: number;
  /** How part 1's channels were chosen: by L1 importance, or x's first k (producer not permutable). */
  selection: 'l1' | 'first';
  /** The conv(s) whose filters were reordered so part 1 is a contiguous range. */
  permuted: string[];
  fusion: Fusion;
  splitOp: SplitOp;
  /** Names of the nodes the pass added for this stage (split, transitions, concat). */
  addedNodes: string[];
  /** Parameters of the new layers (transitions, split convs). */
  freshParams: number;
}

/** Check and default the CSP options; E_ARG names the bad one. */
export function checkCspOptions(o: { split?: number; fusion?: string; splitOp?: string }): CspOptions {
  const split = o.split ?? 0.5;
  const fusion = o.fusion ?? 'both';
  const splitOp = o.splitOp ?? 'slice';
  if (!(typeof split === 'number' && split > 0 && split < 1)) {
    throw new GptError('E_ARG', `--split ${split} is outside (0, 1)`, { subject: '--split', hint: 'the share of channels that go through the blocks, e.g. 0.5' });
  }
  if (!(FUSIONS as readonly string[]).includes(fusion)) {
    throw new GptError('E_ARG', `unknown --fusion '${fusion}'`, { subject: '--fusion', hint: `use ${FUSIONS.join(', ')}` });
  }
  if (!(SPLIT_OPS as readonly string[]).includes(splitOp)) {
    throw new GptError('E_ARG', `unknown --split-op '${splitOp}'`, { subject: '--split-op', hint: `use ${SPLIT_OPS.join(' or ')}` });
  }
  return { split, fusion: fusion as Fusion, splitOp: splitOp as SplitOp };
}

/** Ops that act on each channel alone: a channel subset or permutation passes through them unchanged. */
const PER_CHANNEL = new Set([
  'Relu', 'LeakyRelu', 'Elu', 'Selu', 'Celu', 'Gelu', 'Mish', 'Clip', 'HardSwish', 'HardSigmoid', 'Sigmoid', 'Tanh', 'Softplus',
  'Softsign', 'ThresholdedRelu', 'Identity',
]);
const POOLS = new Set(['MaxPool', 'AveragePool', 'LpPool']);
const ACTIVATIONS = new Set(['Relu', 'LeakyRelu', 'Elu', 'Selu', 'Celu', 'Gelu', 'Mish', 'Clip', 'HardSwish', 'Softplus', 'Tanh']);

/** A conv (+BN) that writes stream channels: its filters shrink to the kept ones. */
interface Writer { conv: Node; bn?: Node }
/** A conv that reads stream channels at input channels [offset, offset + width). */
interface Reader { conv: Node; offset: number; width: number }

interface Stream {
  value: Value;
  width: number;
  /** Part 1's width here. */
  k: number;
  writers: Writer[];
  readers: Reader[];
  /** Index of the stream's class (streams joined by identity shortcuts share their channels). */
  cls: number;
}

function patternError(stage: Stage, message: string, hint?: string): GptError {
  return new GptError('E_PATTERN', `stage ${stage.index}: ${message}`, { subject: `stage ${stage.index}`, hint });
}

/** The blocks part 1 goes through: all but a projecting first block (ResNet's entry). */
export function computationBlocks(stage: Stage): { entry: Block[]; blocks: Block[] } {
  const blocks = stage.blocks.filter((b) => b.kind !== 'downsample');
  const first = blocks[0];
  const entryBlock = (stage as Stage & { entryBlock?: string }).entryBlock;
  if (first && (first.id === entryBlock || first.residual?.shortcut === 'projection')) return { entry: [first], blocks: blocks.slice(1) };
  return { entry: [], blocks };
}

function floats(g: Graph, v: Value | null, what: string): { dims: number[]; data: Float32Array } {
  const t = g.constantTensor(v);
  if (!t || t.dataType !== DataType.FLOAT) throw new GptError('E_SHAPE', `'${v?.name}' is not a float32 constant`, { subject: what });
  return { dims: t.dims, data: t.data() as Float32Array };
}

/** L1 norm of each filter, with a following BN's scale |gamma / sqrt(var + eps)| folded in. */
function filterL1(g: Graph, w: Writer): Float64Array {
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
function inputL1(g: Graph, r: Reader): Float64Array {
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

function meanOne(s: Float64Array): Float64Array {
  const mean = s.reduce((a, b) => a + b, 0) / Math.max(1, s.length);
  return mean > 0 ? s.map((v) => v / mean) : s;
}

/** The k highest-scoring channels (ties: lower index first), in ascending order. */
function topK(score: Float64Array, k: number): number[] {
  return range(0, score.length).sort((a, b) => score[b] - score[a] || a - b).slice(0, k).sort((a, b) => a - b);
}

function complement(keep: number[], width: number): number[] {
  const s = new Set(keep);
  return range(0, width).filter((c) => !s.has(c));
}

/**
 * The convs that write the channels of `v` inside the block, walking back through per-channel ops and
 * both operands of Add / Mul, stopping at the block input (an identity shortcut).
 */
function writersOf(g: Graph, v: Value, blockInput: Value, inBlock: Set<Node>, stage: Stage): Writer[] {
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
    if (PER_CHANNEL.has(p.opType)) stack.push(p.inputs[0]!);
    else if (p.opType === 'Add' || p.opType === 'Mul') {
      for (const i of p.inputs) {
        if (!i) continue;
        if (g.isConstant(i)) {
          if ((g.constantTensor(i)?.size ?? 2) > 1) throw patternError(stage, `'${p.name}' has a per-channel constant operand; it cannot be narrowed`);
        } else stack.push(i);
      }
    } else throw patternError(stage, `cannot narrow the output channels of '${p.name}' (${p.opType})`, 'only conv, BatchNormalization, Add, Mul and pointwise activations can be narrowed');
  }
  return out;
}

/** The convs that read the channels of `v` inside the block: directly, or through a Concat at an offset. */
function readersOf(g: Graph, v: Value, width: number, inBlock: Set<Node>, widthOf: (x: Value) => number, stage: Stage): Reader[] {
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
 */
function permutableProducers(g: Graph, x: Value): Writer[] | null {
  const out: Writer[] = [];
  const seen = new Set<Value>();
  const stack = [x];
  while (stack.length) {
    const cur = stack.pop()!;
    if (seen.has(cur)) continue;
    seen.add(cur);
    if (g.isGraphOutput(cur) || g.inputs.includes(cur)) return null;
    if (cur !== x && cur.consumers.length !== 1) return null;
    const p = cur.producer;
    if (!p) return null;
    const cp = convProducer(g, cur);
    if (cp) {
      if (cp.conv.int('group', 1) !== 1) return null;
      const convOut = cp.conv.outputs[0]!;
      if (cp.bn && (convOut.consumers.length !== 1 || cp.bn.outputs[0] !== cur && cp.bn.outputs[0]!.consumers.length !== 1)) return null;
      if (!cp.bn && convOut !== cur && convOut.consumers.length !== 1) return null;
      out.push(cp);
    } else if (PER_CHANNEL.has(p.opType) || POOLS.has(p.opType)) stack.push(p.inputs[0]!);
    else if (p.opType === 'Add') {
      const data = p.inputs.filter((i): i is Value => !!i && !g.isConstant(i));
      if (data.length !== p.inputs.filter(Boolean).length) return null;
      stack.push(...data);
    } else return null;
  }
  return out;
}

/** Longest common prefix of the stage's node names, up to its last '/': new nodes go under it. */
function stagePrefix(stage: Stage): string {
  const names = [...stage.entry, ...stage.blocks.flatMap((b) => b.nodes)];
  let p = names[0] ?? '';
  for (const n of names) while (!n.startsWith(p)) p = p.slice(0, -1);
  return p.slice(0, p.lastIndexOf('/') + 1);
}

/**
 * Rewrite one stage into its cross stage partial form (in place). Throws E_PATTERN naming the stage
 * when it has no computation block or a block cannot be narrowed, E_ARG when the split leaves a part
 * with no channels.
 */
export function crossStagePartial(model: Model, stage: Stage, options: Partial<CspOptions> = {}): CrossStagePartialChange {
  const opts = checkCspOptions(options);
  const g = model.graph;
  const { entry, blocks } = computationBlocks(stage);
  if (blocks.length === 0) {
    throw patternError(stage, entry.length ? `no computation block after its entry block ${entry[0].id}` : 'no computation block', 'CSP splits the blocks of a stage; leave this stage out');
  }
  const byName = new Map(g.nodes.map((n) => [n.name, n]));
  const nodesOf = (b: Block) => new Set(b.nodes.map((n) => byName.get(n)).filter((n): n is Node => !!n));
  const blockNodes = blocks.map(nodesOf);
  const valueOf = (name: string) => {
    const v = g.values.get(name);
    if (!v) throw patternError(stage, `value '${name}' is not in the graph`);
    return v;
  };
  if ([blocks[0].input, ...blocks.map((b) => b.output)].some((n) => channelsOf(g.values.get(n)) === null)) inferShapes(model);
  const widths = new Map<Value, number>();
  const widthOf = (v: Value): number => {
    let c = widths.get(v);
    if (c === undefined) {
      const known = channelsOf(v);
      if (known === null) throw new GptError('E_SHAPE', `the channel count of '${v.name}' is unknown`, { subject: `stage ${stage.index}`, hint: 'run shape inference first' });
      widths.set(v, (c = known));
    }
    return c;
  };

  // the streams: x, then each block's output; an identity shortcut joins a block's input and output
  const values = [valueOf(blocks[0].input), ...blocks.map((b) => valueOf(b.output))];
  blocks.forEach((b, i) => {
    if (i > 0 && valueOf(b.input) !== values[i]) throw patternError(stage, `block ${b.id} does not read the output of block ${blocks[i - 1].id}`);
  });
  const streams: Stream[] = values.map((value, i) => {
    const width = widthOf(value);
    const k = roundHalfEven(width * opts.split);
    if (k < 1 || k >= width) {
      throw new GptError('E_ARG', `--split ${opts.split} leaves ${k < 1 ? 'part 1' : 'part 2'} of stage ${stage.index} (${width} channels at '${value.name}') with no channels`, {
        subject: `stage ${stage.index}`, hint: `choose a split between ${(1 / width).toFixed(3)} and ${(1 - 1 / width).toFixed(3)}`,
      });
    }
    return { value, width, k, writers: [], readers: [], cls: i };
  });
  blocks.forEach((b, i) => {
    const inBlock = blockNodes[i];
    streams[i].readers.push(...readersOf(g, streams[i].value, streams[i].width, inBlock, widthOf, stage));
    streams[i + 1].writers.push(...writersOf(g, streams[i + 1].value, streams[i].value, inBlock, stage));
    if (b.residual?.shortcut === 'identity') {
      if (streams[i].width !== streams[i + 1].width) throw patternError(stage, `block ${b.id} adds ${streams[i].width} to ${streams[i + 1].width} channels`);
      streams[i + 1].cls = streams[i].cls;
    }
  });
  for (const s of streams) {
    for (const c of [...s.readers.map((r) => r.conv), ...s.writers.map((w) => w.conv)]) {
      if (c.int('group', 1) !== 1) throw patternError(stage, `'${c.name}' is a grouped conv; its channels cannot be narrowed`);
    }
  }
  const x = streams[0].value;
  const y = streams[streams.length - 1].value;
  const xOutside = x.consumers.some((u) => !blockNodes[0].has(u.node));
  if (xOutside) throw patternError(stage, `the stage input '${x.name}' is also read outside the stage's blocks`);

  // choose part 1's channels per class: the highest L1 importance, or x's first k where x's producer
  // cannot be permuted and the split is a plain Split
  const producers = opts.splitOp === 'slice' ? permutableProducers(g, x) : [];
  const selection = new Map<number, number[]>();
  let how: CrossStagePartialChange['selection'] = 'l1';
  for (const cls of new Set(streams.map((s) => s.cls))) {
    const members = streams.filter((s) => s.cls === cls);
    const { width, k } = members[0];
    if (cls === 0 && producers === null) {
      selection.set(cls, range(0, k));
      how = 'first';
      continue;
    }
    const score = new Float64Array(width);
    for (const s of members) {
      for (const w of s.writers) meanOne(filterL1(g, w)).forEach((v, c) => (score[c] += v));
      for (const r of s.readers) meanOne(inputL1(g, r)).forEach((v, c) => (score[c] += v));
    }
    selection.set(cls, topK(score, k));
  }
  const keepOf = (s: Stream) => selection.get(s.cls)!;

  const before = new Set(g.nodes);
  const prefix = stagePrefix(stage);
  const base = `${prefix}csp.s${stage.index}`;
  const firstNode = g.nodes.find((n) => blockNodes[0].has(n));
  const lastNode = [...g.nodes].reverse().find((n) => blockNodes[blockNodes.length - 1].has(n))!;
  const afterStage = g.nodes[g.nodes.indexOf(lastNode) + 1];
  let fresh = 0;

  // part 1 at x: reorder the producer's filters so the kept channels come first (slice split)
  const keep0 = keepOf(streams[0]);
  const rest0 = complement(keep0, streams[0].width);
  const permuted: string[] = [];
  if (opts.splitOp === 'slice' && producers && keep0.some((c, i) => c !== i)) {
    for (const p of producers) {
      keepOutputChannels(model, p.conv, p.bn, [...keep0, ...rest0]);
      permuted.push(p.conv.name);
    }
  }

  // narrow the blocks: readers keep the kept input channels of their stream, writers the kept filters
  const readerKeep = new Map<Node, number[]>();
  for (const s of streams) {
    const keep = new Set(keepOf(s));
    for (const r of s.readers) {
      const cin = readerKeep.get(r.conv) ?? range(0, floats(g, r.conv.inputs[1], r.conv.name).dims[1]);
      readerKeep.set(r.conv, cin.filter((c) => c < r.offset || c >= r.offset + r.width || keep.has(c - r.offset)));
    }
  }
  for (const [conv, keep] of readerKeep) keepInputChannels(model, conv, keep);
  for (const s of streams) for (const w of s.writers) keepOutputChannels(model, w.conv, w.bn, keepOf(s));

  // the split
  const { k: k0, width: w0 } = streams[0];
  let part1: Value, part2: Value;
  if (opts.splitOp === 'slice') {
    [part1, part2] = splitChannels(model, x, [k0, w0 - k0], base, firstNode);
  } else {
    part1 = addConv(model, x, { name: `${base}/part1/Conv`, outChannels: k0, weight: selectionWeights(keep0, w0) }, firstNode);
    part2 = addConv(model, x, { name: `${base}/part2/Conv`, outChannels: w0 - k0, weight: selectionWeights(rest0, w0) }, firstNode);
    fresh += w0 * w0 + w0; // two 1x1 convs w0 -> k0 and w0 -> w0 - k0, with biases
  }
  for (const use of [...x.consumers]) if (blockNodes[0].has(use.node)) use.node.setInput(use.index, part1);

  // the fusion: y keeps its name, width and resolution, so the rest of the model is untouched
  const last = streams[streams.length - 1];
  const producer = y.producer!;
  const part1Out = g.newValue(`${y.name}_part1`, y.type?.shape ? { elemType: y.type.elemType, shape: [y.type.shape[0], last.k, ...y.type.shape.slice(2)] } : undefined);
  producer.setOutput(y.producerIndex, part1Out);
  const act = blocks.flatMap((b) => b.nodes).map((n) => byName.get(n)).find((n) => n && ACTIVATIONS.has(n.opType));
  const transition = (input: Value, outC: number, name: string, output?: Value): Value => {
    const inC = channelsOf(input)!;
    const conv = addConv(model, input, { name: `${name}/Conv`, outChannels: outC, weight: heNormalWeights(seedOf(`${name}/Conv`), outC, inC) }, afterStage);
    fresh += outC * inC + outC;
    if (!act) {
      if (output) conv.producer!.setOutput(0, output);
      return output ?? conv;
    }
    const a = copyActivation(model, act, conv, `${name}/${act.opType}`, afterStage);
    if (output) a.producer!.setOutput(0, output);
    return output ?? a;
  };
  const part2W = w0 - k0;
  if (opts.fusion === 'both') {
    const t1 = transition(part1Out, last.k, `${base}/transition1`);
    const cat = concatChannels(model, [t1, part2], base, afterStage);
    transition(cat, last.width, `${base}/transition2`, y);
  } else if (opts.fusion === 'first') {
    const cat = concatChannels(model, [part1Out, part2], base, afterStage);
    transition(cat, last.width, `${base}/transition2`, y);
  } else {
    const t1W = last.width - part2W;
    if (t1W < 1) {
      throw new GptError('E_ARG', `--fusion last needs part 2 (${part2W} channels) narrower than the output of stage ${stage.index} (${last.width})`, {
        subject: `stage ${stage.index}`, hint: 'use --fusion both or first, or a larger --split',
      });
    }
    const t1 = transition(part1Out, t1W, `${base}/transition1`);
    concatChannels(model, [t1, part2], base, afterStage, y);
  }

  // value_info entries of narrowed values would contradict the new shapes: shape inference redoes them
  const touched = new Set<Value>();
  for (const n of blockNodes.flatMap((s) => [...s])) for (const o of n.outputs) if (o) touched.add(o);
  for (const v of touched) if (!g.isGraphOutput(v)) v.declared = undefined;
  for (const v of touched) g.removeValueInfo(v);
  g.touch();

  return {
    stage: stage.index,
    entryBlocks: entry.map((b) => b.id),
    blocks: blocks.map((b) => b.id),
    channelsIn: w0,
    channelsOut: last.width,
    part1: k0,
    part2: part2W,
    part1Out: last.k,
    selection: how,
    permuted,
    fusion: opts.fusion,
    splitOp: opts.splitOp,
    addedNodes: g.nodes.filter((n) => !before.has(n)).map((n) => n.name),
    freshParams: fresh,
  };
}

function describe(c: CrossStagePartialChange): string {
  const split = c.splitOp === 'slice' ? 'Split' : 'two 1x1 convs';
  const fuse = c.fusion === 'both'
    ? `transition ${c.part1Out}->${c.part1Out}, concat with part 2, transition ${c.part1Out + c.part2}->${c.channelsOut}`
    : c.fusion === 'first'
      ? `concat with part 2, transition ${c.part1Out + c.part2}->${c.channelsOut}`
      : `transition ${c.part1Out}->${c.channelsOut - c.part2}, concat with part 2`;
  const chosen = c.selection === 'l1' ? 'highest-L1 channels' : `first ${c.part1} channels`;
  const after = c.entryBlocks.length ? `after entry block ${c.entryBlocks.join(', ')}, ` : '';
  return `cross stage partial: ${after}${split} of ${c.channelsIn} channels into ${c.part1} (${chosen}) through ${c.blocks.length} block(s) + ${c.part2} across; ${fuse} (fusion ${c.fusion})`;
}

/** What runCsp adds to the PassOutcome: the new nodes of each stage, for per-stage metrics. */
export interface CspOutcome extends PassOutcome {
  addedNodes: { stage: number; nodes: string[] }[];
  stages: CrossStagePartialChange[];
}

/** convert --to csp: every stage with computation blocks becomes a cross stage partial stage. */
export const runCsp: PassRunner = (model: Model, structure: Structure, options: ConvertOptions, subject: string): CspOutcome => {
  const opts = checkCspOptions({ split: options.split, fusion: options.fusion, splitOp: options.splitOp });
  const outcome: CspOutcome = {
    options: { split: opts.split, fusion: opts.fusion, splitOp: opts.splitOp },
    converted: [], unconverted: [], freshParams: 0, warnings: [], addedNodes: [], stages: [],
    notes: [
      'A CSP model must be fine-tuned (or trained): unlike PRN it does not keep the source\'s accuracy. Part 1\'s blocks lose channels and the transitions are new layers.',
      'Kept channels: the highest L1-norm channels of each stage\'s residual stream / OSA input and output (filters and input slices, BN scale folded in); new 1x1 transitions: He-normal weights seeded by the layer name, zero bias.',
    ],
  };
  for (const stage of structure.stages) {
    let change: CrossStagePartialChange;
    try {
      change = crossStagePartial(model, stage, opts);
    } catch (e) {
      if (!isGptError(e) || e.code !== 'E_PATTERN' || options.strict) throw e;
      outcome.unconverted.push({ block: `s${stage.index}`, reason: e.message });
      continue;
    }
    outcome.stages.push(change);
    outcome.freshParams += change.freshParams;
    outcome.addedNodes.push({ stage: stage.index, nodes: change.addedNodes });
    outcome.converted.push({ block: `s${stage.index}`, stage: stage.index, change: describe(change) });
    for (const id of change.blocks) {
      outcome.converted.push({ block: id, stage: stage.index, change: 'part 1 block: input and output narrowed, middle widths kept' });
    }
    if (change.selection === 'first') {
      outcome.warnings.push(`stage ${stage.index}: the layer before the split cannot be reordered, so part 1 is the first ${change.part1} channels rather than the most important ones`);
    }
  }
  if (outcome.stages.length === 0) {
    throw new GptError('E_PATTERN', 'no stage with computation blocks was recognised, so CSP has nothing to convert', {
      subject, hint: 'CSP applies to the residual stages of ResNet and Darknet-53 and the OSA stages of VoVNet',
    });
  }
  model.graph.toposort().cleanup();
  return outcome;
};
