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
  const cols = () => Math.min(119, (stream.columns ?? 100) - 1);
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
