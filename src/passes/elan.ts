/**
 * ELAN, the network-level strategy (paper §3.3 and §4.3, "Efficient Layer Aggregation Networks"):
 * keep every layer's shortest gradient path short as the network deepens. Two moves, by family.
 *
 * Gradient path planning (VoVNet): a plain VoVNet adds one transition layer per OSA module, so every
 * module it stacks lengthens the shortest gradient path of every earlier layer by one. The
 * transitions of all but the last module of a stage are removed; the next module reads the
 * concatenated features directly, so the stage's whole aggregation meets one transition:
 *
 *   x ─ 5 conv ─ Concat ─ T ─ 5 conv ─ Concat ─ T        x ─ 5 conv ─ Concat ─ 5 conv ─ Concat ─ T
 *   └────────────┘       └──────────────┘         ==>   └─────────────┴─────────────────┘
 *                                                        (the second Concat takes x and all 10 outputs)
 *
 * Stacked computational blocks (ResNet, Darknet-53): a stage's chain of residual blocks becomes one
 * ELAN block in YOLOv7's layout (c = width x stage width, 2·stack 3x3 convs):
 *
 *        ┌─ 1x1 → c ───────────────────────────────────────────────┐
 *   x ───┤                                                          Concat ─ 1x1 → C ─ y
 *        └─ 1x1 → c ─┬─ 3x3 ─ 3x3 ─┬─ 3x3 ─ 3x3 ─┬─ ...            │        (2 + stack)·c
 *                    └─────────────┴─────────────┴─────────────────┘
 *
 * Stage input x: the stage entry's output (Darknet-53's stride-2 conv), or, when a ResNet stage
 * opens with a projecting block (its shortcut is a 1x1 conv: it downsamples or widens), that
 * block's output: the projecting block stays, as the CSP pass keeps it, and the identity blocks
 * after it are replaced. The stage keeps its input/output widths and resolution, so the rest of
 * the model is untouched. The block has no identity shortcut, so a residual stage's shortest
 * gradient path grows (the report shows it); the gain is computation (Darknet-53: 0.60x MACs).
 * For bottleneck ResNets, whose stage width is 4x their inner width, --width 0.125 gives c = the
 * bottleneck width; the default 0.5 makes the block wider than the blocks it replaces.
 *
 * Weights: every weight whose input still holds the same feature is carried over. New layers and
 * new input channels get seeded values (surgery.addConvBnAct / widenInputChannels: He-normal,
 * fan-in, seeded by the layer's name, so a stage converts the same way whatever else is converted;
 * BN starts as the identity). The model must be fine-tuned.
 *
 * The pass also keeps `structure` describing the model it returns: new nodes are listed in their
 * stage (and named under the stage's module scope), so per-stage numbers after the pass are right.
 */
