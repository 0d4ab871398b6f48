/** Terminal formatting shared by the commands: human units and aligned tables. */

/** 11690000 -> '11.69 M'; 950 -> '950' */
export function human(n: number, digits = 2): string {
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(digits)} G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(digits)} M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(digits)} K`;
  return `${n}`;
}

/** 1310720 -> '1.25 MiB' */
export function bytes(n: number): string {
  const a = Math.abs(n);
  if (a >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (a >= 2 ** 20) return `${(n / 2 ** 20).toFixed(2)} MiB`;
  if (a >= 2 ** 10) return `${(n / 2 ** 10).toFixed(2)} KiB`;
  return `${n} B`;
}

export function ratio(after: number, before: number): string {
  return before === 0 ? '-' : `${(after / before).toFixed(3)}x`;
}

const NUMERIC = /^[-+]?[\d.,]+(\s?(K|M|G|B|KiB|MiB|GiB|x|%|ms|s))?$|^[-?]$/;

/** Text columns left-aligned, numeric columns (numbers with an optional unit) right-aligned. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  // a loop, not Math.max(...rows): a table of a million rows would overflow the argument stack
  const widths = header.map((_, i) => cells.reduce((w, r) => Math.max(w, (r[i] ?? '').length), 0));
  const right = header.map((_, i) => i > 0 && rows.length > 0 && rows.every((r) => NUMERIC.test(String(r[i] ?? ''))));
  const line = (r: string[]) => r.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}
