/**
 * npm run demo: the main job end to end on the bundled samples.
 *   1. build the plain samples (Darknet-53 at 256, VoVNet-39 at 224, YOLOv3 at 416: the paper's own
 *      setting, backbone and neck converted; full width, seeded weights)
 *   2. convert each to PRN, CSP and ELAN (PRN only where there are residual blocks)
 *   3. analyze all of them (gradient paths; an SVG chart per family, plain vs converted)
 *   4. profile each family side by side on CPU and write a self-contained HTML report
 * The models stay in memory (profile() and analyzeModel() take a Model): only the reports and charts
 * are written, to out/demo/ (or the folder given as an argument). `--keep-models` also writes every
 * model as .onnx next to them (about 750 MB). On a terminal, a progress bar with an ETA on stderr.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeModel } from '../src/analysis/analyze';
import { chartSeries, gradientPathChart } from '../src/analysis/chart';
import { costModel } from '../src/analysis/cost';
import { inspect } from '../src/analysis/inspect';
import { progressBar, steps } from '../src/cli/progress';
import { isGptError } from '../src/errors';
import type { Model } from '../src/ir/model';
import { saveModel } from '../src/onnx/io';
import { convert, ConvertTarget } from '../src/passes/convert';
import { profile } from '../src/profile';
import { human, bytes, table } from '../src/report/format';
import { profileHtml } from '../src/report/html';
import { buildSample, DetectorSampleName, SampleName } from '../src/samples';
import { formatRatio } from '../src/profile/stats';
import { demoWeights, FamilyCost } from './demo-cost';

const args = process.argv.slice(2);
const keepModels = args.includes('--keep-models');
const unknown = args.filter((a) => a.startsWith('-') && a !== '--keep-models');
if (unknown.length) {
  process.stderr.write(`gpt demo: unknown option ${unknown.join(' ')} (usage: npm run demo -- [OUT_DIR] [--keep-models])\n`);
  process.exit(2);
}
const outDir = path.resolve(args.find((a) => !a.startsWith('-')) ?? path.join(__dirname, '..', '..', 'out', 'demo'));
const iterations = Number(process.env.GPT_DEMO_ITERATIONS ?? 20);
const bar = progressBar(!!process.stderr.isTTY);
// a log line first wipes the bar (stdout and stderr share the terminal); the next update redraws it
const log = (s = '') => {
  bar.done();
  process.stdout.write(s + '\n');
};
const rel = (f: string) => path.relative(process.cwd(), f);

interface Family { name: SampleName | DetectorSampleName; resolution: number; runs: number }
// YOLOv3 (33 GMACs a run) is profiled with fewer runs: the demo runs on small machines too
const FAMILIES: Family[] = [
  { name: 'darknet53', resolution: 256, runs: iterations },
  { name: 'vovnet39', resolution: 224, runs: iterations },
  { name: 'yolov3', resolution: 416, runs: Math.min(iterations, 5) },
];
const TARGETS: ConvertTarget[] = ['prn', 'csp', 'elan'];

/** Each family: build + convert + analyze (one step), then profile (one step, with its own progress). */
const progress = steps(bar, demoWeights(FAMILIES.map((f): FamilyCost => {
  // the plain model's size and cost stand for its family's: the conversions are of the same order
  const c = costModel(buildSample(f.name, { resolution: f.resolution, width: 1 / 16 })).totals;
  return { params: c.params * 256, macs: c.macs * 256, models: f.name === 'vovnet39' ? 3 : 4, runs: f.runs };
})));

function keep(model: Model, name: string): string {
  const file = path.join(outDir, `${name}.onnx`);
  saveModel(model, file);
  return `-> ${rel(file)}`;
}

