/**
 * Gradient-path analysis (Wang, Liao, Yeh 2022, "Designing Network Design Strategies Through
 * Gradient Path Analysis", sections 3-4): for every weight layer, the lengths of the paths its
 * gradient travels to the loss, counted in weight layers.
 *
 * Definitions (kept exactly as the issue states them):
 * - A weight layer is a node whose op the registry marks `weightLayer` (Conv, ConvTranspose, Gemm,
 *   MatMul) and whose weight (input 1) is constant. Every other node is transparent.
 * - A gradient path of layer L runs from L's output along data (non-constant) edges to a graph
 *   output; its length is the number of weight layers on it, L included (the classifier: 1).
 * - shortest / longest: min / max length; timestamps: how many distinct lengths; sources: how many
 *   distinct weight layers or graph outputs L's output reaches through transparent nodes only.
 * - channelGroups: gradient flows per channel, as the registry's `channels` says (Concat / Split /
 *   Slice route channel ranges, 'preserve' ops keep indices, Conv / Gemm / anything unknown mix); the output channels of L
 *   grouped by their set of lengths (which fixes shortest and longest too). A PRN masked residual
 *   (section 4.1) gives 2 groups on the layer that feeds it.
 *
 * Everything is dynamic programming over reverse topological order; sets of lengths are interned
 * bitsets, so a union or a "+1" is computed once per distinct pair, and per value the channel axis
 * is a list of segments with equal sets, so the cost follows the number of distinct segments, not
 * the number of channels. No path is ever enumerated.
 */
