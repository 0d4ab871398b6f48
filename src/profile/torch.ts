/**
 * `profile --backend torch`: the models exported to PyTorch (src/export) and timed by a small Python
 * runner, spawned like trtexec. The runner interleaves the models round by round (the order rotates,
 * as measure.ts does for onnxruntime) and wraps each timed run in torch.cuda.synchronize() on CUDA, so
 * the samples, statistics and report are the onnxruntime path's. The route to a GPU where only PyTorch
 * with CUDA is installed (no onnxruntime CUDA build, no TensorRT).
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { costModel } from '../analysis/cost';
import { recognize } from '../analysis/structure';
import { GptError } from '../errors';
import { exportPytorch, writePytorchExport } from '../export/pytorch';
import { findTorchPython } from '../export/python';
import type { Model } from '../ir/model';
import { loadModel } from '../onnx/io';
import { envelope } from '../report/envelope';
import type { ModelProfile, ProfileOptions, ProfileReport } from './index';
import { resolveInputs } from './measure';
import { latencyStats, ratioOfMedians, RATIO_METHOD } from './stats';
import { ortVersion } from './ort';
import { detectProviders } from './providers';

const RUNNER = `
import importlib.util, json, os, sys, time
import torch

job = json.load(sys.stdin)
device = torch.device(job["device"])
if job["device"] == "cuda" and not torch.cuda.is_available():
    print(json.dumps({"error": "torch.cuda.is_available() is False (no GPU, or a CPU-only PyTorch)"}))
    sys.exit(0)
sync = torch.cuda.synchronize if job["device"] == "cuda" else (lambda: None)
torch.manual_seed(job["seed"])
if job.get("threads"):
    torch.set_num_threads(job["threads"])
nets = []
for i, d in enumerate(job["models"]):
    spec = importlib.util.spec_from_file_location("gpt_profiled_%d" % i, os.path.join(d, "model.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    net = mod.Net.load(d, map_location=device).eval()
    if job["compile"]:
        if not hasattr(torch, "compile"):
            print(json.dumps({"error": "--compile needs PyTorch 2 (torch.compile); this is %s" % torch.__version__}))
            sys.exit(0)
        net = torch.compile(net)
    nets.append(net)
DT = {"float32": torch.float32, "float16": torch.float16, "float64": torch.float64, "int64": torch.int64, "int32": torch.int32}
for shapes in job["batches"]:
    feeds = [[torch.randn(s["dims"]).to(DT.get(s["type"], torch.float32)).to(device) for s in m] for m in shapes]
    samples = [[] for _ in nets]
    with torch.inference_mode():
        for i, net in enumerate(nets):
            for _ in range(job["warmup"]):
                net(*feeds[i])
        sync()
        n = len(nets)
        start = time.perf_counter()
        r = 0
        while True:
            if job["iterations"] is not None and r >= job["iterations"]:
                break
            if job["iterations"] is None and time.perf_counter() - start >= job["durationS"] and r > 0:
                break
            for k in range(n):
                i = (r + k) % n
                sync()
                t0 = time.perf_counter()
                nets[i](*feeds[i])
                sync()
                samples[i].append((time.perf_counter() - t0) * 1000.0)
            r += 1
    print(json.dumps({"samples": samples}), flush=True)
# the BLAS torch's native convolution path (im2col + GEMM) calls: BLAS_INFO from the build, and on
# Linux the BLAS libraries mapped into this process (Debian's torch links libblas.so.3, whichever
# library the alternatives system points it to)
import re
m = re.search(r"BLAS_INFO=([^,\\s]+)", torch.__config__.show())
libs = []
try:
    with open("/proc/self/maps") as f:
        libs = sorted({os.path.realpath(l.split()[-1]) for l in f if len(l.split()) >= 6 and "blas" in os.path.basename(l.split()[-1]).lower()})
except OSError:
    pass
print(json.dumps({"torch": torch.__version__, "blasInfo": m.group(1) if m else None, "blas": libs}), flush=True)
`;

/** What torch's native convolution path multiplies with, as far as the names tell. */
export interface TorchBlas {
  /** BLAS_INFO of torch's build (mkl, open, blis, generic: the libblas.so.3 it is linked to...). */
  blasInfo: string | null;
  /** The BLAS libraries mapped into the runner's process (real paths; Linux only). */
  libraries: string[];
  /** optimized: a known tuned BLAS; reference: only netlib's libblas is mapped; unknown: neither can be told. */
  kind: 'optimized' | 'reference' | 'unknown';
}

