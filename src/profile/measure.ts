/**
 * Latency measurement: inputs from a model's input signature, interleaved timed runs of several
 * sessions, and the statistics of the samples.
 *
 * Several models are run interleaved, one run each per round (A B, B A, A B, ...: the order rotates so
 * no model always runs right after the same other one). A machine whose speed drifts (thermal,
 * noisy neighbours) then slows every model alike, and the per-round ratio to the baseline stays put.
 */
import type * as ort from 'onnxruntime-node';
import { GptError } from '../errors';
import { loadOrt } from './ort';
import type { Dim } from '../ir/graph';
import type { Model } from '../ir/model';
import { dataTypeName } from '../onnx/schema';

export interface InputSpec {
  name: string;
  /** onnxruntime tensor type: 'float32', 'int64', ... */
  type: string;
  dims: number[];
}

export interface ResolvedInputs {
  inputs: InputSpec[];
  /** Symbolic dims and the values they took (for the cost model). */
  symbols: Record<string, number>;
  /** Items per run: the first dim of the first input. */
  batch: number;
}

/** ONNX TensorProto.DataType -> onnxruntime tensor type. */
const ORT_TYPES: Record<number, string> = { 1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64' };

/** Parse --shape values: "input=8x3x224x224" (an input's full shape) or "height=224" (a symbol). */
export function parseShapes(list: string[] | undefined): Record<string, number[]> {
  const out: Record<string, number[]> = Object.create(null);
  for (const item of list ?? []) {
    const m = /^([^=]+)=(\d+(?:[x,]\d+)*)$/.exec(item.trim());
    const dims = m ? m[2].split(/[x,]/).map(Number) : [];
    // each dim at most 2^20 and the whole shape at most 2^31 elements: a typo must not allocate terabytes
    if (!m || dims.length > 8 || dims.some((d) => d < 1 || d > 2 ** 20) || dims.reduce((a, b) => a * b, 1) > 2 ** 31) {
      throw new GptError('E_ARG', `--shape ${item}: expected NAME=DIMS with 1 to 8 dims, each from 1 to 1048576, at most 2^31 elements in all`, { hint: 'e.g. --shape input=8x3x224x224 or --shape height=224' });
    }
    out[m[1]] = dims;
  }
  return { ...out };
}

/**
 * The concrete input shapes for one batch size. A symbolic or unknown leading dim takes `batch`; any
 * other symbolic dim must be given by --shape (as the input's shape or the symbol's value). Fixed dims
 * must agree with --shape and, when the batch was asked for explicitly, with it.
 */
export function resolveInputs(model: Model, opts: { batch?: number; shapes?: Record<string, number[]> }, label = model.displayName): ResolvedInputs {
  const shapes = opts.shapes ?? {};
  const symbols: Record<string, number> = Object.create(null);
  const bind = (sym: string, v: number, where: string) => {
    if (Object.hasOwn(symbols, sym) && symbols[sym] !== v) {
      throw new GptError('E_ARG', `the shapes do not fit: symbol '${sym}' is ${symbols[sym]} in one place and ${v} in ${where}`, { subject: label });
    }
    symbols[sym] = v;
  };
  for (const [k, v] of Object.entries(shapes)) if (v.length === 1 && !model.graph.inputs.some((i) => i.name === k)) symbols[k] = v[0];
  const inputs: InputSpec[] = [];
  for (const v of model.graph.inputs) {
    if (v.tensor) continue; // old exporters list initializers as inputs
    const t = v.declared;
    const type = t ? ORT_TYPES[t.elemType] : undefined;
    if (!type) throw new GptError('E_ARG', `input '${v.name}' has an element type gpt cannot generate data for (${dataTypeName(t?.elemType)})`, { subject: label });
    const given = Object.hasOwn(shapes, v.name) ? shapes[v.name] : undefined;
    const declared: Dim[] | null = t!.shape;
    let dims: number[];
    if (given) {
      if (declared && declared.length !== given.length) {
        throw new GptError('E_ARG', `shape ${v.name}=${given.join('x')} does not fit: the input has rank ${declared.length} (${fmtShape(declared)})`, { subject: label, hint: `give ${declared.length} dims` });
      }
      declared?.forEach((d, i) => {
        if (typeof d === 'number' && d !== given[i]) {
          throw new GptError('E_ARG', `shape ${v.name}=${given.join('x')} does not fit: dim ${i} is fixed at ${d} (${fmtShape(declared)})`, { subject: label });
        }
        if (typeof d === 'string') bind(d, given[i], `--shape ${v.name}`);
      });
      dims = given;
    } else {
      if (!declared) throw new GptError('E_ARG', `input '${v.name}' has no declared shape`, { subject: label, hint: `give its shape (option shapes; --shape ${v.name}=DIMS on the command line)` });
      dims = declared.map((d, i) => {
        if (typeof d === 'number') return d;
        if (typeof d === 'string' && Object.hasOwn(symbols, d)) return symbols[d];
        if (i === 0) {
          const b = opts.batch ?? 1;
          if (typeof d === 'string') bind(d, b, 'the batch');
          return b;
        }
        throw new GptError('E_ARG', `input '${v.name}' dim ${i} is ${d === null ? 'unknown' : `symbolic ('${d}')`}: ${fmtShape(declared)}`, {
          subject: label,
          hint: typeof d === 'string' ? `give ${d} or the shape of ${v.name} (option shapes; --shape ${d}=N on the command line)` : `give the shape of ${v.name} (option shapes; --shape ${v.name}=DIMS on the command line)`,
        });
      });
    }
    if (opts.batch !== undefined && inputs.length === 0 && dims.length > 0 && dims[0] !== opts.batch) {
      throw new GptError('E_ARG', `batch ${opts.batch} does not fit: input '${v.name}' has a fixed batch of ${dims[0]} (${fmtShape(declared ?? dims)})`, {
        subject: label,
        hint: 'export the model with a dynamic batch axis, or leave out the batch size',
      });
    }
    // never allocate from a declared size without a bound: 2^28 elements (1 GiB of float32) per input
    const elements = dims.reduce((a, b) => a * b, 1);
    if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0) || elements > 2 ** 28) {
      throw new GptError('E_ARG', `input '${v.name}' of shape ${fmtShape(dims)} would take ${elements} elements, over gpt's limit of 2^28 per input`, {
        subject: label, hint: `give a smaller shape with --shape ${v.name}=DIMS`,
      });
    }
    inputs.push({ name: v.name, type: type!, dims });
  }
  if (inputs.length === 0) throw new GptError('E_ARG', 'the model has no inputs to feed', { subject: label });
  return { inputs, symbols: { ...symbols }, batch: inputs[0].dims[0] ?? 1 };
}

