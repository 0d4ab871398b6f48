/**
 * convert(): the pipeline every conversion shares — recognise the architecture, measure it, plan one
 * pass (PRN / CSP / ELAN; nothing is changed yet, and under strict a block the plan leaves out is an
 * error here), apply it, re-infer shapes, validate, measure again, record what was done in
 * metadata_props — and the report the CLI prints. Measuring happens here only.
 */
import * as crypto from 'node:crypto';
import { GptError } from '../errors';
import { costModel, CostReport } from '../analysis/cost';
import { gradientPaths, GradientPathSummary } from '../analysis/gradient-path';
import { inferShapes } from '../analysis/shapes';
import { recognize } from '../analysis/structure';
import { DetectorStructure, recognizeDetector } from '../analysis/detector';
import { NECK_STAGE } from './neck';
import { recordStructure } from '../analysis/recorded-structure';
import { AddedNodes, stageNodes, stageSpecs } from '../analysis/structure-refs';
import type { Structure } from '../analysis/structure-types';
import type { Node } from '../ir/graph';
import type { Model } from '../ir/model';
import { assertValid } from '../ir/validate';
import { saveModelToBuffer } from '../onnx/io';
import { cloneModel } from './model-copy';
import { ConvertOptions, ConvertTarget, checkTargetOptions } from './options';
import type { Figures, PassContext } from './pass';
import { PASSES } from './registry';
import { TOOL_VERSION } from '../version';
import { envelope, ReportEnvelope } from '../report/envelope';

export type { ConvertOptions, ConvertTarget, CommonOptions, PrnConvertOptions, CspConvertOptions, ElanConvertOptions, CspSplitOptions } from './options';
export { cloneModel, stageSpecs };

export interface ModelMetrics {
  params: number;
  macs: number;
  peakActivationBytes: number;
  memoryAccessBytes: number;
}

export interface StageMetrics extends ModelMetrics {
  /** A backbone stage's index, or 'neck' (a detector's neck: its nodes, and what the pass put there). */
  stage: number | 'neck';
  /** Gradient paths of the stage's weight layers (analyze's definitions). */
  maxShortest: number;
  longest: number;
  meanTimestamps: number;
}

export interface ConvertReport extends ReportEnvelope<'convert'> {
  target: ConvertTarget;
  options: Record<string, unknown>;
  source: { file: string | null; sha256: string };
  family: Structure['family'];
  /** What each converted block became. */
  converted: { block: string; stage: number | 'neck'; change: string }[];
  /** Blocks or regions left as they were, with why. */
  unconverted: { block: string; reason: string }[];
  /** Nodes no rule recognised (by name). */
  unrecognized: string[];
  warnings: string[];
  before: ModelMetrics;
  after: ModelMetrics;
  stages: { before: StageMetrics[]; after: StageMetrics[] };
  /** Share of the converted model's parameters whose values come from the source model (0..1). */
  weightsCarriedOver: number;
  gradientPaths: { before: GradientPathSummary; after: GradientPathSummary };
  /** Plain-language notes for the user (e.g. that a CSP model must be fine-tuned). */
  notes: string[];
  /**
   * Recognised blocks / candidate blocks (block-like nodes no rule explained counted too), how many
   * blocks or stages the pass changed, and what it left (blocks and stages by id, nodes by name).
   */
  coverage: { blocks: number; candidates: number; converted: number; left: string[] };
  /** One line when the conversion left a residual Add, a stage or a candidate block unconverted (the CLI prints it on stderr). */
  incomplete?: string;
  /** One line when the converted model has more params or MACs than the source, with the option that avoids it. */
  growth?: string;
}

export interface ConvertResult {
  model: Model;
  report: ConvertReport;
  structure: Structure;
}

interface Measured {
  cost: CostReport;
  totals: ModelMetrics;
  stages: StageMetrics[];
  network: GradientPathSummary;
  stagePaths: GradientPathSummary[];
}

/**
 * The model's figures: cost totals, gradient paths, and per stage the sums over the stage's nodes
 * (entry, blocks, and what a pass added to it), the largest live activation memory while one of
 * them runs, and the gradient paths of its weight layers.
 */
