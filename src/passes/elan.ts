/**
 * ELAN, the network-level strategy (paper §3.3 and §4.3, "Efficient Layer Aggregation Networks"):
 * keep every layer's shortest gradient path short as the network deepens. Two moves, by family:
 * transition relocation on VoVNet stages (elan-relocate.ts) and stacked computational blocks on
 * ResNet / Darknet-53 stages (elan-stack.ts); with csp, then the CSP split (csp.ts) of the converted
 * stages, as the paper's experiments combine them.
 *
 * Weights: every weight whose input still holds the same feature is carried over. New layers and
 * new input channels get seeded values (He-normal, fan-in, seeded by the layer's name, so a stage
 * converts the same way whatever else is converted; BN starts as the identity). The model must be
 * fine-tuned.
 *
 * Plan, then apply: every stage is planned before any is changed. The CSP split of a converted stage
 * depends on the layers ELAN builds, so with csp the plan converts a scratch copy (ELAN, then the
 * CSP plan) to find what the split would refuse; the model itself is changed only by apply.
 *
 * The pass keeps `structure` describing the model it returns: new nodes are listed in their stage
 * (and named under the stage's module scope), so per-stage numbers after the pass are right.
 */
import { GptError } from '../errors';
import type { GradientPathSummary } from '../analysis/gradient-path';
import { blockRefs, setBlockRefs } from '../analysis/structure-refs';
import { recognize } from '../analysis/structure';
import type { Block, Stage, Structure } from '../analysis/structure-types';
import type { Graph, Node } from '../ir/graph';
import { channelsOf } from '../ir/surgery';
import { CspOptions, checkCspOptions } from './csp';
import { describeCspAfterElan, planCspStages } from './csp-pass';
import { applyCrossStagePartial } from './csp';
import { ElanOptions, StackPlan, StackedBlock, applyStack, planStack } from './elan-stack';
import type { FitFreedom } from './elan-fit';
import { OSA_INPUTS, OsaInput, RelocationPlan, TransitionRelocation, applyRelocation, planRelocation } from './elan-relocate';
import { cloneModel } from './model-copy';
import type { ElanConvertOptions } from './options';
import { Pass, PassContext, PassOutcome, Plan, StepFigures, Unconverted, addTo } from './pass';
import { human } from '../report/format';
import { PLAIN_STEM_NOTE } from './plain-stage';

export type { ElanOptions };
export const ELAN_DEFAULTS: ElanOptions = { stack: 2, width: 0.5 };

/** Neither stack nor width given: the defaults may give way per block (elan-fit.ts); one given, both are kept as they are. */
export function defaultsFree(e: { stack?: number; width?: number; neckStack?: number }): FitFreedom {
  const free = e.stack === undefined && e.width === undefined && e.neckStack === undefined;
  return { stack: free, width: free };
}

export function checkElanOptions(opts: ElanOptions): void {
  if (!(Number.isInteger(opts.stack) && opts.stack >= 1)) {
    throw new GptError('E_ARG', `--stack ${opts.stack} is not a whole number of at least 1`, { hint: 'the stacked block has 2 x stack 3x3 convs, e.g. --stack 2' });
  }
  if (!(opts.width > 0 && opts.width <= 1)) {
    throw new GptError('E_ARG', `--width ${opts.width} is outside (0, 1]`, { hint: 'the computational block width as a share of the stage width, e.g. --width 0.5' });
  }
}

interface ElanPassOptions extends ElanOptions {
  csp?: CspOptions;
  /** What the next OSA module's first conv reads after relocation; default per stage (elan-relocate.ts). */
  osaInput?: OsaInput;
  /** Stack / width not given: a CSP-form or plain conv stage takes the first setting that does not grow it (elan-fit.ts). */
  free?: FitFreedom;
}

type StagePlan = { kind: 'relocated'; plan: RelocationPlan } | { kind: 'stacked'; plan: StackPlan };

interface ElanPlan extends Plan {
  stages: StagePlan[];
  /** Stages already in ELAN's form (a VoVNet stage of one OSA module), said in the report. */
  already: string[];
}

