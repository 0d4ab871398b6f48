/**
 * The same pair of models timed on both profile paths (npm run bench -- torch): onnxruntime cpu and
 * `--backend torch --device cpu` (the PyTorch export of each model, timed by the torch runner), with
 * the same intra-op thread count, and the latency ratio (model 2 / model 1) of each path with its 95%
 * interval. Do the two paths rank the pair the same, by the same amount?
 *
 * Each path is timed in `blocks` blocks of `seconds` each, the paths alternating block by block
 * (ORT, torch, torch, ORT, ...), so a change of the machine's load falls on both; inside a block
 * the two models run interleaved round by round as every profile does. The rounds of a path's blocks
 * are pooled and compared as the project's paired ratio of medians with its bootstrap interval.
 *
 * Where the ratios differ, the torch runner's own kernel split says why: torchKernels() runs each
 * exported module under torch.profiler and sums the time per convolution kernel. PyTorch's
 * use_mkldnn() (aten/src/ATen/native/Convolution.cpp) sends a float convolution at batch 1 to its
 * native im2col + BLAS path (aten::_slow_conv2d_forward) when it is a stride-1 1x1 on one thread, or
 * when its input has at most 20,480 elements with a kernel of 3x3 or less; the rest go to oneDNN
 * (aten::mkldnn_convolution). With two or more threads only the size rule remains. The native path
 * is as fast as the BLAS torch links, which the torch runner's report names (environment.torch).
 *
 * A third path separates the kernels from the architecture: the same exported modules traced,
 * frozen and passed through torch.jit.optimize_for_inference (BN folded into the convs, every conv
 * on oneDNN whatever its size or thread count, as onnxruntime's graph optimisation fuses and picks
 * MLAS for every conv), timed by the bench's own loop in the runner's manner (rotating order,
 * warm-up, time.perf_counter around each run). Not what `gpt profile --backend torch` times: what
 * the same modules cost when torch's kernel choice is taken out of the comparison.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { exportPytorch, writePytorchExport } from '../../src/export/pytorch';
import { findTorchPython } from '../../src/export/python';
import type { Model } from '../../src/ir/model';
import { loadModel, saveModel } from '../../src/onnx/io';
import { profile } from '../../src/profile';
import { resolveInputs } from '../../src/profile/measure';
import { runnerEnv } from '../../src/profile/torch';
import { median, ratioOfMedians, RatioStats } from '../../src/profile/stats';

export type PathName = 'onnxruntime' | 'torch' | 'torch-jit';

export interface PathFigures {
  backend: PathName;
  /** Rounds pooled over the blocks, and each model's median latency over them, ms. */
  rounds: number;
  p50Ms: [number, number];
  /** Model 2 / model 1, paired ratio of medians with its 95% bootstrap interval. */
  ratio: RatioStats;
  /** The same ratio block by block (how much it moved between blocks). */
  blockRatios: number[];
}

export interface PairFigures {
  threads: number;
  loadavg: { start: number[]; end: number[] };
  ort: PathFigures;
  torch: PathFigures;
  /** Null unless asked for (o.jit). */
  jit: PathFigures | null;
  /** The BLAS the torch path's runner reported (profile's environment.torch). */
  torchBlas: { kind: string; libraries: string[] } | null;
}

/** Two paths' ratios: the 95% intervals share some values; each ratio lies inside the other's interval. */
export function agreement(a: PathFigures, b: PathFigures): { overlap: boolean; bInA: boolean; aInB: boolean } {
  const within = (x: number, r: RatioStats) => r.low <= x && x <= r.high;
  return { overlap: a.ratio.low <= b.ratio.high && b.ratio.low <= a.ratio.high, bInA: within(b.ratio.ratio, a.ratio), aInB: within(a.ratio.ratio, b.ratio) };
}