function fmtShape(s: Dim[]): string {
  return `[${s.map((d) => (d === null ? '?' : String(d))).join(', ')}]`;
}

/** mulberry32: a small seeded PRNG, so every run feeds the same data. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Input tensors: floats uniform in [-1, 1), integers 0, booleans false; the same for the same seed. */
export function makeFeeds(inputs: InputSpec[], seed = 1): Record<string, ort.Tensor> {
  const rnd = seededRandom(seed);
  const { Tensor } = loadOrt();
  const feeds: Record<string, ort.Tensor> = {};
  for (const i of inputs) {
    const n = i.dims.reduce((a, b) => a * b, 1);
    let data: ort.Tensor.DataType;
    switch (i.type) {
      case 'float32': {
        const f = new Float32Array(n);
        for (let k = 0; k < n; k++) f[k] = rnd() * 2 - 1;
        data = f;
        break;
      }
      case 'float64': {
        const f = new Float64Array(n);
        for (let k = 0; k < n; k++) f[k] = rnd() * 2 - 1;
        data = f;
        break;
      }
      case 'float16': {
        // half-precision bit patterns of values in [-1, 1): sign, exponent 0..14, random mantissa
        const f = new Uint16Array(n);
        for (let k = 0; k < n; k++) f[k] = (rnd() < 0.5 ? 0x8000 : 0) | (Math.floor(rnd() * 15) << 10) | Math.floor(rnd() * 1024);
        data = f;
        break;
      }
      case 'int64':
        data = new BigInt64Array(n);
        break;
      case 'uint64':
        data = new BigUint64Array(n);
        break;
      case 'int32':
        data = new Int32Array(n);
        break;
      case 'uint32':
        data = new Uint32Array(n);
        break;
      case 'int16':
        data = new Int16Array(n);
        break;
      case 'uint16':
        data = new Uint16Array(n);
        break;
      case 'int8':
        data = new Int8Array(n);
        break;
      default: // uint8, bool
        data = new Uint8Array(n);
    }
    feeds[i.name] = new Tensor(i.type as 'float32', data as Float32Array, i.dims);
  }
  return feeds;
}

