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
  stage: number;
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
  converted: { block: string; stage: number; change: string }[];
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
function measure(model: Model, structure: Structure, dims: Record<string, number> | undefined, added?: AddedNodes): Measured {
  const cost = costModel(model, { dims });
  const specs = stageSpecs(structure, added);
  const paths = gradientPaths(model, { stages: specs });
  const byName = new Map(cost.nodes.map((n) => [n.name, n]));
  const stages: StageMetrics[] = structure.stages.map((s, i) => {
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
    return { stage: s.index, params, macs, peakActivationBytes: peak, memoryAccessBytes: mac, maxShortest, longest, meanTimestamps };
  });
  const t = cost.totals;
  return {
    cost, stages, network: paths.network, stagePaths: paths.stages,
    totals: { params: t.params, macs: t.macs, peakActivationBytes: t.peakActivationBytes, memoryAccessBytes: t.memoryAccessBytes },
  };
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

export function convert(source: Model, options: ConvertOptions): ConvertResult {
  const target = checkTargetOptions(options);
  const pass = PASSES[target];
  const opts = pass.options(options);
  const sha = sha256Of(source);
  const model = options.inPlace ? source : cloneModel(source);
  const subject = source.sourcePath ?? 'model';
  assertValid(model.graph, subject);
  const shapeWarnings = inferShapes(model).warnings;
  const structure = recognize(model, { rules: options.rules, recorded: false });
  const before = measure(model, structure, options.dims);
  const existed = new Set(model.graph.nodes);

  const steps: { label: string; at: Measured }[] = [];
  const ctx: PassContext = {
    model, structure, subject, strict: !!options.strict, rules: options.rules,
    step: (label) => {
      if (steps.length > 0) reinfer(model);
      steps.push({ label, at: steps.length === 0 ? before : measure(model, structure, options.dims) });
    },
  };
  // plan: every change decided and checked; the model is untouched until apply
  const plan = pass.plan(ctx, opts);
  if (options.strict && structure.unmatched.length > 0) {
    throw new GptError('E_PATTERN', `${structure.unmatched.length} node(s) match no rule, e.g. '${structure.unmatched[0]}'`, {
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
  const after = measure(model, structure, options.dims, added);
  const figures: Figures = {
    before: { network: before.network, stages: before.stagePaths },
    after: { network: after.network, stages: after.stagePaths },
    steps: steps.map((s, i) => {
      const to = steps[i + 1]?.at ?? after;
      const fig = (m: Measured) => ({ macs: m.totals.macs, params: m.totals.params, paths: m.network });
      return { label: s.label, from: fig(s.at), to: fig(to) };
    }),
  };
  const recorded = pass.recorded(opts);
  const report: ConvertReport = {
    ...envelope('convert'), target, options: recorded, source: { file: source.sourcePath ?? null, sha256: sha },
    family: structure.family, converted: outcome.converted, unconverted: outcome.unconverted, unrecognized: structure.unmatched,
    warnings: [...shapeWarnings, ...structure.warnings, ...outcome.warnings],
    before: before.totals, after: after.totals, stages: { before: before.stages, after: after.stages },
    weightsCarriedOver: after.totals.params > 0 ? 1 - outcome.freshParams / after.totals.params : 1,
    gradientPaths: { before: before.network, after: after.network },
    notes: [...outcome.notes, ...(pass.notes?.(figures, outcome, structure) ?? [])],
  };
  // the metadata names nodes: a node left unnamed (a graph built in memory) gets its name now, once,
  // as loading gives one, so the record still names it after a save and a load
  for (const n of model.graph.nodes) if (!n.proto.name) n.name = model.graph.uniqueName(n.opType || 'node');
  recordStructure(model, structure, added, target);
  model.setMetadata('gpt.version', TOOL_VERSION);
  model.setMetadata('gpt.conversion', JSON.stringify({ target, options: recorded }));
  model.setMetadata('gpt.source_sha256', sha);
  return { model, report, structure };
}
