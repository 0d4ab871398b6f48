/**
 * `profile(models, options)`: latency of one or more models on ONNX Runtime (or TensorRT's trtexec),
 * per batch size, with the ratio of each model to the first (the baseline) next to its MACs ratio,
 * and optionally per-node time by op type, stage and block.
 *
 *   models ─ load ─ cost model (MACs) ─┐
 *                                      ├─ per batch: sessions ─ warm-up ─ interleaved timed rounds ─ stats
 *   providers ─ ep / backend choice ───┘                └─ (--per-node) profiled session ─ aggregate
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type * as ortTypes from 'onnxruntime-node';
import { costModel } from '../analysis/cost';
import { recognize } from '../analysis/structure';
import type { Structure } from '../analysis/structure-types';
import { GptError, isGptError } from '../errors';
import type { Model } from '../ir/model';
import { loadModel, saveModel, saveModelToBuffer } from '../onnx/io';
import schema from '../schemas/profile.schema.json';
import { reportValidator } from '../report/schema';
import { LatencyStats, MeasureTarget, Measured, latencyStats, makeFeeds, measureAdaptive, resolveInputs, ResolvedInputs } from './measure';
import { RATIO_METHOD, StopReason, TARGET_PRECISION, ratioOfMedians, relativeHalfWidth, stabilityWarnings } from './stats';
import { PerNodeReport, aggregateProfile, detectorPlaces, findProfileFile, readOrtProfile } from './node-profile';
import { createSession, ortVersion } from './ort';
import { EpName, EP_NAMES, ProviderEnvironment, ProviderStatus, detectProviders, unavailableEpError } from './providers';
import { findTrtexec, runTrtexec, trtLayersAsProfile } from './trtexec';
import { profileTorch } from './torch';
import { envelope, ReportEnvelope } from '../report/envelope';

export type { LatencyStats, RatioStats } from './measure';
export type { PerNodeReport } from './node-profile';
export type { EpName, ProviderStatus } from './providers';

export interface ProfileOptions {
  ep?: EpName;
  /** Batch sizes (default: the model's own, or 1 for a symbolic batch). */
  batches?: number[];
  /** --shape: input name -> full shape, or symbol -> [value]. */
  shapes?: Record<string, number[]>;
  /** Runs per model discarded before timing (default 5). */
  warmup?: number;
  /** Timed runs per model (a fixed count; by default the runs are adaptive, see maxTimeS). */
  iterations?: number;
  /** Time each batch for this many seconds instead of a fixed count. */
  durationS?: number;
  /** Adaptive runs (the default): keep timing until every ratio's 95% interval is within ±2%, or this many seconds per batch size have passed (default 60). */
  maxTimeS?: number;
  /** ORT intra-op threads (default: ORT's, one per physical core). */
  threads?: number;
  /** Build TensorRT engines in fp16 (tensorrt only). */
  fp16?: boolean;
  perNode?: boolean;
  /**
   * Keep onnxruntime's profile (Chrome trace format; opens in Perfetto / chrome://tracing) at this
   * path; implies perNode. Several models or batch sizes: FILE-<model>-b<batch>.json beside it.
   */
  trace?: string;
  /** Make nodes that fell back to the CPU provider an error (E_EP). */
  requireEp?: boolean;
  /** Seed of the input data (default 1). */
  seed?: number;
  /** Labels for the models (default: file names). */
  labels?: string[];
  /** Progress of the whole job, 0..1, with what runs now. */
  onProgress?: (fraction: number, what: string) => void;
  /** For tests: the binding / bin folder to detect providers from, and where trtexec is. */
  providerEnvironment?: ProviderEnvironment;
  trtexec?: string | null;
  /** 'torch': time the PyTorch export of each model in a Python runner (src/profile/torch.ts). */
  backend?: 'onnxruntime' | 'torch';
  /** torch backend: 'cpu' (default) or 'cuda'. */
  device?: 'cpu' | 'cuda';
  /** torch backend: torch.compile each module (PyTorch 2). */
  compile?: boolean;
}

