/**
 * The emit forms in onnxruntime's own profile (npm run bench -- kernels): per model, the layout
 * kernels onnxruntime inserts (a count, the same on every run of the same build: no timing in it)
 * and the per-run kernel time, summed over every kernel and split into convolutions, layout kernels
 * and the rest. Wall-clock ratios on a loaded machine swing by more than the forms differ; the
 * kernel sums leave out the time between kernels and show where a difference comes from.
 *
 * Each round opens a profiled session per form and runs them interleaved (order rotating), one
 * warm-up run and then `runs` profiled runs each. Per-run kernel sums of the same round and run index
 * pair up, so the ratio to the first model is the project's ratio of medians with its paired 95%
 * bootstrap interval. One intra-op thread by default: on a shared machine a kernel split over two
 * threads also times the wait for a core another process holds; on one thread it is its own work.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Model } from '../../src/ir/model';
import { makeFeeds, resolveInputs } from '../../src/profile/measure';
import { findProfileFile, LAYOUT_KERNELS, ParsedProfile, readOrtProfile } from '../../src/profile/node-profile';
import { createSession } from '../../src/profile/ort';
import { median, ratioOfMedians, RatioStats } from '../../src/profile/stats';

export interface KernelFigures {
  label: string;
  /** Layout kernels (ReorderInput / ReorderOutput) and all kernels ORT runs per run, after its fusions. */
  layoutKernels: number;
  kernels: number;
  /** Medians over all profiled runs of the per-run sums, ms. */
  kernelMs: number;
  convMs: number;
  layoutMs: number;
  otherMs: number;
  /** Summed kernel time against the first model's (null for the first). */
  vsFirst: RatioStats | null;
}

/**
 * Every form's session open at once, each with its profiler on; run k of every form in rotating
 * order, so run k of each form meets the same load (as the timed rounds of gpt profile do).
 */
async function profiledRounds(models: Model[], runs: number, threads: number): Promise<ParsedProfile[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpt-bench-kernels-'));
  try {
    const sessions = [];
    for (let i = 0; i < models.length; i++) {
      sessions.push(await createSession(models[i], { executionProviders: ['cpu'], intraOpNumThreads: threads, enableProfiling: true, profileFilePrefix: path.join(dir, `m${i}`) }));
    }
    const feeds = models.map((m) => makeFeeds(resolveInputs(m, {}).inputs, 1));
    for (let k = 0; k < 1 + runs; k++) {
      for (let j = 0; j < models.length; j++) {
        const i = (j + k) % models.length;
        await sessions[i].run(feeds[i]);
      }
    }
    const out: ParsedProfile[] = [];
    for (let i = 0; i < models.length; i++) {
      sessions[i].endProfiling();
      await sessions[i].release();
      const file = findProfileFile(dir, `m${i}`);
      if (!file) throw new Error('onnxruntime wrote no profile');
      out.push(readOrtProfile(file));
    }
    return out;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

type Kind = 'all' | 'conv' | 'layout' | 'other';
const kindOf = (opType: string): Exclude<Kind, 'all'> => (LAYOUT_KERNELS.has(opType) ? 'layout' : /Conv/.test(opType) ? 'conv' : 'other');

/** Per-run sums (run 0, the warm-up, left out), by kind. */
function perRun(p: ParsedProfile): Record<Kind, number[]> {
  const n = p.runsUs.length;
  const out: Record<Kind, number[]> = { all: new Array(n).fill(0), conv: new Array(n).fill(0), layout: new Array(n).fill(0), other: new Array(n).fill(0) };
  for (const k of p.kernels) {
    if (k.run < 0) continue;
    out.all[k.run] += k.durUs / 1000;
    out[kindOf(k.opType)][k.run] += k.durUs / 1000;
  }
  for (const key of Object.keys(out) as Kind[]) out[key] = out[key].slice(1);
  return out;
}

export async function emitKernels(models: { label: string; model: Model }[], rounds: number, runs: number, threads = 1): Promise<KernelFigures[]> {
  const sums = models.map(() => ({ all: [], conv: [], layout: [], other: [] }) as Record<Kind, number[]>);
  const counts = models.map(() => ({ layout: 0, kernels: 0 }));
  for (let r = 0; r < rounds; r++) {
    const got = await profiledRounds(models.map((m) => m.model), runs, threads);
    got.forEach((p, i) => {
      const s = perRun(p);
      for (const key of Object.keys(s) as Kind[]) sums[i][key].push(...s[key]);
      const run1 = p.kernels.filter((k) => k.run === 1);
      counts[i] = { layout: run1.filter((k) => LAYOUT_KERNELS.has(k.opType)).length, kernels: run1.length };
    });
  }
  return models.map((m, i) => ({
    label: m.label,
    layoutKernels: counts[i].layout,
    kernels: counts[i].kernels,
    kernelMs: median(sums[i].all),
    convMs: median(sums[i].conv),
    layoutMs: median(sums[i].layout),
    otherMs: median(sums[i].other),
    vsFirst: i === 0 ? null : ratioOfMedians(sums[i].all, sums[0].all, { paired: true }),
  }));
}

export interface CpuFigures {
  label: string;
  /** Medians over runs, ms: the process's CPU time (user + system) and the wall time of a run. */
  cpuMs: number;
  wallMs: number;
  vsFirst: RatioStats | null;
  /** CPU time of each run, ms, in run order (run k of every form met the same load). */
  cpuSamples: number[];
}

/**
 * CPU time per run on one intra-op thread: what a run costs in work, the figure a loaded machine
 * disturbs least (a run preempted by another process waits, and the wait is not CPU time). Sessions
 * open at once, runs interleaved in rotating order, paired by run index.
 */
export async function emitCpuTime(models: { label: string; model: Model }[], runs: number, warmup = 3): Promise<CpuFigures[]> {
  const sessions = [];
  for (const m of models) sessions.push(await createSession(m.model, { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 }));
  const feeds = models.map((m) => makeFeeds(resolveInputs(m.model, {}).inputs, 1));
  const cpu = models.map(() => [] as number[]);
  const wall = models.map(() => [] as number[]);
  try {
    for (let k = 0; k < warmup + runs; k++) {
      for (let j = 0; j < models.length; j++) {
        const i = (j + k) % models.length;
        const c0 = process.cpuUsage();
        const t0 = performance.now();
        await sessions[i].run(feeds[i]);
        const t1 = performance.now();
        const c = process.cpuUsage(c0);
        if (k < warmup) continue;
        cpu[i].push((c.user + c.system) / 1000);
        wall[i].push(t1 - t0);
      }
    }
  } finally {
    for (const s of sessions) await s.release();
  }
  return models.map((m, i) => ({ label: m.label, cpuMs: median(cpu[i]), wallMs: median(wall[i]), vsFirst: i === 0 ? null : ratioOfMedians(cpu[i], cpu[0], { paired: true }), cpuSamples: cpu[i] }));
}
