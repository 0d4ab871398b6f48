/**
 * analyze(): the model as the paper sees it — family, stem, stages and blocks (from the rules) — with
 * the cost model and the gradient-path metrics aggregated per stage. The typed object is exactly what
 * `gpt analyze --json` prints (src/schemas/analyze.schema.json).
 */
import { aggregateWarnings } from '../report/warnings';
import type { Model } from '../ir/model';
import { costModel } from './cost';
import { DetectorReport, detectorReport, partSpecs, recognizeDetector } from './detector';
import { GradientPathReport, GradientPathSummary, LayerGradientPaths, gradientPaths } from './gradient-path';
import type { Rule } from './rules';
import { inferShapes } from './shapes';
import { recognize } from './structure';
import { hasBlockRefs, stageSpecs } from './structure-refs';
import type { CrossStagePartial, Structure } from './structure-types';
import { envelope, ReportEnvelope } from '../report/envelope';

export interface AnalyzeOptions {
  rules?: Rule[];
  dims?: Record<string, number>;
}

export interface StageAnalysis extends GradientPathSummary {
  index: number;
  resolution: (number | string | null)[] | null;
  channels: number | null;
  blocks: number;
  /** Block rule -> count, e.g. { "resnet-basic": 2 }. */
  blockRules: Record<string, number>;
  entry: string[];
  params: number;
  macs: number;
  /** Recognised blocks / candidate blocks in this stage, and the nodes between its blocks no rule explained. */
  coverage: { blocks: number; candidates: number; unmatched: string[] };
  /** Present when the stage is already cross-stage partial. */
  csp?: CrossStagePartial;
}

export interface AnalyzeReport extends ReportEnvelope<'analyze'> {
  file: string | null;
  family: Structure['family'];
  stem: string[];
  head: string[];
  stages: StageAnalysis[];
  /** Nodes no rule recognised (by name). */
  unmatched: string[];
  /** Recognised blocks / candidate blocks (block-like nodes no rule explained included, stem and head too). */
  coverage: { blocks: number; candidates: number; unexplained: string[] };
  /** Why the structure cannot be trusted (a family read with fewer stages than its resolutions); convert refuses such a model. */
  errors: string[];
  params: number;
  macs: number;
  gradientPaths: GradientPathSummary;
  layers: (LayerGradientPaths & { stage: number | null })[];
  warnings: string[];
  /** Backbone, neck and heads with their figures; only for a detector. */
  detector?: DetectorReport;
}

export interface AnalyzeResult {
  report: AnalyzeReport;
  structure: Structure;
  gradient: GradientPathReport;
}

export function analyzeModel(model: Model, opts: AnalyzeOptions = {}): AnalyzeResult {
  const warnings = [...inferShapes(model).warnings];
  const structure = recognize(model, { rules: opts.rules });
  warnings.push(...structure.warnings);
  const specs = stageSpecs(structure);
  const det = recognizeDetector(model, { rules: opts.rules, structure: structure.stages.every((s) => s.blocks.every(hasBlockRefs)) ? structure : undefined });
  const withParts = gradientPaths(model, { stages: det.detector ? [...specs, ...partSpecs(det)] : specs });
  const gradient = { ...withParts, stages: withParts.stages.slice(0, specs.length) };
  warnings.push(...gradient.warnings);
  const cost = costModel(model, { dims: opts.dims });
  const nodeCost = new Map(cost.nodes.map((n) => [n.name, n]));
  const stageOfNode = new Map<string, number>();
  structure.stages.forEach((s, i) => specs[i].nodes.forEach((n) => stageOfNode.set(n, s.index)));
  const stages: StageAnalysis[] = structure.stages.map((s, i) => {
    const blockRules: Record<string, number> = {};
    for (const b of s.blocks) blockRules[b.rule] = (blockRules[b.rule] ?? 0) + 1;
    let params = 0, macs = 0;
    for (const n of specs[i].nodes) {
      params += nodeCost.get(n)?.params ?? 0;
      macs += nodeCost.get(n)?.macs ?? 0;
    }
    const { name: _name, start: _s, end: _e, ...summary } = gradient.stages[i];
    return {
      index: s.index, resolution: s.resolution, channels: s.channels, blocks: s.blocks.length, blockRules, entry: s.entry, params, macs, ...summary,
      coverage: { blocks: s.coverage?.blocks ?? s.blocks.length, candidates: s.coverage?.candidates ?? s.blocks.length, unmatched: s.coverage?.unmatched ?? [] },
      ...(s.csp ? { csp: s.csp } : {}),
    };
  });
  // recognize() and gradientPaths() may run shape inference again and repeat its warnings
  const unique = aggregateWarnings(warnings);
  const report: AnalyzeReport = {
    ...envelope('analyze'),
    file: model.sourcePath ?? null,
    family: structure.family,
    stem: structure.stem,
    head: structure.head,
    stages,
    unmatched: structure.unmatched,
    coverage: {
      blocks: structure.coverage?.blocks ?? stages.reduce((n, s) => n + s.blocks, 0),
      candidates: structure.coverage?.candidates ?? stages.reduce((n, s) => n + s.blocks, 0),
      unexplained: structure.coverage?.unexplained ?? [],
    },
    errors: structure.errors ?? [],
    params: cost.totals.params,
    macs: cost.totals.macs,
    gradientPaths: gradient.network,
    layers: gradient.layers.map((l) => ({ ...l, stage: stageOfNode.get(l.name) ?? null })),
    warnings: unique,
    ...(det.detector ? { detector: detectorReport(model, det, cost, withParts, specs.length) } : {}),
  };
  return { report, structure, gradient };
}

/** The typed report (same as the JSON). */
export function analyze(model: Model, opts: AnalyzeOptions = {}): AnalyzeReport {
  return analyzeModel(model, opts).report;
}