export interface ModelRun {
  batch: number;
  inputs: { name: string; type: string; dims: number[] }[];
  macs: number;
  iterations: number;
  latencyMs: LatencyStats;
  /** Items per second at the mean latency. */
  throughput: number;
  /** MACs (cost model) / mean latency, in GMAC/s. */
  gmacPerS: number;
  samplesMs: number[];
  /** Why timing stopped: the interval reached ±2% ('precision'), the --max-time budget ran out ('budget'), or a fixed --iterations / --duration ('iterations'). */
  stoppedBy: StopReason;
  /** Against the first model at the same batch (null for the baseline itself): ratio of medians, p50 / p50(baseline), with its 95% bootstrap interval. */
  vsBaseline: { latencyRatio: number; latencyRatioLow: number; latencyRatioHigh: number; macsRatio: number } | null;
}

export interface ModelProfile {
  label: string;
  file: string | null;
  params: number;
  structure: { family: string; stages: number; blocks: number } | null;
  runs: ModelRun[];
  perNode: PerNodeReport[];
}

export interface ProfileReport extends ReportEnvelope<'profile'> {
  ep: EpName;
  backend: 'onnxruntime' | 'trtexec' | 'torch';
  settings: {
    batches: number[] | null;
    warmup: number;
    iterations: number | null;
    durationS: number | null;
    /** Adaptive runs: the time budget per batch size and the interval's target half-width; null with --iterations / --duration. */
    maxTimeS: number | null;
    precision: number | null;
    /** How latencyRatio and its interval are computed. */
    ratioMethod: string;
    threads: number | null;
    fp16: boolean;
    perNode: boolean;
    seed: number;
    interleaved: boolean;
  };
  environment: {
    platform: string; arch: string; cpus: number; cpuModel: string; node: string; onnxruntime: string;
    /** os.loadavg() (1, 5, 15 min) when timing started and when it ended. */
    loadavg: { start: number[]; end: number[] };
    /** Thread settings: ORT intra-op threads (null: ORT's default, one per physical core), OMP_NUM_THREADS. */
    threads: { intraOp: number | null; interOp: number | null; ompNumThreads: string | null };
    /** --backend torch: the runner's torch and the BLAS its native convolution path calls (see classifyTorchBlas). */
    torch?: { version: string; blasInfo: string | null; blas: string[]; blasKind: 'optimized' | 'reference' | 'unknown' };
  };
  providers: ProviderStatus[];
  models: ModelProfile[];
  /** onnxruntime profiles kept with --trace (Chrome trace format). */
  traces: string[];
  warnings: string[];
}

interface Loaded {
  label: string;
  /** The file the model came from (for the report), if any. */
  file: string | null;
  /**
   * What to run: the file as given, or the in-memory model as passed, serialized once (never its
   * sourcePath); the Model itself when it is too large for one buffer (createSession then goes
   * through a temporary file).
   */
  source: string | Uint8Array | Model;
  model: Model;
  params: number;
  structure: Structure | null;
}