import { GptError, isGptError } from '../errors';
import { costModel, CostReport } from '../analysis/cost';
import { gradientPaths, GradientPathSummary, StageSpec } from '../analysis/gradient-path';
import { inferShapes } from '../analysis/shapes';
import type { Block, Stage, Structure } from '../analysis/structure-types';
import type { Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { ActivationTemplate, ConvBnAct, activationOf, addConvBnAct, channelsOf, concatChannels, requireChannels, widenInputChannels } from '../ir/surgery';
import type { ConvertOptions, PassOutcome, PassRunner } from './convert';
import { CrossStagePartialChange, checkCspOptions, computationBlocks, crossStagePartial } from './csp';

export interface ElanOptions {
  /** Pairs of 3x3 convs in a stacked block: 2·stack convs, every second one aggregated. Integer >= 1. */
  stack: number;
  /** Width c of the computational block as a share of the stage width C, in (0, 1]. */
  width: number;
}

export const ELAN_DEFAULTS: ElanOptions = { stack: 2, width: 0.5 };

export function checkElanOptions(opts: ElanOptions): void {
  if (!(Number.isInteger(opts.stack) && opts.stack >= 1)) {
    throw new GptError('E_ARG', `--stack ${opts.stack} is not a whole number of at least 1`, { hint: 'the stacked block has 2 x stack 3x3 convs, e.g. --stack 2' });
  }
  if (!(opts.width > 0 && opts.width <= 1)) {
    throw new GptError('E_ARG', `--width ${opts.width} is outside (0, 1]`, { hint: 'the computational block width as a share of the stage width, e.g. --width 0.5' });
  }
}

// ---------------------------------------------------------------------------------------------
// Gradient path planning: transition relocation (VoVNet)

export interface RelocatedTransition {
  /** The module whose transition was removed. */
  block: string;
  /** The removed transition's nodes. */
  transition: string[];
  /** Channels the next module now reads (its concatenated features instead of the transition's output). */
  channels: number;
  /** Channels the transition produced. */
  replacedChannels: number;
  /** The next module's first conv, whose input was widened. */
  widened: string;
}

export interface TransitionRelocation {
  stage: number;
  relocated: RelocatedTransition[];
  /** The stage's remaining transition (the last module's), widened to the stage's whole aggregation. */
  transition?: { block: string; conv: string; channels: number; replacedChannels: number; carriedChannels: number };
  freshParams: number;
  skipped: { block: string; reason: string }[];
}

const ACTIVATIONS = new Set(['Relu', 'LeakyRelu', 'Elu', 'Selu', 'Celu', 'Gelu', 'HardSwish', 'Mish', 'Softplus', 'Tanh', 'Sigmoid', 'HardSigmoid']);

function nodeMap(model: Model): Map<string, Node> {
  return new Map(model.graph.nodes.map((n) => [n.name, n]));
}

function mustValue(model: Model, name: string, what: string): Value {
  const v = model.graph.values.get(name);
  if (!v) throw new GptError('E_GRAPH', `value '${name}' of ${what} is not in the graph`, { subject: what, hint: 'recognise the structure of this same model object' });
  return v;
}

/** The Conv among a value's consumers that belongs to `nodes`. */
function convReading(v: Value, nodes: Set<string>): Node | undefined {
  return v.consumers.map((u) => u.node).find((n) => n.opType === 'Conv' && nodes.has(n.name));
}

/** A concat's inputs, in order, with their channel counts. */
function concatLayout(concat: Node): { value: Value; width: number }[] {
  return concat.inputs.map((v) => ({ value: v!, width: requireChannels(v!, concat.name) }));
}

/** A value's new channel count (the Concat's output widened); a declared type would be stale. */
function setChannels(model: Model, v: Value, c: number): void {
  const t = v.type;
  if (t?.shape) {
    const shape = [...t.shape];
    shape[1] = c;
    v.inferred = { elemType: t.elemType, shape };
  }
  // an exporter's value_info would now be stale: shape inference redoes it
  if (!model.graph.isGraphOutput(v)) {
    v.declared = undefined;
    model.graph.removeValueInfo(v);
  }
}

/**
 * Remove the 1x1 transition of every OSA module but the stage's last; the next module reads the
 * concatenation directly (its first conv and its concat widen), and the last transition reads the
 * stage's whole aggregation. Modules with attention or an identity Add (VoVNetV2) are left alone.
 */
export function relocateTransitions(model: Model, stage: Stage): TransitionRelocation {
  const g = model.graph;
  const result: TransitionRelocation = { stage: stage.index, relocated: [], freshParams: 0, skipped: [] };
  const byName = nodeMap(model);
  const blocks = stage.blocks;
  // a run of plain OSA modules, each reading the previous one's output
  const plain = (b: Block) => b.kind === 'osa' && !b.residual && !(b.roles.attention?.length) && (b.roles.concat?.length ?? 0) === 1 && (b.roles.transition?.length ?? 0) > 0;
  for (const b of blocks) if (!plain(b)) result.skipped.push({ block: b.id, reason: `${b.rule} is not a plain OSA module (attention or identity Add); its transition stays` });
  if (blocks.length < 2 || !blocks.every(plain)) {
    if (blocks.length < 2 && blocks.every(plain)) result.skipped.push({ block: blocks[0]?.id ?? `s${stage.index}`, reason: 'the only module of its stage: its transition is the stage transition' });
    return result;
  }
  for (let i = 1; i < blocks.length; i++) {
    if (blocks[i].input !== blocks[i - 1].output) {
      result.skipped.push({ block: blocks[i].id, reason: `does not read the previous module's output '${blocks[i - 1].output}'` });
      return result;
    }
  }

  // the last module's transition sees the old layout of its concat; remember it to carry its weights over
  const last = blocks[blocks.length - 1];
  const lastConcat = byName.get(last.roles.concat[0])!;
  const lastTransition = convReading(lastConcat.outputs[0]!, new Set(last.nodes));
  if (!lastTransition) {
    result.skipped.push({ block: last.id, reason: 'no 1x1 conv reads its concatenation' });
    return result;
  }
  const oldLayout = concatLayout(lastConcat);

  // every module is checked before any is changed: a stage that cannot be relocated stays whole
  // (listed as left as it was), never half-rewritten
  const plan: { m: Block; T: Value; concat: Node; first: Node; nextConcat: Node }[] = [];
  for (let i = 0; i + 1 < blocks.length; i++) {
    const m = blocks[i], next = blocks[i + 1];
    const nextNodes = new Set(next.nodes);
    const T = mustValue(model, m.output, m.id);
    const outside = T.consumers.filter((u) => !nextNodes.has(u.node.name));
    if (outside.length > 0 || g.isGraphOutput(T)) {
      result.skipped.push({ block: m.id, reason: `its transition output '${T.name}' is also read by '${outside[0]?.node.name ?? 'a graph output'}'; transition relocation needs each module to feed only the next one` });
      return result;
    }
    const first = convReading(T, nextNodes);
    const nextConcat = byName.get(next.roles.concat[0])!;
    if (!first || nextConcat.inputs.indexOf(T) < 0 || T.consumers.some((u) => u.node !== first && u.node !== nextConcat)) {
      result.skipped.push({ block: next.id, reason: `does not read '${T.name}' as an OSA module does (its first conv and its concat)` });
      return result;
    }
    plan.push({ m, T, concat: byName.get(m.roles.concat[0])!, first, nextConcat });
  }
  for (const { m, T, concat, first, nextConcat } of plan) {
    const C = concat.outputs[0]!;
    const at = nextConcat.inputs.indexOf(T);
    const wT = requireChannels(T, m.id);
    const wC = requireChannels(C, m.id);
    // detach: the transition's nodes go; the first conv reads the concatenation, and the next
    // concat takes the concatenated features themselves (one flat aggregation, same channel order)
    first.setInput(first.inputs.indexOf(T), C);
    const flat = [...nextConcat.inputs.slice(0, at), ...concat.inputs, ...nextConcat.inputs.slice(at + 1)];
    flat.forEach((v, k) => nextConcat.setInput(k, v));
    const transition = m.roles.transition.filter((n) => byName.has(n));
    for (const n of transition) g.removeNode(byName.get(n)!);
    // the first conv reads features it never saw: every input channel is new
    result.freshParams += widenInputChannels(model, first, wC, () => null);
    // the next module's concat grows by the difference
    setChannels(model, nextConcat.outputs[0]!, concatLayout(nextConcat).reduce((a, p) => a + p.width, 0));
    result.relocated.push({ block: m.id, transition, channels: wC, replacedChannels: wT, widened: first.name });
  }

  // the kept transition: weights over the module's own conv outputs carry over, the aggregated
  // features of the earlier modules are new input channels
  const newLayout = concatLayout(lastConcat);
  const oldOffset = new Map<Value, number>();
  let off = 0;
  for (const p of oldLayout) {
    if (!oldOffset.has(p.value)) oldOffset.set(p.value, off);
    off += p.width;
  }
  const from: (number | null)[] = [];
  for (const p of newLayout) {
    const o = oldLayout.some((q) => q.value === p.value && q.width === p.width) ? oldOffset.get(p.value)! : null;
    for (let k = 0; k < p.width; k++) from.push(o === null ? null : o + k);
  }
  const oldCin = oldLayout.reduce((a, p) => a + p.width, 0);
  result.freshParams += widenInputChannels(model, lastTransition, from.length, (j) => from[j]);
  result.transition = { block: last.id, conv: lastTransition.name, channels: from.length, replacedChannels: oldCin, carriedChannels: from.filter((f) => f !== null).length };
  g.touch();
  return result;
}

// ---------------------------------------------------------------------------------------------
// Stacked computational blocks (ResNet, Darknet-53)

export interface StackedBlock {
  stage: number;
  /** Ids of the residual blocks the ELAN block replaced. */
  replaced: string[];
  /** Id of a first block kept as the stage input (a projecting ResNet block). */
  kept?: string;
  input: string;
  output: string;
  /** Stage width C and computational-block width c. */
  channels: number;
  width: number;
  stack: number;
  /** Names of the new nodes, in order, and by role. */
  nodes: string[];
  roles: { conv: string[]; concat: string[]; transition: string[] };
  /** Parameters of the new layers (all seeded). */
  params: number;
}

/** Common '/'-scope of node names ('/layer2/layer2.1/conv1/Conv', ... -> '/layer2/layer2.1'). */
function commonScope(names: string[]): string {
  const parts = names.map((n) => n.split('/').slice(0, -1));
  const first = parts[0] ?? [];
  let k = 0;
  while (k < first.length && parts.every((p) => p[k] === first[k])) k++;
  return first.slice(0, k).join('/');
}

/**
 * Which blocks of a stage the ELAN block replaces, and which first block (if any) stays: the CSP
 * pass's choice (csp.ts computationBlocks), so --csp splits exactly the stacked block.
 */
export function stackedRegion(stage: Stage): { kept?: Block; replaced: Block[] } | { reason: string } {
  if (stage.blocks.length === 0) return { reason: 'the stage has no blocks' };
  const { entry, blocks: replaced } = computationBlocks(stage);
  const kept = entry[0];
  if (replaced.length === 0) return { reason: `only its projecting first block ${kept?.id}, which stays as the stage input` };
  const nonResidual = replaced.find((b) => !b.residual);
  if (nonResidual) return { reason: `${nonResidual.id} (${nonResidual.rule}) is not a residual block` };
  const bad = replaced.find((b) => b.residual!.shortcut !== 'identity');
  if (bad) return { reason: `${bad.id} has a projection shortcut inside the stage` };
  for (let i = 1; i < replaced.length; i++) {
    if (replaced[i].input !== replaced[i - 1].output) return { reason: `${replaced[i].id} does not read the output of ${replaced[i - 1].id}` };
  }
  return { kept, replaced };
}

/**
 * Replace a stage's chain of residual blocks by one ELAN block (YOLOv7's layout): two 1x1 convs
 * from the stage input to width c, 2·stack 3x3 convs of width c on the second, a Concat of both 1x1
 * outputs and every second 3x3 output, a 1x1 transition back to the stage width C. The new layers
 * copy the replaced blocks' form: BN as separate nodes or folded (conv bias), and their activation.
 */
export function stackComputationalBlocks(model: Model, stage: Stage, opts: ElanOptions): StackedBlock | { stage: number; reason: string } {
  checkElanOptions(opts);
  const g = model.graph;
  const region = stackedRegion(stage);
  if ('reason' in region) return { stage: stage.index, reason: region.reason };
  const { kept, replaced } = region;
  const byName = nodeMap(model);
  const x = mustValue(model, replaced[0].input, replaced[0].id);
  const y = mustValue(model, replaced[replaced.length - 1].output, replaced[replaced.length - 1].id);
  const C = requireChannels(y, replaced[replaced.length - 1].id);
  const c = Math.max(1, Math.round(opts.width * C));
  const names = replaced.flatMap((b) => b.nodes);
  const nodes = names.map((n) => byName.get(n)).filter((n): n is Node => !!n);
  const inRegion = new Set(nodes);
  // nothing but the stage output may leave the region (a detection head reading a block midway would lose it)
  for (const n of nodes) {
    for (const o of n.outputs) {
      if (!o || o === y) continue;
      const leak = o.consumers.find((u) => !inRegion.has(u.node));
      if (leak || g.isGraphOutput(o)) return { stage: stage.index, reason: `'${o.name}' inside the stage is also read by '${leak?.node.name ?? 'a graph output'}'` };
    }
  }
  const bn = nodes.find((n) => n.opType === 'BatchNormalization');
  const actNode = nodes.find((n) => ACTIVATIONS.has(n.opType));
  const act: ActivationTemplate | null = actNode ? activationOf(actNode) : null;
  const form = { batchNorm: !!bn, epsilon: bn?.float('epsilon', 1e-5), act };

  // detach the blocks; the new nodes go where they were, and write the stage output's value
  const lastIndex = Math.max(...nodes.map((n) => g.nodes.indexOf(n)));
  const before = g.nodes.slice(lastIndex + 1).find((n) => !inRegion.has(n));
  for (const n of nodes) g.removeNode(n);

  const scope = `${commonScope(replaced[0].nodes) || `/stage${stage.index}`}/elan`;
  const made: ConvBnAct[] = [];
  const layer = (input: Value, name: string, cout: number, kernel: number, output?: Value) => {
    const r = addConvBnAct(model, input, { scope: `${scope}/${name}`, cout, kernel, before, output, ...form });
    made.push(r);
    return r.output;
  };
  const aggregated = [layer(x, 'cv1', c, 1), layer(x, 'cv2', c, 1)];
  let z = aggregated[1];
  for (let k = 1; k <= 2 * opts.stack; k++) {
    z = layer(z, `m.${k - 1}`, c, 3);
    if (k % 2 === 0) aggregated.push(z);
  }
  const cat = concatChannels(model, aggregated, scope, before);
  const catNode = cat.producer!;
  layer(cat, 'transition', C, 1, y);
  const nodeNames = (r: ConvBnAct) => [r.conv, r.bn, r.act].filter((n): n is Node => !!n).map((n) => n.name);
  const convs = made.slice(0, -1).flatMap(nodeNames);
  const transition = nodeNames(made[made.length - 1]);
  g.touch();
  return {
    stage: stage.index, replaced: replaced.map((b) => b.id), kept: kept?.id, input: x.name, output: y.name, channels: C, width: c, stack: opts.stack,
    nodes: [...convs, catNode.name, ...transition], roles: { conv: convs, concat: [catNode.name], transition },
    params: made.reduce((a, r) => a + r.params, 0),
  };
}

// ---------------------------------------------------------------------------------------------
// The pass

function stageSpecs(structure: Structure): StageSpec[] {
  return structure.stages.map((s) => ({ name: `stage ${s.index}`, nodes: [...s.entry, ...s.blocks.flatMap((b) => b.nodes)] }));
}

const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(2));

