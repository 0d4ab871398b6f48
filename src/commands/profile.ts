import * as fs from 'node:fs';
import * as path from 'node:path';
import { Args, Flags } from '@oclif/core';
import { GptError } from '../errors';
import { checkOutputPath, loadModel, modelInputFiles, writeFileAtomic } from '../onnx/io';
import { checkOutputs } from '../onnx/files';
import { escapeStrings } from '../report/escape';
import { EpName, ProfileReport, profile, validateProfileReport } from '../profile';
import { EP_NAMES } from '../profile/providers';
import { parseShapes } from '../profile/measure';
import { formatRatio } from '../profile/stats';
import { perNodeExplanation, topKernels } from '../profile/node-profile';
import { human, table } from '../report/format';
import { gradientSeriesFor, profileHtml, runsSetting } from '../report/html';
import { recognize } from '../analysis/structure';
import { progressBar } from '../cli/progress';
import { GptCommand, argError, parseDecimalRange, parseIntRange } from '../cli/base';

export default class Profile extends GptCommand {
  static override summary = 'Measure latency on ONNX Runtime (or trtexec): per model and batch, ratios to the first model next to MACs ratios, optional per-node time.';
  static override examples = [
    '<%= config.bin %> profile plain.onnx elan.onnx',
    '<%= config.bin %> profile model.onnx --batch 1,8,32 --iterations 100',
    '<%= config.bin %> profile model.onnx --per-node --html report.html',
    '<%= config.bin %> profile model.onnx --ep cuda --per-node --require-ep',
  ];
  static override strict = false; // MODEL [MODEL...]
  static override args = { model: Args.string({ description: 'ONNX model file(s); the first is the baseline', required: true }) };
  static override flags = {
    ep: Flags.string({ description: 'execution provider', options: [...EP_NAMES], default: 'cpu' }),
    batch: Flags.string({ description: 'batch sizes, comma-separated, each 1 to 4096, at most 64 of them, e.g. 1,8,32 (symbolic batch dims)' }),
    shape: Flags.string({ description: 'an input shape NAME=8x3x224x224, or a symbolic dim NAME=N; each dim 1 to 1048576, at most 2^31 elements', multiple: true }),
    warmup: Flags.string({ description: 'runs per model discarded before timing, 0 to 10000', default: '5' }),
    iterations: Flags.string({ description: 'a fixed number of timed runs per model, 1 to 1000000 (default: adaptive, see --max-time)' }),
    'max-time': Flags.string({ description: 'adaptive runs (the default): time until every latency ratio\'s 95% interval is within ±2%, at most S seconds per batch size, S in (0, 3600] (default 60)' }),
    duration: Flags.string({ description: 'time each batch for S seconds instead of a run count, S in (0, 3600]' }),
    threads: Flags.string({ description: 'ONNX Runtime intra-op threads, 1 to 1024' }),
    fp16: Flags.boolean({ description: 'build the TensorRT engine in fp16 (--ep tensorrt)' }),
    'per-node': Flags.boolean({ description: "time every node with ORT's profiler: per op type, stage, block, provider, and the top 10 kernels" }),
    trace: Flags.string({ description: "keep onnxruntime's profile as FILE.json (Chrome trace format, opens in Perfetto); implies --per-node" }),
    'require-ep': Flags.boolean({ description: 'fail when nodes fell back to the CPU provider (--ep cuda / tensorrt; implies --per-node)' }),
    backend: Flags.string({ description: 'onnxruntime, or torch: time the PyTorch export of each model in a Python with torch', options: ['onnxruntime', 'torch'], default: 'onnxruntime' }),
    device: Flags.string({ description: 'torch backend: cpu or cuda', options: ['cpu', 'cuda'], default: 'cpu' }),
    compile: Flags.boolean({ description: 'torch backend: torch.compile each module (PyTorch 2)' }),
    json: Flags.boolean({ description: 'print the report as JSON (validated against the shipped schema)' }),
    html: Flags.string({ description: 'write a self-contained HTML report to FILE' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Profile);
    const models = argv as string[];
    const iterations = parseIntRange(flags.iterations, '--iterations', 1, 1_000_000, 'e.g. --iterations 50');
    const warmup = parseIntRange(flags.warmup, '--warmup', 0, 10_000, 'e.g. --warmup 5');
    const duration = parseDecimalRange(flags.duration, '--duration', 0, 3600, { min: true }, 'seconds, e.g. --duration 10');
    const maxTime = parseDecimalRange(flags['max-time'], '--max-time', 0, 3600, { min: true }, 'seconds, e.g. --max-time 120');
    const threads = parseIntRange(flags.threads, '--threads', 1, 1024, 'e.g. --threads 4');
    const batches = flags.batch?.split(',').map((b) => parseIntRange(b, '--batch', 1, 4096, 'e.g. --batch 1,8,32')!);
    if (batches && batches.length > 64) throw argError(`--batch: ${batches.length} batch sizes, at most 64`);
    const counts = (['iterations', 'duration', 'max-time'] as const).filter((f) => flags[f] !== undefined).map((f) => `--${f}`);
    if (counts.length > 1) throw argError(`${counts.join(' and ')} exclude each other`, 'give one of them');
    if (flags.fp16 && flags.ep !== 'tensorrt') throw argError('--fp16 applies to --ep tensorrt only', 'for cpu / cuda, profile a float16 export of the model instead');
    for (const m of models) if (!fs.existsSync(m)) throw new GptError('E_IO', 'no such file', { subject: m });
    if (flags.trace) checkOutputPath(flags.trace);
    if (flags.html) {
      checkOutputPath(flags.html);
      const loaded = models.map((m) => loadModel(m, { checkExternalData: false }));
      checkOutputs([{ path: flags.html, flag: '--html' }], loaded.flatMap(modelInputFiles));
    }

    const bar = progressBar(!flags.json && !flags.quiet && !!process.stderr.isTTY);
    let report: ProfileReport;
    try {
      report = await profile(models, {
        ep: flags.ep as EpName,
        batches,
        shapes: parseShapes(flags.shape),
        warmup,
        iterations,
        durationS: duration,
        maxTimeS: maxTime,
        threads,
        fp16: flags.fp16,
        // which provider ran each node is known from the per-node profile only
        perNode: flags['per-node'] || (flags['require-ep'] && flags.ep !== 'cpu'),
        requireEp: flags['require-ep'],
        backend: flags.backend as 'onnxruntime' | 'torch',
        device: flags.device as 'cpu' | 'cuda',
        compile: flags.compile,
        trace: flags.trace,
        // adaptive timing may stop before its budget: the ETA is an upper bound then
        onProgress: (f, what) => bar.update(f, what, { upTo: iterations === undefined && duration === undefined }),
      });
    } finally {
      bar.done();
    }

    if (flags.html) {
      const series = models.map((m) => {
        const model = loadModel(m);
        let structure = null;
        try {
          structure = recognize(model);
        } catch {
          structure = null; // the chart then has no stage bands; the latency report stands
        }
        return gradientSeriesFor(path.basename(m), model, structure);
      }).filter((s) => s !== null);
      writeFileAtomic(flags.html, profileHtml(report, { gradientSeries: series }), { inputs: models });
    }
    if (flags.json) {
      validateProfileReport(report);
      this.printJson(report);
    } else {
      process.stdout.write(formatProfileReport(escapeStrings(report)) + '\n');
      for (const w of report.warnings) this.warning(w);
    }
  }
}


const ms = (x: number) => (x >= 100 ? x.toFixed(1) : x >= 1 ? x.toFixed(2) : x.toFixed(3));

/** The terminal report: one latency table (ratio to the baseline next to the MACs ratio), then per-node tables. */
export function formatProfileReport(r: ProfileReport): string {
  const out: string[] = [];
  const s = r.settings;
  out.push(`ep: ${r.ep} (${r.backend})  warm-up ${s.warmup}, ${runsSetting(r)}${s.interleaved ? ', models interleaved' : ''}, ${s.threads ? `${s.threads} threads` : `${r.backend === 'torch' ? 'torch' : 'ORT'} default threads`}, load average ${r.environment.loadavg.start.map((x) => x.toFixed(2)).join(' ')}`);
  out.push(`latency ratio: ${s.ratioMethod} (p50 / p50 of ${r.models[0].label})`);
  out.push('');
  const rows: string[][] = [];
  const batches = r.models[0].runs.length;
  for (let b = 0; b < batches; b++) {
    for (const m of r.models) {
      const x = m.runs[b];
      const v = x.vsBaseline;
      rows.push([m.label, String(x.batch), ms(x.latencyMs.min), ms(x.latencyMs.mean), ms(x.latencyMs.p50), ms(x.latencyMs.p90), ms(x.latencyMs.p99), ms(x.latencyMs.max),
        `${(x.latencyMs.cv * 100).toFixed(1)}%`, x.throughput.toFixed(1), x.gmacPerS.toFixed(2), human(x.macs),
        v ? formatRatio(v) : 'baseline', v ? `${v.macsRatio.toFixed(3)}x` : 'baseline']);
    }
  }
  out.push(table(['model', 'batch', 'min ms', 'mean', 'p50', 'p90', 'p99', 'max', 'cv', 'items/s', 'GMAC/s', 'MACs', 'latency ratio [95% CI]', 'MACs ratio'], rows));
  for (const m of r.models) {
    for (const p of m.perNode) {
      out.push('');
      out.push(`${m.label}, batch ${p.batch}: kernels ${ms(p.nodeSumMs)} ms of ${ms(p.runMs)} ms per profiled run (${(p.coverage * 100).toFixed(1)}%)`);
      out.push(perNodeExplanation(p, m.runs.find((x) => x.batch === p.batch)?.latencyMs.p50 ?? null));
      out.push('');
      out.push('top 10 kernels');
      out.push(table(['kernel', 'op type', 'ms', 'share', 'stage', 'note'], topKernels(p).map((k) => [k.name, k.opType, ms(k.ms), `${(k.share * 100).toFixed(1)}%`, k.stage, k.note])));
      out.push(table(['op type', 'kernels', 'ms', 'share'], p.byOpType.map((o) => [o.opType, o.kernels, ms(o.ms), `${(o.share * 100).toFixed(1)}%`])));
      out.push('');
      out.push(table(['stage', 'ms', 'share'], p.byStage.map((o) => [o.stage, ms(o.ms), `${(o.share * 100).toFixed(1)}%`])));
      out.push('');
      out.push(table(['provider', 'kernels', 'ms'], p.byProvider.map((o) => [o.provider, o.kernels, ms(o.ms)])));
      if (p.cpuFallback && p.cpuFallback.count > 0) {
        out.push('');
        out.push(`!!! ${p.cpuFallback.count} kernel(s) ran on the CPU provider, not ${r.ep}: ${p.cpuFallback.kernels.join(', ')}`);
      }
    }
  }
  return out.join('\n');
}