function checkOptions(o: ProfileOptions): void {
  const int = (v: number | undefined, flag: string, min: number) => {
    if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new GptError('E_ARG', `${flag} ${v}: expected an integer >= ${min}`);
  };
  if (o.ep !== undefined && !EP_NAMES.includes(o.ep)) throw new GptError('E_ARG', `ep '${o.ep}': expected one of ${EP_NAMES.join(', ')}`);
  int(o.iterations, '--iterations', 1);
  int(o.warmup, '--warmup', 0);
  int(o.threads, '--threads', 1);
  for (const b of o.batches ?? []) int(b, '--batch', 1);
  const fixed = [o.iterations !== undefined && 'iterations', o.durationS !== undefined && 'durationS', o.maxTimeS !== undefined && 'maxTimeS'].filter(Boolean);
  if (fixed.length > 1) throw new GptError('E_ARG', `${fixed.join(' and ')} exclude each other`, { hint: 'give one of them' });
  if (o.maxTimeS !== undefined && !(o.maxTimeS > 0)) throw new GptError('E_ARG', `maxTimeS ${o.maxTimeS}: expected seconds > 0`);
  if (o.durationS !== undefined && !(o.durationS > 0)) throw new GptError('E_ARG', `durationS ${o.durationS}: expected seconds > 0`);
  if (o.fp16 && (o.ep ?? 'cpu') !== 'tensorrt') {
    throw new GptError('E_ARG', `fp16 applies to ep 'tensorrt' only`, { hint: 'for cpu / cuda, profile a float16 export of the model instead' });
  }
}

/** Stage info is a nicety: a model no rule recognises still gets its latency report. */
function recognizeSafely(model: Model, warnings: string[], label: string): Structure | null {
  try {
    const s = recognize(model);
    return s.stages.length ? s : null;
  } catch (e) {
    warnings.push(`${label}: no stage info (${(e as Error).message.split('\n')[0]})`);
    return null;
  }
}

