/**
 * The statistics of timed samples: percentiles, summary stats, the latency ratio with its 95%
 * interval, the adaptive stopping rule and the stability warnings. Pure functions of recorded
 * samples (no clock, no onnxruntime), so every figure is testable with arrays of timings.
 *
 * The one latency ratio gpt reports ("ratio of medians, 95% bootstrap CI"):
 *   ratio = p50(model) / p50(baseline)                 — the p50 columns divided, always
 *   CI    = 2.5th / 97.5th percentiles of that ratio over B bootstrap resamples of the rounds.
 * Interleaved runs resample whole rounds (model and baseline of the same round stay together, so a
 * drift that slows both alike cancels); runs timed apart (trtexec) resample each model on its own.
 */
import { GptError } from '../errors';

/** mulberry32: a small seeded PRNG, so every run feeds the same data and resamples alike. */
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
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const x = (sorted.length - 1) * (p / 100);
  const lo = Math.floor(x);
  const hi = Math.ceil(x);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (x - lo);
}

export function median(samples: ArrayLike<number>): number {
  return percentile(Float64Array.from(samples).sort(), 50);
}

export function latencyStats(samples: number[]): LatencyStats {
  if (samples.length === 0) throw new GptError('E_ARG', 'no samples to summarise');
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  const variance = s.length > 1 ? s.reduce((a, b) => a + (b - mean) ** 2, 0) / (s.length - 1) : 0;
  const std = Math.sqrt(variance);
  return { min: s[0], mean, p50: percentile(s, 50), p90: percentile(s, 90), p99: percentile(s, 99), max: s[s.length - 1], std, cv: mean > 0 ? std / mean : 0 };
}

/** The name the ratio goes by in tables, JSON (settings.ratioMethod) and the README. */
export const RATIO_METHOD = 'ratio of medians, 95% bootstrap CI';

/** A model's latency against the baseline's. */
export interface RatioStats {
  /** p50(samples) / p50(baseline). */
  ratio: number;
  /** 95% interval of the ratio (bootstrap). */
  low: number;
  high: number;
}

export interface BootstrapOptions {
  /** Resamples (default 2000). */
  resamples?: number;
  /** Seed of the resampling (default 1): the same samples always give the same interval. */
  seed?: number;
  /** Resample rounds as pairs (interleaved runs; default) or each sample set on its own. */
  paired?: boolean;
}

/**
 * Ratio of medians with its bootstrap 95% interval. With one sample set only (`baseline` null), the
 * "ratio" is the median against itself (1) and the interval is the median's own relative interval,
 * which is what the stopping rule needs for a single model.
 */
export function ratioOfMedians(samples: ArrayLike<number>, baseline: ArrayLike<number> | null, o: BootstrapOptions = {}): RatioStats {
  const n = samples.length;
  if (n === 0 || (baseline && baseline.length === 0)) throw new GptError('E_ARG', 'no samples to compare');
  const base = baseline ?? samples;
  const m = baseline ? Math.min(n, base.length) : n;
  const paired = (o.paired ?? true) && baseline !== null;
  const ratio = baseline ? median(samples) / median(base) : 1;
  const B = o.resamples ?? 2000;
  const rnd = seededRandom(o.seed ?? 1);
  const a = new Float64Array(paired ? m : n);
  const b = new Float64Array(paired ? m : base.length);
  const ref = baseline ? 0 : median(samples);
  const ratios = new Float64Array(B);
  for (let r = 0; r < B; r++) {
    if (paired) {
      for (let i = 0; i < m; i++) {
        const j = Math.floor(rnd() * m);
        a[i] = samples[j];
        b[i] = base[j];
      }
    } else {
      for (let i = 0; i < a.length; i++) a[i] = samples[Math.floor(rnd() * a.length)];
      if (baseline) for (let i = 0; i < b.length; i++) b[i] = base[Math.floor(rnd() * b.length)];
    }
    const ma = percentile(a.sort(), 50);
    ratios[r] = baseline ? ma / percentile(b.sort(), 50) : ma / ref;
  }
  ratios.sort();
  return { ratio, low: percentile(ratios, 2.5), high: percentile(ratios, 97.5) };
}

