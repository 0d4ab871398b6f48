/**
 * Per-node time: ONNX Runtime's profiler (a Chrome-trace JSON: one "Node" event per kernel run, one
 * "Session" model_run event per run) aggregated per op type, per stage and block of the recognised
 * structure, and per execution provider.
 *
 * ORT names kernels after its optimised graph, not the exported one: fused or layout-converted nodes
 * are called after an output value ("/layer1/relu/Relu_output_0_nchwc"). Such a name is mapped back
 * to the model by stripping suffixes until it names a node or a value (whose producer is taken).
 * Op types are the kernels ORT ran (a fused Conv+Relu counts as Conv; ReorderInput is ORT's own).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Graph, Node } from '../ir/graph';
import type { Structure } from '../analysis/structure-types';
import { recognizeDetector } from '../analysis/detector';
import type { Model } from '../ir/model';
import { shortProviderName } from './providers';

export interface KernelEvent {
  /** ORT's node name (the event name without "_kernel_time"). */
  name: string;
  opType: string;
  provider: string;
  /** Microseconds. */
  durUs: number;
  /** Index of the model_run the event belongs to. */
  run: number;
  /**
   * A layout kernel onnxruntime inserted (ReorderInput / ReorderOutput, NCHW <-> NCHWc): the kernel
   * it reorders for. ReorderOutput turns a blocked tensor back to NCHW for the next kernel, which
   * cannot read the blocked layout; ReorderInput blocks the NCHW tensor the previous kernel wrote.
   */
  layoutFor: string | null;
}

/** onnxruntime's own layout kernels (the NCHWc transformer's). */
export const LAYOUT_KERNELS = new Set(['ReorderInput', 'ReorderOutput']);

export interface ParsedProfile {
  /** Duration of each model_run, microseconds, in order. */
  runsUs: number[];
  kernels: KernelEvent[];
}

interface TraceEvent {
  cat?: string;
  name?: string;
  ts?: number;
  dur?: number;
  args?: { op_name?: string; provider?: string };
}

/** Parse ORT's profile JSON; kernel events are assigned to the model_run that contains them. */
export function parseOrtProfile(trace: unknown): ParsedProfile {
  const events: TraceEvent[] = Array.isArray(trace) ? trace : [];
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run' && typeof e.ts === 'number').sort((a, b) => a.ts! - b.ts!);
  const kernels: (KernelEvent & { ts: number })[] = [];
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time')) continue;
    const ts = e.ts ?? 0;
    const run = runs.findIndex((r) => ts >= r.ts! && ts <= r.ts! + (r.dur ?? 0));
    kernels.push({ name: e.name.slice(0, -'_kernel_time'.length), opType: e.args?.op_name ?? '?', provider: e.args?.provider ?? '?', durUs: e.dur ?? 0, run, ts, layoutFor: null });
  }
  // layout kernels: the neighbour in execution order within the same run (sequential executor)
  kernels.sort((a, b) => a.ts - b.ts);
  kernels.forEach((k, i) => {
    if (!LAYOUT_KERNELS.has(k.opType)) return;
    const step = k.opType === 'ReorderOutput' ? 1 : -1;
    for (let j = i + step; j >= 0 && j < kernels.length && kernels[j].run === k.run; j += step) {
      if (!LAYOUT_KERNELS.has(kernels[j].opType)) {
        k.layoutFor = kernels[j].name;
        break;
      }
    }
  });
  return { runsUs: runs.map((r) => r.dur ?? 0), kernels: kernels.map(({ ts: _ts, ...k }) => k) };
}

export function readOrtProfile(file: string): ParsedProfile {
  return parseOrtProfile(JSON.parse(fs.readFileSync(file, 'utf8')));
}

/** Where a node sits in the architecture. */
export interface NodePlace {
  /** Model node the kernel maps to, or null. */
  node: string | null;
  stage: string;
  block: string | null;
}

