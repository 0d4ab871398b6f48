/**
 * The demo's progress weights: how long each family's two steps take, relative to each other, from
 * the models' size and cost. Building, converting and analysing walk every weight (time ~ params x
 * models); profiling runs every model warm-up + timed + profiled times (time ~ MACs x runs). The two
 * constants are seconds per unit measured on this project's 2-core machine (`npm run demo` prints
 * each step's time); only their ratio matters for the ETA.
 */
export interface FamilyCost {
  params: number;
  macs: number;
  /** Models profiled side by side (plain + conversions). */
  models: number;
  /** Timed runs per model. */
  runs: number;
}

// 2026-12-02, load average 9-12: Darknet-53 26 s + 171 s, VoVNet-39 11 s + 138 s for the two steps,
// against the demo's own size estimates (its width-1/16 models scaled up) 231 M params x models and
// 1,868 GMACs run; 115 M and 1,022 GMACs
/** Seconds per million params per model built / converted / analysed. */
export const PREP_S_PER_MPARAM = 0.1;
/** Seconds per GMAC run. */
export const RUN_S_PER_GMAC = 0.1;

/** Runs per model in a demo profile: warm-up min(3, runs), the timed runs, then the per-node profile's max(1, warm-up) + min(runs, 20). */
export function runsPerModel(runs: number): number {
  const warmup = Math.min(3, runs);
  return warmup + runs + Math.max(1, warmup) + Math.min(runs, 20);
}

/** Two weights per family, in order: [prep, profile]. */
export function demoWeights(families: FamilyCost[]): number[] {
  return families.flatMap((f) => [
    (f.params / 1e6) * f.models * PREP_S_PER_MPARAM,
    (f.macs / 1e9) * f.models * runsPerModel(f.runs) * RUN_S_PER_GMAC,
  ]);
}
