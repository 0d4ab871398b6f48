/**
 * What gpt's measurement adds over a bare onnxruntime-node loop on the same model (npm run bench --
 * profile). Comparing two p50s taken one after the other compares two time windows of a machine
 * whose load moves by more than any overhead; so the two sides are interleaved run by run instead:
 *
 *   round r:  bare run  (t = now; await bare.run(feeds); now - t)
 *             gpt run   (measureAdaptive, the loop profile() times with, one round of the target
 *                        profile() builds: () => session.run(feeds))          — order alternating
 *
 * Both sides run the same input tensors (made once, reused, as profile() does) and fetch the same
 * outputs, on sessions with the same options (one intra-op thread: on a shared machine a run split
 * over two threads also times the wait for a core another process holds). gpt's session is opened
 * the way profile() opens it (createSession, onnxruntime's log off), the bare one with
 * ort.InferenceSession.create; both are reopened every block of rounds, so no one session's memory
 * placement decides the result. Per run, three figures, each compared as the paired ratio of medians
 * (gpt / bare) with its 95% bootstrap interval over the rounds:
 *   - reported: the latency each side records (gpt: its own sample; bare: the hand-timed run);
 *   - wall: the whole call as the bench sees it (gpt's includes its per-round bookkeeping);
 *   - CPU: process.cpuUsage() around the whole call, the figure the load disturbs least.
 * The adaptive stopping rule's checks run between rounds, outside every timed window; their cost per
 * round is reported apart.
 */
import * as os from 'node:os';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../../src/onnx/io';
import { makeFeeds, measureAdaptive, resolveInputs } from '../../src/profile/measure';
import { createSession } from '../../src/profile/ort';
import { median, precise, ratioOfMedians, RatioStats } from '../../src/profile/stats';

const ROUNDS = Number(process.env.GPT_BENCH_OVERHEAD_ROUNDS ?? 120);
const BLOCKS = Number(process.env.GPT_BENCH_OVERHEAD_BLOCKS ?? 4);
const WARMUP = 5;
const THREADS = 1;

export interface OverheadFigures {
  rounds: number;
  blocks: number;
  threads: { intraOp: number; interOp: null; ompNumThreads: string | null };
  loadavg: { start: number[]; end: number[] };
  /** Medians, ms. */
  gpt: { reportedMs: number; wallMs: number; cpuMs: number };
  bare: { reportedMs: number; wallMs: number; cpuMs: number };
  /** gpt / bare, paired ratio of medians with its 95% interval. */
  reported: RatioStats;
  wall: RatioStats;
  cpu: RatioStats;
  /** The adaptive stopping rule's check (between rounds): ms per check, and per round at its usual spacing. */
  checkMs: number;
  checkPerRoundMs: number;
}

interface Side {
  reported: number[];
  wall: number[];
  cpu: number[];
}

export async function profileOverhead(modelPath: string): Promise<OverheadFigures> {
  const model = loadModel(modelPath);
  const feeds = makeFeeds(resolveInputs(model, {}).inputs, 1);
  const options: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], intraOpNumThreads: THREADS };
  const gpt: Side = { reported: [], wall: [], cpu: [] };
  const bare: Side = { reported: [], wall: [], cpu: [] };
  const loadStart = os.loadavg();
  const perBlock = Math.ceil(ROUNDS / BLOCKS);
  for (let b = 0; b < BLOCKS; b++) {
    const gptSession = await createSession(modelPath, options);
    const bareSession = await ort.InferenceSession.create(modelPath, options);
    // what profile() times: its target, in its loop
    const target = { label: 'gpt', run: () => gptSession.run(feeds) };
    const bareRun = async (keep: boolean) => {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const t = performance.now();
      await bareSession.run(feeds);
      const reported = performance.now() - t;
      const wall = performance.now() - t0;
      const c = process.cpuUsage(c0);
      if (keep) push(bare, reported, wall, (c.user + c.system) / 1000);
    };
    const gptRun = async (keep: boolean) => {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const m = await measureAdaptive([target], { warmup: 0, iterations: 1 });
      const wall = performance.now() - t0;
      const c = process.cpuUsage(c0);
      if (keep) push(gpt, m.samples[0][0], wall, (c.user + c.system) / 1000);
    };
    try {
      for (let r = 0; r < WARMUP + perBlock; r++) {
        const keep = r >= WARMUP;
        // alternate who goes first
        if ((r + b) % 2 === 0) {
          await bareRun(keep);
          await gptRun(keep);
        } else {
          await gptRun(keep);
          await bareRun(keep);
        }
      }
    } finally {
      await gptSession.release();
      await bareSession.release();
    }
  }
  // the stopping rule's check on samples of this size (one model: its median's own interval)
  const t0 = performance.now();
  const checks = 5;
  for (let i = 0; i < checks; i++) precise([gpt.reported]);
  const checkMs = (performance.now() - t0) / checks;
  const every = Math.max(5, Math.floor(gpt.reported.length / 10));
  return {
    rounds: gpt.reported.length,
    blocks: BLOCKS,
    threads: { intraOp: THREADS, interOp: null, ompNumThreads: process.env.OMP_NUM_THREADS ?? null },
    loadavg: { start: loadStart, end: os.loadavg() },
    gpt: { reportedMs: median(gpt.reported), wallMs: median(gpt.wall), cpuMs: median(gpt.cpu) },
    bare: { reportedMs: median(bare.reported), wallMs: median(bare.wall), cpuMs: median(bare.cpu) },
    reported: ratioOfMedians(gpt.reported, bare.reported, { paired: true }),
    wall: ratioOfMedians(gpt.wall, bare.wall, { paired: true }),
    cpu: ratioOfMedians(gpt.cpu, bare.cpu, { paired: true }),
    checkMs,
    checkPerRoundMs: checkMs / every,
  };
}

function push(s: Side, reported: number, wall: number, cpu: number): void {
  s.reported.push(reported);
  s.wall.push(wall);
  s.cpu.push(cpu);
}