function measure(model: Model, structure: Structure, dims: Record<string, number> | undefined, added?: AddedNodes, neck?: string[]): Measured {
  const cost = costModel(model, { dims });
  const specs = [...stageSpecs(structure, added), ...(neck ? [{ name: 'neck', nodes: neck }] : [])];
  const paths = gradientPaths(model, { stages: specs });
  const byName = new Map(cost.nodes.map((n) => [n.name, n]));
  const keys: (number | 'neck')[] = [...structure.stages.map((s) => s.index), ...(neck ? ['neck' as const] : [])];
  const stages: StageMetrics[] = keys.map((stage, i) => {
    let params = 0, macs = 0, mac = 0, peak = 0;
    for (const n of specs[i].nodes) {
      const c = byName.get(n);
      if (!c) continue;
      params += c.params;
      macs += c.macs;
      mac += c.memoryAccessBytes;
      peak = Math.max(peak, c.liveBytes);
    }
    const { maxShortest, longest, meanTimestamps } = paths.stages[i];
    return { stage, params, macs, peakActivationBytes: peak, memoryAccessBytes: mac, maxShortest, longest, meanTimestamps };
  });
  const t = cost.totals;
  return {
    cost, stages, network: paths.network, stagePaths: paths.stages.slice(0, structure.stages.length),
    totals: { params: t.params, macs: t.macs, peakActivationBytes: t.peakActivationBytes, memoryAccessBytes: t.memoryAccessBytes },
  };
}

/** Names of a detector's nodes that are not missed blocks: the neck's explained nodes and the heads. */
function explainedParts(d: DetectorStructure): Set<string> {
  const unmatched = new Set(d.neck.unmatched);
  return new Set([...d.neck.nodes.filter((n) => !unmatched.has(n)), ...d.heads.nodes]);
}

/** Shapes afresh after a rewrite (widths changed), in graph order. */
function reinfer(model: Model): void {
  model.graph.toposort().cleanup();
  for (const v of model.graph.values.values()) v.inferred = undefined;
  inferShapes(model);
}

/**
 * Stages of the nodes a pass added without saying where: the stage of the nodes that feed them,
 * else of the nodes they feed (a stage's closing node feeds the next stage, so producers come first).
 */
function attributeAddedNodes(model: Model, structure: Structure, existed: Set<Node>, declared: AddedNodes): AddedNodes {
  const stageOf = new Map<Node, number>();
  for (const s of structure.stages) for (const n of stageNodes(s)) stageOf.set(n, s.index);
  for (const [s, ns] of declared) for (const n of ns) stageOf.set(n, s);
  const fresh = model.graph.nodes.filter((n) => !existed.has(n) && !stageOf.has(n));
  const out: AddedNodes = new Map([...declared].map(([s, ns]) => [s, [...ns]]));
  const via = (nodes: Node[]) => nodes.map((x) => stageOf.get(x)).find((s) => s !== undefined);
  const place = (n: Node, s: number | undefined) => {
    if (s === undefined) return false;
    stageOf.set(n, s);
    out.set(s, [...(out.get(s) ?? []), n]);
    return true;
  };
  const pending = fresh.filter((n) => !place(n, via(n.inputs.flatMap((v) => (v?.producer ? [v.producer] : [])))));
  for (const n of [...pending].reverse()) place(n, via(n.outputs.flatMap((o) => (o ? o.consumers.map((u) => u.node) : []))));
  return out;
}

export function sha256Of(model: Model): string {
  // what was loaded (recorded at load, never re-read: the file may have changed since)
  return model.sourceSha256 ?? crypto.createHash('sha256').update(saveModelToBuffer(model)).digest('hex');
}

/** The option that makes a conversion smaller, for the growth line. */
function smallerOption(options: ConvertOptions): string {
  if (options.to === 'csp') return options.fusion === 'last' ? 'a smaller --split' : '--fusion last (one 1x1 transition, on part 1 only)';
  if (options.to === 'elan') {
    const given = options.stack !== undefined || options.width !== undefined || options.neckStack !== undefined;
    return `${options.osaInput === 'concat' ? '--osa-input last (VoVNet stages) or ' : ''}a smaller --width (now ${options.width ?? 0.5} of the blocks' computational width)${options.csp ? ' or --fusion last' : ''}${given ? ', or leaving --stack and --width out (then each neck block, CSP-form stage and plain conv stage takes a setting that does not grow it)' : ''}`;
  }
  return '--asymmetric';
}

const grows = (r: ConvertReport) => r.after.params > r.before.params || r.after.macs > r.before.macs;

/**
 * Convert `source` to PRN, CSP or ELAN (see the passes). CSP without an explicit fusion uses CSPNet's
 * own ('both') unless that makes the model larger: then 'last', then 'first' (the first that does not
 * grow it), and the report says which was used and why. Any growth left is one line in `growth`.
 */
