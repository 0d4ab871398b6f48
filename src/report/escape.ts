/**
 * Escaping for human output. Names come from untrusted models (node, tensor, input names, producer
 * strings) and from paths: a newline would split a one-line error in two, an ANSI escape would drive
 * the terminal, a right-to-left override would make a name read backwards. Every such string is shown
 * through escapeText(); JSON output needs nothing (JSON.stringify escapes control characters itself).
 */

// C0 controls, DEL, C1 controls; zero-width and bidi controls; line/paragraph separators; BOM;
// lone surrogates (they cannot be printed as UTF-8)
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\u001b': '\\e' };

/** A string safe to print on one terminal line: control and invisible characters as \n, \e, \x07, \u202e. */
export function escapeText(s: string): string {
  if (typeof s !== 'string') s = String(s);
  return s.replace(UNSAFE, (c) => {
    const named = NAMED[c];
    if (named) return named;
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * A copy of a JSON-like report with every string escaped (keys too), for the human formatters: they
 * join lines with '\n', so a name must not carry one. Walked with a stack, not recursion.
 */
export function escapeStrings<T>(value: T): T {
  const fix = (v: unknown): unknown => (typeof v === 'string' ? escapeText(v) : v);
  if (typeof value !== 'object' || value === null) return fix(value) as T;
  const root: unknown = Array.isArray(value) ? [] : {};
  const stack: [unknown, unknown][] = [[value, root]];
  while (stack.length > 0) {
    const [src, dst] = stack.pop()!;
    const entries: [string | number, unknown][] = Array.isArray(src) ? src.map((v, i) => [i, v]) : Object.entries(src as object);
    for (const [k, v] of entries) {
      let out: unknown;
      if (typeof v === 'object' && v !== null && (Array.isArray(v) || Object.getPrototypeOf(v) === Object.prototype)) {
        out = Array.isArray(v) ? [] : {};
        stack.push([v, out]);
      } else {
        out = fix(v);
      }
      if (Array.isArray(dst)) (dst as unknown[])[k as number] = out;
      else Object.defineProperty(dst, typeof k === 'string' ? escapeText(k) : k, { value: out, enumerable: true, writable: true, configurable: true });
    }
  }
  return root as T;
}
