/**
 * convert(): the pipeline every conversion shares — recognise the architecture, measure it, apply one
 * pass (PRN / CSP / ELAN), re-infer shapes, validate, measure again, record what was done in
 * metadata_props — and the report the CLI prints.
 */
import * as crypto from 'node:crypto';
import { GptError } from '../errors';
import { costModel, CostReport } from '../analysis/cost';
import { gradientPaths, GradientPathSummary } from '../analysis/gradient-path';
import type { Rule } from '../analysis/rules';
import { inferShapes } from '../analysis/shapes';
import { recognize } from '../analysis/structure';
import { recordStructure } from '../analysis/recorded-structure';
import type { Structure } from '../analysis/structure-types';
import type { Model } from '../ir/model';
import { assertValid } from '../ir/validate';
import { loadModel, saveModelToBuffer } from '../onnx/io';
import { checkRatio, runPrn } from './prn';
import { runCsp } from './csp';
import { runElan } from './elan';
import { TOOL_VERSION } from '../version';

export type ConvertTarget = 'prn' | 'csp' | 'elan';

export interface ConvertOptions {
  to: ConvertTarget;
  /** PRN: share of channels that receive the shortcut, (0, 1]; default 0.5. */
  ratio?: number;
  /** PRN: drop stride-1 projection shortcuts that only widen (asymmetric residual). */
  asymmetric?: boolean;
  /** Fail (E_PATTERN) when a block cannot be converted or nothing can be converted. */
  strict?: boolean;
  /** Rules to recognise blocks with (default: the shipped rules). */
  rules?: Rule[];
  /** Convert the given model object in place instead of a copy. */
  inPlace?: boolean;
  /** Symbolic dims for the cost model (default 1). */
  dims?: Record<string, number>;
  /** CSP: share of channels in part 1 (through the blocks), in (0, 1); default 0.5. */
  split?: number;
  /** CSP: where the transition layers go (paper's gradient-flow truncation variants); default 'both'. */
  fusion?: 'both' | 'first' | 'last';
  /** CSP: how the stage input is split; default 'slice' (zero-parameter Split). */
  splitOp?: 'slice' | 'conv';
  /** ELAN: 2·stack 3x3 convs per stacked block; default 2. */
  stack?: number;
  /** ELAN: computational-block width as a share of the stage width, in (0, 1]; default 0.5. */
  width?: number;
  /** ELAN: also apply the CSP split to the converted stages. */
  csp?: boolean;
}

/** What one pass did; convert() turns it into the report. */
export interface PassOutcome {
  /** The options the pass used, as recorded in the report and metadata_props. */
  options: Record<string, unknown>;
  converted: { block: string; stage: number; change: string }[];
  unconverted: { block: string; reason: string }[];
  /** Parameters whose values did not come from the source model (new layers, new input channels). */
  freshParams: number;
  notes: string[];
  warnings: string[];
  /** Nodes the pass added, by stage index, so per-stage figures after the pass include them. */
  addedNodes?: { stage: number; nodes: string[] }[];
}

export type PassRunner = (model: Model, structure: Structure, options: ConvertOptions, subject: string) => PassOutcome;

const PASSES: Record<ConvertTarget, PassRunner> = { prn: runPrn, csp: runCsp, elan: runElan };

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

