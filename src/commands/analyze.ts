import * as path from 'node:path';
import { Args, Flags } from '@oclif/core';
import { analyzeModel, AnalyzeReport } from '../analysis/analyze';
import { validateAnalyzeReport } from '../report/analyze-report';
import { chartSeries, gradientPathChart } from '../analysis/chart';
import { loadRules } from '../analysis/rules';
import { assertValid } from '../ir/validate';
import { checkOutputPath, loadModel, writeFileAtomic } from '../onnx/io';
import { human, table } from '../report/format';
import { GptCommand, commonFlags, parseDims } from '../cli/base';

export function formatAnalyze(r: AnalyzeReport, withLayers: boolean): string {
  const g = r.gradientPaths;
  const out = [
    `${r.file ?? 'model'}: ${r.family}, ${r.stages.length} stages, ${r.stages.reduce((n, s) => n + s.blocks, 0)} blocks, ${human(r.params)} params, ${human(r.macs)} MACs`,
    `gradient paths: ${g.layers} weight layers, max shortest ${g.maxShortest}, longest ${g.longest}, mean timestamps ${g.meanTimestamps.toFixed(2)}, max channel groups ${g.maxChannelGroups}`,
    '',
    table(
      ['stage', 'resolution', 'channels', 'blocks', 'params', 'MACs', 'max shortest', 'longest', 'mean timestamps'],
      r.stages.map((s) => [
        `${s.index}`, s.resolution ? s.resolution.join('x') : '?', s.channels ?? '?', `${s.blocks} ${Object.keys(s.blockRules).join('+')}`,
        human(s.params), human(s.macs), s.maxShortest, s.longest, s.meanTimestamps.toFixed(2),
      ]),
    ),
  ];
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
    const results = files.map((f) => {
      const model = loadModel(f);
      assertValid(model.graph, f);
      return { file: f, ...analyzeModel(model, { rules, dims: parseDims(flags.dim) }) };
    });
    if (flags.chart) {
      const svg = gradientPathChart(results.map((r) => chartSeries(path.basename(r.file), r.gradient)), { title: 'Gradient paths per weight layer' });
      writeFileAtomic(flags.chart, svg);
    }
    if (flags.json) {
      for (const r of results) validateAnalyzeReport(r.report);
      this.printJson(results.length === 1 ? results[0].report : results.map((r) => r.report));
    } else {
      process.stdout.write(results.map((r) => formatAnalyze(r.report, flags.layers)).join('\n\n') + '\n');
      if (flags.chart) process.stdout.write(`chart: ${flags.chart}\n`);
    }
  }
}
