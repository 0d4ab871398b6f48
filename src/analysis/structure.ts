/**
 * Structure recognition: the architecture as the gradient-path paper talks about it (stem, stages,
 * blocks with roles, head), found by matching the block rules of rules/ and nothing else.
 *
 *   stem ── stage 0 ── [entry] stage 1 ── ... ── head
 *           blocks       stride-2 conv / MaxPool between blocks, or a first block that downsamples
 *
 * - blocks: non-overlapping matches of the block rules (matcher.ts), in graph order;
 * - stages: consecutive blocks whose outputs share a spatial size; a stage after the first may open
 *   with an entry (a downsample rule's match between the blocks) or with a block that downsamples
 *   itself (ResNet's projecting first block: `entryBlock`);
 * - stem: everything upstream of the first block; head: everything downstream of the last one;
 * - unmatched: any other node no rule explained, by name. Nothing is guessed; the rest is still
 *   analysed. Constant-only nodes (Constant, Identity over weights) are parameters, not layers,
 *   and are listed nowhere.
 */
import { isGptError } from '../errors';
import type { Graph, Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { Match, MatchContext, matchAll, selectMatches, throughIdentity } from './matcher';
import { Rule, isBlockRule, loadRules } from './rules';
import { FoundCrossStage, crossStageAround, crossStageJoins } from './cross-stage';
import { DividedProducers } from './divided-producer';
import { recordedStructure } from './recorded-structure';
import { inferShapes } from './shapes';
import { isWeightLayer } from './gradient-path';
import { afterUpsample, downsamplingTrunk, finalConvs } from './trunk';
import { setBlockRefs, setStageRefs, setStructureRefs, stageEntry, structureRefs } from './structure-refs';
import type { Block, Stage, Structure } from './structure-types';

export interface RecognizeOptions {
  /** Rules to use (default: the shipped rules; see loadRules for adding more). */
  rules?: Rule[];
  /**
   * Use the structure a conversion recorded in metadata_props when it still fits the graph
   * (default true). The passes turn it off: they need the rules' roles, not a record.
   */
  recorded?: boolean;
}

/** A Stage with which block opens it when that block downsamples itself (additive to the contract). */
export interface RecognizedStage extends Stage {
  /** Id of the stage's first block when it changes resolution itself (no separate entry node). */
  entryBlock?: string;
}

/** A Block with the rule's element paths (additive to the contract): 'reduce.conv' -> node names. */
export interface RecognizedBlock extends Block {
  parts: Record<string, string[]>;
}

type Spatial = [number | string | null, number | string | null];

function spatial(v: Value): Spatial | null {
  const s = v.shape;
  return s && s.length === 4 ? [s[2], s[3]] : null;
}

function sameSpatial(a: Spatial | null, b: Spatial | null): boolean | null {
  if (!a || !b || a.some((d) => d === null) || b.some((d) => d === null)) return null;
  return a[0] === b[0] && a[1] === b[1];
}

/** A block that reduces resolution by itself (a stride > 1 somewhere inside). */
function downsamplesItself(m: Match): boolean {
  return m.nodes.some((n) => n.ints('strides').some((s) => s > 1));
}

/** Nodes upstream of `start` (its producer included), not crossing `stop`. */
function upstream(start: Value, stop: Set<Node>): Set<Node> {
  const seen = new Set<Node>();
  const stack = [start];
  while (stack.length) {
    const p = stack.pop()!.producer;
    if (!p || stop.has(p) || seen.has(p)) continue;
    seen.add(p);
    for (const v of p.inputs) if (v) stack.push(v);
  }
  return seen;
}

/** Nodes downstream of `start`, not crossing `stop`. */
function downstream(start: Value, stop: Set<Node>): Set<Node> {
  const seen = new Set<Node>();
  const stack = [start];
  while (stack.length) {
    for (const { node } of stack.pop()!.consumers) {
      if (stop.has(node) || seen.has(node)) continue;
      seen.add(node);
      for (const o of node.outputs) if (o) stack.push(o);
    }
  }
  return seen;
}

/** The residual Add and its two operands (the Add's own inputs: they may be Identity outputs in front of the matched values). */
function residualParts(m: Match): { add: Node; shortcut: Value; branch: Value; identity: boolean } | undefined {
  const spec = m.rule.residual;
  if (!spec) return undefined;
  const addNodes = m.parts.get(spec.add);
  if (!addNodes?.length) return undefined; // an optional Add that is absent: no residual here
  const add = addNodes[addNodes.length - 1];
  const valueOf = (ref: string) => {
    const vs = m.values.get(ref) ?? [];
    return vs[vs.length - 1];
  };
  const shortcut = valueOf(spec.shortcut);
  const branch = valueOf(spec.branch);
  const operand = (v: Value) => add.inputs.find((i): i is Value => !!i && throughIdentity(i).value === v) ?? v;
  // a masked shortcut (PRN's S * mask) is an identity one when the mask multiplies the block input
  const unmasked = m.roles.get('mask')?.some((n) => n.outputs[0] === shortcut && n.inputs.some((i) => !!i && throughIdentity(i).value === m.input));
  return { add, shortcut: operand(shortcut), branch: operand(branch), identity: shortcut === m.input || !!unmasked };
}

function toBlock(m: Match, id: string, ctx: MatchContext): RecognizedBlock {
  const names = (ns: Node[] | undefined) => (ns ?? []).map((n) => n.name);
  const res = residualParts(m);
  const block: RecognizedBlock = {
    id,
    rule: m.rule.name,
    kind: m.rule.kind,
    nodes: names(m.nodes),
    roles: Object.fromEntries([...m.roles].map(([role, ns]) => [role, names(ns)])),
    parts: Object.fromEntries([...m.parts].map(([p, ns]) => [p, names(ns)])),
    input: m.input.name,
    output: m.output.name,
    residual: res && {
      add: res.add.name,
      shortcutValue: res.shortcut.name,
      branchValue: res.branch.name,
      shortcut: res.identity ? 'identity' : 'projection',
      projectionNodes: names(m.roles.get('projection')),
      postAdd: names(m.roles.get('postAdd')),
    },
    channelsIn: ctx.channels(m.input),
    channelsOut: ctx.channels(m.output),
  };
  setBlockRefs(block, {
    nodes: [...m.nodes], input: m.input, output: m.output, parts: new Map(m.parts), roles: new Map(m.roles),
    residual: res && { add: res.add, shortcut: res.shortcut, branch: res.branch },
  });
  return block;
}

/**
 * The family most blocks are evidence for. Blocks of no family (ELAN's computational blocks replace
 * a stage's residual blocks whatever the family) leave it to the stage entries: a stride-2 conv
 * between stages is Darknet-53's, where ResNet downsamples inside its blocks and VoVNet by pooling.
 */
function familyOf(blocks: Match[], entries: Match[], warnings: string[]): Structure['family'] {
  const votes = new Map<Structure['family'], number>();
  for (const b of blocks) if (b.rule.family) votes.set(b.rule.family, (votes.get(b.rule.family) ?? 0) + 1);
  if (votes.size === 0) for (const e of entries) if (e.rule.family) votes.set(e.rule.family, (votes.get(e.rule.family) ?? 0) + 1);
  const ranked = [...votes].sort((a, b) => b[1] - a[1]);
  if (ranked.length > 1) warnings.push(`blocks of several families: ${ranked.map(([f, n]) => `${f} ${n}`).join(', ')}; reporting ${ranked[0][0]}`);
  return ranked[0]?.[0] ?? 'unknown';
}

function ensureShapes(model: Model, warnings: string[]): void {
  const g = model.graph;
  if (g.nodes.every((n) => !n.outputs[0] || n.outputs[0].shape)) return;
  try {
    warnings.push(...inferShapes(model).warnings);
  } catch (e) {
    if (!isGptError(e)) throw e;
    warnings.push(`shape inference failed (${e.message}); stages are told apart by strides only`);
  }
}

/** Cross-stage partials around runs of chained blocks, keyed by the run's first block. */
function crossStages(ctx: MatchContext, blocks: Match[], transitions: Rule[]): Map<Match, FoundCrossStage> {
  const out = new Map<Match, FoundCrossStage>();
  if (transitions.length === 0) return out;
  let start = 0;
  for (let i = 1; i <= blocks.length; i++) {
    // part 1 of a divided layer (a ResNet stage's projecting first block written once per part)
    // opens a cross-stage partial even where the block before writes it
    const link = i < blocks.length ? throughIdentity(blocks[i].input).value : null;
    const chained = link === blocks[i - 1].output && !ctx.divided?.byPart1.has(link);
    if (chained) continue;
    const found = crossStageAround(ctx, transitions, blocks[start].input, blocks[i - 1].output);
    if (found) out.set(blocks[start], found);
    start = i;
  }
  return out;
}

/**
 * Block-like nodes among `nodes`: a residual Add (two feature-map operands of the same shape) or a
 * channel Concat of feature maps. What no rule explains of these is a block the rules missed.
 */
function candidatesIn(g: Graph, nodes: Iterable<Node>): Node[] {
  const fm = (v: Value) => v.shape?.length === 4;
  return [...nodes].filter((n) => {
    const data = g.dataInputs(n);
    if (n.opType === 'Add') return data.length === 2 && data.every(fm) && JSON.stringify(data[0].shape) === JSON.stringify(data[1].shape);
    if (n.opType === 'Concat') return n.int('axis', 0) === 1 && data.length >= 2 && data.every(fm);
    return false;
  });
}

/**
 * Distinct spatial sizes (global pooling's 1x1 left out) of the feature maps that blocks make: the
 * recognised blocks' outputs and the block-like nodes no rule explains. A plain conv chain at a new
 * size (a detector's extra P6 / P7 levels, a classifier's last 1x1) holds no block to miss.
 */
function blockResolutions(g: Graph, stem: Set<Node>, outputs: Value[], candidates: Node[]): number {
  const seen = new Set<string>();
  for (const o of [...outputs, ...candidates.filter((n) => !stem.has(n)).map((n) => n.outputs[0])]) {
    const s = o?.shape;
    if (!s || s.length !== 4 || g.isConstant(o!)) continue;
    if (s[2] === 1 && s[3] === 1) continue;
    if (s[2] === null || s[3] === null) continue;
    seen.add(`${s[2]}x${s[3]}`);
  }
  return seen.size;
}

/**
 * Plain conv layers (rules of family 'plain') as blocks, on the trunk only (trunk.ts: up to the
 * deepest downsampling and the single-consumer chain after it), so that a detector's neck and heads
 * are not read as stages. The first conv on the image (no weight layer before it) is the stem, as a
 * Darknet-53's first conv is, and stays out of the blocks. `elan`: the ELAN blocks already read, whose
 * nodes (their Concat too) are explained and taken.
 */
function plainBlocks(g: Graph, ctx: MatchContext, plain: Rule[], transitions: Rule[], elan: Match[] = []): Match[] {
  if (plain.length === 0) return [];
  const { afterUp } = afterUpsample(g);
  const trunk = downsamplingTrunk(g, afterUp, new Set(finalConvs(g)));
  if (!trunk) return [];
  // a CSP form of plain conv stages: its Concats are explained, its transitions and the part-2
  // copies of divided layers are the cross-stage partials', not conv layers of the stage
  const joins = crossStageJoins(ctx, transitions);
  const explained = new Set([...elan.flatMap((m) => m.nodes), ...joins.concats, ...joins.transitions, ...(ctx.divided?.part2Nodes ?? [])]);
  // block-like nodes on the trunk mean an architecture the rules missed (a residual Add, a Concat of
  // same-resolution branches: ELAN, OSA), not a plain one; a Concat with a branch reshaped from
  // another resolution (YOLOv2's passthrough reorg) is a plain net's, and one inside an ELAN block
  // the elan rule read is explained
  const convSize = (v: Value): string => {
    let cur: Value | undefined = v;
    for (let hops = 0; cur?.producer && hops < 8; hops++) {
      if (cur.producer.opType === 'Conv') return JSON.stringify(cur.shape?.slice(2) ?? null);
      cur = g.dataInputs(cur.producer)[0];
    }
    return 'none';
  };
  const missed = candidatesIn(g, [...trunk].filter((n) => !explained.has(n))).some((n) => n.opType === 'Add' || new Set(g.dataInputs(n).map(convSize)).size === 1);
  if (missed) return [];
  const outside = new Set(g.nodes.filter((n) => !trunk.has(n) || explained.has(n)));
  const layersBefore = (v: Value) => [...upstream(v, new Set())].some((n) => isWeightLayer(g, n));
  return selectMatches(matchAll(g, plain, ctx), ctx, outside).filter((m) => layersBefore(m.input));
}

/** Recognise stem, stages, blocks and head from the rules (default: the shipped ones). */
export function recognize(model: Model, opts: RecognizeOptions = {}): Structure & { stages: RecognizedStage[] } {
  const g: Graph = model.graph;
  const warnings: string[] = [];
  ensureShapes(model, warnings);
  const rec = opts.recorded === false ? null : recordedStructure(model);
  if (rec) {
    const out = { ...rec, warnings: [...warnings, ...rec.warnings] };
    const refs = structureRefs(rec);
    if (refs) setStructureRefs(out, refs);
    return out;
  }
  const rules = opts.rules ?? loadRules();
  const ctx = new MatchContext(g);
  ctx.divided = new DividedProducers(g);
  const isData = (n: Node) => n.outputs.some((o) => o && !g.isConstant(o));
  const byOrder = (a: Node, b: Node) => (ctx.order.get(a) ?? 0) - (ctx.order.get(b) ?? 0);
  const names = (ns: Iterable<Node>) => [...ns].filter(isData).sort(byOrder).map((n) => n.name);

  // neck rules (a detector's conv sets, SPP...) are matched by detector.ts between backbone and heads;
  // plain conv layers only where no other block was found (a residual stage holds plain convs too),
  // or beside ELAN blocks alone: ELAN replaces a plain conv stage whole (YOLOv7-tiny's layout), and
  // a stage it left as it was (a lone 1x1 no ELAN block undercuts) is still a stage of plain convs
  const backboneRules = rules.filter((r) => isBlockRule(r) && r.part !== 'neck');
  let blocks = selectMatches(matchAll(g, backboneRules.filter((r) => r.family !== 'plain'), ctx), ctx);
  if (blocks.every((b) => b.rule.kind === 'elan')) {
    const pos = (m: Match) => ctx.order.get(m.output.producer!) ?? 0;
    blocks = [...blocks, ...plainBlocks(g, ctx, backboneRules.filter((r) => r.family === 'plain'), rules.filter((r) => r.kind === 'transition'), blocks)].sort((a, b) => pos(a) - pos(b));
  }
  if (blocks.length === 0) {
    warnings.push('no rule matched any block; add a rule file for this architecture (--rules)');
    const all = names(g.nodes);
    return { family: 'unknown', stem: [], stages: [], head: [], unmatched: all, warnings, coverage: { blocks: 0, candidates: candidatesIn(g, g.nodes).length, unexplained: names(candidatesIn(g, g.nodes)), unmatched: all, resolutions: 0 } };
  }
  const inBlocks = new Set(blocks.flatMap((b) => b.nodes));
  // cross-stage partials around runs of chained blocks (already-CSP models)
  const csps = crossStages(ctx, blocks, rules.filter((r) => r.kind === 'transition'));
  const inCsp = new Set([...csps.values()].flatMap((c) => c.nodes));
  const taken = new Set([...inBlocks, ...inCsp]);
  const boundaries = selectMatches(matchAll(g, rules.filter((r) => r.kind === 'downsample'), ctx), ctx, taken);

  const firstCsp = csps.get(blocks[0]);
  const stem = upstream(firstCsp ? firstCsp.input : blocks[0].input, taken);
  const claimed = new Set([...taken, ...stem]);
  const unmatched = new Set<Node>();
  const stages: RecognizedStage[] = [];
  const stageMatches: Match[][] = [];
  const stageGaps: Node[][] = [];
  const stageCsps: (FoundCrossStage | undefined)[] = [];
  const entryNodes = new Set<Node>();
  blocks.forEach((b, i) => {
    // what lies between the previous block and this one: a stage entry, or nodes no rule explains
    const csp = csps.get(b);
    const gap = i === 0 ? new Set<Node>() : upstream(csp ? csp.input : b.input, claimed);
    for (const n of gap) claimed.add(n);
    const entry = boundaries.filter((m) => m.nodes.every((n) => gap.has(n))).flatMap((m) => m.nodes);
    for (const n of entry) entryNodes.add(n);
    const left = [...gap].filter((n) => !entry.includes(n));
    for (const n of left) unmatched.add(n);
    const prev = blocks[i - 1];
    const same = prev ? sameSpatial(spatial(prev.output), spatial(b.output)) : null;
    // a cross-stage partial that reads the previous block's output at its resolution, with nothing
    // between, continues that block's stage: a ResNet stage's projecting first block stays outside
    // the split (CSPNet keeps the stage's downsampling before the split, Fig. 3)
    const joins = !!csp && !!prev && same !== false && entry.length === 0 && left.length === 0 && !stageCsps[stageCsps.length - 1] &&
      throughIdentity(csp.input).value === throughIdentity(prev.output).value;
    const opens = !joins && (i === 0 || entry.length > 0 || !!csp || (same === null ? downsamplesItself(b) : !same));
    if (joins) {
      const stage = stages[stages.length - 1];
      setStageRefs(stage, { entry: stageEntry(stage), csp: { nodes: csp.nodes, input: csp.input, output: csp.output, concat: csp.concat, transitionAfter: csp.transitionAfter } });
      stageCsps[stageCsps.length - 1] = csp;
    }
    if (opens) {
      const index = stages.length;
      const stage: RecognizedStage = {
        index,
        resolution: spatial(b.output),
        entry: names(entry),
        // a plain conv layer opening a stage at another resolution (YOLOv2's passthrough 1x1 on the
        // stride-16 features) is not a block that downsamples itself: only a stride inside says so
        ...(index > 0 && entry.length === 0 && !csp && (b.rule.family !== 'plain' || downsamplesItself(b)) ? { entryBlock: `s${index}.b0` } : {}),
        blocks: [],
        channels: null,
      };
      setStageRefs(stage, {
        entry: entry.filter(isData).sort(byOrder),
        ...(csp ? { csp: { nodes: csp.nodes, input: csp.input, output: csp.output, concat: csp.concat, transitionAfter: csp.transitionAfter } } : {}),
      });
      stages.push(stage);
      stageMatches.push([]);
      stageGaps.push([]);
      stageCsps.push(csp);
    }
    stageMatches[stageMatches.length - 1].push(b);
    stageGaps[stageGaps.length - 1].push(...left);
  });
  stages.forEach((s, si) => {
    s.blocks = stageMatches[si].map((m, bi) => toBlock(m, `s${si}.b${bi}`, ctx));
    const csp = stageCsps[si];
    s.channels = csp ? ctx.channels(csp.output) : s.blocks[s.blocks.length - 1].channelsOut;
    if (csp) s.csp = csp.record;
    const cands = candidatesIn(g, stageGaps[si]);
    s.coverage = { blocks: s.blocks.length, candidates: s.blocks.length + cands.length, unexplained: names(cands), unmatched: names(stageGaps[si]) };
  });

  const lastBlock = blocks[blocks.length - 1];
  const lastCsp = stageCsps[stageCsps.length - 1];
  const head = downstream(lastCsp && stageMatches[stageMatches.length - 1].includes(lastBlock) ? lastCsp.output : lastBlock.output, claimed);
  for (const n of head) claimed.add(n);
  for (const n of g.nodes) if (!claimed.has(n)) unmatched.add(n);
  if ([...unmatched].some(isData)) warnings.push(`${names(unmatched).length} node(s) match no rule; they are listed in unmatched`);

  const family = familyOf(blocks, boundaries.filter((m) => m.nodes.every((n) => entryNodes.has(n))), warnings);
  const outside = [...stem, ...head, ...unmatched];
  const cands = candidatesIn(g, outside);
  const resolutions = blockResolutions(g, stem, blocks.map((b) => b.output), candidatesIn(g, g.nodes));
  const coverage = {
    blocks: blocks.length, candidates: blocks.length + cands.length, unexplained: names(cands), unmatched: names(unmatched), resolutions,
  };
  const errors: string[] = [];
  if (resolutions > stages.length) {
    errors.push(`${family} read with ${stages.length} stage(s) but the feature map takes ${resolutions} resolutions after the stem: blocks were missed (${cands.length} block-like node(s) no rule explains${cands.length ? `: ${names(cands).slice(0, 4).join(', ')}${cands.length > 4 ? ', ...' : ''}` : ''})`);
  }
  const result = { family, stem: names(stem), stages, head: names(head), unmatched: names(unmatched), warnings, coverage, ...(errors.length ? { errors } : {}) };
  const data = (ns: Iterable<Node>) => [...ns].filter(isData).sort(byOrder);
  setStructureRefs(result, { stem: data(stem), head: data(head) });
  return result;
}