export interface ConvertReport {
  tool: string;
  version: string;
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

function metrics(c: CostReport): ModelMetrics {
  const t = c.totals;
  return { params: t.params, macs: t.macs, peakActivationBytes: t.peakActivationBytes, memoryAccessBytes: t.memoryAccessBytes };
}

/**
 * The model's figures: cost totals, gradient paths, and per stage the sums over the stage's nodes
 * (entry, blocks, and what a pass added to it), the largest live activation memory while one of
 * them runs, and the gradient paths of its weight layers.
 */
function measure(model: Model, structure: Structure, dims: Record<string, number> | undefined, added: PassOutcome['addedNodes'] = []) {
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
  return { cost, totals: metrics(cost), stages, network: paths.network };
}

/** The stages as gradient-path stage specs: their entry and block nodes, and what a pass added to them. */
export function stageSpecs(structure: Structure, added: PassOutcome['addedNodes'] = []): { name: string; nodes: string[] }[] {
  return structure.stages.map((s) => ({
    name: `stage ${s.index}`,
    nodes: [...new Set([...s.entry, ...s.blocks.flatMap((b) => b.nodes), ...added.filter((a) => a.stage === s.index).flatMap((a) => a.nodes)])],
  }));
}

/**
 * Stages of the nodes a pass added without saying where (PRN's Slice / Split / Concat, say): the
 * stage of the nodes they feed, else of the nodes that feed them.
 */
function attributeAddedNodes(model: Model, structure: Structure, existed: Set<string>, declared: NonNullable<PassOutcome['addedNodes']>): NonNullable<PassOutcome['addedNodes']> {
  const stageOf = new Map<string, number>();
  for (const s of structure.stages) for (const n of [...s.entry, ...s.blocks.flatMap((b) => b.nodes)]) stageOf.set(n, s.index);
  for (const a of declared) for (const n of a.nodes) stageOf.set(n, a.stage);
  const fresh = model.graph.nodes.filter((n) => !existed.has(n.name) && !stageOf.has(n.name));
  const found = new Map<string, number>();
  const via = (names: string[]) => names.map((x) => stageOf.get(x) ?? found.get(x)).find((s) => s !== undefined);
  for (const n of [...fresh].reverse()) {
    const s = via(n.outputs.flatMap((o) => (o ? o.consumers.map((u) => u.node.name) : [])));
    if (s !== undefined) found.set(n.name, s);
  }
  for (const n of fresh) {
    if (found.has(n.name)) continue;
    const s = via(n.inputs.flatMap((v) => (v?.producer ? [v.producer.name] : [])));
    if (s !== undefined) found.set(n.name, s);
  }
  const byStage = new Map<number, string[]>();
  for (const [n, s] of found) byStage.set(s, [...(byStage.get(s) ?? []), n]);
  return [...declared, ...[...byStage].map(([stage, nodes]) => ({ stage, nodes }))];
}

export function sha256Of(model: Model): string {
  // what was loaded (recorded at load, never re-read: the file may have changed since)
  return model.sourceSha256 ?? crypto.createHash('sha256').update(saveModelToBuffer(model)).digest('hex');
}

/** A deep copy (through the wire format: lossless, and tensors stay views of one buffer). */
export function cloneModel(model: Model): Model {
  const copy = loadModel(saveModelToBuffer(model), { baseDir: model.baseDir });
  copy.sourcePath = undefined;
  return copy;
}

export function convert(source: Model, options: ConvertOptions): ConvertResult {
  const target = options.to;
  if (!['prn', 'csp', 'elan'].includes(target)) {
    throw new GptError('E_ARG', `unknown target '${target}'`, { hint: 'use --to prn, csp or elan' });
  }
  if (target === 'prn') checkRatio(options.ratio ?? 0.5);
  const sha = sha256Of(source);
  const model = options.inPlace ? source : cloneModel(source);
  const subject = source.sourcePath ?? 'model';
  assertValid(model.graph, subject);
  const shapeWarnings = inferShapes(model).warnings;
  const structure = recognize(model, { rules: options.rules, recorded: false });
  const before = measure(model, structure, options.dims);

  const report: ConvertReport = {
    tool: 'gpt', version: TOOL_VERSION, target, options: {}, source: { file: source.sourcePath ?? null, sha256: sha },
    family: structure.family, converted: [], unconverted: [], unrecognized: structure.unmatched, warnings: [...shapeWarnings, ...structure.warnings],
    before: before.totals, after: before.totals, stages: { before: before.stages, after: before.stages },
    weightsCarriedOver: 1, gradientPaths: { before: before.network, after: before.network }, notes: [],
  };
  const existed = new Set(model.graph.nodes.map((n) => n.name));
  const outcome = PASSES[target](model, structure, options, subject);
  report.options = outcome.options;
  report.converted = outcome.converted;
  report.unconverted = outcome.unconverted;
  report.notes = outcome.notes;
  report.warnings.push(...outcome.warnings);
  const freshParams = outcome.freshParams;
  if (options.strict && report.unrecognized.length > 0) {
    throw new GptError('E_PATTERN', `${report.unrecognized.length} node(s) match no rule, e.g. '${report.unrecognized[0]}'`, {
      subject, hint: 'add a rule file for the block (--rules), or drop --strict to convert the rest',
    });
  }
  if (options.strict && report.unconverted.length > 0) {
    throw new GptError('E_PATTERN', `block ${report.unconverted[0].block} was not converted: ${report.unconverted[0].reason}`, { subject, hint: 'drop --strict to convert the rest' });
  }

  model.graph.toposort().cleanup();
  for (const v of model.graph.values.values()) v.inferred = undefined;
  inferShapes(model);
  assertValid(model.graph, subject);
  // stage membership by node name: the source's nodes that remain, plus the ones the pass added
  const added = attributeAddedNodes(model, structure, existed, outcome.addedNodes ?? []);
  const after = measure(model, structure, options.dims, added);
  const costAfter = after.cost;
  report.after = after.totals;
  report.stages.after = after.stages;
  report.gradientPaths.after = after.network;
  report.weightsCarriedOver = costAfter.totals.params > 0 ? 1 - freshParams / costAfter.totals.params : 1;

  recordStructure(model, structure, added, target);
  model.setMetadata('gpt.version', TOOL_VERSION);
  model.setMetadata('gpt.conversion', JSON.stringify({ target, options: report.options }));
  model.setMetadata('gpt.source_sha256', sha);
  return { model, report, structure };
}
