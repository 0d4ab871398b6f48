/**
 * A one-line progress bar with an ETA on stderr, for work that runs longer than a couple of seconds.
 * Shown only on a TTY (never when piped, never with --json / -q: the caller passes `enabled`), drawn
 * at most 10 times a second, and wiped when done. The ETA is elapsed x (1 - f) / f; `upTo` marks it
 * as an upper bound (adaptive timing may stop early).
 */
export interface ProgressBar {
  update: (fraction: number, what: string, opts?: { upTo?: boolean }) => void;
  done: () => void;
}

export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

/** The bar's text for a fraction done after `elapsedMs` (exported for tests). */
export function progressLine(f: number, what: string, elapsedMs: number, upTo = false, width = 30): string {
  const frac = Math.min(1, Math.max(0, f));
  const fill = Math.round(frac * width);
  const eta = frac > 0 && frac < 1 ? `, ${upTo ? 'at most ' : ''}${formatEta((elapsedMs / 1000) * (1 - frac) / frac)} left` : '';
  return `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(frac * 100).toFixed(0).padStart(3)}%${eta} ${what}`;
}

export function progressBar(enabled: boolean, stream: NodeJS.WriteStream = process.stderr, now: () => number = Date.now): ProgressBar {
  const started = now();
  let shown = false;
  let last = 0;
  // a pty without a window size reports 0 columns: draw 100 then
  const cols = () => Math.max(20, Math.min(119, (stream.columns || 100) - 1));
  return {
    update: (f, what, opts) => {
      if (!enabled) return;
      const t = now();
      if (t - started < 2000 || (t - last < 100 && f < 1)) return;
      last = t;
      shown = true;
      stream.write(`\r${progressLine(f, what, t - started, opts?.upTo).slice(0, cols()).padEnd(cols())}`);
    },
    done: () => {
      if (shown) stream.write(`\r${' '.repeat(cols())}\r`);
      shown = false;
    },
  };
}

/**
 * Work in steps of known relative cost (weights measured on full-size models: loading, converting,
 * writing, running). The fraction done is the weight of the finished steps plus the share reported
 * within the current one, so the ETA follows the work left rather than the steps left. Synchronous
 * steps redraw the bar only between steps.
 */
export interface Steps {
  /** The previous step is done; `what` starts (weight in the order given). */
  next: (what: string) => void;
  /** Progress within the current step, 0..1 (for work that reports its own, e.g. profiling). */
  within: (fraction: number, what?: string, opts?: { upTo?: boolean }) => void;
  done: () => void;
}

export function steps(bar: ProgressBar, weights: number[]): Steps {
  const total = weights.reduce((a, w) => a + w, 0) || 1;
  let index = -1;
  let before = 0;
  let label = '';
  const show = (f: number, what: string, opts?: { upTo?: boolean }) =>
    bar.update((before + (weights[index] ?? 0) * Math.min(1, Math.max(0, f))) / total, weights.length > 1 ? `${what} (${index + 1}/${weights.length})` : what, opts);
  return {
    next: (what) => {
      if (index >= 0) before += weights[index] ?? 0;
      index = Math.min(index + 1, weights.length - 1);
      label = what;
      show(0, what);
    },
    within: (f, what, opts) => show(f, what ?? label, opts),
    done: () => bar.done(),
  };
}