/** A detector's neck (its blocks by id) and heads, by node name (analysis/detector.ts). */
export interface DetectorPlaces {
  neck: { nodes: string[]; blocks: { id: string; nodes: string[] }[] };
  heads: { nodes: string[] };
  /** Backbone nodes no stage lists (a CSP-form stage's split and transitions once converted), by the stage of their neighbours. */
  backbone?: Map<string, string>;
}

/** The neck and heads of a detector, or null (not a detector, or the recognition failed: the stages still attribute). */
export function detectorPlaces(model: Model, structure: Structure | null): DetectorPlaces | null {
  if (!structure) return null;
  try {
    const d = recognizeDetector(model, { structure });
    return d.detector ? { neck: d.neck, heads: d.heads, backbone: backboneStages(model, structure, d.backbone.nodes) } : null;
  } catch {
    return null;
  }
}

/** The stage of each backbone node no stage lists: its producers' stage, else its consumers'. */
function backboneStages(model: Model, structure: Structure, nodes: string[]): Map<string, string> {
  const placed = structurePlaces(structure);
  const stageOf = (n: string) => {
    const s = placed.get(n)?.stage;
    return s?.startsWith('stage ') ? s : undefined;
  };
  const wanted = new Set(nodes.filter((n) => !stageOf(n)));
  const out = new Map<string, string>();
  const g = model.graph;
  const set = (n: Node, s: string | undefined) => {
    if (!s) return;
    out.set(n.name, s);
    placed.set(n.name, { stage: s, block: null });
  };
  for (const n of g.nodes) if (wanted.has(n.name)) set(n, n.inputs.map((v) => v?.producer && stageOf(v.producer.name)).find(Boolean) || undefined);
  for (const n of [...g.nodes].reverse()) {
    if (wanted.has(n.name) && !out.has(n.name)) set(n, n.outputs.flatMap((o) => o?.consumers.map((u) => stageOf(u.node.name)) ?? []).find(Boolean));
  }
  return out;
}

/**
 * Node name -> stage / block, from the recognised structure ('stem', 'stage N', 'head', 'other');
 * a detector's neck nodes are 'neck' (its blocks neck.nK) and its heads 'heads', where no backbone
 * stage holds them (a classifier's structure reads a detector's neck and heads as its head, or none).
 */
export function structurePlaces(structure: Structure | null, detector: DetectorPlaces | null = null): Map<string, { stage: string; block: string | null }> {
  const m = new Map<string, { stage: string; block: string | null }>();
  if (!structure) return m;
  for (const n of structure.stem) m.set(n, { stage: 'stem', block: null });
  for (const s of structure.stages) {
    for (const n of s.entry) m.set(n, { stage: `stage ${s.index}`, block: null });
    for (const b of s.blocks) for (const n of b.nodes) m.set(n, { stage: `stage ${s.index}`, block: b.id });
    // a stage already in CSP form: its split, transitions and concat are the stage's too
    const c = s.csp;
    if (c) for (const n of [...c.expand, ...c.split, ...c.transitionBefore, c.concat, ...c.transitionAfter]) m.set(n, { stage: `stage ${s.index}`, block: null });
  }
  for (const n of structure.head) m.set(n, { stage: 'head', block: null });
  if (detector) {
    const put = (n: string, place: { stage: string; block: string | null }) => {
      if (!m.get(n)?.stage.startsWith('stage ')) m.set(n, place);
    };
    for (const n of detector.neck.nodes) put(n, { stage: 'neck', block: null });
    // the block ids convert reports (neck.nK)
    for (const b of detector.neck.blocks) for (const n of b.nodes) put(n, { stage: 'neck', block: b.id.startsWith('neck.') ? b.id : `neck.${b.id}` });
    for (const n of detector.heads.nodes) put(n, { stage: 'heads', block: null });
    for (const [n, s] of detector.backbone ?? []) put(n, { stage: s, block: null });
  }
  return m;
}

/** A kernel name as a node of the model (see the header comment), or null. */
export function mapKernelToNode(graph: Graph, kernel: string): string | null {
  const nodeNames = nodeNameSet(graph);
  let name = kernel;
  for (let i = 0; i < 4; i++) {
    if (nodeNames.has(name)) return name;
    const v = graph.values.get(name);
    if (v?.producer) return v.producer.name;
    const cut = name.lastIndexOf('_');
    if (cut <= 0) break;
    name = name.slice(0, cut);
  }
  return null;
}