const TUNED = /openblas|mkl|blis|atlas|armpl|accelerate|veclib|flexiblas|essl|aocl|ssl2|eigen/i;

/**
 * Classifies torch's BLAS from its build's BLAS_INFO and the libraries its process maps. A build that
 * names a tuned BLAS (mkl, open, blis...) is optimized; a generic build is what its libblas.so.3
 * resolves to: a tuned library's path or name (Debian's openblas-pthread/libblas.so.3) is optimized,
 * a libblas with no such name (Debian's blas/libblas.so.3, netlib's reference) is reference.
 */
export function classifyTorchBlas(blasInfo: string | null, libraries: string[]): TorchBlas {
  const info = blasInfo?.toLowerCase() ?? null;
  let kind: TorchBlas['kind'] = 'unknown';
  if (info && info !== 'generic' && (TUNED.test(info) || info === 'open')) kind = 'optimized';
  else if (libraries.some((l) => TUNED.test(l))) kind = 'optimized';
  else if ((info === null || info === 'generic') && libraries.some((l) => /^libblas\.so/.test(path.basename(l)))) kind = 'reference';
  return { blasInfo, libraries, kind };
}

/** The warning a CPU timing on netlib's reference BLAS gets (null: none). */
export function torchBlasWarning(blas: TorchBlas, device: string): string | null {
  if (device !== 'cpu' || blas.kind !== 'reference') return null;
  return `torch calls netlib's reference BLAS (${blas.libraries.join(', ')}): its native convolution path (1x1 convs on one thread, convs with small inputs) is many times slower than torch's oneDNN path, so the latencies and ratios follow that library more than the architecture; install a tuned BLAS (Debian: apt-get install libopenblas0-pthread); with --threads N the runner gives it N threads`;
}

/**
 * The runner's environment: with --threads N, a BLAS that starts its own threads (OpenBLAS, BLIS, MKL)
 * gets N too unless the user set it, as torch.set_num_threads does not reach a BLAS that torch links
 * generically (Debian's libblas.so.3).
 */
export function runnerEnv(threads: number | undefined, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out = { ...env };
  if (threads) for (const k of ['OPENBLAS_NUM_THREADS', 'BLIS_NUM_THREADS', 'MKL_NUM_THREADS']) if (out[k] === undefined) out[k] = String(threads);
  return out;
}