function pathLine(before: GradientPathSummary, after: GradientPathSummary): string {
  return `longest shortest gradient path ${before.maxShortest} -> ${after.maxShortest}, mean shortest ${fmt(before.meanShortest)} -> ${fmt(after.meanShortest)}, ` +
    `longest ${before.longest} -> ${after.longest}, weight layers ${before.layers} -> ${after.layers}`;
}

/** The stage's blocks after relocation: transition nodes gone, each module's output its concatenation. */
function describeRelocation(stage: Stage, r: TransitionRelocation, model: Model): void {
  const byName = nodeMap(model);
  for (const rel of r.relocated) {
    const b = stage.blocks.find((x) => x.id === rel.block)!;
    const gone = new Set(rel.transition);
    b.nodes = b.nodes.filter((n) => !gone.has(n));
    b.roles = { ...b.roles, transition: [] };
    const concat = byName.get(b.roles.concat[0]);
    if (concat?.outputs[0]) {
      b.output = concat.outputs[0].name;
      b.channelsOut = channelsOf(concat.outputs[0]);
    }
    const next = stage.blocks[stage.blocks.indexOf(b) + 1];
    if (next) {
      next.input = b.output;
      next.channelsIn = b.channelsOut;
    }
  }
}

function describeStack(stage: Stage, s: StackedBlock): void {
  const keep = stage.blocks.filter((b) => !s.replaced.includes(b.id));
  const block: Block = {
    id: s.replaced[0], rule: 'elan', kind: 'elan', nodes: s.nodes, roles: s.roles, input: s.input, output: s.output,
    channelsIn: null, channelsOut: s.channels,
  };
  stage.blocks = [...keep, block];
}