const nodeNameCache = new WeakMap<Graph, Set<string>>();
function nodeNameSet(g: Graph): Set<string> {
  let s = nodeNameCache.get(g);
  if (!s || s.size !== g.nodes.length) {
    s = new Set(g.nodes.map((n) => n.name));
    nodeNameCache.set(g, s);
  }
  return s;
}

export interface TimeShare {
  ms: number;
  /** Fraction of the per-run node sum. */
  share: number;
}

export interface PerNodeReport {
  batch: number;
  /** Profiled runs aggregated (warm-up runs excluded). */
  runs: number;
  /** Mean model_run time in the profile, ms. */
  runMs: number;
  /** Mean per-run sum of kernel times, ms. */
  nodeSumMs: number;
  /** nodeSumMs / runMs: how much of a run the kernels explain (the rest is ORT's own overhead). */
  coverage: number;
  byOpType: ({ opType: string; kernels: number } & TimeShare)[];
  byStage: ({ stage: string } & TimeShare)[];
  byBlock: ({ block: string; stage: string } & TimeShare)[];
  byProvider: ({ provider: string; kernels: number } & TimeShare)[];
  /** Every kernel, slowest first; layout kernels carry the node they were inserted for (layoutFor) and count in its stage. */
  kernels: { name: string; node: string | null; opType: string; provider: string; stage: string; block: string | null; ms: number; layoutFor: string | null }[];
  /** With --ep cuda / tensorrt: kernels that ran on the CPU provider. */
  cpuFallback: { count: number; kernels: string[] } | null;
}

export interface AggregateOptions {
  batch: number;
  /** The EP that was asked for; cpu fallback is reported for the others. */
  ep: string;
  /** Runs to leave out at the start of the profile (warm-up). */
  skipRuns: number;
  graph: Graph;
  structure: Structure | null;
  /** A detector's neck and heads (detectorPlaces), so their kernels count there rather than in 'other'. */
  detector?: DetectorPlaces | null;
}

function sortedShares<T extends { ms: number }>(rows: T[], total: number): (T & TimeShare)[] {
  return rows.map((r) => ({ ...r, share: total > 0 ? r.ms / total : 0 })).sort((a, b) => b.ms - a.ms);
}