export async function profile(models: (string | Model)[], options: ProfileOptions = {}): Promise<ProfileReport> {
  checkOptions(options);
  if (models.length === 0) throw new GptError('E_ARG', 'no model to profile');
  if (options.backend === 'torch') return profileTorch(models, options);
  const ep: EpName = options.ep ?? 'cpu';
  if (options.trace) options = { ...options, perNode: true };
  const warmup = options.warmup ?? 5;
  const iterations = options.iterations;
  const adaptive = iterations === undefined && options.durationS === undefined;
  const maxTimeS = adaptive ? options.maxTimeS ?? 60 : null;
  const loadStart = os.loadavg();
  const seed = options.seed ?? 1;
  const warnings: string[] = [];
  const traces: string[] = [];

  // the provider first: a missing EP is reported before any model is loaded
  const providers = detectProviders(options.providerEnvironment);
  const status = providers.find((p) => p.name === ep)!;
  let backend: ProfileReport['backend'] = 'onnxruntime';
  let trtexec: string | null = null;
  if (!status.available) {
    trtexec = ep === 'tensorrt' ? (options.trtexec !== undefined ? options.trtexec : findTrtexec()) : null;
    if (!trtexec) throw unavailableEpError(ep, status);
    backend = 'trtexec';
    warnings.push(`onnxruntime-node has no TensorRT provider here (missing: ${status.missing.join(', ')}); measured with ${trtexec}`);
  }

  const loaded: Loaded[] = models.map((m, i) => {
    const model = typeof m === 'string' ? loadModel(m) : m;
    const file = typeof m === 'string' ? m : model.sourcePath ?? null;
    const label = options.labels?.[i] ?? (file ? path.basename(file) : `model ${i + 1}`);
    const params = costModel(model).totals.params;
    const structure = recognizeSafely(model, warnings, label);
    return { label, file, source: typeof m === 'string' ? m : inMemorySource(model, label, warnings), model, params, structure };
  });

  // every --shape name must mean something to at least one model
  for (const name of Object.keys(options.shapes ?? {})) {
    const known = loaded.some(({ model }) => model.graph.inputs.some((v) => v.name === name || v.declared?.shape?.includes(name)));
    if (!known) {
      const inputs = [...new Set(loaded.flatMap(({ model }) => model.graph.inputs.filter((v) => !v.tensor).map((v) => v.name)))];
      throw new GptError('E_ARG', `shape '${name}': no input or symbolic dim of that name`, { hint: `inputs: ${inputs.join(', ')}` });
    }
  }

  const batchList: (number | undefined)[] = options.batches?.length ? options.batches : [undefined];
  const plan = batchList.map((b) => loaded.map((l) => resolveInputs(l.model, { batch: b, shapes: options.shapes }, l.label)));
  const results: ModelProfile[] = loaded.map((l) => ({
    label: l.label,
    file: l.file,
    params: l.params,
    structure: l.structure ? { family: l.structure.family, stages: l.structure.stages.length, blocks: l.structure.stages.reduce((a, s) => a + s.blocks.length, 0) } : null,
    runs: [],
    perNode: [],
  }));

  const steps = batchList.length * (1 + (options.perNode ? 1 : 0));
  let step = 0;
  const progress = (within: number, what: string) => options.onProgress?.(Math.min(1, (step + within) / steps), what);

  for (const resolved of plan) {
    const macs = resolved.map((r, i) => costModel(loaded[i].model, { dims: r.symbols }).totals.macs);
    const what = `batch ${resolved[0].batch}`;
    let samples: number[][];
    let measured: Measured = { samples: [], stoppedBy: 'iterations', halfWidth: NaN };
    let nodeReports: (PerNodeReport | null)[] = loaded.map(() => null);
    if (backend === 'trtexec') {
      samples = [];
      for (let i = 0; i < loaded.length; i++) {
        progress(i / loaded.length, `${what}: trtexec ${loaded[i].label}`);
        // trtexec times each model on its own: no interleaving, so no adaptive rounds (100 runs unless told)
        const r = await trtexecRun(trtexec!, loaded[i], resolved[i], options, warmup, iterations ?? (options.durationS !== undefined ? undefined : 100));
        samples.push(r.samplesMs);
        if (options.perNode) {
          nodeReports[i] = aggregateProfile(trtLayersAsProfile(r.layers, loaded[i].model.graph), {
            batch: resolved[i].batch, ep, skipRuns: 0, graph: loaded[i].model.graph, structure: loaded[i].structure, detector: detectorPlaces(loaded[i].model, loaded[i].structure),
          });
        }
      }
      if (options.perNode) step++;
    } else {
      const sessionOptions = (extra: ortTypes.InferenceSession.SessionOptions = {}): ortTypes.InferenceSession.SessionOptions => ({
        executionProviders: [ep],
        ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
        ...extra,
      });
      const sessions = [];
      for (let i = 0; i < loaded.length; i++) sessions.push(await openSession(loaded[i], ep, sessionOptions()));
      try {
        const targets: MeasureTarget[] = sessions.map((s, i) => {
          const feeds = makeFeeds(resolved[i].inputs, seed);
          return { label: loaded[i].label, run: () => s.run(feeds) };
        });
        measured = await measureAdaptive(targets, { warmup, iterations, durationS: options.durationS, maxTimeS: maxTimeS ?? undefined, onTick: (f) => progress(f, `${what}: timing`) });
        samples = measured.samples;
      } finally {
        for (const s of sessions) await s.release();
      }
      step++;
      if (options.perNode) {
        nodeReports = [];
        for (let i = 0; i < loaded.length; i++) {
          progress(i / loaded.length, `${what}: per-node profile of ${loaded[i].label}`);
          const keep = options.trace ? traceFile(options.trace, loaded.length > 1 ? i : null, plan.length > 1 ? resolved[i].batch : null) : undefined;
          nodeReports.push(await ortNodeProfile(loaded[i], resolved[i], ep, sessionOptions, warmup, Math.min(iterations ?? 20, 20), seed, keep));
          if (keep) traces.push(keep);
        }
        step++;
      }
    }

    for (let i = 0; i < loaded.length; i++) {
      const st = latencyStats(samples[i]);
      // runs pair up only when they alternated (onnxruntime); trtexec times each model on its own
      const r = ratioOfMedians(samples[i], samples[0], { paired: backend === 'onnxruntime' });
      results[i].runs.push({
        batch: resolved[i].batch,
        inputs: resolved[i].inputs,
        macs: macs[i],
        iterations: samples[i].length,
        latencyMs: st,
        throughput: st.mean > 0 ? (resolved[i].batch * 1000) / st.mean : 0,
        gmacPerS: st.mean > 0 ? macs[i] / (st.mean / 1000) / 1e9 : 0,
        samplesMs: samples[i],
        stoppedBy: measured.stoppedBy,
        vsBaseline: i === 0 ? null : { latencyRatio: r.ratio, latencyRatioLow: r.low, latencyRatioHigh: r.high, macsRatio: macs[0] > 0 ? macs[i] / macs[0] : 0 },
      });
      // the budget note once per batch (on the baseline row when it is alone, else on each compared model)
      const own = loaded.length > 1 ? (i > 0 ? relativeHalfWidth(r) : 0) : relativeHalfWidth(ratioOfMedians(samples[0], null));
      warnings.push(...stabilityWarnings({
        label: loaded[i].label, batch: resolved[i].batch, ratio: i > 0 ? r : null, cv: st.cv, rounds: samples[i].length,
        stoppedBy: i === 0 && loaded.length > 1 ? 'iterations' : measured.stoppedBy, maxTimeS, halfWidth: own,
      }, os.loadavg()));
      const nr = nodeReports[i];
      if (nr) {
        results[i].perNode.push(nr);
        if (nr.cpuFallback && nr.cpuFallback.count > 0) {
          const msg = `${loaded[i].label}: ${nr.cpuFallback.count} node(s) ran on the CPU provider, not ${ep}: ${nr.cpuFallback.kernels.slice(0, 8).join(', ')}${nr.cpuFallback.count > 8 ? ', ...' : ''}`;
          if (options.requireEp) throw new GptError('E_EP', msg, { subject: loaded[i].file ?? loaded[i].label, hint: `these ops have no ${ep} kernel; leave out requireEp (--require-ep) to accept the fallback` });
          warnings.push(msg);
        }
      }
    }
  }
  options.onProgress?.(1, 'done');

  return {
    ...envelope('profile'),
    ep,
    backend,
    settings: {
      batches: options.batches?.length ? options.batches : null,
      warmup,
      iterations: iterations ?? null,
      durationS: options.durationS ?? null,
      maxTimeS,
      precision: adaptive ? TARGET_PRECISION : null,
      ratioMethod: RATIO_METHOD,
      threads: options.threads ?? null,
      fp16: !!options.fp16,
      perNode: !!options.perNode,
      seed,
      interleaved: backend === 'onnxruntime' && loaded.length > 1,
    },
    environment: { platform: process.platform, arch: process.arch, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, onnxruntime: ortVersion(),
      loadavg: { start: loadStart, end: os.loadavg() },
      threads: { intraOp: options.threads ?? null, interOp: null, ompNumThreads: process.env.OMP_NUM_THREADS ?? null },
    },
    providers,
    models: results,
    traces,
    warnings,
  };
}