async function family({ name, resolution, runs }: Family): Promise<string> {
  const t0 = Date.now();
  progress.next(`${name}: build, convert, analyze`);
  const plainModel = buildSample(name, { resolution });
  const plain = inspect(plainModel);
  log(`## ${name} at ${resolution}x${resolution}: ${human(plain.params)} params, ${human(plain.macs)} MACs, peak activations ${bytes(plain.peakActivationBytes)}${keepModels ? ` ${keep(plainModel, name)}` : ''}`);

  const models: { label: string; model: Model }[] = [{ label: name, model: plainModel }];
  const rows: (string | number)[][] = [];
  for (const to of TARGETS) {
    try {
      const { model, report } = convert(plainModel, { to });
      if (report.converted.length === 0) {
        log(`   ${to}: nothing to convert (${report.warnings[0] ?? 'no matching block'})`);
        continue;
      }
      if (keepModels) keep(model, `${name}-${to}`);
      models.push({ label: `${name}-${to}`, model });
      rows.push([to.toUpperCase(), report.converted.length, human(report.after.params), `${(report.after.params / report.before.params).toFixed(2)}x`,
        human(report.after.macs), `${(report.after.macs / report.before.macs).toFixed(2)}x`, `${report.gradientPaths.before.maxShortest} -> ${report.gradientPaths.after.maxShortest}`,
        `${(report.weightsCarriedOver * 100).toFixed(0)}%`]);
    } catch (e) {
      if (!isGptError(e)) throw e;
      log(`   ${to}: skipped (${e.oneLine()})`);
    }
  }
  log(table(['target', 'blocks', 'params', 'ratio', 'MACs', 'ratio', 'max shortest path', 'weights kept'], rows));

  const series = models.map((m) => chartSeries(m.label, analyzeModel(m.model).gradient));
  const chartFile = path.join(outDir, `${name}-gradient-paths.svg`);
  fs.writeFileSync(chartFile, gradientPathChart(series, { title: `${name}: gradient paths per weight layer` }));

  const tProfile = Date.now();
  progress.next(`${name}: profile`);
  const report = await profile(models.map((m) => m.model), {
    ep: 'cpu', iterations: runs, warmup: Math.min(3, runs), perNode: true, labels: models.map((m) => m.label),
    onProgress: (f, what) => progress.within(f, `${name}: ${what}`),
  });
  // one ratio everywhere: p50 / p50 of the plain model, with its 95% bootstrap interval
  log(table(['model', 'p50 ms', 'cv', 'latency ratio [95% CI]', 'MACs ratio'], report.models.map((m) => {
    const r = m.runs[0];
    return [m.label, r.latencyMs.p50.toFixed(1), `${(r.latencyMs.cv * 100).toFixed(1)}%`, r.vsBaseline ? formatRatio(r.vsBaseline) : 'baseline', r.vsBaseline ? `${r.vsBaseline.macsRatio.toFixed(2)}x` : '1.00x'];
  })));
  for (const w of report.warnings) log(`   ${w}`);
  const htmlFile = path.join(outDir, `${name}-report.html`);
  fs.writeFileSync(htmlFile, profileHtml(report, { gradientSeries: series, title: `gpt demo: ${models.map((m) => m.label).join(' vs ')}` }));
  const secs = (a: number, b: number) => `${((b - a) / 1000).toFixed(0)} s`;
  log(`   chart ${rel(chartFile)}, report ${rel(htmlFile)}  (${secs(t0, Date.now())}: build, convert, analyze ${secs(t0, tProfile)}, profile ${secs(tProfile, Date.now())})`);
  log();
  return htmlFile;
}

(async () => {
  fs.mkdirSync(outDir, { recursive: true });
  log(`gpt demo -> ${outDir}${keepModels ? ' (models kept as .onnx)' : ' (models in memory; --keep-models writes them)'}\n`);
  const reports: string[] = [];
  for (const f of FAMILIES) reports.push(await family(f));
  progress.done();
  log(`done. Open the HTML reports:\n${reports.map((r) => `  ${r}`).join('\n')}`);
})().catch((e) => {
  bar.done();
  process.stderr.write(`gpt demo: ${isGptError(e) ? e.oneLine() : (e as Error).stack}\n`);
  process.exit(1);
});