/** Decide every stage's ELAN form (reads the graph only). */
function planElan(ctx: PassContext, o: ElanPassOptions): ElanPlan {
  const plan: ElanPlan = { stages: [], unconverted: [], warnings: [], already: [] };
  for (const stage of ctx.structure.stages) {
    if (stage.blocks.some((b) => b.kind === 'osa')) {
      const r = planRelocation(ctx.model, stage, o.osaInput);
      plan.unconverted.push(...r.skipped);
      if (r.already) plan.already.push(r.already);
      if (r.plan) plan.stages.push({ kind: 'relocated', plan: r.plan });
    } else {
      const r = planStack(ctx.model, stage, o, o.free);
      if ('reason' in r) plan.unconverted.push({ block: `s${stage.index}`, reason: r.reason });
      else plan.stages.push({ kind: 'stacked', plan: r });
    }
  }
  if (plan.stages.length === 0 && plan.unconverted.length === 0 && plan.already.length > 0) {
    // VoVNet-19 and the _dw models: one OSA module per stage, one transition per stage already; as
    // PRN on a VoVNet, the model is written unchanged with a warning (an error under --strict)
    const msg = 'every stage has one OSA module, whose transition already is the stage\'s only one (ELAN\'s form), so ELAN has nothing to convert';
    if (ctx.strict) throw new GptError('E_PATTERN', msg, { subject: ctx.subject, hint: 'ELAN relocates the transitions of VoVNet stages with several OSA modules; try --to csp' });
    plan.warnings.push(`${msg}; the model is written unchanged`);
    plan.already = [];
    return plan;
  }
  if (plan.stages.length === 0) {
    const why = [...plan.unconverted.map((u) => `${u.block}: ${u.reason}`), ...plan.already].join('; ');
    throw new GptError('E_PATTERN', `no stage to convert to ELAN${why ? ` (${why})` : ''}`, {
      subject: ctx.subject,
      hint: ctx.structure.stages.length === 0
        ? 'no stage was recognised; add a rule file for this architecture (--rules)'
        : 'ELAN relocates the transitions of stages with several OSA modules (VoVNet) and stacks the residual blocks of ResNet / Darknet-53 stages and the convs of plain conv-BN-act stages',
    });
  }
  return plan;
}

/**
 * The stage's blocks after relocation: transition (and eSE / identity Add) nodes gone, each relocated
 * module's output its concatenation; the last module without its identity Add.
 */
function describeRelocation(stage: Stage, r: TransitionRelocation): void {
  const forget = (b: Block, gone: Set<Node>, roles: string[]) => {
    const refs = blockRefs(b);
    refs.nodes = refs.nodes.filter((n) => !gone.has(n));
    for (const k of roles) refs.roles.set(k, []);
    b.nodes = refs.nodes.map((n) => n.name);
    b.roles = { ...b.roles, ...Object.fromEntries(roles.map((k) => [k, []])) };
    return refs;
  };
  for (const rel of r.relocated) {
    const b = stage.blocks.find((x) => x.id === rel.block)!;
    const gone = [...rel.transition, ...(rel.droppedConcat ? [rel.droppedConcat] : [])];
    const refs = forget(b, new Set(gone), ['transition', 'attention', 'add', ...(rel.droppedConcat ? ['concat'] : [])]);
    // the module ends at its concatenation, or at its last layer where the 'last' link dropped the concatenation
    refs.output = rel.droppedConcat ? rel.lastLayer : refs.roles.get('concat')![0].outputs[0]!;
    refs.residual = undefined;
    delete b.residual;
    b.output = refs.output.name;
    b.channelsOut = channelsOf(refs.output);
    const next = stage.blocks[stage.blocks.indexOf(b) + 1];
    if (next) {
      blockRefs(next).input = refs.output;
      next.input = b.output;
      next.channelsIn = b.channelsOut;
    }
  }
  if (r.droppedAdd) {
    const b = stage.blocks.find((x) => x.id === r.droppedAdd!.block)!;
    const refs = forget(b, new Set([r.droppedAdd.add]), ['add']);
    refs.output = r.droppedAdd.branch;
    refs.residual = undefined;
    delete b.residual;
    b.output = refs.output.name;
  }
}