export function convert(source: Model, options: ConvertOptions): ConvertResult {
  if (options.to === 'csp' && options.fusion === undefined) {
    // fusion last has no transition after the concat: an asked-for sum merge has nothing to split there
    const withFusion = (fusion: 'both' | 'first' | 'last') => ({ ...options, fusion, ...(fusion === 'last' ? { mergeOp: undefined } : {}) });
    const trial = (fusion: 'both' | 'first' | 'last') => convertOnce(source, { ...withFusion(fusion), inPlace: false });
    const both = trial('both');
    if (!grows(both.report)) return options.inPlace ? convertOnce(source, { ...options, fusion: 'both' }) : both;
    for (const fusion of ['last', 'first'] as const) {
      const r = trial(fusion);
      if (grows(r.report)) continue;
      const done = options.inPlace ? convertOnce(source, withFusion(fusion)) : r;
      const moot = fusion === 'last' && options.mergeOp === 'sum' ? ' (fusion last ends in the concat: --merge-op sum has no transition to split there)' : '';
      done.report.notes.unshift(`fusion ${fusion}: CSPNet's own fusion (both) would make this model larger (params ${(both.report.after.params / both.report.before.params).toFixed(3)}x, MACs ${(both.report.after.macs / both.report.before.macs).toFixed(3)}x); give --fusion both to have it anyway${moot}`);
      return done;
    }
    return options.inPlace ? convertOnce(source, { ...options, fusion: 'both' }) : both;
  }
  return convertOnce(source, options);
}