/** Both models of a pair on both paths (and torch-jit when o.jit), `threads` intra-op thread(s) each. */
export async function torchVsOrt(files: [string, string], labels: [string, string], o: { seconds: number; blocks: number; threads: number; warmup?: number; jit?: boolean }): Promise<PairFigures> {
  const start = os.loadavg();
  const warmup = o.warmup ?? 3;
  const paths: PathName[] = o.jit ? ['onnxruntime', 'torch', 'torch-jit'] : ['onnxruntime', 'torch'];
  const samples = Object.fromEntries(paths.map((p) => [p, [[], []] as number[][]])) as Record<PathName, number[][]>;
  const blockRatios = Object.fromEntries(paths.map((p) => [p, [] as number[]])) as Record<PathName, number[]>;
  const jitDirs = o.jit ? exportPair(files) : null;
  let torchBlas: PairFigures['torchBlas'] = null;
  try {
    for (let b = 0; b < o.blocks; b++) {
      // the paths' order rotates block by block: none always meets the later (or earlier) load
      for (let k = 0; k < paths.length; k++) {
        const backend = paths[(b + k) % paths.length];
        let s: number[][];
        if (backend === 'torch-jit') {
          s = timeJit(jitDirs!.dirs, files, { seconds: o.seconds, threads: o.threads, warmup });
        } else {
          const r = await profile(files, { backend, device: 'cpu', ep: 'cpu', threads: o.threads, durationS: o.seconds, warmup, labels });
          s = r.models.map((m) => m.runs[0].samplesMs);
          if (r.environment.torch) torchBlas = { kind: r.environment.torch.blasKind, libraries: r.environment.torch.blas };
        }
        samples[backend][0].push(...s[0]);
        samples[backend][1].push(...s[1]);
        blockRatios[backend].push(median(s[1]) / median(s[0]));
      }
    }
  } finally {
    if (jitDirs) fs.rmSync(jitDirs.work, { recursive: true, force: true });
  }
  const figures = (backend: PathName): PathFigures => {
    const [a, b] = samples[backend];
    return { backend, rounds: a.length, p50Ms: [median(a), median(b)], ratio: ratioOfMedians(b, a, { paired: true }), blockRatios: blockRatios[backend] };
  };
  return { threads: o.threads, loadavg: { start, end: os.loadavg() }, ort: figures('onnxruntime'), torch: figures('torch'), jit: o.jit ? figures('torch-jit') : null, torchBlas };
}

/** Each model exported as `profile --backend torch` exports it (BN as the ONNX has it). */
function exportPair(files: string[]): { work: string; dirs: string[] } {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gpt-bench-torch-'));
  const dirs = files.map((f, i) => {
    const dir = path.join(work, `m${i}`);
    writePytorchExport(exportPytorch(loadModel(f), { bn: 'keep' }), dir);
    return dir;
  });
  return { work, dirs };
}

const JIT_PY = `
import importlib.util, json, os, sys, time
import torch

job = json.load(sys.stdin)
torch.set_num_threads(job["threads"])
torch.manual_seed(1)
nets, feeds = [], []
with torch.no_grad():
    for i, d in enumerate(job["models"]):
        spec = importlib.util.spec_from_file_location("gpt_jit_%d" % i, os.path.join(d, "model.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        net = mod.Net.load(d).eval()
        x = tuple(torch.randn(s) for s in job["inputs"][i])
        nets.append(torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(net, x).eval())))
        feeds.append(x)
    for i, net in enumerate(nets):
        for _ in range(job["warmup"]):
            net(*feeds[i])
    samples = [[] for _ in nets]
    n, r, start = len(nets), 0, time.perf_counter()
    while r == 0 or time.perf_counter() - start < job["seconds"]:
        for k in range(n):
            i = (r + k) % n
            t0 = time.perf_counter()
            nets[i](*feeds[i])
            samples[i].append((time.perf_counter() - t0) * 1000.0)
        r += 1
print(json.dumps({"samples": samples}))
`;

/** The exported modules as frozen, inference-optimised TorchScript, interleaved: samples per model, ms. */
function timeJit(dirs: string[], files: string[], o: { seconds: number; threads: number; warmup: number }): number[][] {
  const python = torchPython();
  const work = path.dirname(dirs[0]);
  fs.writeFileSync(path.join(work, 'jit.py'), JIT_PY);
  const inputs = files.map((f) => resolveInputs(loadModel(f), {}).inputs.map((x) => x.dims));
  const job = { models: dirs, inputs, threads: o.threads, seconds: o.seconds, warmup: o.warmup };
  return JSON.parse(execFileSync(python, [path.join(work, 'jit.py')], { input: JSON.stringify(job), encoding: 'utf8', maxBuffer: 64 << 20, env: runnerEnv(o.threads) })).samples;
}

function torchPython(): string {
  const { python, tried } = findTorchPython();
  if (!python) throw new Error(`no Python with PyTorch (tried ${tried.join(', ')})`);
  return python;
}