/**
 * The relocated OSA modules of a stage as one block (they are one aggregation now), as the CSP
 * pass sees a stage: part 1 of the stage input runs through every module's concat and first conv.
 */
function oneAggregation(stage: Stage): Stage {
  const bs = stage.blocks;
  const roles: Record<string, string[]> = {};
  for (const b of bs) for (const [r, ns] of Object.entries(b.roles)) (roles[r] ??= []).push(...ns);
  const merged: Block = {
    id: bs[0].id, rule: bs[0].rule, kind: bs[0].kind, nodes: bs.flatMap((b) => b.nodes), roles, input: bs[0].input, output: bs[bs.length - 1].output,
    channelsIn: bs[0].channelsIn, channelsOut: bs[bs.length - 1].channelsOut,
  };
  return { ...stage, blocks: [merged] };
}

function describeCsp(c: CrossStagePartialChange): string {
  const fuse = c.fusion === 'both' ? `transition, concat with part 2, transition -> ${c.channelsOut}`
    : c.fusion === 'first' ? `concat with part 2, transition -> ${c.channelsOut}` : `transition -> ${c.channelsOut - c.part2}, concat with part 2`;
  return `CSP split after ELAN: ${c.part1} of ${c.channelsIn} channels through the block(s), ${c.part2} across the stage; ${fuse} (fusion ${c.fusion}, ${c.splitOp} split)`;
}

