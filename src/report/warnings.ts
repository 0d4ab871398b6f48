/**
 * Warnings aggregated: a model of a million unknown nodes must not print a million lines. Messages
 * that differ only in the names they quote ('conv1' vs 'conv2') are one kind; the first few of each
 * kind are kept as they are, the rest counted in one line.
 */

/** Messages of one kind shown in full before the rest are counted. */
export const WARNINGS_PER_KIND = 3;

const kindOf = (w: string): string => w.replace(/'[^']*'/g, "'…'").replace(/\d+/g, 'N');

/** Identical messages once; of each kind the first `perKind`, then "(and N more like this: …)". Linear time. */
export function aggregateWarnings(list: readonly string[], perKind = WARNINGS_PER_KIND): string[] {
  const seen = new Set<string>();
  const kinds = new Map<string, { shown: number; more: number; index: number }>();
  const out: string[] = [];
  for (const w of list) {
    if (seen.has(w)) continue;
    seen.add(w);
    const k = kindOf(w);
    const entry = kinds.get(k);
    if (!entry) {
      kinds.set(k, { shown: 1, more: 0, index: -1 });
      out.push(w);
    } else if (entry.shown < perKind) {
      entry.shown++;
      out.push(w);
    } else {
      entry.more++;
    }
  }
  for (const [k, e] of kinds) if (e.more > 0) out.push(`(and ${e.more} more like this: ${k})`);
  return out;
}