export interface LatencyStats {
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** Sample standard deviation. */
  std: number;
  /** Coefficient of variation: std / mean. */
  cv: number;
}

/** Percentile with linear interpolation between the closest ranks (numpy's default). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const x = (sorted.length - 1) * (p / 100);
  const lo = Math.floor(x);
  const hi = Math.ceil(x);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo);
}

export function latencyStats(samples: number[]): LatencyStats {
  if (samples.length === 0) throw new GptError('E_ARG', 'no samples to summarise');
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  const variance = s.length > 1 ? s.reduce((a, b) => a + (b - mean) ** 2, 0) / (s.length - 1) : 0;
  const std = Math.sqrt(variance);
  return { min: s[0], mean, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s[s.length - 1], std, cv: mean > 0 ? std / mean : 0 };
}

/** A model's latency against the baseline's, from the per-round ratios of the interleaved runs. */
export interface RatioStats {
  /** Median of the per-round ratios. */
  median: number;
  p25: number;
  p75: number;
}

export function pairedRatio(samples: number[], baseline: number[]): RatioStats {
  const n = Math.min(samples.length, baseline.length);
  const r: number[] = [];
  for (let i = 0; i < n; i++) if (baseline[i] > 0) r.push(samples[i] / baseline[i]);
  r.sort((a, b) => a - b);
  return { median: percentile(r, 50), p25: percentile(r, 25), p75: percentile(r, 75) };
}

/**
 * Ratio of two independently timed sample sets (runs that did not alternate, e.g. trtexec's):
 * the ratio of medians, and a deliberately wide spread, p25(samples)/p75(baseline) to
 * p75(samples)/p25(baseline), since no run of one can be paired with a run of the other.
 */
export function unpairedRatio(samples: number[], baseline: number[]): RatioStats {
  const s = [...samples].sort((a, b) => a - b);
  const b = [...baseline].sort((a, b) => a - b);
  const q = (xs: number[], p: number) => percentile(xs, p);
  return { median: q(s, 50) / q(b, 50), p25: q(s, 25) / q(b, 75), p75: q(s, 75) / q(b, 25) };
}

export interface MeasureTarget {
  label: string;
  run: () => Promise<unknown>;
}

export interface MeasureOptions {
  warmup: number;
  /** Timed rounds; or */
  iterations?: number;
  /** Run rounds until this many seconds have passed (at least 3 rounds). */
  durationS?: number;
  /** Called after every run with the fraction done (0..1). */
  onTick?: (fraction: number) => void;
}

/** Time the targets interleaved; returns the samples (ms) of each target, round by round. */
export async function measureInterleaved(targets: MeasureTarget[], opts: MeasureOptions): Promise<number[][]> {
  const n = targets.length;
  const samples: number[][] = targets.map(() => []);
  const rounds = opts.iterations;
  const totalRuns = rounds !== undefined ? (opts.warmup + rounds) * n : 0;
  let runs = 0;
  const tick = (started: number) => {
    runs++;
    if (!opts.onTick) return;
    if (rounds !== undefined) opts.onTick(Math.min(1, runs / totalRuns));
    else opts.onTick(Math.min(1, (performance.now() - started) / (opts.durationS! * 1000)));
  };
  const t0 = performance.now();
  for (let w = 0; w < opts.warmup; w++) {
    for (const t of targets) {
      await t.run();
      tick(t0);
    }
  }
  const started = performance.now();
  for (let r = 0; ; r++) {
    if (rounds !== undefined ? r >= rounds : r >= 3 && performance.now() - started >= opts.durationS! * 1000) break;
    for (let k = 0; k < n; k++) {
      const i = (r + k) % n; // rotate who goes first
      const a = performance.now();
      await targets[i].run();
      samples[i].push(performance.now() - a);
      tick(rounds !== undefined ? t0 : started);
    }
  }
  return samples;
}