function convertOnce(source: Model, options: ConvertOptions): ConvertResult {
  const target = checkTargetOptions(options);
  const pass = PASSES[target];
  const opts = pass.options(options);
  const sha = sha256Of(source);
  const model = options.inPlace ? source : cloneModel(source);
  const subject = source.sourcePath ?? 'model';
  assertValid(model.graph, subject);
  const shapeWarnings = inferShapes(model).warnings;
  const structure = recognize(model, { rules: options.rules, recorded: false });
  if (structure.errors?.length) {
    throw new GptError('E_PATTERN', structure.errors[0], { subject, hint: 'add a rule file for the blocks that were missed (--rules); gpt analyze lists the block-like nodes no rule explains' });
  }
  // a detector (backbone + neck + heads) is read once here; the passes reuse it (ctx.detector)
  const det = recognizeDetector(model, { rules: options.rules, structure });
  const detector = det.detector ? det : null;
  const neckBefore = detector && detector.neck.nodes.length ? detector.neck.nodes : undefined;
  // the neck's nodes still in the graph and those a pass put there (the neck row of the stage table)
  const liveNeck = (put: Node[] = []): string[] | undefined => {
    if (!neckBefore) return undefined;
    const live = new Set(model.graph.nodes);
    const names = new Set([...model.graph.nodes].map((n) => n.name));
    return [...new Set([...neckBefore.filter((n) => names.has(n)), ...put.filter((n) => live.has(n)).map((n) => n.name)])];
  };
  const before = measure(model, structure, options.dims, undefined, neckBefore);
  const existed = new Set(model.graph.nodes);

  const steps: { label: string; at: Measured }[] = [];
  const ctx: PassContext = {
    model, structure, subject, strict: !!options.strict, rules: options.rules, detector,
    step: (label) => {
      if (steps.length > 0) reinfer(model);
      steps.push({ label, at: steps.length === 0 ? before : measure(model, structure, options.dims, undefined, liveNeck()) });
    },
  };
  // plan: every change decided and checked; the model is untouched until apply
  const plan = pass.plan(ctx, opts);
  if (options.strict && structure.unmatched.length > 0) {
    throw new GptError('E_PATTERN', `${structure.unmatched.length} node(s) match no rule, e.g. '${structure.unmatched[0]}'`, {
      subject, hint: 'add a rule file for the block (--rules), or drop --strict to convert the rest',
    });
  }
  // a detector's neck nodes that its blocks, FPN / PAN paths and levels explain, and its heads (left
  // as they are by design), are not block-like nodes missed
  const neckSeen = detector ? explainedParts(detector) : new Set<string>();
  const missed = (n: string) => !neckSeen.has(n);
  const unexplained = (structure.coverage?.unexplained ?? []).filter(missed);
  const unrecognized = structure.unmatched.filter(missed);
  const opOf = new Map(model.graph.nodes.map((n) => [n.name, n.opType]));
  const leftAdds = unexplained.filter((n) => opOf.get(n) === 'Add');
  if (options.strict && unexplained.length > 0) {
    throw new GptError('E_PATTERN', `${unexplained.length} block-like node(s) no rule explains would stay unconverted, e.g. '${unexplained[0]}'`, {
      subject, hint: 'add a rule file for the block (--rules), or drop --strict to convert the rest',
    });
  }
  if (options.strict && plan.unconverted.length > 0) {
    throw new GptError('E_PATTERN', `block ${plan.unconverted[0].block} was not converted: ${plan.unconverted[0].reason}`, { subject, hint: 'drop --strict to convert the rest' });
  }
  const outcome = pass.apply(ctx, plan, opts);

  reinfer(model);
  assertValid(model.graph, subject);
  const added = attributeAddedNodes(model, structure, existed, outcome.added);
  const after = measure(model, structure, options.dims, added, liveNeck(added.get(NECK_STAGE)));
  const figures: Figures = {
    before: { network: before.network, stages: before.stagePaths },
    after: { network: after.network, stages: after.stagePaths },
    steps: steps.map((s, i) => {
      const to = steps[i + 1]?.at ?? after;
      const fig = (m: Measured) => ({ macs: m.totals.macs, params: m.totals.params, paths: m.network });
      return { label: s.label, from: fig(s.at), to: fig(to) };
    }),
  };
  const notApplicable = new Set(plan.notApplicable ?? []);
  const nonResidual = new Set(structure.stages.flatMap((st) => st.blocks).filter((b) => !b.residual).map((b) => b.id));
  const recorded = pass.recorded(opts);
  const report: ConvertReport = {
    ...envelope('convert'), target, options: recorded, source: { file: source.sourcePath ?? null, sha256: sha },
    family: structure.family,
    converted: outcome.converted.map((c) => (c.stage === NECK_STAGE ? { ...c, stage: 'neck' as const } : c)),
    unconverted: outcome.unconverted, unrecognized,
    // the structure's count of unmatched nodes, less what the detector's parts explain
    warnings: [...shapeWarnings, ...structure.warnings.flatMap((w) => (/node\(s\) match no rule/.test(w) ? (unrecognized.length ? [`${unrecognized.length} node(s) match no rule; they are listed in unmatched`] : []) : [w])), ...outcome.warnings],
    before: before.totals, after: after.totals, stages: { before: before.stages, after: after.stages },
    weightsCarriedOver: after.totals.params > 0 ? 1 - outcome.freshParams / after.totals.params : 1,
    gradientPaths: { before: before.network, after: after.network },
    notes: [...outcome.notes, ...(pass.notes?.(figures, outcome, structure) ?? [])],
    coverage: {
      // a detector's neck blocks count as recognised; its FPN / PAN merges are explained by the paths
      blocks: (structure.coverage?.blocks ?? 0) + (detector?.neck.blocks.length ?? 0),
      candidates: (structure.coverage?.blocks ?? 0) + (detector?.neck.blocks.length ?? 0) + unexplained.length,
      converted: outcome.converted.length,
      // PRN's candidates are the residual blocks: a VoVNet OSA module without an Add is not left undone;
      // a block the target does not apply to (a neck's SPP) is listed with its reason, not left undone
      left: [...outcome.unconverted.filter((u) => (target !== 'prn' || !nonResidual.has(u.block)) && !notApplicable.has(u.block)).map((u) => u.block), ...unexplained],
    },
  };
  if (report.coverage.left.length) {
    const what = target === 'prn' ? 'residual add(s) / block(s)' : 'stage(s) / block(s)';
    report.incomplete = `${target}: ${report.coverage.left.length} ${what} left unconverted${leftAdds.length ? ` (${leftAdds.length} residual Add(s) no rule explains)` : ''}: ${report.coverage.left.slice(0, 6).join(', ')}${report.coverage.left.length > 6 ? ', ...' : ''}; --strict makes this an error`;
  }
  if (grows(report)) {
    report.growth = `the ${target.toUpperCase()} model is larger than the source (params ${(report.after.params / report.before.params).toFixed(3)}x, MACs ${(report.after.macs / report.before.macs).toFixed(3)}x); ${smallerOption(options)} avoids it`;
  }
  // the metadata names nodes: a node left unnamed (a graph built in memory) gets its name now, once,
  // as loading gives one, so the record still names it after a save and a load
  for (const n of model.graph.nodes) if (!n.proto.name) n.name = model.graph.uniqueName(n.opType || 'node');
  recordStructure(model, structure, added, target);
  model.setMetadata('gpt.version', TOOL_VERSION);
  model.setMetadata('gpt.conversion', JSON.stringify({ target, options: recorded }));
  model.setMetadata('gpt.source_sha256', sha);
  return { model, report, structure };
}
