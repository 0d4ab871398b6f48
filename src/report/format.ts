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

/**
 * Columns of the terminal, or COLUMNS when output is piped; piped output with no COLUMNS is not
 * wrapped (a line per row stays easy to grep).
 */
export function terminalWidth(): number {
  const env = Number(process.env.COLUMNS);
  return process.stdout.columns || (Number.isInteger(env) && env > 20 ? env : Infinity);
}

/** A free-text line ("note: ...") wrapped to `width`, continuation lines indented under the text. */
export function paragraph(prefix: string, text: string, width = terminalWidth()): string {
  if (prefix.length + text.length <= width) return `${prefix}${text}`;
  const pad = ' '.repeat(Math.min(prefix.length, 8));
  return wrap(text, Math.max(20, width - pad.length)).map((l, i) => (i === 0 ? prefix : pad) + l).join('\n');
}

/** Words of `text` in lines of at most `width` characters (a longer word stands alone). */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  return lines.length || line ? [...lines, line] : [''];
}

/**
 * Text columns left-aligned, numeric columns (numbers with an optional unit) right-aligned. When the
 * table is wider than `width` (the terminal), the widest text column wraps onto continuation lines.
 */
export function table(header: string[], rows: (string | number)[][], width = terminalWidth()): string {
  const cells = [header, ...rows.map((r) => header.map((_, i) => String(r[i] ?? '')))];
  // a loop, not Math.max(...rows): a table of a million rows would overflow the argument stack
  const widths = header.map((_, i) => cells.reduce((w, r) => Math.max(w, r[i].length), 0));
  const right = header.map((_, i) => i > 0 && rows.length > 0 && rows.every((r) => NUMERIC.test(String(r[i] ?? ''))));
  const total = widths.reduce((a, b) => a + b, 0) + 2 * (header.length - 1);
  let lines = cells.map((r) => [r]);
  if (total > width) {
    const text = widths.map((w, i) => (right[i] ? -1 : w));
    const col = text.indexOf(Math.max(...text));
    const room = Math.max(header[col].length, 20, widths[col] - (total - width));
    if (col >= 0 && room < widths[col]) {
      widths[col] = room;
      lines = cells.map((r) => {
        const parts = wrap(r[col], room);
        return parts.map((p, k) => r.map((c, i) => (i === col ? p : k === 0 ? c : '')));
      });
      widths[col] = lines.flat().reduce((w, r) => Math.max(w, r[col].length), 0);
    }
  }
  const line = (r: string[]) => r.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [...lines[0].map(line), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.slice(1).flat().map(line)].join('\n');
}

/** Options as words: { stack: 2, width: 0.5, csp: false } -> 'stack 2, width 0.5, csp off'. */
export function formatOptions(options: Record<string, unknown>): string {
  return Object.entries(options)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => (v === true ? `${k} on` : v === false ? `${k} off` : Array.isArray(v) ? `${k} ${v.join(',')}` : typeof v === 'object' ? `${k} (${formatOptions(v as Record<string, unknown>)})` : `${k} ${v}`))
    .join(', ');
}