/**
 * The bytes of an in-memory model, as it is now. When they differ from the bytes it was loaded from,
 * the report says so: the figures are the changed model's, not its file's.
 */
function inMemorySource(model: Model, label: string, warnings: string[]): Uint8Array | Model {
  let bytes: Uint8Array;
  try {
    bytes = saveModelToBuffer(model);
  } catch (e) {
    if (isGptError(e) && e.code === 'E_TOO_LARGE') return model;
    throw e;
  }
  const loaded = model.sourceSha256;
  if (loaded && model.sourcePath && createHash('sha256').update(bytes).digest('hex') !== loaded) {
    warnings.push(`${label}: profiled as changed in memory, not as the file ${model.sourcePath} it was loaded from`);
  }
  return bytes;
}

/** A session for the model; a non-CPU EP failing to start is E_EP, anything else stays E_ORT. */
async function openSession(l: Loaded, ep: EpName, opts: ortTypes.InferenceSession.SessionOptions): Promise<ortTypes.InferenceSession> {
  try {
    return await createSession(l.source, opts, l.file ?? l.label);
  } catch (e) {
    if (ep !== 'cpu' && isGptError(e) && /provider|shared library|cuda|tensorrt|nvinfer/i.test(e.message)) {
      throw new GptError('E_EP', `execution provider '${ep}' failed to start: ${e.message.replace(/^onnxruntime rejected the model: /, '')}`, {
        subject: e.subject,
        hint: ep === 'cuda' ? 'check the NVIDIA driver and CUDA 12 / cuDNN 9 libraries (LD_LIBRARY_PATH), or use --ep cpu' : 'check the TensorRT libraries (LD_LIBRARY_PATH), or use --ep cuda',
      });
    }
    throw e;
  }
}

