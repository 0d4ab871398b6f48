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
import { StopReason, precise, TARGET_PRECISION, seededRandom } from './stats';

export type { LatencyStats, RatioStats } from './stats';
export { latencyStats, percentile, ratioOfMedians, seededRandom } from './stats';

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

export interface MeasureTarget {
  label: string;
  run: () => Promise<unknown>;
}

export interface MeasureOptions {
  warmup: number;
  /** A fixed number of timed rounds (--iterations); or */
  iterations?: number;
  /** Run rounds until this many seconds have passed (at least 3 rounds; --duration); or, by default, */
  durationS?: number;
  /** adaptive: run until every ratio's 95% interval is within ±precision, or maxTimeS runs out. */
  maxTimeS?: number;
  precision?: number;
  /** Called after every run with the fraction done (0..1). */
  onTick?: (fraction: number) => void;
  /** The clock, ms (tests inject a fake one; default performance.now). */
  now?: () => number;
}

export interface Measured {
  /** Samples (ms) of each target, round by round. */
  samples: number[][];
  stoppedBy: StopReason;
  /** Relative half-width of the worst 95% interval at the end (adaptive runs; else NaN). */
  halfWidth: number;
}

/** The adaptive run checks its stopping rule after every this many rounds (at least 5, about every 10%). */
function checkEvery(rounds: number): number {
  return Math.max(5, Math.floor(rounds / 10));
}

/** Time the targets interleaved, rotating who goes first each round. */
export async function measureInterleaved(targets: MeasureTarget[], opts: MeasureOptions): Promise<number[][]> {
  return (await measureAdaptive(targets, opts)).samples;
}

/**
 * Tests replace the timing with recorded samples (a preload script can do it for the CLI too): the
 * source gets the targets and options and returns what measureAdaptive would.
 */
export type SampleSource = (targets: MeasureTarget[], opts: MeasureOptions) => Promise<Measured>;
let sampleSource: SampleSource | null = null;
export function setSampleSource(source: SampleSource | null): void {
  sampleSource = source;
}

export async function measureAdaptive(targets: MeasureTarget[], opts: MeasureOptions): Promise<Measured> {
  if (sampleSource) return sampleSource(targets, opts);
  const now = opts.now ?? (() => performance.now());
  const n = targets.length;
  const samples: number[][] = targets.map(() => []);
  const rounds = opts.iterations;
  const adaptive = rounds === undefined && opts.durationS === undefined;
  const budgetMs = (adaptive ? opts.maxTimeS ?? 60 : opts.durationS ?? 0) * 1000;
  const precision = opts.precision ?? TARGET_PRECISION;
  const totalRuns = rounds !== undefined ? (opts.warmup + rounds) * n : 0;
  let runs = 0;
  let progress = 0;
  const tick = (started: number) => {
    runs++;
    if (!opts.onTick) return;
    if (rounds !== undefined) progress = Math.min(1, runs / totalRuns);
    else progress = Math.max(progress, Math.min(1, (now() - started) / budgetMs));
    opts.onTick(progress);
  };
  const t0 = now();
  for (let w = 0; w < opts.warmup; w++) {
    for (const t of targets) {
      await t.run();
      tick(t0);
    }
  }
  const started = now();
  let stoppedBy: Measured['stoppedBy'] = 'iterations';
  let halfWidth = NaN;
  let nextCheck = 0;
  for (let r = 0; ; r++) {
    if (rounds !== undefined) {
      if (r >= rounds) break;
    } else if (!adaptive) {
      if (r >= 3 && now() - started >= budgetMs) break;
    } else {
      if (r >= nextCheck) {
        const p = precise(samples, precision);
        halfWidth = p.worst;
        if (p.done) {
          stoppedBy = 'precision';
          break;
        }
        nextCheck = r + checkEvery(r);
      }
      if (r >= 3 && now() - started >= budgetMs) {
        halfWidth = precise(samples, precision).worst;
        stoppedBy = 'budget';
        break;
      }
    }
    for (let k = 0; k < n; k++) {
      const i = (r + k) % n; // rotate who goes first
      const a = now();
      await targets[i].run();
      samples[i].push(now() - a);
      tick(rounds !== undefined ? t0 : started);
    }
  }
  return { samples, stoppedBy, halfWidth };
}
