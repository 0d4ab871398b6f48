/**
 * Detector recognition: a detection network as the gradient-path paper converts it (Sec. 4,
 * YOLOR-v3 -> PRN / CSP / ELAN), in three parts.
 *
 *   input ── backbone ──┬─ tap s8 ──────────────┐
 *                       ├─ tap s16 ─────────┐   │     neck: conv sets, SPP, CSP blocks (rules with
 *                       └─ tap s32 ─ [set] ─┴up─┴up   "part": "neck"), FPN top-down and PAN
 *                                     │      │    │    bottom-up merges (topology)
 *                                   head   head  head  heads: the last weight layer on each way to a
 *                                     └──────┴────┴─ decode / NMS / anything after (left as they are)
 *
 * - heads: the detection convs (weight layers with no weight layer after them on any way to a graph
 *   output), everything they feed, and the nodes that only serve it (Shape/Gather of the decode);
 * - backbone: the family gpt knows (the stages structure.ts builds from the backbone rules) up to its
 *   last stage that no upsample feeds; without one, everything up to the deepest downsampling and the
 *   single-consumer chain after it (reported as found by downsampling, not by a rule);
 * - taps: backbone values the neck reads;
 * - neck: the rest of the way from the taps to the detection convs.
 * A model with fewer than two spatial detection convs is not a detector: `detector` is false.
 */
