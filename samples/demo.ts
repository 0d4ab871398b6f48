/**
 * npm run demo: the main job end to end on the bundled samples.
 *   1. build the plain samples (Darknet-53 at 256, VoVNet-39 at 224, YOLOv3 at 416: the paper's own
 *      setting, backbone and neck converted; full width, seeded weights)
 *   2. convert each to PRN, CSP and ELAN (PRN only where there are residual blocks)
 *   3. analyze all of them (gradient paths; an SVG chart per family, plain vs converted)
 *   4. profile each family side by side on CPU and write a self-contained HTML report
 * Everything goes to out/demo/ (or the folder given as the first argument).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { analyzeModel } from '../src/analysis/analyze';
import { chartSeries, gradientPathChart } from '../src/analysis/chart';
import { inspect } from '../src/analysis/inspect';
import { isGptError } from '../src/errors';
import { loadModel, saveModel } from '../src/onnx/io';
import { convert, ConvertTarget } from '../src/passes/convert';
import { profile } from '../src/profile';
import { human, bytes, table } from '../src/report/format';
import { profileHtml } from '../src/report/html';
import { buildSample, DetectorSampleName, SampleName } from '../src/samples';
import { formatRatio } from '../src/profile/stats';

const outDir = path.resolve(process.argv[2] ?? path.join(__dirname, '..', '..', 'out', 'demo'));
const iterations = Number(process.env.GPT_DEMO_ITERATIONS ?? 20);
const log = (s = '') => process.stdout.write(s + '\n');

async function family(name: SampleName | DetectorSampleName, resolution: number, runs = iterations): Promise<string> {
  const t0 = Date.now();
  const plainFile = path.join(outDir, `${name}.onnx`);
  saveModel(buildSample(name, { resolution }), plainFile);
  const plain = inspect(loadModel(plainFile));
  log(`## ${name} at ${resolution}x${resolution}: ${human(plain.params)} params, ${human(plain.macs)} MACs, peak activations ${bytes(plain.peakActivationBytes)} -> ${path.relative(process.cwd(), plainFile)}`);

  const files: { label: string; file: string }[] = [{ label: name, file: plainFile }];
  const rows: (string | number)[][] = [];
  for (const to of ['prn', 'csp', 'elan'] as ConvertTarget[]) {
    try {
      const { model, report } = convert(loadModel(plainFile), { to, inPlace: true });
      if (report.converted.length === 0) {
        log(`   ${to}: nothing to convert (${report.warnings[0] ?? 'no matching block'})`);
        continue;
      }
      const file = path.join(outDir, `${name}-${to}.onnx`);
      saveModel(model, file);
      files.push({ label: `${name}-${to}`, file });
      rows.push([to.toUpperCase(), report.converted.length, human(report.after.params), `${(report.after.params / report.before.params).toFixed(2)}x`,
        human(report.after.macs), `${(report.after.macs / report.before.macs).toFixed(2)}x`, `${report.gradientPaths.before.maxShortest} -> ${report.gradientPaths.after.maxShortest}`,
        `${(report.weightsCarriedOver * 100).toFixed(0)}%`]);
    } catch (e) {
      if (!isGptError(e)) throw e;
      log(`   ${to}: skipped (${e.oneLine()})`);
    }
  }
  log(table(['target', 'blocks', 'params', 'ratio', 'MACs', 'ratio', 'max shortest path', 'weights kept'], rows));

  const analyses = files.map((f) => ({ ...f, a: analyzeModel(loadModel(f.file)) }));
  const chartFile = path.join(outDir, `${name}-gradient-paths.svg`);
  fs.writeFileSync(chartFile, gradientPathChart(analyses.map((x) => chartSeries(x.label, x.a.gradient)), { title: `${name}: gradient paths per weight layer` }));

  const report = await profile(files.map((f) => f.file), { ep: 'cpu', iterations: runs, warmup: Math.min(3, runs), perNode: true, labels: files.map((f) => f.label) });
  // one ratio everywhere: p50 / p50 of the plain model, with its 95% bootstrap interval
  log(table(['model', 'p50 ms', 'cv', 'latency ratio [95% CI]', 'MACs ratio'], report.models.map((m) => {
    const r = m.runs[0];
    return [m.label, r.latencyMs.p50.toFixed(1), `${(r.latencyMs.cv * 100).toFixed(1)}%`, r.vsBaseline ? formatRatio(r.vsBaseline) : 'baseline', r.vsBaseline ? `${r.vsBaseline.macsRatio.toFixed(2)}x` : '1.00x'];
  })));
  for (const w of report.warnings) log(`   ${w}`);
  const htmlFile = path.join(outDir, `${name}-report.html`);
  fs.writeFileSync(htmlFile, profileHtml(report, { gradientSeries: analyses.map((x) => chartSeries(x.label, x.a.gradient)), title: `gpt demo: ${files.map((f) => f.label).join(' vs ')}` }));
  log(`   chart ${path.relative(process.cwd(), chartFile)}, report ${path.relative(process.cwd(), htmlFile)}  (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  log();
  return htmlFile;
}

(async () => {
  fs.mkdirSync(outDir, { recursive: true });
  log(`gpt demo -> ${outDir}\n`);
  // YOLOv3 (33 GMACs a run) is profiled with fewer runs: the demo runs on small machines too
  const reports = [await family('darknet53', 256), await family('vovnet39', 224), await family('yolov3', 416, Math.min(iterations, 5))];
  log(`done. Open the HTML reports:\n${reports.map((r) => `  ${r}`).join('\n')}`);
})().catch((e) => {
  process.stderr.write(`gpt demo: ${isGptError(e) ? e.oneLine() : (e as Error).stack}\n`);
  process.exit(1);
});