import { GptError } from '../errors';
import type { Graph, Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { nodeOp } from '../ops/registry';
import { channelMaskValues } from './channel-mask';
import { inferShapes } from './shapes';

// ---------------------------------------------------------------------------------------------
// Public types

export interface StageSpec {
  name: string;
  /** Node names; the stage's weight layers are the weight layers among them. */
  nodes: string[];
}

export interface GradientPathOptions {
  stages?: StageSpec[];
  /**
   * Run shape inference first when a data value has no known shape (default true). Channel
   * routing needs channel counts; path lengths do not. Inference sets `value.inferred` only.
   */
  inferShapes?: boolean;
}

export interface LayerGradientPaths {
  /** Node name. */
  name: string;
  opType: string;
  /** Fewest weight layers on a path from this layer to a graph output (this layer included). */
  shortest: number;
  /** Most weight layers on such a path. */
  longest: number;
  /** Number of distinct path lengths (the paper's gradient timestamps). */
  timestamps: number;
  /** Distinct weight layers or graph outputs reached through transparent nodes only. */
  sources: number;
  /** Distinct per-channel length profiles among the layer's output channels (1 in a plain net). */
  channelGroups: number;
  /**
   * The partial convs this layer is written as (PRN's parts form: `<layer>/part0`, `<layer>/in1`,
   * ...), when it is; each computes some of its output channels from some of its input channels,
   * together what the one conv computes, so they count as one weight layer.
   */
  members?: string[];
  /** 0-based position among the weight layers, in execution (topological) order. */
  order: number;
  /** 0-based position among all nodes, in execution (topological) order. */
  nodeIndex: number;
}

export interface GradientPathSummary {
  /** Weight layers aggregated. */
  layers: number;
  /** Max over layers of shortest(L): the paper's "longest shortest gradient path". */
  maxShortest: number;
  /** Min over layers of shortest(L). */
  minShortest: number;
  /** Max over layers of longest(L). */
  longest: number;
  /** Mean over layers of timestamps(L). */
  meanTimestamps: number;
  meanShortest: number;
  meanLongest: number;
  meanSources: number;
  /** Max over layers of channelGroups(L). */
  maxChannelGroups: number;
}

export interface StageGradientPaths extends GradientPathSummary {
  name: string;
  /** Smallest and largest `order` of the stage's weight layers (-1 when it has none). */
  start: number;
  end: number;
}

export interface GradientPathReport {
  /** Weight layers in execution order. */
  layers: LayerGradientPaths[];
  /** Aggregates over the weight layers that reach a graph output. */
  network: GradientPathSummary;
  /** One per requested stage, in the order given. */
  stages: StageGradientPaths[];
  /** Things the analysis had to approximate (unknown channel counts, unreachable layers...). */
  warnings: string[];
}

// ---------------------------------------------------------------------------------------------
// Interned bitsets: a set of small non-negative integers, stored once, named by an id.

const EMPTY = 0;

/**
 * A set stored as words from its first non-zero word on (`lo`): a set of long lengths like {4000}
 * is one word, not 125, so a chain of n layers takes O(n) memory, not O(n^2).
 */
interface Bits {
  lo: number;
  w: Uint32Array;
}

class SetPool {
  private readonly words: Bits[] = [{ lo: 0, w: new Uint32Array(0) }];
  private readonly byKey = new Map<string, number>([['', EMPTY]]);
  private readonly unionMemo = new Map<number, number>();
  private readonly shiftMemo = new Map<number, number>();
  private readonly statsMemo = new Map<number, { min: number; max: number; count: number }>();

  /** Intern words starting at word index `lo` (leading and trailing zero words are dropped). */
  intern(w: Uint32Array, lo = 0): number {
    let start = 0;
    let n = w.length;
    while (n > 0 && w[n - 1] === 0) n--;
    while (start < n && w[start] === 0) start++;
    if (start === n) return EMPTY;
    const t = w.subarray(start, n);
    const key = `${lo + start}:${t.join(',')}`;
    let id = this.byKey.get(key);
    if (id === undefined) {
      id = this.words.length;
      this.words.push({ lo: lo + start, w: t.slice() });
      this.byKey.set(key, id);
    }
    return id;
  }

  single(bit: number): number {
    return this.intern(Uint32Array.of(1 << (bit & 31)), bit >>> 5);
  }

  union(a: number, b: number): number {
    if (a === b || b === EMPTY) return a;
    if (a === EMPTY) return b;
    if (a > b) [a, b] = [b, a];
    const key = a * 0x4000000 + b; // ids stay far below 2^26 in practice; exact up to 2^53
    let r = this.unionMemo.get(key);
    if (r === undefined) {
      const x = this.words[a], y = this.words[b];
      const lo = Math.min(x.lo, y.lo);
      const hi = Math.max(x.lo + x.w.length, y.lo + y.w.length);
      const w = new Uint32Array(hi - lo);
      for (let i = 0; i < x.w.length; i++) w[x.lo - lo + i] |= x.w[i];
      for (let i = 0; i < y.w.length; i++) w[y.lo - lo + i] |= y.w[i];
      r = this.intern(w, lo);
      this.unionMemo.set(key, r);
    }
    return r;
  }

  /** { s + 1 : s in a }: the gradient passed one more weight layer. */
  shift(a: number): number {
    if (a === EMPTY) return EMPTY;
    let r = this.shiftMemo.get(a);
    if (r === undefined) {
      const x = this.words[a];
      const w = new Uint32Array(x.w.length + 1);
      for (let i = 0; i < x.w.length; i++) {
        w[i] |= x.w[i] << 1;
        w[i + 1] |= x.w[i] >>> 31;
      }
      r = this.intern(w, x.lo);
      this.shiftMemo.set(a, r);
    }
    return r;
  }

  stats(a: number): { min: number; max: number; count: number } {
    let s = this.statsMemo.get(a);
    if (!s) {
      const { lo, w } = this.words[a];
      let min = -1, max = -1, count = 0;
      for (let i = 0; i < w.length; i++) {
        let x = w[i];
        if (x === 0) continue;
        if (min < 0) min = (lo + i) * 32 + (31 - Math.clz32(x & -x));
        max = (lo + i) * 32 + (31 - Math.clz32(x));
        while (x) { x &= x - 1; count++; }
      }
      s = { min, max, count };
      this.statsMemo.set(a, s);
    }
    return s;
  }
}

// ---------------------------------------------------------------------------------------------
// Channel maps: the per-channel sets of one value, as segments [start, start + len) of equal sets.

interface Seg {
  len: number;
  set: number;
}
/** width null: the channel count is unknown, and the map is one set for all channels. */
interface ChannelMap {
  width: number | null;
  segs: Seg[];
}

function uniform(width: number | null, set: number): ChannelMap {
  return { width, segs: [{ len: width ?? 1, set }] };
}

function pushSeg(out: Seg[], len: number, set: number): void {
  if (len <= 0) return;
  const last = out[out.length - 1];
  if (last && last.set === set) last.len += len;
  else out.push({ len, set });
}

function unionAll(pool: SetPool, m: ChannelMap): number {
  let s = EMPTY;
  for (const g of m.segs) s = pool.union(s, g.set);
  return s;
}

/** Pointwise union of two maps over the same channels (collapses to one set when widths differ). */
function mergeMaps(pool: SetPool, a: ChannelMap, b: ChannelMap): ChannelMap {
  if (a.width === null || b.width === null || a.width !== b.width) {
    return uniform(a.width, pool.union(unionAll(pool, a), unionAll(pool, b)));
  }
  const out: Seg[] = [];
  let i = 0, j = 0, ri = a.segs[0]?.len ?? 0, rj = b.segs[0]?.len ?? 0;
  while (i < a.segs.length && j < b.segs.length) {
    const n = Math.min(ri, rj);
    pushSeg(out, n, pool.union(a.segs[i].set, b.segs[j].set));
    ri -= n;
    rj -= n;
    if (ri === 0 && ++i < a.segs.length) ri = a.segs[i].len;
    if (rj === 0 && ++j < b.segs.length) rj = b.segs[j].len;
  }
  return { width: a.width, segs: out };
}

/** Channels [from, from + len) of a map with a known width. */
function sliceMap(m: ChannelMap, from: number, len: number): Seg[] {
  const out: Seg[] = [];
  let pos = 0;
  for (const g of m.segs) {
    const lo = Math.max(pos, from), hi = Math.min(pos + g.len, from + len);
    if (hi > lo) pushSeg(out, hi - lo, g.set);
    pos += g.len;
    if (pos >= from + len) break;
  }
  return out;
}

function setAt(m: ChannelMap, c: number): number {
  let pos = 0;
  for (const g of m.segs) {
    if (c < pos + g.len) return g.set;
    pos += g.len;
  }
  return EMPTY;
}

// ---------------------------------------------------------------------------------------------
// Op classes

/** The node is a weight layer: its op is one (op registry) and its weight (input 1) is constant. */
/** The weight layer a node is part of: PRN's parts form names a layer's partial convs `<layer>/part<i>` and `<layer>/in<i>` (nested). */
export function layerOf(name: string): string {
  const m = /^(.+?)(?:\/(?:part|in)[01])+$/.exec(name);
  return m ? m[1] : name;
}

export function isWeightLayer(graph: Graph, node: Node): boolean {
  if (!nodeOp(node)?.weightLayer) return false;
  const w = node.inputs[1];
  return w !== null && w !== undefined && graph.isConstant(w);
}

function channels(v: Value | null | undefined): number | null {
  const s = v?.shape;
  if (!s || s.length < 2) return null;
  const c = s[1];
  return typeof c === 'number' && c >= 0 ? c : null;
}
function rank(v: Value | null | undefined): number | null {
  return v?.shape?.length ?? null;
}
/** The value's channel count; a constant falls back to its tensor dims. */
function channelsOf(graph: Graph, v: Value): number | null {
  const c = channels(v);
  if (c !== null) return c;
  const t = graph.constantTensor(v);
  return t && t.dims.length >= 2 ? t.dims[1] : null;
}
function normAxis(axis: number, r: number | null): number | null {
  if (axis >= 0) return axis;
  return r === null ? null : axis + r;
}

/**
 * Input i of node as a constant per-channel 0/1 mask of `width` channels against data of rank
 * `dataRank` (N, C, ...): dims [C, 1, ..., 1] or [1, C, 1, ..., 1], broadcast onto the channel axis.
 */
function channelMask(graph: Graph, node: Node, i: number, width: number, dataRank: number): boolean[] | null {
  const t = i >= 0 && i < node.inputs.length ? graph.constantTensor(node.inputs[i]) : undefined;
  if (!t) return null;
  const dims = t.dims;
  const c = dims.findIndex((d) => d !== 1);
  if (c < 0 || dims[c] !== width || dims.slice(c + 1).some((d) => d !== 1)) return null;
  // right-aligned broadcasting: the mask's axis c lands on the data's axis 1
  if (dims.length - 1 - c !== dataRank - 2 || dims.length > dataRank) return null;
  return channelMaskValues(t);
}

/** Constant integers of input i, else of attribute `name` (older opsets); undefined: neither is
 * given; null: given but not constant. */
function constInts(graph: Graph, node: Node, i: number, name: string): number[] | null | undefined {
  const v = node.inputs[i];
  if (v) {
    const t = graph.constantTensor(v);
    return t ? t.numbers() : null;
  }
  return name && node.attr(name) ? node.ints(name) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Analysis

function executionOrder(graph: Graph): readonly Node[] {
  const pos = new Map<Node, number>();
  graph.nodes.forEach((n, i) => pos.set(n, i));
  let sorted = true;
  for (const n of graph.nodes) {
    for (const v of n.inputs) {
      const p = v?.producer;
      if (p && pos.has(p) && pos.get(p)! >= pos.get(n)!) sorted = false;
    }
  }
  if (sorted) return graph.nodes;
  // Kahn's algorithm on a copy; the graph itself is left as it is.
  const indeg = new Map<Node, number>();
  for (const n of graph.nodes) indeg.set(n, n.inputs.filter((v) => v?.producer && pos.has(v.producer)).length);
  const queue = graph.nodes.filter((n) => indeg.get(n) === 0);
  const out: Node[] = [];
  for (let qi = 0; qi < queue.length; qi++) {
    const n = queue[qi];
    out.push(n);
    for (const o of n.outputs) {
      for (const u of o?.consumers ?? []) {
        if (!pos.has(u.node)) continue;
        const d = indeg.get(u.node)! - 1;
        indeg.set(u.node, d);
        if (d === 0) queue.push(u.node);
      }
    }
  }
  if (out.length !== graph.nodes.length) {
    const stuck = graph.nodes.find((n) => indeg.get(n)! > 0)!;
    throw new GptError('E_GRAPH', `the graph has a cycle through node '${stuck.name}'`, {
      subject: stuck.name,
      hint: 'a node consumes a value that depends on its own output',
    });
  }
  return out;
}

/**
 * Gradient paths of every weight layer, plus network and per-stage aggregates. Uses the channel
 * counts on the values (`inferred`, else `declared`); where a count is unknown, channel routing
 * falls back to "all channels mix" and a warning says so (run shape inference first for exact
 * channelGroups). The model is not modified.
 */
export function gradientPaths(model: Model, opts: GradientPathOptions = {}): GradientPathReport {
  const graph = model.graph;
  const order = executionOrder(graph);
  const pool = new SetPool();
  const zero = pool.single(0);
  const warnings: string[] = [];
  let unknownWidths = 0;
  if (opts.inferShapes !== false && order.some((n) => n.inputs.some((v) => v && !v.tensor && v.shape === null && !graph.isConstant(v)))) {
    try {
      inferShapes(model);
    } catch (e) {
      // channel counts stay partly unknown; the path lengths are still exact
      warnings.push(`shape inference failed (${e instanceof GptError ? e.oneLine() : String(e)})`);
    }
  }

  // graph.isConstant recurses towards the inputs; asking in execution order keeps every call one
  // level deep (its memo answers the rest), so a graph thousands of nodes deep cannot overflow.
  for (const n of order) for (const o of n.outputs) if (o) graph.isConstant(o);
  const isData = (v: Value | null | undefined): v is Value => !!v && !graph.isConstant(v);
  const weight = new Map<Node, boolean>();
  for (const n of order) weight.set(n, isWeightLayer(graph, n));

  // Targets for `sources`: weight layers and graph outputs, numbered.
  // (a layer's partial convs are one target)
  const targetId = new Map<Node | Value, number>();
  const layerTarget = new Map<string, number>();
  let targets = 0;
  for (const n of order) {
    if (!weight.get(n)) continue;
    const l = layerOf(n.name);
    if (!layerTarget.has(l)) layerTarget.set(l, targets++);
    targetId.set(n, layerTarget.get(l)!);
  }
  for (const v of graph.outputs) if (!targetId.has(v)) targetId.set(v, targets++);
  const targetPool = new SetPool();

  const lengths = new Map<Value, number>(); // value level: lengths from the value to an output
  const reach = new Map<Value, number>(); // targets reached through transparent nodes only
  const chan = new Map<Value, ChannelMap>(); // channel level

  const lengthsOf = (v: Value | null) => (v ? lengths.get(v) ?? EMPTY : EMPTY);
  const reachOf = (v: Value | null) => (v ? reach.get(v) ?? EMPTY : EMPTY);
  const chanOf = (v: Value): ChannelMap => chan.get(v) ?? uniform(channels(v), EMPTY);
  const mixedOutputs = (n: Node): number => {
    let s = EMPTY;
    for (const o of n.outputs) if (o) s = pool.union(s, unionAll(pool, chanOf(o)));
    return s;
  };

  /** What node n sends back to channels of its data input i (of width `w`). */
  const channelContribution = (n: Node, i: number, w: number | null): ChannelMap => {
    if (weight.get(n)) return uniform(w, pool.shift(mixedOutputs(n)));
    const flow = nodeOp(n)?.channels ?? 'mix';
    const out = n.outputs[0];
    // a constant 0/1 channel mask (PRN's masked residual in its mask form): channels multiplied by 0
    // send no gradient back, as the channels a Slice leaves out
    const dataRank = rank(n.inputs[i]) ?? (out ? rank(out) : null);
    const mask = n.opType === 'Mul' && w !== null && out && dataRank !== null ? channelMask(graph, n, 1 - i, w, dataRank) : null;
    if (mask && out && w !== null) {
      const om = chanOf(out);
      if (om.width === w) {
        const segs: Seg[] = [];
        for (let c = 0; c < w; c++) pushSeg(segs, 1, mask[c] ? setAt(om, c) : EMPTY);
        return { width: w, segs };
      }
    }
    const routes = flow === 'concat' || flow === 'split' || flow === 'slice' || flow === 'preserve';
    const used = (o: Value | null): o is Value => !!o && (o.consumers.length > 0 || graph.isGraphOutput(o));
    if (routes && (w === null || n.outputs.some((o) => used(o) && channels(o) === null))) unknownWidths++;
    if (w !== null && out) {
      if (flow === 'concat') {
        const axis = normAxis(n.int('axis', 1), rank(out) ?? rank(n.inputs[i]));
        if (axis === 1) {
          let off = 0;
          for (let k = 0; k < i; k++) {
            const c = n.inputs[k] ? channelsOf(graph, n.inputs[k]!) : 0;
            if (c === null) { off = -1; break; }
            off += c;
          }
          const om = chanOf(out);
          if (off >= 0 && om.width !== null && off + w <= om.width) return { width: w, segs: sliceMap(om, off, w) };
        } else if (axis !== null) {
          const om = chanOf(out);
          if (om.width === w) return om;
        }
      } else if (flow === 'split' && i === 0) {
        const axis = normAxis(n.int('axis', 0), rank(n.inputs[0]) ?? rank(out));
        if (axis === 1) {
          const segs: Seg[] = [];
          let total = 0;
          for (const o of n.outputs) {
            const m = o ? chanOf(o) : null;
            if (!m || m.width === null) { total = -1; break; }
            for (const g of m.segs) pushSeg(segs, g.len, g.set);
            total += m.width;
          }
          if (total === w) return { width: w, segs };
        } else if (axis !== null) {
          let acc: ChannelMap = uniform(w, EMPTY);
          for (const o of n.outputs) if (o) acc = mergeMaps(pool, acc, chanOf(o));
          if (n.outputs.every((o) => !o || channels(o) === w)) return acc;
        }
      } else if (flow === 'slice' && i === 0) {
        const r = rank(n.inputs[0]) ?? rank(out);
        const starts = constInts(graph, n, 1, 'starts');
        const ends = constInts(graph, n, 2, 'ends');
        const axesGiven = constInts(graph, n, 3, 'axes');
        const axesRaw = axesGiven === undefined ? starts?.map((_, k) => k) : axesGiven;
        const stepsGiven = constInts(graph, n, 4, '');
        const steps = stepsGiven === undefined ? starts?.map(() => 1) : stepsGiven;
        if (starts && ends && axesRaw && steps) {
          const axes = axesRaw.map((a) => normAxis(a, r));
          const k = axes.indexOf(1);
          const om = chanOf(out);
          if (!axes.includes(null) && k < 0) {
            if (om.width === w) return om;
          } else if (k >= 0 && om.width !== null) {
            const step = steps[k];
            let start = starts[k], end = ends[k];
            const clamp = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);
            if (step > 0) {
              start = clamp(start < 0 ? start + w : start, 0, w);
              end = clamp(end < 0 ? end + w : end, 0, w);
            } else if (step < 0) {
              start = clamp(start < 0 ? start + w : start, -1, w - 1);
              end = clamp(end < 0 ? end + w : end, -1, w - 1);
            }
            const count = step === 0 ? -1 : Math.max(0, Math.ceil((end - start) / step));
            if (count === om.width) {
              if (step === 1) {
                const segs: Seg[] = [];
                pushSeg(segs, start, EMPTY);
                for (const g of om.segs) pushSeg(segs, g.len, g.set);
                pushSeg(segs, w - start - count, EMPTY);
                return { width: w, segs };
              }
              // a strided or reversed slice: channel by channel (rare)
              const per = new Array<number>(w).fill(EMPTY);
              for (let j = 0; j < count; j++) per[start + j * step] = setAt(om, j);
              const segs: Seg[] = [];
              for (const s of per) pushSeg(segs, 1, s);
              return { width: w, segs };
            }
          }
        }
      } else if (flow === 'preserve') {
        let acc: ChannelMap | null = null;
        for (const o of n.outputs) {
          if (!o) continue;
          const om = chanOf(o);
          const m = om.width === w ? om : uniform(w, unionAll(pool, om));
          acc = acc ? mergeMaps(pool, acc, m) : m;
        }
        if (acc) return acc;
      }
    }
    // Flatten, Reshape, Transpose, Gemm-like and anything unknown: every channel reaches everything.
    return uniform(w, mixedOutputs(n));
  };

  // A graph output is a sink: length 0 from it, and a target of its own. Sets only grow by union,
  // so seeding before the sweep is the same as seeding when its producer comes up.
  for (const v of graph.outputs) {
    lengths.set(v, pool.union(lengthsOf(v), zero));
    reach.set(v, targetPool.union(reachOf(v), targetPool.single(targetId.get(v)!)));
    const w = channels(v);
    const prev = chan.get(v);
    chan.set(v, prev ? mergeMaps(pool, prev, uniform(w, zero)) : uniform(w, zero));
  }

  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k];
    const isW = weight.get(n)!;
    // value level
    let outLen = EMPTY;
    let outReach = EMPTY;
    for (const o of n.outputs) {
      outLen = pool.union(outLen, lengthsOf(o));
      outReach = targetPool.union(outReach, reachOf(o));
    }
    const inLen = isW ? pool.shift(outLen) : outLen;
    const inReach = isW ? targetPool.single(targetId.get(n)!) : outReach;
    for (let i = 0; i < n.inputs.length; i++) {
      const v = n.inputs[i];
      if (!isData(v)) continue;
      lengths.set(v, pool.union(lengthsOf(v), inLen));
      reach.set(v, targetPool.union(reachOf(v), inReach));
      const w = channels(v);
      const contrib = channelContribution(n, i, w);
      const prev = chan.get(v);
      chan.set(v, prev ? mergeMaps(pool, prev, contrib) : contrib);
    }
  }

  // one entry per weight layer; the partial convs of one layer (PRN's parts form) merge into one
  const layers: LayerGradientPaths[] = [];
  const byLayer = new Map<string, { at: number; len: number; rch: number; groups: Set<number> }>();
  let unreachable = 0;
  order.forEach((n, nodeIndex) => {
    if (!weight.get(n)) return;
    const name = layerOf(n.name);
    let acc = byLayer.get(name);
    if (!acc) {
      acc = { at: layers.length, len: EMPTY, rch: EMPTY, groups: new Set() };
      byLayer.set(name, acc);
      layers.push({ name, opType: n.opType, shortest: 0, longest: 0, timestamps: 0, sources: 0, channelGroups: 0, order: layers.length, nodeIndex });
    }
    if (name !== n.name) (layers[acc.at].members ??= []).push(n.name);
    for (const o of n.outputs) {
      if (!o) continue;
      acc.len = pool.union(acc.len, lengthsOf(o));
      acc.rch = targetPool.union(acc.rch, reachOf(o));
      for (const g of chanOf(o).segs) if (g.set !== EMPTY) acc.groups.add(g.set);
    }
  });
  for (const { at, len, rch, groups } of byLayer.values()) {
    const st = pool.stats(pool.shift(len));
    if (st.count === 0) unreachable++;
    Object.assign(layers[at], { shortest: Math.max(st.min, 0), longest: Math.max(st.max, 0), timestamps: st.count, sources: targetPool.stats(rch).count, channelGroups: groups.size });
  }
  if (unreachable > 0) warnings.push(`${unreachable} weight layer(s) reach no graph output; they are listed with 0 paths and left out of the aggregates`);
  if (unknownWidths > 0) warnings.push('some values have no known channel count; channelGroups treats their channels as one group (run shape inference first)');

  const stages: StageGradientPaths[] = (opts.stages ?? []).map((s) => {
    const names = new Set(s.nodes);
    const ls = layers.filter((l) => names.has(l.name) || l.members?.some((m) => names.has(m)));
    return {
      name: s.name,
      start: ls.length ? Math.min(...ls.map((l) => l.order)) : -1,
      end: ls.length ? Math.max(...ls.map((l) => l.order)) : -1,
      ...summarize(ls),
    };
  });
  return { layers, network: summarize(layers), stages, warnings };
}

/** Aggregates over layers that reach a graph output. */
export function summarize(all: LayerGradientPaths[]): GradientPathSummary {
  const ls = all.filter((l) => l.timestamps > 0);
  const mean = (f: (l: LayerGradientPaths) => number) => (ls.length ? ls.reduce((a, l) => a + f(l), 0) / ls.length : 0);
  const max = (f: (l: LayerGradientPaths) => number) => ls.reduce((a, l) => Math.max(a, f(l)), 0);
  return {
    layers: ls.length,
    maxShortest: max((l) => l.shortest),
    minShortest: ls.length ? ls.reduce((a, l) => Math.min(a, l.shortest), Infinity) : 0,
    longest: max((l) => l.longest),
    meanTimestamps: mean((l) => l.timestamps),
    meanShortest: mean((l) => l.shortest),
    meanLongest: mean((l) => l.longest),
    meanSources: mean((l) => l.sources),
    maxChannelGroups: max((l) => l.channelGroups),
  };
}