interface Measure {
  paths: ReturnType<typeof gradientPaths>;
  cost: CostReport;
  macs: number;
  params: number;
}

/** Shapes afresh (the rewrite changed widths), then the gradient paths per stage and the cost. */
function measure(model: Model, structure: Structure, dims?: Record<string, number>): Measure {
  model.graph.toposort().cleanup();
  for (const v of model.graph.values.values()) v.inferred = undefined;
  inferShapes(model);
  const cost = costModel(model, { dims });
  return { paths: gradientPaths(model, { stages: stageSpecs(structure) }), cost, macs: cost.totals.macs, params: cost.totals.params };
}

function stepLine(step: string, from: Measure, to: Measure): string {
  return `${step}: longest shortest gradient path ${from.paths.network.maxShortest} -> ${to.paths.network.maxShortest}, ` +
    `MACs ${from.macs} -> ${to.macs} (x${fmt(to.macs / Math.max(1, from.macs))}), params ${from.params} -> ${to.params}`;
}

/**
 * convert --to elan: transition relocation on VoVNet stages, stacked computational blocks on
 * residual stages; with options.csp, then the CSP split (csp.ts crossStagePartial, with --split /
 * --fusion / --split-op) on the converted stages, as the paper's experiments combine them. Notes give
 * each step's effect and the gradient paths per stage. Throws E_ARG for a bad --stack / --width and
 * E_PATTERN when no stage can be converted.
 */