/** FILE.json, or FILE-<model>-b<batch>.json when several models / batch sizes are profiled. */
export function traceFile(base: string, model: number | null, batch: number | null): string {
  if (model === null && batch === null) return base;
  const ext = path.extname(base) || '.json';
  const stem = base.slice(0, base.length - path.extname(base).length);
  return `${stem}${model !== null ? `-${model + 1}` : ''}${batch !== null ? `-b${batch}` : ''}${ext}`;
}

/** A separate profiled session, so profiling overhead never touches the timed runs. */
async function ortNodeProfile(
  l: Loaded, r: ResolvedInputs, ep: EpName,
  sessionOptions: (extra: ortTypes.InferenceSession.SessionOptions) => ortTypes.InferenceSession.SessionOptions,
  warmup: number, runs: number, seed: number, keep?: string,
): Promise<PerNodeReport> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpt-profile-'));
  try {
    const prefix = 'ort';
    const s = await openSession(l, ep, sessionOptions({ enableProfiling: true, profileFilePrefix: path.join(dir, prefix) }));
    const feeds = makeFeeds(r.inputs, seed);
    const skip = Math.max(1, warmup); // the first run always pays one-time allocation costs
    for (let k = 0; k < skip + runs; k++) await s.run(feeds);
    s.endProfiling();
    await s.release();
    const file = findProfileFile(dir, prefix);
    if (!file) throw new GptError('E_ORT', 'onnxruntime wrote no profile file', { subject: l.file ?? l.label });
    if (keep) {
      try {
        fs.copyFileSync(file, keep);
      } catch (e) {
        throw new GptError('E_IO', `cannot write the trace: ${(e as Error).message}`, { subject: keep });
      }
    }
    return aggregateProfile(readOrtProfile(file), { batch: r.batch, ep, skipRuns: skip, graph: l.model.graph, structure: l.structure, detector: detectorPlaces(l.model, l.structure) });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function trtexecRun(bin: string, l: Loaded, r: ResolvedInputs, o: ProfileOptions, warmup: number, iterations: number | undefined) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpt-trtexec-'));
  try {
    // trtexec reads files: an in-memory model is written out as it is now
    let onnx: string;
    if (typeof l.source === 'string') onnx = l.source;
    else if (l.source instanceof Uint8Array) fs.writeFileSync((onnx = path.join(dir, 'model.onnx')), l.source);
    else onnx = saveModel(l.model, path.join(dir, 'model.onnx')).path;
    const dynamic = l.model.graph.inputs.some((v) => !v.tensor && (v.declared?.shape ?? [null]).some((d) => typeof d !== 'number'));
    return await runTrtexec(bin, { onnx, inputs: r.inputs, dynamic, fp16: !!o.fp16, warmup, iterations, durationS: o.durationS, workDir: dir }, l.file ?? l.label);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Check a report (as its JSON text would read back) against src/schemas/profile.schema.json; E_SCHEMA when not. */
export const validateProfileReport: (report: unknown) => asserts report is ProfileReport = reportValidator<ProfileReport>(schema, 'profile');