function describeStack(stage: Stage, s: StackedBlock): void {
  const keep = stage.blocks.filter((b) => !s.replaced.includes(b.id));
  const names = (ns: Node[]) => ns.map((n) => n.name);
  const block: Block = {
    id: s.replaced[0], rule: 'elan', kind: 'elan', nodes: names(s.nodes), input: s.input.name, output: s.output.name,
    roles: { conv: names(s.roles.conv), concat: names(s.roles.concat), transition: names(s.roles.transition) }, channelsIn: null, channelsOut: s.channels,
  };
  setBlockRefs(block, {
    nodes: s.nodes, input: s.input, output: s.output, parts: new Map([['cv1.act', s.firstActivation]]),
    roles: new Map(Object.entries(s.roles)),
  });
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
  const refs = bs.map((b) => blockRefs(b));
  const merged: Block = {
    id: bs[0].id, rule: bs[0].rule, kind: bs[0].kind, nodes: bs.flatMap((b) => b.nodes), roles, input: bs[0].input, output: bs[bs.length - 1].output,
    channelsIn: bs[0].channelsIn, channelsOut: bs[bs.length - 1].channelsOut,
  };
  const mergedRoles = new Map<string, Node[]>();
  for (const r of refs) for (const [k, ns] of r.roles) mergedRoles.set(k, [...(mergedRoles.get(k) ?? []), ...ns]);
  setBlockRefs(merged, {
    nodes: refs.flatMap((r) => r.nodes), input: refs[0].input, output: refs[refs.length - 1].output,
    parts: new Map(refs.flatMap((r) => [...r.parts])), roles: mergedRoles,
  });
  return { ...stage, blocks: [merged] };
}

/** Parameters of new layers: conv weights and biases, BN scale and shift (as the cost model counts them). */
function layerParams(g: Graph, nodes: Iterable<Node>): number {
  let n = 0;
  for (const node of nodes) {
    if (node.graph !== g) continue;
    const inputs = node.opType === 'Conv' || node.opType === 'BatchNormalization' ? [1, 2] : [];
    for (const i of inputs) n += g.constantTensor(node.inputs[i] ?? null)?.size ?? 0;
  }
  return n;
}

/** ELAN's own changes on the model (the first step). */
function applyElan(ctx: PassContext, plan: ElanPlan, outcome: PassOutcome, seeded: Set<Node>, widened: Map<Node, number>): Map<number, 'relocated' | 'stacked'> {
  const converted = new Map<number, 'relocated' | 'stacked'>();
  for (const sp of plan.stages) {
    const stage = sp.plan.stage;
    converted.set(stage.index, sp.kind);
    if (sp.kind === 'relocated') {
      const r = applyRelocation(ctx.model, sp.plan);
      for (const rel of r.relocated) widened.set(rel.widened, 0);
      if (r.transition) widened.set(r.transition.conv, r.transition.carriedChannels);
      for (const rel of r.relocated) {
        const what = [rel.attention ? 'its eSE attention' : '', rel.add ? 'its identity Add' : ''].filter(Boolean).join(' and ');
        const reads = r.link === 'concat' ? `the next module reads the ${rel.channels}-channel concatenation` : `the next module's first conv reads this module's last layer (${rel.firstChannels} channels), its concat the ${rel.channels}-channel concatenation`;
        outcome.converted.push({
          block: rel.block, stage: stage.index,
          change: `transition relocated: its ${rel.replacedChannels}-channel transition${what ? ` (with ${what})` : ''} is removed; ${reads}`,
        });
      }
      if (sp.plan.linkReason) outcome.notes.push(`stage ${stage.index}: each next OSA module's first conv reads the previous module's last layer (--osa-input last): ${sp.plan.linkReason}; --osa-input concat to have it anyway`);
      if (r.droppedAdd) {
        outcome.notes.push(`stage ${stage.index}: the identity Add of ${r.droppedAdd.block} is removed: its shortcut was the previous module's output, which relocation removes; the stage input reaches the kept transition through the concatenation instead`);
      }
      if (r.transition) {
        outcome.converted.push({
          block: r.transition.block, stage: stage.index,
          change: `stage transition reads the whole aggregation: ${r.transition.replacedChannels} -> ${r.transition.channels} input channels`,
        });
      }
      describeRelocation(stage, r);
      // one aggregation meets one transition now: recorded as one block, as the rules read the
      // stage back without the record (a 'last' link leaves no module boundary in the graph)
      if (stage.blocks.length > 1) stage.blocks = oneAggregation(stage).blocks;
    } else {
      const r = applyStack(ctx.model, sp.plan);
      r.nodes.forEach((n) => seeded.add(n));
      addTo(outcome.added, stage.index, r.nodes);
      const ids = r.replaced.length > 1 ? `${r.replaced[0]}..${r.replaced[r.replaced.length - 1]}` : r.replaced[0];
      const act = sp.plan.form.act ? `, ${sp.plan.form.act.kind}` : '';
      outcome.converted.push({
        block: ids, stage: stage.index,
        change: `${r.replaced.length} ${sp.plan.replaced.every((b) => b.kind === 'plain') ? 'plain conv layer(s)' : 'residual block(s)'} -> ELAN block: 2 x 1x1 -> ${r.width}, ${2 * r.stack} x 3x3 ${r.width}${r.group > 1 ? ` (group ${r.group})` : ''}, concat ${(2 + r.stack) * r.width} -> 1x1 ${r.channels}${act}` +
          (r.kept ? ` (after ${r.kept}, kept as the stage input)` : '') + (sp.plan.fitted ?? ''),
      });
      if (sp.plan.fitted) outcome.notes.push(`stage ${stage.index}${stage.csp ? ' (CSP form)' : ''}: ELAN defaults for this stage stack ${r.stack}, width ${r.width} channels, so the ELAN block is no larger than the ${stage.csp ? 'residual blocks' : 'layers'} it replaces; give --stack / --width to have one setting everywhere`);
      describeStack(stage, r);
    }
  }
  return converted;
}