/** How far the interval reaches from the ratio, relative: max(high/ratio - 1, 1 - low/ratio). */
export function relativeHalfWidth(r: RatioStats): number {
  if (!(r.ratio > 0)) return Infinity;
  return Math.max(r.high / r.ratio - 1, 1 - r.low / r.ratio);
}

/** Defaults of the adaptive runs. */
export const TARGET_PRECISION = 0.02;
export const MIN_ROUNDS = 10;
export const CV_LIMIT = 0.1;

/**
 * The stopping rule: every model's ratio to the baseline (or, alone, its median) is known to within
 * ±precision (95% interval), after at least MIN_ROUNDS rounds. `samples[i]` is model i's timings,
 * round by round; model 0 is the baseline.
 */
export function precise(samples: number[][], precision = TARGET_PRECISION, resamples = 400): { done: boolean; worst: number } {
  const rounds = Math.min(...samples.map((s) => s.length));
  if (rounds < MIN_ROUNDS) return { done: false, worst: Infinity };
  let worst = 0;
  const others = samples.length > 1 ? samples.slice(1) : samples;
  for (const s of others) {
    const r = ratioOfMedians(s, samples.length > 1 ? samples[0] : null, { resamples });
    worst = Math.max(worst, relativeHalfWidth(r));
  }
  return { done: worst <= precision, worst };
}

/** Why timing stopped: the interval reached the target ('precision'), the budget ran out ('budget'), or the count / time was fixed ('iterations'). */
export type StopReason = 'precision' | 'budget' | 'iterations';

export interface StabilityInput {
  label: string;
  batch: number;
  /** Null for the baseline. */
  ratio: RatioStats | null;
  cv: number;
  rounds: number;
  /** Why the timing stopped. */
  stoppedBy: StopReason;
  maxTimeS: number | null;
  /** Relative half-width of the worst interval when the timing stopped. */
  halfWidth: number;
}

/**
 * One-line warnings, each starting "unstable:" (the numbers cannot be trusted as they stand) or
 * "inconclusive:" (trustworthy, but they show no difference), each with what to try.
 */
export function stabilityWarnings(x: StabilityInput, load?: number[]): string[] {
  const out: string[] = [];
  const where = `${x.label}, batch ${x.batch}`;
  const loadNote = load ? ` (load average ${load[0].toFixed(2)})` : '';
  if (x.stoppedBy === 'budget') {
    out.push(`unstable: ${where}: the ${x.maxTimeS} s budget ran out after ${x.rounds} rounds with the 95% interval at ±${pct(x.halfWidth)} (target ±${pct(TARGET_PRECISION)})${loadNote}; try --max-time ${Math.ceil((x.maxTimeS ?? 60) * 2)} or a quieter machine`);
  }
  if (x.cv > CV_LIMIT) {
    out.push(`unstable: ${where}: cv ${pct(x.cv)} over ${pct(CV_LIMIT)}${loadNote}; try a quieter machine or fewer --threads than cores`);
  }
  if (x.ratio && x.ratio.low <= 1 && x.ratio.high >= 1) {
    out.push(`inconclusive: ${where}: latency ratio ${x.ratio.ratio.toFixed(3)}x, its 95% interval [${x.ratio.low.toFixed(3)}, ${x.ratio.high.toFixed(3)}] contains 1.0 (no difference measured); try a longer --max-time to resolve a smaller one`);
  }
  return out;
}

const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '∞');

/** "1.023x [0.998, 1.049]": the ratio as every table prints it. */
export function formatRatio(r: { latencyRatio: number; latencyRatioLow: number; latencyRatioHigh: number }): string {
  return `${r.latencyRatio.toFixed(3)}x [${r.latencyRatioLow.toFixed(3)}, ${r.latencyRatioHigh.toFixed(3)}]`;
}
