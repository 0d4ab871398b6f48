/**
 * How far one output is from another: max abs difference, relative difference (to the expected
 * output's largest magnitude) and cosine similarity; and the tolerance "exact" means here, the
 * fixtures' rule: max abs diff <= 1e-4 x max(1, max |expected|) (float32 rounding of reordered sums).
 */
export interface OutputDiff {
  maxAbsDiff: number;
  /** maxAbsDiff / max |expected| (0 when both are all zero). */
  maxRelDiff: number;
  /** dot(a, e) / (|a| |e|); 1 when both are all zero. */
  cosine: number;
  maxAbsExpected: number;
  tolerance: number;
  withinTolerance: boolean;
}

export function exactTolerance(maxAbsExpected: number): number {
  return 1e-4 * Math.max(1, maxAbsExpected);
}

export function compareOutputs(actual: ArrayLike<number>, expected: ArrayLike<number>): OutputDiff {
  if (actual.length !== expected.length) throw new RangeError(`${actual.length} values against ${expected.length}`);
  let diff = 0, largest = 0, dot = 0, na = 0, ne = 0;
  let nonFinite = false;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    if (!Number.isFinite(a) || !Number.isFinite(e)) {
      if (!(Object.is(a, e))) nonFinite = true;
      continue;
    }
    diff = Math.max(diff, Math.abs(a - e));
    largest = Math.max(largest, Math.abs(e));
    dot += a * e;
    na += a * a;
    ne += e * e;
  }
  if (nonFinite) diff = Infinity;
  const tolerance = exactTolerance(largest);
  const cosine = na === 0 && ne === 0 ? 1 : na === 0 || ne === 0 ? 0 : dot / Math.sqrt(na * ne);
  return { maxAbsDiff: diff, maxRelDiff: largest > 0 ? diff / largest : diff > 0 ? Infinity : 0, cosine, maxAbsExpected: largest, tolerance, withinTolerance: diff <= tolerance };
}