/** Aggregate a parsed profile: mean time per run, per kernel / op type / stage / block / provider. */
export function aggregateProfile(p: ParsedProfile, o: AggregateOptions): PerNodeReport {
  const keptRuns = p.runsUs.map((d, i) => ({ d, i })).filter((r) => r.i >= o.skipRuns);
  const runs = Math.max(1, keptRuns.length);
  const kernels = p.kernels.filter((k) => k.run >= o.skipRuns);
  const places = structurePlaces(o.structure, o.detector ?? null);
  const perKernel = new Map<string, { name: string; node: string | null; opType: string; provider: string; stage: string; block: string | null; us: number; layoutFor: string | null }>();
  for (const k of kernels) {
    // ORT names several layout kernels alike ("ReorderInput"): one row per kernel they serve
    const key = k.layoutFor ? `${k.name}\u0000${k.layoutFor}` : k.name;
    let e = perKernel.get(key);
    if (!e) {
      const node = mapKernelToNode(o.graph, k.layoutFor ?? k.name);
      const place = node ? places.get(node) : undefined;
      e = { name: k.name, node, opType: k.opType, provider: shortProviderName(k.provider), stage: place?.stage ?? (node ? 'other' : 'unattributed'), block: place?.block ?? null, us: 0, layoutFor: k.layoutFor };
      perKernel.set(key, e);
    }
    e.us += k.durUs;
  }
  const rows = [...perKernel.values()].map(({ us, ...r }) => ({ ...r, ms: us / 1000 / runs }));
  const nodeSumMs = rows.reduce((a, r) => a + r.ms, 0);
  const runMs = keptRuns.reduce((a, r) => a + r.d, 0) / 1000 / runs;
  const group = <K extends string>(key: (r: (typeof rows)[number]) => string, field: K) => {
    const m = new Map<string, { ms: number; kernels: number; stage: string }>();
    for (const r of rows) {
      const k = key(r);
      const e = m.get(k) ?? { ms: 0, kernels: 0, stage: r.stage };
      e.ms += r.ms;
      e.kernels++;
      m.set(k, e);
    }
    return [...m.entries()].map(([k, v]) => ({ [field]: k, ...v }) as { ms: number; kernels: number; stage: string } & Record<K, string>);
  };
  const fallback = o.ep !== 'cpu' ? rows.filter((r) => r.provider === 'cpu').map((r) => r.name) : null;
  return {
    batch: o.batch,
    runs: keptRuns.length,
    runMs,
    nodeSumMs,
    coverage: runMs > 0 ? nodeSumMs / runMs : 0,
    byOpType: sortedShares(group((r) => r.opType, 'opType').map(({ opType, ms, kernels }) => ({ opType, kernels, ms })), nodeSumMs),
    byStage: sortedShares(group((r) => r.stage, 'stage').map(({ stage, ms }) => ({ stage, ms })), nodeSumMs).sort((a, b) => stageOrder(a.stage) - stageOrder(b.stage)),
    byBlock: sortedShares(group((r) => r.block ?? '', 'block').filter((b) => b.block !== '').map(({ block, stage, ms }) => ({ block, stage, ms })), nodeSumMs),
    byProvider: sortedShares(group((r) => r.provider, 'provider').map(({ provider, ms, kernels }) => ({ provider, kernels, ms })), nodeSumMs),
    kernels: rows.sort((a, b) => b.ms - a.ms),
    cpuFallback: fallback ? { count: fallback.length, kernels: fallback } : null,
  };
}

/**
 * Why the per-node sum is not the p50: said next to every per-node table. `p50` is the model's p50
 * from the timed runs at the same batch.
 */
export function perNodeExplanation(p: PerNodeReport, p50: number | null): string {
  const f = (x: number) => (x >= 100 ? x.toFixed(1) : x.toFixed(2));
  return `per-node times are the mean of ${p.runs} profiled runs in a separate session with onnxruntime's profiler on: kernels ${f(p.nodeSumMs)} ms of ${f(p.runMs)} ms per profiled run (${(p.coverage * 100).toFixed(1)}%)`
    + (p50 !== null ? `; the p50 of ${f(p50)} ms comes from the timed runs, without the profiler` : '')
    + ". They differ by the profiler's own cost, onnxruntime's work between kernels, and the machine's load at each time.";
}

/** The n slowest kernels, each labelled: a layout kernel says which kernel it reorders for. */
export function topKernels(p: PerNodeReport, n = 10): { name: string; opType: string; ms: number; share: number; stage: string; note: string }[] {
  return p.kernels.slice(0, n).map((k) => ({
    name: k.name, opType: k.opType, ms: k.ms, share: p.nodeSumMs > 0 ? k.ms / p.nodeSumMs : 0, stage: k.stage,
    note: k.layoutFor ? `layout kernel onnxruntime inserted for ${k.layoutFor}` : '',
  }));
}

/** stem, stage 0, stage 1, ..., neck, head / heads, other, unattributed. */
function stageOrder(s: string): number {
  if (s === 'stem') return -1;
  const m = /^stage (\d+)$/.exec(s);
  if (m) return Number(m[1]);
  return s === 'neck' ? 1e6 - 1 : s === 'head' || s === 'heads' ? 1e6 : s === 'other' ? 1e6 + 1 : 1e6 + 2;
}

/** The profile file ORT wrote under `dir` (the newest .json whose name starts with `prefix`). */
export function findProfileFile(dir: string, prefix: string): string | null {
  const files = fs.readdirSync(dir).filter((f) => f.startsWith(prefix) && f.endsWith('.json'));
  if (!files.length) return null;
  return files.map((f) => path.join(dir, f)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
}