/** The converted stages as the CSP split sees them. */
function cspViews(structure: Structure, converted: Map<number, 'relocated' | 'stacked'>): Stage[] {
  return structure.stages.filter((s) => converted.has(s.index)).map((s) => (converted.get(s.index) === 'relocated' ? oneAggregation(s) : s));
}

/** With csp: what the CSP split would refuse after ELAN, found on a scratch copy (the model is not touched). */
function dryRunCsp(ctx: PassContext, o: ElanPassOptions): Unconverted[] {
  const scratch = cloneModel(ctx.model);
  const structure = recognize(scratch, { rules: ctx.rules, recorded: false });
  const sctx: PassContext = { ...ctx, model: scratch, structure, step: () => undefined };
  const plan = planElan(sctx, o);
  const converted = applyElan(sctx, plan, { converted: [], unconverted: [], freshParams: 0, notes: [], warnings: [], added: new Map() }, new Set(), new Map());
  return planCspStages(sctx, cspViews(structure, converted), o.csp!, 'CSP split: ').unconverted;
}

const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(2));

function pathLine(before: GradientPathSummary, after: GradientPathSummary): string {
  return `longest shortest gradient path ${before.maxShortest} -> ${after.maxShortest}, mean shortest ${fmt(before.meanShortest)} -> ${fmt(after.meanShortest)}, ` +
    `longest ${before.longest} -> ${after.longest}, weight layers ${before.layers} -> ${after.layers}`;
}

function stepLine(s: StepFigures): string {
  return `${s.label}: longest shortest gradient path ${s.from.paths.maxShortest} -> ${s.to.paths.maxShortest}, ` +
    `MACs ${human(s.from.macs)} -> ${human(s.to.macs)} (x${fmt(s.to.macs / Math.max(1, s.from.macs))}), params ${human(s.from.params)} -> ${human(s.to.params)}`;
}

/**
 * convert --to elan. Throws E_ARG for a bad stack / width and E_PATTERN when no stage can be converted.
 */