export const runElan: PassRunner = (model: Model, structure: Structure, options: ConvertOptions, subject: string): PassOutcome => {
  const opts: ElanOptions = { stack: options.stack ?? ELAN_DEFAULTS.stack, width: options.width ?? ELAN_DEFAULTS.width };
  checkElanOptions(opts);
  const cspOpts = options.csp ? checkCspOptions({ split: options.split, fusion: options.fusion, splitOp: options.splitOp }) : undefined;
  const outcome: PassOutcome = {
    options: { stack: opts.stack, width: opts.width, csp: !!options.csp, ...(cspOpts ? { split: cspOpts.split, fusion: cspOpts.fusion, splitOp: cspOpts.splitOp } : {}) },
    converted: [], unconverted: [], freshParams: 0, warnings: [], notes: [],
  };
  const start = measure(model, structure, options.dims);
  const converted = new Map<number, 'relocated' | 'stacked'>();
  // fresh parameters are counted at the end, on the layers as they are then (the CSP split narrows
  // some of them): new layers whole, widened convs over their new input channels, CSP's own layers
  const seeded = new Set<string>();
  const widened = new Map<string, number>(); // conv -> input channels whose weights were carried over
  let cspFresh = 0;
  for (const stage of structure.stages) {
    const osa = stage.blocks.some((b) => b.kind === 'osa');
    if (osa) {
      const r = relocateTransitions(model, stage);
      for (const s of r.skipped) outcome.unconverted.push(s);
      if (r.relocated.length === 0) continue;
      converted.set(stage.index, 'relocated');
      for (const rel of r.relocated) widened.set(rel.widened, 0);
      if (r.transition) widened.set(r.transition.conv, r.transition.carriedChannels);
      for (const rel of r.relocated) {
        outcome.converted.push({
          block: rel.block, stage: stage.index,
          change: `transition relocated: its ${rel.replacedChannels}-channel transition is removed; the next module reads the ${rel.channels}-channel concatenation`,
        });
      }
      if (r.transition) {
        outcome.converted.push({
          block: r.transition.block, stage: stage.index,
          change: `stage transition reads the whole aggregation: ${r.transition.replacedChannels} -> ${r.transition.channels} input channels`,
        });
      }
      describeRelocation(stage, r, model);
    } else {
      const r = stackComputationalBlocks(model, stage, opts);
      if ('reason' in r) {
        outcome.unconverted.push({ block: `s${stage.index}`, reason: r.reason });
        continue;
      }
      converted.set(stage.index, 'stacked');
      for (const n of r.nodes) seeded.add(n);
      const ids = r.replaced.length > 1 ? `${r.replaced[0]}..${r.replaced[r.replaced.length - 1]}` : r.replaced[0];
      outcome.converted.push({
        block: ids, stage: stage.index,
        change: `${r.replaced.length} residual block(s) -> ELAN block: 2 x 1x1 -> ${r.width}, ${2 * r.stack} x 3x3 ${r.width}, concat ${(2 + r.stack) * r.width} -> 1x1 ${r.channels}` +
          (r.kept ? ` (after ${r.kept}, kept as the stage input)` : ''),
      });
      describeStack(stage, r);
    }
  }
  if (converted.size === 0) {
    const why = outcome.unconverted.map((u) => `${u.block}: ${u.reason}`).join('; ');
    throw new GptError('E_PATTERN', `no stage to convert to ELAN${why ? ` (${why})` : ''}`, {
      subject,
      hint: structure.stages.length === 0
        ? 'no stage was recognised; add a rule file for this architecture (--rules)'
        : 'ELAN relocates the transitions of stages with several OSA modules (VoVNet) and stacks the residual blocks of ResNet / Darknet-53 stages',
    });
  }
  const afterElan = measure(model, structure, options.dims);
  const kinds = new Set(converted.values());
  const elanStep = [kinds.has('relocated') ? 'transition relocation' : '', kinds.has('stacked') ? 'stacked computational blocks' : ''].filter(Boolean).join(' + ');
  outcome.notes.push(
    'ELAN changes the architecture: new layers and new input channels start from seeded values (He-normal, BN as the identity), so the converted model must be fine-tuned (or trained) before use.',
    stepLine(elanStep, start, afterElan),
  );

  let end = afterElan;
  if (cspOpts) {
    let split = 0;
    for (const stage of structure.stages) {
      if (!converted.has(stage.index)) continue;
      const view = converted.get(stage.index) === 'relocated' ? oneAggregation(stage) : stage;
      let c: CrossStagePartialChange;
      try {
        c = crossStagePartial(model, view, cspOpts);
      } catch (e) {
        if (!isGptError(e) || e.code !== 'E_PATTERN' || options.strict) throw e;
        outcome.unconverted.push({ block: `s${stage.index}`, reason: `CSP split: ${e.message}` });
        continue;
      }
      split++;
      cspFresh += c.freshParams;
      outcome.converted.push({ block: `s${stage.index}`, stage: stage.index, change: describeCsp(c) });
      // the split, transitions and concat belong to the stage (for per-stage numbers)
      const last = stage.blocks[stage.blocks.length - 1];
      last.nodes = [...last.nodes, ...c.addedNodes];
      if (c.selection === 'first') outcome.warnings.push(`stage ${stage.index}: part 1 of the CSP split is the first ${c.part1} channels (the layer before the split cannot be reordered)`);
    }
    end = measure(model, structure, options.dims);
    outcome.notes.push(split > 0 ? stepLine('CSP split', afterElan, end) : 'CSP split: no converted stage could be split (see the stages left as they were)');
  }
  outcome.freshParams = cspFresh + end.cost.nodes.filter((n) => seeded.has(n.name)).reduce((a, n) => a + n.params, 0);
  for (const n of model.graph.nodes) {
    const carried = widened.get(n.name);
    const w = carried === undefined ? undefined : model.graph.constantTensor(n.inputs[1]);
    if (w) outcome.freshParams += w.dims[0] * (w.dims[1] - carried!) * w.dims.slice(2).reduce((a, b) => a * b, 1);
  }
  outcome.notes.push(`network: ${pathLine(start.paths.network, end.paths.network)}`);
  for (const s of structure.stages) {
    if (!converted.has(s.index)) continue;
    const b = start.paths.stages[s.index], a = end.paths.stages[s.index];
    if (b && a) outcome.notes.push(`stage ${s.index}: ${pathLine(b, a)}`);
  }
  return outcome;
};
