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
 *   zero bias, then the activation the stage's blocks were matched with (activation.ts). The conv
 *   split's two 1x1 convs (no activation) start as channel selections, so they compute what the
 *   slice split would.
 * - plan, then apply: planCrossStagePartial decides and checks everything (widths, narrowable
 *   blocks, fusion) reading the graph only; applyCrossStagePartial cannot fail.
 */
import { GptError } from '../errors';
import { blockRefs, computationBlocks, stageEntry } from '../analysis/structure-refs';
import type { Block, Stage } from '../analysis/structure-types';
import type { Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { inferShapes } from '../analysis/shapes';
import {
  addConv, channelsOf, concatChannels, heNormalWeights, keepDepthwiseChannels, keepInputChannels, keepOutputChannels, range, roundHalfEven, seedOf, selectionWeights, splitChannels,
} from '../ir/surgery';
import { floatTensor, floatValues } from '../ir/float-data';
import { CapturedActivation, blockActivation, emitActivation } from './activation';
import {
  Stream, Writer, complement, filterL1, floats, innerReadersOf, inputL1, meanOne, patternError, permutableProducers, readersOf, squeezeAfter, throughDepthwise, topK, upstreamWriter, writersOf,
} from './csp-streams';
import { ProducerTree, linearOverParts, producerTree, splitProducer } from './csp-forms';
import { FUSIONS, Fusion, MERGE_OPS, MergeOp, SPLIT_OPS, SplitOp } from './options';

export { FUSIONS, MERGE_OPS, SPLIT_OPS };
export type { Fusion, MergeOp, SplitOp };

/**
 * The forms written when none is asked for, chosen by measurement (README "CSP's emit forms"): the
 * producer split (no Split, so no layout reorders in onnxruntime; the slice split's MACs and weights)
 * and the concat merge (onnxruntime keeps a Concat in its blocked layout; the sum merge's Add stops
 * it fusing a LeakyRelu into the conv).
 */
export const DEFAULT_SPLIT_OP: SplitOp = 'producer';
export const DEFAULT_MERGE_OP: MergeOp = 'concat';

export interface CspOptions {
  /** Share of the stage's channels in part 1 (through the blocks), in (0, 1). */
  split: number;
  fusion: Fusion;
  splitOp: SplitOp;
  /** 'concat' always with fusion last (its Concat is the stage output: no transition to split). */
  mergeOp: MergeOp;
  /** The split op was asked for (a producer split falling back to a Split is then a warning, else a note in the stage's change). */
  splitOpGiven?: boolean;
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
  /** The split as written: 'producer' asked for falls back to 'slice' where x's producer cannot be divided. */
  splitOp: SplitOp;
  /** Why 'producer' fell back to 'slice' here, or null. */
  splitFallback: string | null;
  mergeOp: MergeOp;
  /** The activation the new transitions got (its kind), or null. */
  activation: string | null;
  /** The nodes the pass added for this stage (split, transitions, concat). */
  addedNodes: Node[];
  /** Parameters of the new layers (transitions, split convs). */
  freshParams: number;
  /** Depthwise convs that read the narrowed stream: their new width (= group). */
  depthwise: { block: string; conv: string; channels: number }[];
}

/** Check and default the CSP options; E_ARG names the bad one. */
export function checkCspOptions(o: { split?: number; fusion?: string; splitOp?: string; mergeOp?: string; splitOpGiven?: boolean }): CspOptions {
  const split = o.split ?? 0.5;
  const fusion = o.fusion ?? 'both';
  const splitOp = o.splitOp ?? DEFAULT_SPLIT_OP;
  const mergeOp = o.mergeOp ?? (fusion === 'last' ? 'concat' : DEFAULT_MERGE_OP);
  if (!(typeof split === 'number' && split > 0 && split < 1)) {
    throw new GptError('E_ARG', `--split ${split} is outside (0, 1)`, { subject: '--split', hint: 'the share of channels that go through the blocks, e.g. 0.5' });
  }
  if (!(FUSIONS as readonly string[]).includes(fusion)) {
    throw new GptError('E_ARG', `unknown --fusion '${fusion}'`, { subject: '--fusion', hint: `use ${FUSIONS.join(', ')}` });
  }
  if (!(SPLIT_OPS as readonly string[]).includes(splitOp)) {
    throw new GptError('E_ARG', `unknown --split-op '${splitOp}'`, { subject: '--split-op', hint: `use ${SPLIT_OPS.join(' or ')}` });
  }
  if (!(MERGE_OPS as readonly string[]).includes(mergeOp)) {
    throw new GptError('E_ARG', `unknown --merge-op '${mergeOp}'`, { subject: '--merge-op', hint: `use ${MERGE_OPS.join(' or ')}` });
  }
  if (mergeOp === 'sum' && fusion === 'last') {
    throw new GptError('E_ARG', '--merge-op sum needs a transition after the parts meet, and --fusion last has none (its Concat is the stage output)', { subject: '--merge-op', hint: 'use --fusion both or first, or leave --merge-op out' });
  }
  return { split, fusion: fusion as Fusion, splitOp: splitOp as SplitOp, mergeOp: mergeOp as MergeOp, splitOpGiven: o.splitOpGiven ?? o.splitOp !== undefined };
}

/** A stage's cross stage partial form, decided: everything apply needs, checked. */
export interface CrossStagePartialPlan {
  stage: Stage;
  opts: CspOptions;
  entry: Block[];
  blocks: Block[];
  blockNodes: Set<Node>[];
  streams: Stream[];
  /** Part 1's channels per stream class. */
  selection: Map<number, number[]>;
  how: CrossStagePartialChange['selection'];
  /** Producers of x to reorder (slice split), null when x's producer cannot be reordered. */
  producers: { writers: Writer[]; deferred: Value[] } | null;
  /** The split as it will be written, and (producer split) the layer chain that makes x. */
  splitOp: SplitOp;
  tree: ProducerTree | null;
  /** The producer tree runs through a stage planned before this one: found when this one is applied. */
  treeLater: boolean;
  splitFallback: string | null;
  /** Input channels each reading conv keeps. */
  readerKeep: Map<Node, number[]>;
  activation: CapturedActivation | null;
  /** Width of transition 1 (fusion both / last). */
  transition1: number;
  /** Squeezes inside the blocks (an SE's reduced width), scaled with the stream: filters kept, and the convs reading them. */
  squeezes: { conv: Node; next: Node[]; keep: number[] }[];
}

/** Longest common prefix of the stage's node names, up to its last '/': new nodes go under it. */
function stagePrefix(stage: Stage): string {
  const names = [...stageEntry(stage), ...stage.blocks.flatMap((b) => blockRefs(b).nodes)].map((n) => n.name);
  let p = names[0] ?? '';
  for (const n of names) while (!n.startsWith(p)) p = p.slice(0, -1);
  return p.slice(0, p.lastIndexOf('/') + 1);
}

/**
 * Decide a stage's cross stage partial form, reading the graph only. Throws E_PATTERN naming the
 * stage when it has no computation block or a block cannot be narrowed, E_ARG when the split leaves
 * a part with no channels or fusion last has no room for transition 1.
 */
export function planCrossStagePartial(model: Model, stage: Stage, options: Partial<CspOptions> = {}, rewritten: Map<Value, 'conv' | 'concat'> = new Map()): CrossStagePartialPlan {
  const opts = checkCspOptions(options);
  const g = model.graph;
  const { entry, blocks } = computationBlocks(stage);
  if (blocks.length === 0) {
    throw patternError(stage, entry.length ? `no computation block after its entry block ${entry[0].id}` : 'no computation block', 'CSP splits the blocks of a stage; leave this stage out');
  }
  const refs = blocks.map((b) => blockRefs(b));
  const blockNodes = refs.map((r) => new Set(r.nodes));
  const valueOf = (v: Value | null, b: Block, what: string): Value => {
    if (!v || !g.values.has(v.name)) throw patternError(stage, `the ${what} of block ${b.id} is not in the graph`);
    return v;
  };
  const values = [valueOf(refs[0].input, blocks[0], 'input'), ...refs.map((r, i) => valueOf(r.output, blocks[i], 'output'))];
  if (values.some((v) => channelsOf(v) === null)) inferShapes(model);
  const widthOf = (v: Value): number => {
    const c = channelsOf(v);
    if (c === null) throw new GptError('E_SHAPE', `the channel count of '${v.name}' is unknown`, { subject: `stage ${stage.index}`, hint: 'run shape inference first' });
    return c;
  };

  // the streams: x, then each block's output; an identity shortcut joins a block's input and output
  blocks.forEach((b, i) => {
    if (i > 0 && refs[i].input !== values[i]) throw patternError(stage, `block ${b.id} does not read the output of block ${blocks[i - 1].id}`);
  });
  const streams: Stream[] = values.map((value, i) => {
    const width = widthOf(value);
    const k = roundHalfEven(width * opts.split);
    if (k < 1 || k >= width) {
      throw new GptError('E_ARG', `--split ${opts.split} leaves ${k < 1 ? 'part 1' : 'part 2'} of stage ${stage.index} (${width} channels at '${value.name}') with no channels`, {
        subject: `stage ${stage.index}`, hint: `choose a split between ${(1 / width).toFixed(3)} and ${(1 - 1 / width).toFixed(3)}`,
      });
    }
    return { value, width, k, writers: [], readers: [], slopes: [], cls: i };
  });
  blocks.forEach((b, i) => {
    const inBlock = blockNodes[i];
    // a depthwise conv reading the stream (VoVNet _dw without a reduction) narrows with it, group = channels
    const direct = throughDepthwise(g, readersOf(g, streams[i].value, streams[i].width, inBlock, widthOf, stage), inBlock, widthOf, stage);
    streams[i].readers.push(...direct.readers);
    if (direct.depthwise.length) streams[i].depthwise = [...(streams[i].depthwise ?? []), ...direct.depthwise];
    streams[i + 1].writers.push(...writersOf(g, streams[i + 1].value, streams[i].value, inBlock, stage, streams[i + 1].slopes));
    streams[i + 1].inner = streams[i + 1].writers.flatMap((w) => innerReadersOf(g, w, inBlock));
    // a writer that reads another writer's output (an attention gate: x * gate(conv(GAP(x)))) is
    // narrowed on both sides: its input with the inner readers; anything else is refused here
    const innerConvs = new Set(streams[i + 1].inner!.map((r) => r.conv));
    // the walk up from a writer stops at an inner reader (its input narrows with the stream)
    const beforeInner = new Set([...inBlock].filter((n) => !innerConvs.has(n)));
    for (const w of streams[i + 1].writers) {
      const other = innerConvs.has(w.conv) ? null : upstreamWriter(g, w.conv, streams[i + 1].writers, streams[i].value, beforeInner);
      if (other) {
        throw patternError(stage, `'${w.conv.name}' reads the output of '${other.name}', which is narrowed too, by a path CSP cannot follow; it cannot be narrowed`, 'CSP narrows blocks whose attention is SE / eSE; leave this stage out');
      }
    }
    if (b.residual?.shortcut === 'identity') {
      if (streams[i].width !== streams[i + 1].width) throw patternError(stage, `block ${b.id} adds ${streams[i].width} to ${streams[i + 1].width} channels`);
      streams[i + 1].cls = streams[i].cls;
    }
  });
  for (const s of streams) {
    for (const c of [...s.readers.map((r) => r.conv), ...(s.inner ?? []).map((r) => r.conv), ...s.writers.map((w) => w.conv)]) {
      if (c.int('group', 1) !== 1) throw patternError(stage, `'${c.name}' is a grouped conv; its channels cannot be narrowed`);
    }
  }
  const x = streams[0].value;
  if (x.consumers.some((u) => !blockNodes[0].has(u.node))) throw patternError(stage, `the stage input '${x.name}' is also read outside the stage's blocks`);
  const inner = streams.slice(1, -1).find((s) => g.isGraphOutput(s.value));
  if (inner) throw patternError(stage, `'${inner.value.name}' between its blocks is also a graph output`, 'a CSP stage needs its inner features read only by its blocks');
  const last = streams[streams.length - 1];
  const part2 = streams[0].width - streams[0].k;
  const transition1 = opts.fusion === 'last' ? last.width - part2 : last.k;
  if (transition1 < 1) {
    throw new GptError('E_ARG', `--fusion last needs part 2 (${part2} channels) narrower than the output of stage ${stage.index} (${last.width})`, {
      subject: `stage ${stage.index}`, hint: 'use --fusion both or first, or a larger --split',
    });
  }

  // part 1's channels per class: the highest L1 importance, or x's first k where x's producer cannot
  // be permuted and the split is a plain Split
  // the producer split divides the layer that makes x; where it cannot, the stage is sliced
  const found = opts.splitOp === 'producer' ? producerTree(g, x, (v) => rewritten.get(v)) : null;
  const tree = found && 'nodes' in found ? found : null;
  // x made (through a MaxPool, say) by the new transition of a stage planned before: that layer is
  // divided once it is written (apply), else the stage is sliced
  const treeLater = !!found && 'later' in found && !!found.later;
  const splitFallback = found && 'reason' in found && !treeLater ? found.reason : null;
  const splitOp: SplitOp = splitFallback ? 'slice' : opts.splitOp;
  const producers = splitOp !== 'conv' ? permutableProducers(g, x, rewritten) : { writers: [], deferred: [] };
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
  // readers keep the kept input channels of their stream
  const readerKeep = new Map<Node, number[]>();
  for (const s of streams) {
    const keep = new Set(selection.get(s.cls)!);
    for (const r of [...s.readers, ...(s.inner ?? [])]) {
      const cin = readerKeep.get(r.conv) ?? range(0, floats(g, r.conv.inputs[1], r.conv.name).dims[1]);
      readerKeep.set(r.conv, cin.filter((c) => c < r.offset || c >= r.offset + r.width || keep.has(c - r.offset)));
    }
  }
  // an attention's squeeze width scales with the stream it reads (SE's C/16 stays C/16 of part 1):
  // its highest-L1 filters stay, and the convs after it keep those input channels
  const squeezes: CrossStagePartialPlan['squeezes'] = [];
  streams.forEach((s, i) => {
    if (i === 0) return;
    for (const r of s.inner ?? []) {
      const sq = squeezeAfter(g, r, blockNodes[i - 1]);
      if (!sq || squeezes.some((q) => q.conv === sq.conv)) continue;
      const keepN = Math.max(1, roundHalfEven((sq.width * s.k) / s.width));
      if (keepN >= sq.width) continue;
      squeezes.push({ conv: sq.conv, next: sq.next, keep: topK(filterL1(g, { conv: sq.conv }), keepN) });
    }
  });
  // a later stage sees this stage's output produced by the new transition (fusion both / first) or the concat
  rewritten.set(last.value, opts.fusion === 'last' ? 'concat' : 'conv');
  return { stage, opts, entry, blocks, blockNodes, streams, selection, how, producers, splitOp, tree, treeLater, splitFallback, readerKeep, activation: blockActivation(g, blocks), transition1, squeezes };
}

/** Keep the slope values of channels `keep` (a PRelu on a narrowed stream). */
function narrowSlope(model: Model, node: Node, input: number, keep: number[]): void {
  const g = model.graph;
  const t = g.constantTensor(node.inputs[input])!;
  const values = floatValues(t, node.name);
  const dims = t.dims.map((d) => (d === 1 ? 1 : keep.length));
  node.setInput(input, g.addInitializer(floatTensor(g.uniqueName(`${t.name}_out${keep.length}`), dims, Float32Array.from(keep, (c) => values[c]), t.dataType)));
}

/**
 * Carry a stage's plan out (in place). Stages planned together are applied in the same order; `made`
 * carries each stage's new output transition to the next (whose split may reorder its filters): one
 * conv, or with the sum merge the two whose outputs are added.
 */
export function applyCrossStagePartial(model: Model, plan: CrossStagePartialPlan, made: Map<Value, Writer[]> = new Map()): CrossStagePartialChange {
  const g = model.graph;
  const { stage, opts, streams, blockNodes, selection } = plan;
  const keepOf = (s: Stream) => selection.get(s.cls)!;
  const before = new Set(g.nodes);
  const base = `${stagePrefix(stage)}csp.s${stage.index}`;
  const firstNode = g.nodes.find((n) => blockNodes[0].has(n));
  const lastNode = [...g.nodes].reverse().find((n) => blockNodes[blockNodes.length - 1].has(n))!;
  const afterStage = g.nodes[g.nodes.indexOf(lastNode) + 1];
  let fresh = 0;

  // the producer split through an earlier stage's new transition: that stage is written now
  let { splitOp, tree, splitFallback } = plan;
  if (plan.treeLater) {
    const found = producerTree(g, streams[0].value);
    if ('nodes' in found) tree = found;
    else [splitOp, splitFallback] = ['slice', found.reason];
  }

  // part 1 at x: reorder the producer's filters so the kept channels come first (slice split)
  const keep0 = keepOf(streams[0]);
  const rest0 = complement(keep0, streams[0].width);
  const permuted: string[] = [];
  if (splitOp === 'slice' && plan.producers && keep0.some((c, i) => c !== i)) {
    for (const p of [...plan.producers.writers, ...plan.producers.deferred.flatMap((v) => made.get(v)!)]) {
      keepOutputChannels(model, p.conv, p.bn, [...keep0, ...rest0]);
      permuted.push(p.conv.name);
    }
  }
  // narrow the blocks: readers keep the kept input channels of their stream, writers the kept filters
  for (const [conv, keep] of plan.readerKeep) keepInputChannels(model, conv, keep);
  for (const s of streams) for (const w of s.writers) keepOutputChannels(model, w.conv, w.bn, keepOf(s));
  for (const s of streams) for (const d of s.depthwise ?? []) keepDepthwiseChannels(model, d.conv, d.bn, keepOf(s));
  for (const s of streams) for (const { node, input } of s.slopes) narrowSlope(model, node, input, keepOf(s));
  for (const q of plan.squeezes) {
    keepOutputChannels(model, q.conv, undefined, q.keep);
    for (const n of q.next) keepInputChannels(model, n, q.keep);
  }

  // the split
  const x = streams[0].value;
  const { k: k0, width: w0 } = streams[0];
  let part1: Value, part2: Value;
  const producerOuts = tree ? tree.nodes.flatMap((n) => n.outputs.filter((o): o is Value => !!o)) : [];
  if (splitOp === 'slice') {
    [part1, part2] = splitChannels(model, x, [k0, w0 - k0], base, firstNode);
  } else if (splitOp === 'producer') {
    // x itself becomes part 1 (its layer narrowed to the kept filters); the copy makes part 2
    part1 = x;
    part2 = splitProducer(model, tree!, x, keep0, rest0, base, firstNode).part2;
  } else {
    part1 = addConv(model, x, { name: `${base}/part1/Conv`, outChannels: k0, weight: selectionWeights(keep0, w0) }, firstNode);
    part2 = addConv(model, x, { name: `${base}/part2/Conv`, outChannels: w0 - k0, weight: selectionWeights(rest0, w0) }, firstNode);
    fresh += w0 * w0 + w0; // two 1x1 convs w0 -> k0 and w0 -> w0 - k0, with biases
  }
  for (const use of [...x.consumers]) if (blockNodes[0].has(use.node)) use.node.setInput(use.index, part1);

  // the fusion: y keeps its name, width and resolution, so the rest of the model is untouched
  const last = streams[streams.length - 1];
  const y = last.value;
  const producer = y.producer!;
  const part1Out = g.newValue(`${y.name}_part1`, y.type?.shape ? { elemType: y.type.elemType, shape: [y.type.shape[0], last.k, ...y.type.shape.slice(2)] } : undefined);
  producer.setOutput(y.producerIndex, part1Out);
  // a transition over the parts [a; b] (csp-forms.ts: one conv over their Concat, or W_a·a + W_b·b)
  const transition = (inputs: Value[], outC: number, name: string, output?: Value): Value => {
    const inC = inputs.reduce((a, v) => a + channelsOf(v)!, 0);
    const { value: conv, writers } = linearOverParts(model, inputs, {
      name: `${name}/Conv`, outChannels: outC, weight: heNormalWeights(seedOf(`${name}/Conv`), outC, inC), mergeOp: opts.mergeOp, concatBase: base, before: afterStage,
    });
    if (output) made.set(output, writers);
    fresh += outC * inC + outC;
    if (!plan.activation) {
      if (output) conv.producer!.setOutput(0, output);
      return output ?? conv;
    }
    return emitActivation(model, plan.activation, conv, outC, { name, before: afterStage, output }).output;
  };
  const part2W = w0 - k0;
  if (opts.fusion === 'both') {
    const t1 = transition([part1Out], plan.transition1, `${base}/transition1`);
    transition([t1, part2], last.width, `${base}/transition2`, y);
  } else if (opts.fusion === 'first') {
    transition([part1Out, part2], last.width, `${base}/transition2`, y);
  } else {
    const t1 = transition([part1Out], plan.transition1, `${base}/transition1`);
    concatChannels(model, [t1, part2], base, afterStage, y);
  }

  // value_info entries of narrowed values would contradict the new shapes: shape inference redoes them
  const touched = new Set<Value>();
  for (const n of blockNodes.flatMap((s) => [...s])) for (const o of n.outputs) if (o) touched.add(o);
  for (const o of producerOuts) touched.add(o);
  for (const v of touched) if (!g.isGraphOutput(v)) v.declared = undefined;
  for (const v of touched) g.removeValueInfo(v);
  g.touch();

  return {
    stage: stage.index,
    entryBlocks: plan.entry.map((b) => b.id),
    blocks: plan.blocks.map((b) => b.id),
    channelsIn: w0,
    channelsOut: last.width,
    part1: k0,
    part2: part2W,
    part1Out: last.k,
    selection: plan.how,
    permuted,
    fusion: opts.fusion,
    splitOp,
    splitFallback,
    mergeOp: opts.mergeOp,
    activation: plan.activation?.kind ?? null,
    addedNodes: g.nodes.filter((n) => !before.has(n)),
    freshParams: fresh,
    // stream i is block i's input: its depthwise readers are in block i
    depthwise: streams.flatMap((s, i) => (s.depthwise ?? []).map((d) => ({ block: plan.blocks[i].id, conv: d.conv.name, channels: keepOf(s).length }))),
  };
}

/** Rewrite one stage into its cross stage partial form (in place): plan, then apply. */
export function crossStagePartial(model: Model, stage: Stage, options: Partial<CspOptions> = {}): CrossStagePartialChange {
  return applyCrossStagePartial(model, planCrossStagePartial(model, stage, options));
}