export const elanPass: Pass<ElanPassOptions, ElanPlan> = {
  target: 'elan',
  options(o) {
    const e = o as ElanConvertOptions;
    const opts: ElanPassOptions = { stack: e.stack ?? ELAN_DEFAULTS.stack, width: e.width ?? ELAN_DEFAULTS.width, free: defaultsFree(e) };
    checkElanOptions(opts);
    if (e.osaInput !== undefined) {
      if (!OSA_INPUTS.includes(e.osaInput)) throw new GptError('E_ARG', `--osa-input ${String(e.osaInput)} is not one of ${OSA_INPUTS.join(', ')}`, { subject: 'osaInput', hint: 'concat: the next OSA module reads the whole concatenation; last: its last layer' });
      opts.osaInput = e.osaInput;
    }
    if (e.csp) opts.csp = checkCspOptions({ split: e.split, fusion: e.fusion, splitOp: e.splitOp, mergeOp: e.mergeOp });
    return opts;
  },
  recorded: (o) => ({ stack: o.stack, width: o.width, csp: !!o.csp, ...(o.csp ? { split: o.csp.split, fusion: o.csp.fusion, splitOp: o.csp.splitOp, mergeOp: o.csp.mergeOp } : {}), ...(o.osaInput ? { osaInput: o.osaInput } : {}) }),
  plan(ctx, o) {
    const plan = planElan(ctx, o);
    if (o.csp) plan.unconverted.push(...dryRunCsp(ctx, o));
    return plan;
  },
  apply(ctx, plan, o) {
    const outcome: PassOutcome = { converted: [], unconverted: [...plan.unconverted], freshParams: 0, warnings: [...plan.warnings], notes: plan.already.map((a) => `${a}: left as it is`), added: new Map() };
    if (ctx.structure.family === 'plain') outcome.notes.push(PLAIN_STEM_NOTE);
    const kinds = new Set(plan.stages.map((s) => s.kind));
    if (kinds.size > 0) ctx.step([kinds.has('relocated') ? 'transition relocation' : '', kinds.has('stacked') ? 'stacked computational blocks' : ''].filter(Boolean).join(' + '));
    // fresh parameters are counted at the end, on the layers as they are then (the CSP split narrows
    // some of them): new layers whole, widened convs over their new input channels, CSP's own layers
    const seeded = new Set<Node>();
    const widened = new Map<Node, number>(); // conv -> input channels whose weights were carried over
    const converted = applyElan(ctx, plan, outcome, seeded, widened);
    if (o.csp) {
      ctx.step('CSP split');
      const views = cspViews(ctx.structure, converted);
      const csp = planCspStages({ ...ctx, strict: false }, views, o.csp, 'CSP split: ');
      // the dry run listed what the split refuses (in plan.unconverted)
      const made = new Map();
      for (const p of csp.stages) {
        const c = applyCrossStagePartial(ctx.model, p, made);
        outcome.freshParams += c.freshParams;
        outcome.converted.push({ block: `s${c.stage}`, stage: c.stage, change: describeCspAfterElan(c) });
        // the split, transitions and concat belong to the stage (for per-stage numbers)
        addTo(outcome.added, c.stage, c.addedNodes);
        if (c.splitFallback && p.opts.splitOpGiven) outcome.warnings.push(`stage ${c.stage}: --split-op producer: ${c.splitFallback}; split with a Split instead`);
        if (c.selection === 'first') outcome.warnings.push(`stage ${c.stage}: part 1 of the CSP split is the first ${c.part1} channels (the layer before the split cannot be reordered)`);
      }
      if (csp.stages.length === 0) outcome.notes.push('CSP split: no converted stage could be split (see the stages left as they were)');
    }
    const g = ctx.model.graph;
    outcome.freshParams += layerParams(g, seeded);
    for (const [conv, carried] of widened) {
      const w = conv.graph === g ? g.constantTensor(conv.inputs[1]) : undefined;
      if (w) outcome.freshParams += w.dims[0] * (w.dims[1] - carried) * w.dims.slice(2).reduce((a, b) => a * b, 1);
    }
    return outcome;
  },
  notes(f, outcome, structure) {
    const converted = new Set(outcome.converted.map((c) => c.stage));
    return [
      'ELAN changes the architecture: new layers and new input channels start from seeded values (He-normal, BN as the identity), so the converted model must be fine-tuned (or trained) before use.',
      ...f.steps.map(stepLine),
      `network: ${pathLine(f.before.network, f.after.network)}`,
      ...structure.stages.flatMap((s, i) => {
        const b = f.before.stages[i], a = f.after.stages[i];
        return converted.has(s.index) && b && a ? [`stage ${s.index}: ${pathLine(b, a)}`] : [];
      }),
    ];
  },
};