export async function profileTorch(models: (string | Model)[], options: ProfileOptions): Promise<ProfileReport> {
  const device = options.device ?? 'cpu';
  if (device !== 'cpu' && device !== 'cuda') throw new GptError('E_ARG', `device '${device}': expected cpu or cuda`);
  if (options.perNode || options.fp16 || options.requireEp) throw new GptError('E_ARG', '--per-node, --fp16 and --require-ep apply to the onnxruntime and trtexec backends only');
  const { python, tried } = findTorchPython();
  if (!python) throw new GptError('E_EP', `no Python with PyTorch (tried ${tried.join(', ')})`, { hint: 'install PyTorch (Debian: apt-get install python3-torch) or set GPT_PYTHON to an interpreter that has it' });
  const warmup = options.warmup ?? 5;
  const iterations = options.durationS !== undefined ? undefined : options.iterations ?? 100;
  const seed = options.seed ?? 1;
  const warnings: string[] = [];
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gpt-torch-profile-'));
  try {
    const loaded = models.map((m, i) => {
      const model = typeof m === 'string' ? loadModel(m) : m;
      const file = typeof m === 'string' ? m : model.sourcePath ?? null;
      const label = options.labels?.[i] ?? (file ? path.basename(file) : `model ${i + 1}`);
      let structure = null;
      try {
        const s = recognize(model);
        structure = s.stages.length ? { family: s.family, stages: s.stages.length, blocks: s.stages.reduce((a, st) => a + st.blocks.length, 0) } : null;
      } catch {
        structure = null;
      }
      const dir = path.join(work, `m${i}`);
      // the model as it is (BN as the ONNX has it): the same computation onnxruntime would time
      writePytorchExport(exportPytorch(model, { bn: 'keep' }), dir);
      return { label, file, model, dir, params: costModel(model).totals.params, structure };
    });
    const batchList: (number | undefined)[] = options.batches?.length ? options.batches : [undefined];
    const plan = batchList.map((b) => loaded.map((l) => resolveInputs(l.model, { batch: b, shapes: options.shapes }, l.label)));
    const job = {
      models: loaded.map((l) => l.dir), device, compile: !!options.compile, warmup, iterations: iterations ?? null,
      durationS: options.durationS ?? null, seed, threads: options.threads ?? null,
      batches: plan.map((resolved) => resolved.map((r) => r.inputs)),
    };
    fs.writeFileSync(path.join(work, 'runner.py'), RUNNER);
    const loadStart = os.loadavg();
    options.onProgress?.(0, `timing on torch ${device}`);
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = execFile(python, [path.join(work, 'runner.py')], { maxBuffer: 256 << 20, env: runnerEnv(options.threads) }, (err, so, se) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout: String(so), stderr: String(se) }));
      child.stdin?.end(JSON.stringify(job));
    });
    const lines = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { samples?: number[][]; error?: string; torch?: string; blasInfo?: string | null; blas?: string[] });
    const failed = lines.find((l) => l.error);
    if (failed) throw new GptError('E_EP', `the torch runner stopped: ${failed.error}`, { hint: device === 'cuda' ? 'use --device cpu, or a machine with a CUDA build of PyTorch' : undefined });
    const runs = lines.filter((l) => l.samples);
    if (code !== 0 || runs.length !== plan.length) {
      const last = stderr.split('\n').map((l) => l.trim()).filter(Boolean).pop() ?? `exit status ${code}`;
      throw new GptError('E_ORT', `the torch runner failed: ${last}`, { hint: `rerun by hand: ${python} ${path.join(work, 'runner.py')} < job.json (kept with GPT_DEBUG=1)` });
    }
    const info = lines.find((l) => l.torch);
    const torchVersion = info?.torch ?? 'unknown';
    const blas = classifyTorchBlas(info?.blasInfo ?? null, info?.blas ?? []);
    const results: ModelProfile[] = loaded.map((l) => ({ label: l.label, file: l.file, params: l.params, structure: l.structure, runs: [], perNode: [] }));
    plan.forEach((resolved, bi) => {
      const samples = runs[bi].samples as number[][];
      const macs = resolved.map((r, i) => costModel(loaded[i].model, { dims: r.symbols }).totals.macs);
      loaded.forEach((_, i) => {
        const st = latencyStats(samples[i]);
        const r = ratioOfMedians(samples[i], samples[0], { paired: true });
        results[i].runs.push({
          batch: resolved[i].batch, inputs: resolved[i].inputs, macs: macs[i], iterations: samples[i].length, latencyMs: st,
          throughput: st.mean > 0 ? (resolved[i].batch * 1000) / st.mean : 0,
          gmacPerS: st.mean > 0 ? macs[i] / (st.mean / 1000) / 1e9 : 0,
          samplesMs: samples[i],
          stoppedBy: iterations !== undefined ? 'iterations' : 'budget',
          vsBaseline: i === 0 ? null : { latencyRatio: r.ratio, latencyRatioLow: r.low, latencyRatioHigh: r.high, macsRatio: macs[0] > 0 ? macs[i] / macs[0] : 0 },
        });
      });
    });
    options.onProgress?.(1, 'done');
    warnings.push(`timed the PyTorch export of each model with torch ${torchVersion} on ${device}${options.compile ? ' (torch.compile)' : ''}`);
    const blasWarning = torchBlasWarning(blas, device);
    if (blasWarning) warnings.push(blasWarning);
    return {
      ...envelope('profile'),
      ep: device,
      backend: 'torch',
      settings: {
        batches: options.batches?.length ? options.batches : null, warmup, iterations: iterations ?? null, durationS: options.durationS ?? null,
        maxTimeS: null, precision: null, ratioMethod: RATIO_METHOD, threads: options.threads ?? null, fp16: false, perNode: false, seed, interleaved: loaded.length > 1,
      },
      environment: {
        platform: process.platform, arch: process.arch, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, onnxruntime: ortVersion(),
        loadavg: { start: loadStart, end: os.loadavg() },
        threads: { intraOp: options.threads ?? null, interOp: null, ompNumThreads: process.env.OMP_NUM_THREADS ?? null },
        torch: { version: torchVersion, blasInfo: blas.blasInfo, blas: blas.libraries, blasKind: blas.kind },
      },
      providers: detectProviders(options.providerEnvironment),
      models: results,
      traces: [],
      warnings,
    };
  } finally {
    if (!process.env.GPT_DEBUG) fs.rmSync(work, { recursive: true, force: true });
  }
}
