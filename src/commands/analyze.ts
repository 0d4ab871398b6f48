import * as path from 'node:path';
import { Args, Flags } from '@oclif/core';
import { analyzeModel, AnalyzeReport } from '../analysis/analyze';
import { validateAnalyzeReport } from '../report/analyze-report';
import { chartSeries, gradientPathChart } from '../analysis/chart';
import { loadRules } from '../analysis/rules';
import { assertValid } from '../ir/validate';
import { checkOutputPath, loadModel, modelInputFiles, writeFileAtomic } from '../onnx/io';
import { checkOutputs } from '../onnx/files';
import { escapeStrings, escapeText } from '../report/escape';
import { human, table } from '../report/format';
import { GptCommand, checkDimNames, commonFlags, parseDims, ruleInputFiles, withFile } from '../cli/base';
import { envelope } from '../report/envelope';
import { AnalyzeComparisonReport, validateAnalyzeComparisonReport } from '../report/command-reports';

export function formatAnalyze(r: AnalyzeReport, withLayers: boolean): string {
  const g = r.gradientPaths;
  const csp = r.stages.some((s) => s.csp);
  const cov = r.coverage;
  const out = [
    `${r.file ?? 'model'}: ${r.family}${csp ? ' (cross-stage partial)' : ''}, ${r.stages.length} stages, ${r.stages.reduce((n, s) => n + s.blocks, 0)} blocks, ${human(r.params)} params, ${human(r.macs)} MACs`,
    `coverage: ${cov.blocks} / ${cov.candidates} candidate blocks recognised (${cov.candidates ? ((100 * cov.blocks) / cov.candidates).toFixed(0) : 0}%), ${r.unmatched.length} node(s) unmatched${cov.unexplained.length ? `; block-like nodes no rule explains: ${cov.unexplained.join(', ')}` : ''}`,
    `gradient paths: ${g.layers} weight layers, max shortest ${g.maxShortest}, longest ${g.longest}, mean timestamps ${g.meanTimestamps.toFixed(2)}, max channel groups ${g.maxChannelGroups}`,
    '',
    table(
      ['stage', 'resolution', 'channels', 'blocks', 'coverage', 'CSP', 'params', 'MACs', 'max shortest', 'longest', 'mean timestamps'],
      r.stages.map((s) => [
        `${s.index}`, s.resolution ? s.resolution.join('x') : '?', s.channels ?? '?', `${s.blocks} ${Object.keys(s.blockRules).join('+')}`,
        `${s.coverage.blocks}/${s.coverage.candidates}`,
        s.csp ? `${s.csp.splitOp} ${s.csp.parts.map((p) => p ?? '?').join('+')}, ${s.csp.fusion}` : '-',
        human(s.params), human(s.macs), s.maxShortest, s.longest, s.meanTimestamps.toFixed(2),
      ]),
    ),
  ];
  for (const s of r.stages) if (s.coverage.unmatched.length) out.push(`stage ${s.index}: matched no rule (${s.coverage.unmatched.length}): ${s.coverage.unmatched.join(', ')}`);
  for (const e of r.errors) out.push(`error: ${e}`);
  if (r.detector) {
    const d = r.detector;
    out.push('', 'detector: backbone + neck + heads', table(
      ['part', 'nodes', 'params', 'MACs', 'weight layers', 'max shortest', 'longest', 'mean timestamps', 'unsized'],
      (['backbone', 'neck', 'heads'] as const).map((k) => {
        const p = d[k].part;
        return [k, p.nodes, human(p.params), human(p.macs), p.gradientPaths.layers, p.gradientPaths.maxShortest, p.gradientPaths.longest, p.gradientPaths.meanTimestamps.toFixed(2), p.unsized.length ? `${p.unsized.length} (${p.unsized.slice(0, 2).join(', ')}${p.unsized.length > 2 ? ', ...' : ''})` : '0'];
      })), ...d.seen.map((s) => `  ${s}`));
  }
  if (r.unmatched.length) out.push('', `matched no rule (${r.unmatched.length}): ${r.unmatched.join(', ')}`);
  if (withLayers) {
    out.push('', table(['layer', 'op', 'stage', 'shortest', 'longest', 'timestamps', 'sources', 'channel groups'],
      r.layers.map((l) => [l.name, l.opType, l.stage ?? '-', l.shortest, l.longest, l.timestamps, l.sources, l.channelGroups])));
  }
  for (const w of r.warnings) out.push(`warning: ${w}`);
  return out.join('\n');
}

export default class Analyze extends GptCommand {
  static override summary = 'Recognise stem, stages and blocks, and measure gradient paths (shortest / longest / timestamps per layer).';
  static override examples = [
    '<%= config.bin %> analyze resnet50.onnx',
    '<%= config.bin %> analyze plain.onnx elan.onnx --chart cmp.svg',
    '<%= config.bin %> analyze model.onnx --layers --rules my-rules/',
  ];
  static override args = {
    model: Args.string({ description: 'ONNX model file', required: true }),
    model2: Args.string({ description: 'a second model to compare (e.g. the converted one)' }),
  };
  static override flags = {
    json: Flags.boolean({ description: 'print the report as JSON (validated against the shipped schema)' }),
    layers: Flags.boolean({ description: 'also print the per-layer table' }),
    chart: Flags.string({ description: 'write an SVG chart of shortest and longest gradient path per layer' }),
    rules: commonFlags.rules,
    dim: commonFlags.dim,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Analyze);
    const rules = flags.rules ? loadRules(flags.rules) : undefined;
    const files = [args.model, args.model2].filter((f): f is string => !!f);
    if (flags.chart) checkOutputPath(flags.chart);
    const dims = parseDims(flags.dim);
    // per model: loading 1, recognition + gradient paths + cost 1 (full-size models: about a second each)
    const progress = this.progress(files.flatMap(() => [1, 1]), !!flags.json);
    let results;
    try {
      const models = files.map((f) => {
        progress.next(`loading ${f}`);
        return { file: f, model: loadModel(f) };
      });
      if (flags.chart) checkOutputs([{ path: flags.chart, flag: '--chart' }], [...models.flatMap((m) => modelInputFiles(m.model)), ...ruleInputFiles(flags.rules)]);
      checkDimNames(dims, models);
      results = models.map(({ file: f, model }) => {
        progress.next(`analyzing ${f}`);
        assertValid(model.graph, f);
        return { file: f, ...withFile(f, () => analyzeModel(model, { rules, dims })) };
      });
      if (flags.chart) {
        const svg = gradientPathChart(results.map((r) => chartSeries(path.basename(r.file), r.gradient)), { title: 'Gradient paths per weight layer' });
        writeFileAtomic(flags.chart, svg, { inputs: models.flatMap((m) => modelInputFiles(m.model)) });
      }
    } finally {
      progress.done();
    }
    if (flags.json) {
      for (const r of results) validateAnalyzeReport(r.report);
      if (results.length === 1) return this.printJson(results[0].report);
      const report: AnalyzeComparisonReport = { ...envelope('analyze-comparison'), models: results.map((r) => r.report) };
      validateAnalyzeComparisonReport(report);
      this.printJson(report);
    } else {
      process.stdout.write(results.map((r) => formatAnalyze(escapeStrings(r.report), flags.layers)).join('\n\n') + '\n');
      if (flags.chart) process.stdout.write(`chart: ${escapeText(flags.chart)}\n`);
    }
  }
}