const KERNELS_PY = `
import importlib.util, json, os, sys
import torch
from torch.profiler import profile, ProfilerActivity, record_function

job = json.load(sys.stdin)
torch.set_num_threads(job["threads"])
torch.manual_seed(1)
out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "models": []}
nets, feeds = [], []
for i, d in enumerate(job["models"]):
    spec = importlib.util.spec_from_file_location("gpt_kernels_%d" % i, os.path.join(d, "model.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    nets.append(mod.Net.load(d).eval())
    feeds.append([torch.randn(s) for s in job["inputs"][i]])
n, runs = len(nets), job["runs"]
figs = [{"totalMs": 0.0, "batchNormMs": 0.0, "native": {"ms": 0.0, "macs": 0, "calls": 0}, "onednn": {"ms": 0.0, "macs": 0, "calls": 0}} for _ in nets]
KERNEL = {"aten::_slow_conv2d_forward": "native", "aten::mkldnn_convolution": "onednn"}
with torch.inference_mode():
    for i in range(n):
        for _ in range(2):
            nets[i](*feeds[i])
    # the models interleaved, order rotating; one profile per run, so every event is that model's.
    # The profiler's parent links are unreliable for events microseconds apart, so each aten::conv2d
    # is matched to its kernel by order: the k-th conv call runs the k-th conv kernel
    for r in range(runs):
        for k in range(n):
            i = (r + k) % n
            with profile(activities=[ProfilerActivity.CPU], with_flops=True) as p:
                with record_function("gpt_model"):
                    nets[i](*feeds[i])
            ev = sorted(p.events(), key=lambda e: e.time_range.start)
            convs = [e for e in ev if e.name == "aten::conv2d"]
            kernels = [KERNEL[e.name] for e in ev if e.name in KERNEL]
            if len(convs) != len(kernels):
                raise SystemExit("%d aten::conv2d calls but %d conv kernels" % (len(convs), len(kernels)))
            f = figs[i]
            f["totalMs"] += sum(e.cpu_time_total for e in ev if e.name == "gpt_model") / 1000.0 / runs
            f["batchNormMs"] += sum(e.cpu_time_total for e in ev if e.name == "aten::batch_norm") / 1000.0 / runs
            for e, kind in zip(convs, kernels):
                f[kind]["ms"] += e.cpu_time_total / 1000.0 / runs
                f[kind]["macs"] += (e.flops or 0) / 2 / runs  # the profiler counts a multiply-add as 2 flops
                f[kind]["calls"] += 1 / runs
out["models"] = figs
print(json.dumps(out))
`;

export interface KernelFigures {
  /** Per run: the convolutions on this kernel, their MACs (from torch's own flop count) and time, ms. */
  calls: number;
  macs: number;
  ms: number;
}

export interface KernelSplit {
  torch: string;
  threads: number;
  models: { label: string; totalMs: number; native: KernelFigures; onednn: KernelFigures; batchNormMs: number }[];
}

/**
 * Each exported module's convolutions split by the kernel torch's eager mode picked for them, per
 * run: count, MACs, time (inclusive CPU time of each aten::conv2d). `runs` profiled runs per model,
 * the models interleaved, `threads` thread(s). The counts and MACs are the same on every run; the
 * times move with the machine's load.
 */
export function torchKernels(models: { label: string; model: Model }[], threads: number, runs: number): KernelSplit {
  const python = torchPython();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'gpt-bench-torch-kernels-'));
  try {
    const dirs = models.map((m, i) => {
      const dir = path.join(work, `m${i}`);
      writePytorchExport(exportPytorch(m.model, { bn: 'keep' }), dir); // as profile --backend torch does
      return dir;
    });
    const inputs = models.map((m) => resolveInputs(m.model, {}).inputs.map((x) => x.dims));
    fs.writeFileSync(path.join(work, 'kernels.py'), KERNELS_PY);
    const out = JSON.parse(execFileSync(python, [path.join(work, 'kernels.py')], { input: JSON.stringify({ models: dirs, inputs, threads, runs }), encoding: 'utf8', maxBuffer: 64 << 20, env: runnerEnv(threads) }));
    return {
      torch: out.torch, threads: out.threads,
      models: (out.models as { totalMs: number; batchNormMs: number; native: KernelFigures; onednn: KernelFigures }[]).map((m, i) => ({ label: models[i].label, ...m })),
    };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Write a pair of in-memory models to `dir` for profile(), which reads files. */
export function savePair(dir: string, name: string, models: [Model, Model]): [string, string] {
  return models.map((m, i) => saveModel(m, path.join(dir, `${name}-${i}.onnx`)).path) as [string, string];
}
