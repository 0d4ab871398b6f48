/**
 * npm run bench: speed and memory figures, measured side by side in one run (these machines are
 * shared and noisy, so ratios matter more than absolute times). Not a test: it asserts nothing,
 * it prints what it measured.
 *
 *  1. ONNX I/O: load + save of a 100+ MB model (full-size Darknet-53) vs Python's C++-backed
 *     onnx.load + onnx.save on the same file (when a python3 with `onnx` is on PATH), peak RSS.
 *  2. Analysis: recognition + gradient paths + cost of synthetic ResNets of 250 / 500 / 1,000 blocks.
 *  3. Profiler overhead: gpt profile vs a bare onnxruntime-node loop (when available).
 *  4. Start-up: `gpt --version`, `gpt inspect` of a small model, `require('gpt-gradient-path')`,
 *     and what the library loads (onnxruntime-node and ajv must stay out until used).
 *  6. Emit forms (`npm run bench -- emit`): full-size Darknet-53 and ResNet-50, plain vs PRN written
 *     as split (Split + Add + Concat) and as mask (shortcut x 0/1 mask, Add), profiled side by side
 *     (interleaved, adaptive); CSP's split as slice vs conv vs producer in GMAC/s; and two back-to-back profiles
 *     of the same pair, to see whether they agree within their intervals.
 *  7. Kernels (`npm run bench -- kernels`): the same forms in onnxruntime's own profile: layout
 *     kernels per run (a count) and the summed kernel time, with its ratio to plain (emit-kernels.ts).
 *     GPT_BENCH_KERNEL_ROUNDS (default 5; 0 skips the profile) x GPT_BENCH_KERNEL_RUNS (default 10)
 *     profiled runs per form, GPT_BENCH_KERNEL_THREADS (default 1) intra-op threads; then the CPU time per run on one thread
 *     (GPT_BENCH_CPU_RUNS, default 30, interleaved), the figure a loaded machine disturbs least.
 *     Sets: PRN's emit forms (split / mask / parts) on ResNet-50 and Darknet-53, CSP's split (slice / conv / producer) x merge
 *     (concat / sum) forms (conv + sum left out: the sum brings nothing there) on Darknet-53 and
 *     ResNet-50, with GMAC per CPU-second against plain and against CSP's earlier form (slice +
 *     concat); GPT_BENCH_KERNEL_SETS=darknet53-csp,... picks some.
 *  8. Torch vs onnxruntime (`npm run bench -- torch`): a pair of models timed on both profile paths,
 *     onnxruntime cpu and `--backend torch --device cpu`, the same intra-op thread count, the paths
 *     alternating in blocks (torch-vs-ort.ts); each path's latency ratio with its 95% interval and
 *     whether the intervals agree; a third path, the same modules as frozen TorchScript after
 *     torch.jit.optimize_for_inference (every conv on oneDNN), separates torch's kernel choice from
 *     the architecture; then torch's own kernel split (native im2col + BLAS vs oneDNN convolutions).
 *     Pairs: the Darknet-53 fixture (quarter width, 64x64, 10 s blocks) and full-size Darknet-53
 *     @256 (40 s blocks), each plain vs its CSP form (the default conversion);
 *     GPT_BENCH_TORCH_PAIRS=darknet53-w25-csp,darknet53-csp,resnet50-prn picks (resnet50-prn:
 *     ResNet-50 @224 plain vs PRN, off by default), GPT_BENCH_TORCH_THREADS (default 1; e.g. 1,2),
 *     GPT_BENCH_TORCH_SECONDS (seconds per block, every pair), GPT_BENCH_TORCH_BLOCKS (default 2)
 *     blocks per path, GPT_BENCH_TORCH_JIT=0 leaves the third path out.
 *  5. Only when asked (`npm run bench -- baseline [REF]`): analysis and conversion side by side with
 *     an older commit (see baseline.ts).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { analyzeModel } from '../../src/analysis/analyze';
import { costModel } from '../../src/analysis/cost';
import { saveModel } from '../../src/onnx/io';
import { convert } from '../../src/passes/convert';
import { MERGE_OPS, SPLIT_OPS } from '../../src/passes/options';
import { profile, ProfileReport } from '../../src/profile';
import { formatRatio, ratioOfMedians, RatioStats } from '../../src/profile/stats';
import type { Model } from '../../src/ir/model';
import { buildSample } from '../../src/samples';
import { loadModel } from '../../src/onnx/io';
import { fixturePath } from '../helpers';
import { syntheticResNet } from '../synthetic';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms: number) => `${ms.toFixed(0)} ms`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpt-bench-'));
const only = process.argv.slice(2);
const want = (s: string) => only.length === 0 || only.includes(s);

function pythonOnnx(): string | null {
  for (const py of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(py, ['-c', 'import onnx; print(onnx.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  return null;
}

function benchIo(): void {
  const file = path.join(tmp, 'darknet53.onnx');
  saveModel(buildSample('darknet53'), file);
  const size = fs.statSync(file).size;
  console.log(`\n## ONNX I/O: load + save of ${path.basename(file)} (${(size / 2 ** 20).toFixed(1)} MiB), 5 alternating runs each`);
  const py = pythonOnnx();
  const pyScript = [
    'import onnx, sys, time, resource, json',
    't0 = time.perf_counter(); m = onnx.load(sys.argv[1]); t1 = time.perf_counter(); onnx.save(m, sys.argv[2]); t2 = time.perf_counter()',
    'print(json.dumps({"load": (t1-t0)*1e3, "save": (t2-t1)*1e3, "maxRssKiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))',
  ].join('\n');
  const gpt: { load: number; save: number; maxRssKiB: number }[] = [];
  const onnx: typeof gpt = [];
  for (let i = 0; i < 5; i++) {
    const r = spawnSync(process.execPath, [path.join(__dirname, 'io-child.js'), file, path.join(tmp, 'out-gpt.onnx')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    gpt.push(JSON.parse(r.stdout));
    if (py) {
      const p = spawnSync(py, ['-c', pyScript, file, path.join(tmp, 'out-py.onnx')], { encoding: 'utf8' });
      if (p.status !== 0) throw new Error(p.stderr);
      onnx.push(JSON.parse(p.stdout));
    }
  }
  const row = (label: string, xs: typeof gpt) => {
    const total = median(xs.map((x) => x.load + x.save));
    const rss = median(xs.map((x) => x.maxRssKiB)) * 1024;
    console.log(`${label.padEnd(26)} load ${fmt(median(xs.map((x) => x.load))).padStart(7)}  save ${fmt(median(xs.map((x) => x.save))).padStart(7)}  load+save ${fmt(total).padStart(7)}  peak RSS ${(rss / 2 ** 20).toFixed(0)} MiB (${(rss / size).toFixed(2)}x the file)`);
    return total;
  };
  const g = row('gpt (loadModel+saveModel)', gpt);
  if (py) {
    const o = row('python onnx.load+onnx.save', onnx);
    console.log(`ratio gpt / onnx (load+save): ${(g / o).toFixed(2)}x  (target <= 1.00)`);
  } else {
    console.log('python3 with the onnx package not found: no side-by-side figure (apt-get install python3-onnx)');
  }
  const same = Buffer.compare(fs.readFileSync(file), fs.readFileSync(path.join(tmp, 'out-gpt.onnx'))) === 0;
  console.log(`gpt's saved copy is byte-identical to the input: ${same}`);
}

function benchAnalysis(): void {
  console.log('\n## Analysis of synthetic ResNets (recognition + gradient paths + cost), median of 3');
  const rows: [number, number][] = [];
  for (const blocks of [250, 500, 1000]) {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const m = syntheticResNet(blocks);
      const t0 = process.hrtime.bigint();
      const r = analyzeModel(m);
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (r.report.stages.reduce((n, s) => n + s.blocks, 0) !== blocks) throw new Error(`recognised ${r.report.stages.length} stages, not ${blocks} blocks`);
    }
    rows.push([blocks, median(times)]);
  }
  for (const [b, t] of rows) console.log(`${String(b).padStart(5)} blocks  ${fmt(t).padStart(8)}  ${(t / b).toFixed(3)} ms/block`);
  console.log(`1,000 / 250 blocks time ratio: ${(rows[2][1] / rows[0][1]).toFixed(2)} (linear: 4.00); target under 2 s at 1,000`);
}

async function benchProfile(): Promise<void> {
  let mod: typeof import('./profile-overhead');
  try {
    mod = require('./profile-overhead');
  } catch {
    console.log('\n## Profiler overhead: not available in this build');
    return;
  }
  const file = path.join(tmp, 'resnet18.onnx');
  saveModel(buildSample('resnet18', { resolution: 224 }), file);
  console.log('\n## Profiler overhead: gpt\'s timed runs vs a bare onnxruntime-node loop (ResNet-18 at 224, CPU), interleaved run by run');
  const r = await mod.profileOverhead(file);
  const pct = (x: RatioStats) => `${((x.ratio - 1) * 100).toFixed(2)}% [95% CI ${((x.low - 1) * 100).toFixed(2)}%, ${((x.high - 1) * 100).toFixed(2)}%]`;
  console.log(`${r.rounds} rounds in ${r.blocks} blocks of fresh sessions, ${r.threads.intraOp} intra-op thread, OMP_NUM_THREADS ${r.threads.ompNumThreads ?? 'unset'}, load average ${r.loadavg.start.map((x) => x.toFixed(1)).join(' ')} -> ${r.loadavg.end.map((x) => x.toFixed(1)).join(' ')}`);
  console.log(`  reported latency  gpt ${r.gpt.reportedMs.toFixed(2)} ms, bare ${r.bare.reportedMs.toFixed(2)} ms: overhead ${pct(r.reported)}  (target <= 2%)`);
  console.log(`  wall per run      gpt ${r.gpt.wallMs.toFixed(2)} ms, bare ${r.bare.wallMs.toFixed(2)} ms: ${pct(r.wall)}`);
  console.log(`  CPU per run       gpt ${r.gpt.cpuMs.toFixed(2)} ms, bare ${r.bare.cpuMs.toFixed(2)} ms: ${pct(r.cpu)}`);
  console.log(`  stopping-rule check between rounds (outside the timed runs): ${r.checkMs.toFixed(2)} ms per check, ${r.checkPerRoundMs.toFixed(3)} ms per round (${((r.checkPerRoundMs / r.bare.wallMs) * 100).toFixed(2)}% of a run)`);
}

function benchStartup(): void {
  const root = path.resolve(__dirname, '..', '..', '..');
  const bin = path.join(root, 'bin', 'run.js');
  const small = path.join(tmp, 'resnet18-small.onnx');
  saveModel(buildSample('resnet18', { width: 0.25, resolution: 64, classes: 10 }), small);
  console.log('\n## Start-up (wall time of a fresh node process, median of 7)');
  const time = (args: string[]) => {
    const ts: number[] = [];
    for (let i = 0; i < 7; i++) {
      const t0 = process.hrtime.bigint();
      const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
      ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
    }
    return median(ts);
  };
  const probe = [
    `const t = process.hrtime.bigint(); require(${JSON.stringify(path.join(root, 'dist', 'src', 'index.js'))});`,
    'const ms = Number(process.hrtime.bigint() - t) / 1e6;',
    "const heavy = Object.keys(require.cache).filter((k) => /node_modules[\\/](onnxruntime-node|onnxruntime-common|ajv|@oclif)[\\/]/.test(k)).map((k) => k.split(/node_modules[\\/]/).pop().split(/[\\/]/)[0]);",
    'console.log(JSON.stringify({ ms, heavy: [...new Set(heavy)] }));',
  ].join('\n');
  const lib = JSON.parse(spawnSync(process.execPath, ['-e', probe], { encoding: 'utf8' }).stdout);
  const node = time(['-e', '0']);
  console.log(`node -e 0 (the floor)           ${fmt(node).padStart(7)}`);
  console.log(`gpt --version                   ${fmt(time([bin, '--version'])).padStart(7)}`);
  console.log(`gpt inspect resnet18 w0.25 @64  ${fmt(time([bin, 'inspect', small])).padStart(7)}`);
  console.log(`gpt inspect --json (ajv loaded) ${fmt(time([bin, 'inspect', small, '--json'])).padStart(7)}`);
  console.log(`require('gpt-gradient-path')    ${fmt(lib.ms).padStart(7)}  heavy modules loaded: ${lib.heavy.length ? lib.heavy.join(', ') : 'none'}`);
}

function ratioLines(r: ProfileReport): string[] {
  return r.models.map((m) => {
    const x = m.runs[0];
    const v = x.vsBaseline;
    return `  ${m.label.padEnd(22)} p50 ${x.latencyMs.p50.toFixed(1).padStart(7)} ms  cv ${(x.latencyMs.cv * 100).toFixed(1).padStart(5)}%  ${x.gmacPerS.toFixed(1).padStart(6)} GMAC/s  ${x.iterations} rounds (${x.stoppedBy})  ${v ? `latency ratio ${formatRatio(v)}` : 'baseline'}`;
  });
}

async function benchEmit(): Promise<void> {
  const maxTimeS = Number(process.env.GPT_BENCH_MAX_TIME ?? 60);
  console.log(`\n## Emit forms: plain vs PRN (split, mask), full size, CPU, interleaved, adaptive (±2% or ${maxTimeS} s)`);
  for (const [name, opts] of [['darknet53', {}], ['resnet50', { resolution: 224 }]] as const) {
    const plain = buildSample(name, opts);
    const files = { plain: path.join(tmp, `${name}.onnx`), split: path.join(tmp, `${name}-prn-split.onnx`), mask: path.join(tmp, `${name}-prn-mask.onnx`) };
    saveModel(plain, files.plain);
    saveModel(convert(buildSample(name, opts), { to: 'prn', emit: 'split' }).model, files.split);
    saveModel(convert(buildSample(name, opts), { to: 'prn', emit: 'mask' }).model, files.mask);
    const r = await profile([files.plain, files.split, files.mask], { maxTimeS, warmup: 3, labels: [name, 'PRN --emit split', 'PRN --emit mask'] });
    console.log(`${name} (load average ${r.environment.loadavg.start.map((x) => x.toFixed(1)).join(' ')}):`);
    for (const l of ratioLines(r)) console.log(l);
    for (const w of r.warnings) console.log(`  ${w}`);
  }
  console.log('\n## CSP split as slice vs conv vs producer (GMAC/s), full-size Darknet-53');
  const cspFiles = SPLIT_OPS.map((splitOp) => {
    const file = path.join(tmp, `dk-csp-${splitOp}.onnx`);
    saveModel(convert(buildSample('darknet53'), { to: 'csp', splitOp }).model, file);
    return file;
  });
  const c = await profile([path.join(tmp, 'darknet53.onnx'), ...cspFiles], { maxTimeS, warmup: 3, labels: ['darknet53', ...SPLIT_OPS.map((o) => `CSP --split-op ${o}`)] });
  for (const l of ratioLines(c)) console.log(l);
  for (const w of c.warnings) console.log(`  ${w}`);
  console.log('\n## Two back-to-back profiles of the same pair (darknet53 vs PRN --emit mask), defaults');
  const runs: ProfileReport[] = [];
  for (let i = 0; i < 2; i++) runs.push(await profile([path.join(tmp, 'darknet53.onnx'), path.join(tmp, 'darknet53-prn-mask.onnx')], { maxTimeS, warmup: 3 }));
  const [a, b] = runs.map((r) => r.models[1].runs[0].vsBaseline!);
  runs.forEach((r, i) => console.log(`  run ${i + 1}: ${formatRatio(r.models[1].runs[0].vsBaseline!)}, ${r.models[1].runs[0].iterations} rounds (${r.models[1].runs[0].stoppedBy})`));
  const agree = a.latencyRatioLow <= b.latencyRatioHigh && b.latencyRatioLow <= a.latencyRatioHigh;
  console.log(`  the two intervals ${agree ? 'overlap: the runs agree' : 'do NOT overlap'}`);
}

async function benchKernels(): Promise<void> {
  const rounds = Number(process.env.GPT_BENCH_KERNEL_ROUNDS ?? 5);
  const runs = Number(process.env.GPT_BENCH_KERNEL_RUNS ?? 10);
  const threads = Number(process.env.GPT_BENCH_KERNEL_THREADS ?? 1);
  const { emitKernels, emitCpuTime } = require('./emit-kernels') as typeof import('./emit-kernels');
  const cpuRuns = Number(process.env.GPT_BENCH_CPU_RUNS ?? 30);
  // GPT_BENCH_KERNEL_SETS (comma-separated, e.g. 'darknet53-csp'): only these sets; default all
  const setNames = (process.env.GPT_BENCH_KERNEL_SETS ?? 'resnet50-prn,darknet53-prn,darknet53-csp,resnet50-csp').split(',');
  const sets: [string, { label: string; model: ReturnType<typeof buildSample> }[]][] = [];
  for (const [name, opts] of [['resnet50', { resolution: 224 }], ['darknet53', {}]] as const) {
    if (!setNames.includes(`${name}-prn`)) continue;
    sets.push([`${name} PRN`, [
      { label: name, model: buildSample(name, opts) },
      ...(['split', 'mask', 'parts'] as const).map((emit) => ({ label: `PRN --emit ${emit}`, model: convert(buildSample(name, opts), { to: 'prn', emit }).model })),
    ]]);
  }
  // CSP's split (slice / conv) and merge (concat / sum) forms, fusion both (CSPNet's own)
  for (const [name, opts] of [['darknet53', {}], ['resnet50', { resolution: 224 }]] as const) {
    if (!setNames.includes(`${name}-csp`)) continue;
    // the earlier default first (slice + concat: the figure to beat), then the others
    const forms = [{ splitOp: 'slice', mergeOp: 'concat' }, ...SPLIT_OPS.flatMap((splitOp) => MERGE_OPS.map((mergeOp) => ({ splitOp, mergeOp })))
      .filter((f) => !(f.splitOp === 'slice' && f.mergeOp === 'concat') && !(f.splitOp === 'conv' && f.mergeOp === 'sum'))] as const;
    sets.push([`${name} CSP`, [
      { label: name, model: buildSample(name, opts) },
      ...forms.map((f) => ({ label: `CSP ${f.splitOp} + ${f.mergeOp}`, model: convert(buildSample(name, opts), { to: 'csp', fusion: 'both', ...f }).model })),
    ]]);
  }
  console.log(`\n## Emit forms in onnxruntime's profile: ${rounds} rounds x ${runs} profiled runs per form, interleaved, ${threads} intra-op thread(s)`);
  for (const [title, models] of sets) {
    const load = os.loadavg();
    const figs = rounds > 0 ? await emitKernels(models, rounds, runs, threads) : [];
    console.log(`${title} (load average ${load.map((x) => x.toFixed(1)).join(' ')} -> ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}):`);
    for (const f of figs) {
      const v = f.vsFirst ? `kernel-time ratio ${formatRatio({ latencyRatio: f.vsFirst.ratio, latencyRatioLow: f.vsFirst.low, latencyRatioHigh: f.vsFirst.high })}` : 'baseline';
      console.log(`  ${f.label.padEnd(22)} ${String(f.kernels).padStart(4)} kernels, ${String(f.layoutKernels).padStart(3)} layout  kernel sum ${f.kernelMs.toFixed(1).padStart(6)} ms (conv ${f.convMs.toFixed(1)}, layout ${f.layoutMs.toFixed(2)}, other ${f.otherMs.toFixed(1)})  ${v}`);
    }
    if (cpuRuns > 0) {
      const l2 = os.loadavg();
      const cpu = await emitCpuTime(models, cpuRuns);
      console.log(`  CPU time per run, 1 intra-op thread, ${cpuRuns} interleaved runs (load average ${l2.map((x) => x.toFixed(1)).join(' ')} -> ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}):`);
      const gmacs = models.map((m) => costModel(m.model).totals.macs / 1e9);
      // GMAC per CPU-second against another form: its MACs ratio over the CPU-time ratio (paired runs),
      // the interval the CPU-time ratio's turned over
      const rate = (i: number, j: number) => {
        const r = ratioOfMedians(cpu[i].cpuSamples, cpu[j].cpuSamples, { paired: true });
        const m = gmacs[i] / gmacs[j];
        return `${(m / r.ratio).toFixed(3)}x [${(m / r.high).toFixed(3)}, ${(m / r.low).toFixed(3)}]`;
      };
      const csp = title.includes('CSP');
      cpu.forEach((f, i) => {
        const v = f.vsFirst ? `CPU-time ratio ${formatRatio({ latencyRatio: f.vsFirst.ratio, latencyRatioLow: f.vsFirst.low, latencyRatioHigh: f.vsFirst.high })}` : 'baseline';
        const vsRate = i === 0 ? '' : `  GMAC/s vs plain ${rate(i, 0)}${csp && i > 1 ? `, vs ${models[1].label} ${rate(i, 1)}` : ''}`;
        console.log(`  ${f.label.padEnd(22)} CPU ${f.cpuMs.toFixed(1).padStart(6)} ms  wall ${f.wallMs.toFixed(1).padStart(6)} ms  ${gmacs[i].toFixed(2)} GMACs, ${(gmacs[i] / (f.cpuMs / 1000)).toFixed(1)} GMAC per CPU-s  ${v}${vsRate}`);
      });
    }
  }
}

async function benchTorch(): Promise<void> {
  const { agreement, torchVsOrt, torchKernels, savePair } = require('./torch-vs-ort') as typeof import('./torch-vs-ort');
  const { findTorchPython } = require('../../src/export/python') as typeof import('../../src/export/python');
  const blocks = Number(process.env.GPT_BENCH_TORCH_BLOCKS ?? 2);
  const threadList = (process.env.GPT_BENCH_TORCH_THREADS ?? '1').split(',').map(Number);
  const pairNames = (process.env.GPT_BENCH_TORCH_PAIRS ?? 'darknet53-w25-csp,darknet53-csp').split(',');
  const jit = process.env.GPT_BENCH_TORCH_JIT !== '0';
  console.log(`\n## Torch vs onnxruntime: one pair on both profile paths${jit ? ' (and torch-jit: frozen TorchScript after optimize_for_inference)' : ''}, cpu, ${blocks} blocks per path (order rotating), models interleaved`);
  if (!findTorchPython().python) {
    console.log('no Python with PyTorch: skipped (Debian: apt-get install python3-torch, or set GPT_PYTHON)');
    return;
  }
  // [plain, other, title, seconds per block]: a full-size round takes ~1 s on torch's eager path here
  const pairs: Record<string, () => [Model, Model, string, number]> = {
    'darknet53-w25-csp': () => [loadModel(fixturePath('darknet53-w25.onnx')), convert(loadModel(fixturePath('darknet53-w25.onnx')), { to: 'csp' }).model, 'Darknet-53 fixture (w0.25 @64)', 10],
    'darknet53-csp': () => [buildSample('darknet53'), convert(buildSample('darknet53'), { to: 'csp' }).model, 'Darknet-53 @256', 40],
    'resnet50-prn': () => [buildSample('resnet50', { resolution: 224 }), convert(buildSample('resnet50', { resolution: 224 }), { to: 'prn' }).model, 'ResNet-50 @224', 40],
  };
  const iv = (r: RatioStats) => `${r.ratio.toFixed(3)}x [${r.low.toFixed(3)}, ${r.high.toFixed(3)}]`;
  for (const name of pairNames) {
    if (!pairs[name]) throw new Error(`GPT_BENCH_TORCH_PAIRS: unknown pair '${name}' (${Object.keys(pairs).join(', ')})`);
    const [plain, other, title, pairSeconds] = pairs[name]();
    const seconds = Number(process.env.GPT_BENCH_TORCH_SECONDS ?? pairSeconds);
    const otherLabel = name.endsWith('csp') ? 'CSP' : 'PRN';
    const files = savePair(tmp, name, [plain, other]);
    for (const threads of threadList) {
      const f = await torchVsOrt(files, ['plain', otherLabel], { seconds, blocks, threads, jit });
      console.log(`${title}, ${otherLabel} / plain, ${threads} intra-op thread(s) per path, ${seconds} s blocks (load average ${f.loadavg.start.map((x) => x.toFixed(1)).join(' ')} -> ${f.loadavg.end.map((x) => x.toFixed(1)).join(' ')}):`);
      for (const p of [f.ort, f.torch, ...(f.jit ? [f.jit] : [])]) {
        console.log(`  ${p.backend.padEnd(11)} p50 plain ${p.p50Ms[0].toFixed(2).padStart(8)} ms  ${otherLabel} ${p.p50Ms[1].toFixed(2).padStart(8)} ms  ${String(p.rounds).padStart(5)} rounds  ratio ${iv(p.ratio)}  per block ${p.blockRatios.map((x) => x.toFixed(3)).join(', ')}`);
      }
      if (f.torchBlas) console.log(`  torch's BLAS (the runner's report): ${f.torchBlas.kind}, ${f.torchBlas.libraries.join(', ') || 'none mapped'}`);
      for (const p of [f.torch, ...(f.jit ? [f.jit] : [])]) {
        const a = agreement(f.ort, p);
        console.log(`  ${p.backend} vs onnxruntime: intervals ${a.overlap ? 'overlap' : 'do NOT overlap'}; ${p.backend}'s ratio ${a.bInA ? 'lies' : 'does not lie'} in onnxruntime's interval, onnxruntime's ${a.aInB ? 'lies' : 'does not lie'} in ${p.backend}'s`);
      }
    }
    // why they differ, if they do: which kernel torch's eager mode gave each convolution
    const kernelRuns = Number(process.env.GPT_BENCH_TORCH_KERNEL_RUNS ?? 10);
    for (const threads of threadList) {
      const k = torchKernels([{ label: 'plain', model: plain }, { label: otherLabel, model: other }], threads, kernelRuns);
      console.log(`  torch ${k.torch} eager convolutions by kernel, ${k.threads} thread(s), ${kernelRuns} profiled runs each, interleaved:`);
      const kf = (x: { calls: number; macs: number; ms: number }) => `${Math.round(x.calls)} convs, ${(x.macs / 1e9).toFixed(3)} GMAC, ${x.ms.toFixed(1)} ms (${x.ms > 0 ? (x.macs / 1e9 / (x.ms / 1000)).toFixed(1) : '-'} GMAC/s)`;
      for (const m of k.models) {
        console.log(`    ${m.label.padEnd(6)} ${m.totalMs.toFixed(1).padStart(7)} ms per run; native im2col+BLAS: ${kf(m.native)}; oneDNN: ${kf(m.onednn)}; batch norm ${m.batchNormMs.toFixed(1)} ms`);
      }
    }
  }
}

(async () => {
  console.log(`gpt bench on ${os.cpus().length} cores, node ${process.version}, ${new Date().toISOString()}`);
  if (want('io')) benchIo();
  if (want('analysis')) benchAnalysis();
  if (want('profile')) await benchProfile();
  if (want('startup')) benchStartup();
  if (want('emit')) await benchEmit(); // several minutes of timing
  if (want('kernels')) await benchKernels();
  if (want('torch')) await benchTorch(); // several minutes of timing, with a Python that has torch
  if (only[0] === 'baseline') require('./baseline').benchBaseline(only[1]);
  fs.rmSync(tmp, { recursive: true, force: true });
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
