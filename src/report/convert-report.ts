/** The conversion report: terminal text and schema validation of the JSON form. */
import type { ConvertReport } from '../passes/convert';
import schema from '../schemas/convert.schema.json';
import { bytes, formatOptions, human, paragraph, ratio, table } from './format';
import { reportValidator } from './schema';

export const validateConvertReport: (report: unknown) => asserts report is ConvertReport = reportValidator<ConvertReport>(schema, 'convert');

export function formatConvertReport(r: ConvertReport, opts: { dryRun?: boolean; output?: string } = {}): string {
  const out: string[] = [];
  out.push(`${opts.dryRun ? 'plan' : 'converted'}: ${r.source.file ?? 'model'} -> ${r.target.toUpperCase()} (${formatOptions(r.options) || 'defaults'}; family ${r.family})`);
  out.push('');
  if (r.converted.length) {
    out.push(table(['block', 'stage', 'change'], r.converted.map((c) => [c.block, c.stage, c.change])));
    out.push('');
  }
  const m = (k: 'params' | 'macs' | 'peakActivationBytes' | 'memoryAccessBytes', f: (n: number) => string) => [f(r.before[k]), f(r.after[k]), ratio(r.after[k], r.before[k])];
  out.push(table(['', 'before', 'after', 'ratio'], [
    ['params', ...m('params', human)],
    ['MACs', ...m('macs', human)],
    ['peak activation memory', ...m('peakActivationBytes', bytes)],
    ['memory access cost', ...m('memoryAccessBytes', bytes)],
  ]));
  out.push('');
  if (r.stages.before.length) {
    const arrow = (a: string | number, b: string | number) => (a === b ? `${a}` : `${a} -> ${b}`);
    out.push(table(['stage', 'params', 'MACs', 'peak activation', 'memory access', 'max shortest', 'longest'], r.stages.before.map((b, i) => {
      const a = r.stages.after[i] ?? b;
      return [`${b.stage}`, arrow(human(b.params), human(a.params)), arrow(human(b.macs), human(a.macs)), arrow(bytes(b.peakActivationBytes), bytes(a.peakActivationBytes)),
        arrow(bytes(b.memoryAccessBytes), bytes(a.memoryAccessBytes)), arrow(b.maxShortest, a.maxShortest), arrow(b.longest, a.longest)];
    })));
    out.push('');
  }
  const gb = r.gradientPaths.before, ga = r.gradientPaths.after;
  out.push(table(['gradient paths', 'before', 'after'], [
    ['weight layers', gb.layers, ga.layers],
    ['max shortest path', gb.maxShortest, ga.maxShortest],
    ['longest path', gb.longest, ga.longest],
    ['mean timestamps', gb.meanTimestamps.toFixed(2), ga.meanTimestamps.toFixed(2)],
    ['max channel groups', gb.maxChannelGroups, ga.maxChannelGroups],
  ]));
  out.push('');
  out.push(`weights carried over: ${(r.weightsCarriedOver * 100).toFixed(1)}% of the converted model's parameters`);
  for (const n of r.notes) out.push(paragraph('note: ', n));
  if (r.unconverted.length) out.push(`left as they were: ${r.unconverted.map((u) => `${u.block} (${u.reason})`).join('; ')}`);
  if (r.unrecognized.length) out.push(`matched no rule (${r.unrecognized.length}): ${r.unrecognized.slice(0, 8).join(', ')}${r.unrecognized.length > 8 ? ', ...' : ''}`);
  out.push(`coverage: ${r.coverage.blocks} / ${r.coverage.candidates} candidate blocks recognised, ${r.coverage.converted} block(s) / stage(s) converted, ${r.coverage.left.length} left`);
  if (r.growth) out.push(`grows: ${r.growth}`);
  for (const w of r.warnings) out.push(paragraph('warning: ', w));
  if (opts.output) out.push(`wrote ${opts.output}`);
  else if (opts.dryRun) out.push('dry run: nothing written');
  return out.join('\n');
}