import type { Graph, Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import type { CostReport } from './cost';
import { FpnLevel, fpnLevels, sharedTowers } from './detector-fpn';
import { GradientPathReport, GradientPathSummary, StageSpec, isWeightLayer } from './gradient-path';
import { Spatial, UPSAMPLE_OPS, afterUpsample, dataInputs, dataReaders, downsamplingTrunk, finalConvs, isGateOf, readers, spatial, upstreamOf } from './trunk';
import { Match, MatchContext, matchAll, selectMatches, throughIdentity } from './matcher';
import { Rule, loadRules } from './rules';
import { recognize } from './structure';
import { blockRefs } from './structure-refs';
import type { Structure } from './structure-types';

/** Ops that join two paths of the neck. */
const MERGE_OPS = new Set(['Concat', 'Add', 'Sum']);

export interface NeckBlock {
  id: string;
  rule: string;
  nodes: string[];
  input: string;
  output: string;
  resolution: (number | string | null)[] | null;
  channelsIn: number | null;
  channelsOut: number | null;
}

export interface NeckPath {
  /** top-down: a merge fed by an upsample (FPN); bottom-up: a merge fed by a stride-2 layer of the neck (PAN). */
  kind: 'top-down' | 'bottom-up';
  merge: string;
  /** The upsample or downsample node on the merged path. */
  via: string;
  /** The other operands of the merge: taps (lateral connections) or neck values. */
  lateral: string[];
  resolution: (number | string | null)[] | null;
}

export interface Tap {
  value: string;
  resolution: (number | string | null)[] | null;
  channels: number | null;
  /** Backbone stage that produced it (null: found by downsampling, or between stages). */
  stage: number | null;
}

export interface DetectorStructure {
  detector: boolean;
  backbone: {
    family: Structure['family'];
    /** rules: the last backbone stage of structure.ts; downsampling: no backbone rule matched. */
    foundBy: 'rules' | 'downsampling' | 'none';
    stages: number;
    nodes: string[];
    taps: Tap[];
  };
  /** fpn: FPN levels (lateral 1x1, top-down merge, output conv) and extra levels (P6, P7), found by topology (detector-fpn.ts). */
  neck: { nodes: string[]; blocks: NeckBlock[]; paths: NeckPath[]; fpn: { levels: FpnLevel[]; extra: string[] }; unmatched: string[] };
  /**
   * towers: convs run with shared weights on every level in front of the detection convs (RetinaNet's
   * heads, an RPN's 3x3 conv); roi: weight layers reading RoI-pooled features (a two-stage detector's
   * second stage: Faster R-CNN's TwoMLPHead and FastRCNNPredictor, Mask R-CNN's mask head).
   */
  heads: { convs: string[]; towers: string[]; roi: string[]; nodes: string[]; outputs: string[]; ops: Record<string, number> };
  /** What the recognition saw, in sentences (printed by `gpt analyze`). */
  seen: string[];
}

export interface DetectorRefs {
  backbone: Set<Node>;
  neck: Set<Node>;
  heads: Set<Node>;
  headConvs: Node[];
  taps: Value[];
  blocks: Match[];
}

const refs = new WeakMap<DetectorStructure, DetectorRefs>();
export function detectorRefs(d: DetectorStructure): DetectorRefs | undefined {
  return refs.get(d);
}

/** Backbone nodes: from the rules' stages, else up to the deepest downsampling (trunk.ts). */
function findBackbone(g: Graph, structure: Structure, afterUp: Set<Node>, headConvs: Set<Node>): { nodes: Set<Node>; foundBy: DetectorStructure['backbone']['foundBy']; stages: number } {
  const stages = structure.stages.filter((s) => s.blocks.every((b) => !blockRefs(b).nodes.some((n) => afterUp.has(n))));
  if (stages.length > 0) {
    const lastBlock = stages[stages.length - 1].blocks.at(-1)!;
    const out = blockRefs(lastBlock).output;
    if (out?.producer) return { nodes: upstreamOf(g, [out.producer]), foundBy: 'rules', stages: stages.length };
  }
  const trunk = downsamplingTrunk(g, afterUp, headConvs);
  return trunk ? { nodes: trunk, foundBy: 'downsampling', stages: 0 } : { nodes: new Set(), foundBy: 'none', stages: 0 };
}

/** The upsample (or stride-2 layer) a merge operand comes from, through at most a few single-input nodes. */
function feeder(g: Graph, v: Value, test: (n: Node) => boolean, neck: Set<Node>): Node | null {
  let cur: Value | undefined = throughIdentity(v).value;
  for (let hops = 0; cur?.producer && hops < 4; hops++) {
    const p: Node = cur.producer;
    if (!neck.has(p)) return null;
    if (test(p)) return p;
    const ins = dataInputs(g, p).filter((u) => !(u.producer && isGateOf(u.producer, p)));
    if (ins.length !== 1) return null;
    cur = ins[0];
  }
  return null;
}

/** The merge and the nodes on its merged operand's way back to a block output or tap (the lateral 1x1, the upsample...). */
function pathNodes(g: Graph, merge: Node, from: Value, stopAt: Set<Value>): Node[] {
  const out = [merge];
  let cur: Value | undefined = from;
  for (let hops = 0; cur?.producer && !stopAt.has(cur) && hops < 12; hops++) {
    const p: Node = cur.producer;
    out.push(p);
    const ins = dataInputs(g, p).filter((u) => !(u.producer && isGateOf(u.producer, p)));
    if (p.opType === 'Mul') for (const u of dataInputs(g, p)) if (u.producer && isGateOf(u.producer, p)) out.push(u.producer);
    if (ins.length !== 1) break;
    cur = ins[0];
  }
  return out;
}

/** Ops that pool one window per region of interest: what a two-stage detector's second stage reads. */
const ROI_OPS = new Set(['RoiAlign', 'MaxRoiPool']);

/** Every node that reads RoI-pooled features, along data edges: a two-stage detector's second stage. */
function secondStage(g: Graph): Set<Node> {
  const seen = new Set<Node>();
  const stack = g.nodes.filter((n) => ROI_OPS.has(n.opType)).flatMap((p) => p.outputs.filter((o): o is Value => !!o));
  while (stack.length) {
    const v = stack.pop()!;
    for (const r of dataReaders(v)) {
      if (seen.has(r)) continue;
      seen.add(r);
      for (const o of r.outputs) if (o) stack.push(o);
    }
  }
  return seen;
}

export interface DetectorOptions {
  rules?: Rule[];
  /** A structure already recognised on this model object (saves matching twice). */
  structure?: Structure;
}

/** Recognise backbone, neck and heads. Not a detector: `detector` false, the parts empty. */
export function recognizeDetector(model: Model, opts: DetectorOptions = {}): DetectorStructure {
  const g = model.graph;
  const rules = opts.rules ?? loadRules();
  const structure = opts.structure ?? recognize(model, { rules, recorded: false });
  const isData = (n: Node) => n.outputs.some((o) => o && !g.isConstant(o));
  const order = new Map(g.nodes.map((n, i) => [n, i]));
  const names = (ns: Iterable<Node>) => [...ns].filter(isData).sort((a, b) => order.get(a)! - order.get(b)!).map((n) => n.name);

  // the second stage's convs (Mask R-CNN's mask head) end the network too, but what they read is
  // RoI windows of the neck's levels, not the levels: the neck is what feeds the first stage
  const second = secondStage(g);
  const convs = finalConvs(g).filter((n) => !second.has(n));
  const empty: DetectorStructure = {
    detector: false,
    backbone: { family: structure.family, foundBy: 'none', stages: 0, nodes: [], taps: [] },
    neck: { nodes: [], blocks: [], paths: [], fpn: { levels: [], extra: [] }, unmatched: [] },
    heads: { convs: names(convs), towers: [], roi: [], nodes: [], outputs: g.outputs.map((o) => o.name), ops: {} },
    seen: [],
  };
  if (convs.length < 2) {
    empty.seen.push(`not a detector: ${convs.length} feature-map conv(s) end the network (a detector has one per scale or head branch)`);
    return empty;
  }
  const headConvs = new Set(convs);
  // an upsample with no weight layer before it is input preprocessing (torchvision's transform
  // resizes the image), not a top-down path
  const { afterUp, afterWeights } = afterUpsample(g);
  const bb = findBackbone(g, structure, afterUp, headConvs);
  const towers = sharedTowers(g, convs, bb.nodes);
  const towardsHeads = upstreamOf(g, convs);
  const neck = new Set(g.nodes.filter((n) => towardsHeads.has(n) && !bb.nodes.has(n) && !headConvs.has(n) && !towers.has(n) && isData(n)));
  const heads = new Set(g.nodes.filter((n) => !bb.nodes.has(n) && !neck.has(n) && isData(n)));

  const stageOf = new Map<Value, number>();
  structure.stages.forEach((s) => s.blocks.forEach((b) => {
    const out = blockRefs(b).output;
    if (out) stageOf.set(out, s.index);
  }));
  const taps: Value[] = [];
  // feature maps only: the image and its size (read by an anchor generator or a box clip) are not taps
  for (const n of bb.nodes) {
    if (!afterWeights.has(n)) continue;
    for (const o of n.outputs) if (o && !g.isConstant(o) && readers(o).some((r) => neck.has(r) || heads.has(r))) taps.push(o);
  }
  taps.sort((a, b) => order.get(a.producer!)! - order.get(b.producer!)!);

  // neck blocks: the neck rules, matched on neck nodes only
  const ctx = new MatchContext(g);
  const outsideNeck = new Set(g.nodes.filter((n) => !neck.has(n)));
  const matches = selectMatches(matchAll(g, rules.filter((r) => r.part === 'neck'), ctx), ctx, outsideNeck);
  const blocks: NeckBlock[] = matches.map((m, i) => ({
    id: `n${i}`, rule: m.rule.name, nodes: names(m.nodes), input: m.input.name, output: m.output.name,
    resolution: spatial(m.output), channelsIn: ctx.channels(m.input), channelsOut: ctx.channels(m.output),
  }));
  const inBlocks = new Set(matches.flatMap((m) => m.nodes));

  // FPN top-down and PAN bottom-up merges
  const paths: NeckPath[] = [];
  const onPaths = new Set<Node>();
  const topDown = new Map<Node, Node>();
  const stopAt = new Set<Value>([...taps, ...matches.map((m) => m.output)]);
  const strided = (n: Node) => n.ints('strides').some((s) => s > 1);
  for (const n of g.nodes) {
    if (!neck.has(n) || !MERGE_OPS.has(n.opType)) continue;
    const ins = dataInputs(g, n);
    if (ins.length < 2) continue;
    for (const [kind, test] of [['top-down', (x: Node) => UPSAMPLE_OPS.has(x.opType)], ['bottom-up', strided]] as const) {
      const via = ins.map((v) => ({ v, f: feeder(g, v, test, neck) })).find((x) => x.f);
      if (!via?.f) continue;
      for (const x of pathNodes(g, n, via.v, stopAt)) onPaths.add(x);
      if (kind === 'top-down') topDown.set(n, via.f);
      paths.push({ kind, merge: n.name, via: via.f.name, lateral: ins.filter((v) => v !== via.v).map((v) => v.name), resolution: spatial(n.outputs[0]) });
      break;
    }
  }
  const fpn = fpnLevels(g, neck, taps, topDown);
  const unmatched = [...neck].filter((n) => !inBlocks.has(n) && !onPaths.has(n) && !fpn.nodes.has(n));

  const ops: Record<string, number> = {};
  const roi = new Set([...heads].filter((n) => second.has(n) && isWeightLayer(g, n)));
  for (const n of heads) if (!headConvs.has(n) && !towers.has(n) && !roi.has(n)) ops[n.opType] = (ops[n.opType] ?? 0) + 1;
  const result: DetectorStructure = {
    detector: true,
    backbone: {
      family: structure.family, foundBy: bb.foundBy, stages: bb.stages, nodes: names(bb.nodes),
      taps: taps.map((v) => ({ value: v.name, resolution: spatial(v), channels: ctx.channels(v), stage: stageOf.get(v) ?? null })),
    },
    neck: { nodes: names(neck), blocks, paths, fpn: { levels: fpn.levels, extra: fpn.extra }, unmatched: names(unmatched) },
    heads: { convs: names(convs), towers: names([...towers].filter((n) => isWeightLayer(g, n))), roi: names(roi), nodes: names(heads), outputs: g.outputs.map((o) => o.name), ops },
    seen: [],
  };
  result.seen = describe(result, structure);
  refs.set(result, { backbone: bb.nodes, neck, heads, headConvs: convs, taps, blocks: matches });
  return result;
}

function describe(d: DetectorStructure, structure: Structure): string[] {
  const res = (s: Spatial) => (s ? s.join('x') : '?');
  const out: string[] = [];
  const b = d.backbone;
  out.push(b.foundBy === 'rules'
    ? `backbone: ${b.family}, ${b.stages} stage(s) recognised by the rules, ${b.nodes.length} nodes`
    : b.foundBy === 'downsampling'
      ? `backbone: no backbone rule matched (${structure.stages.length ? 'the recognised stages lie after an upsample' : 'no residual, OSA or CSP block'}); taken as everything up to the deepest downsampling, ${b.nodes.length} nodes`
      : 'backbone: not found (no downsampling layer)');
  if (b.taps.length) out.push(`taps the neck reads: ${b.taps.map((t) => `${t.value} (${res(t.resolution)}, ${t.channels ?? '?'} ch${t.stage !== null ? `, stage ${t.stage}` : ''})`).join('; ')}`);
  const rules: Record<string, number> = {};
  for (const x of d.neck.blocks) rules[x.rule] = (rules[x.rule] ?? 0) + 1;
  const td = d.neck.paths.filter((p) => p.kind === 'top-down').length, bu = d.neck.paths.length - td;
  const fpn = d.neck.fpn.levels.length ? `; FPN levels ${d.neck.fpn.levels.length} (lateral 1x1, top-down merge, output conv)${d.neck.fpn.extra.length ? ` and ${d.neck.fpn.extra.length} extra level(s) by stride-2 layers` : ''}` : '';
  out.push(`neck: ${d.neck.nodes.length} nodes; blocks: ${Object.entries(rules).map(([r, n]) => `${n} ${r}`).join(', ') || 'none matched a neck rule'}; FPN top-down merges ${td}, PAN bottom-up merges ${bu}${fpn}; ${d.neck.unmatched.length} node(s) in no block`);
  const towers = d.heads.towers.length ? `, ${d.heads.towers.length} tower conv(s) with weights shared across levels in front of them` : '';
  const roi = d.heads.roi.length ? `, ${d.heads.roi.length} weight layer(s) on RoI-pooled features (second stage)` : '';
  const tail = d.heads.nodes.length - d.heads.convs.length - d.heads.towers.length - d.heads.roi.length;
  out.push(`heads: ${d.heads.convs.length} detection conv(s)${towers}${roi} and ${tail} other node(s) (${Object.entries(d.heads.ops).sort((x, y) => y[1] - x[1]).slice(0, 6).map(([o, n]) => `${o} ${n}`).join(', ') || 'none'}), left as they are; outputs ${d.heads.outputs.join(', ')}`);
  if (!structure.stages.some((s) => s.blocks.some((x) => x.residual))) out.push('no residual block recognised: PRN has nothing to convert');
  return out;
}

/** Figures of one part (analyze's per-part table). */
export interface PartFigures {
  nodes: number;
  params: number;
  macs: number;
  /** Nodes whose output size is unknown (data-dependent shapes, or a dim of them): counted as 0. */
  unsized: string[];
  gradientPaths: GradientPathSummary;
}

/** The detector as `gpt analyze --json` reports it: the parts with their figures. */
export interface DetectorReport {
  backbone: { family: string; foundBy: DetectorStructure['backbone']['foundBy']; stages: number; taps: Tap[]; part: PartFigures };
  neck: { blocks: NeckBlock[]; paths: NeckPath[]; fpn: DetectorStructure['neck']['fpn']; unmatched: string[]; part: PartFigures };
  heads: { convs: string[]; towers: string[]; roi: string[]; outputs: string[]; ops: Record<string, number>; part: PartFigures };
  seen: string[];
}

/** Per-part params, MACs, unsized nodes and gradient paths (the paths of each part's weight layers, whole network). */
export function detectorReport(model: Model, d: DetectorStructure, cost: CostReport, paths: GradientPathReport, partIndex: number): DetectorReport {
  const byName = new Map(cost.nodes.map((n) => [n.name, n]));
  const g = model.graph;
  const nodeByName = new Map(g.nodes.map((n) => [n.name, n]));
  const figures = (nodes: string[], i: number): PartFigures => {
    let params = 0, macs = 0;
    const unsized: string[] = [];
    for (const name of nodes) {
      const c = byName.get(name);
      params += c?.params ?? 0;
      macs += c?.macs ?? 0;
      const n = nodeByName.get(name);
      // no shape, or a dim that stays unknown (a TopK's k computed from the data)
      if (n && n.outputs.some((o) => o && !g.isConstant(o) && (!o.shape || o.shape.some((d) => d === null)))) unsized.push(name);
    }
    const { name: _n, start: _s, end: _e, ...summary } = paths.stages[partIndex + i];
    return { nodes: nodes.length, params, macs, unsized, gradientPaths: summary };
  };
  const { family, foundBy, stages, taps } = d.backbone;
  return {
    backbone: { family, foundBy, stages, taps, part: figures(d.backbone.nodes, 0) },
    neck: { blocks: d.neck.blocks, paths: d.neck.paths, fpn: d.neck.fpn, unmatched: d.neck.unmatched, part: figures(d.neck.nodes, 1) },
    heads: { convs: d.heads.convs, towers: d.heads.towers, roi: d.heads.roi, outputs: d.heads.outputs, ops: d.heads.ops, part: figures(d.heads.nodes, 2) },
    seen: d.seen,
  };
}

/** The three parts as gradient-path stage specs (appended after the structure's stages). */
export function partSpecs(d: DetectorStructure): StageSpec[] {
  return [
    { name: 'backbone', nodes: d.backbone.nodes },
    { name: 'neck', nodes: d.neck.nodes },
    { name: 'heads', nodes: d.heads.nodes },
  ];
}
