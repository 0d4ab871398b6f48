/**
 * Dimension arithmetic. A dim is a number (known), a string (symbolic) or null (unknown).
 *
 * A symbolic dim is an integer polynomial over symbols and floor-quotient atoms, spelled
 * canonically so that equal expressions are equal strings:
 *   'batch'            a symbol (an ONNX dim_param)
 *   'batch*64'         a product: symbols sorted, the number last
 *   'height+2'         a sum: terms sorted, the constant last, '-' for negative coefficients
 *   'floor((height+1)/2)'  a floor quotient by a positive integer, as Conv / Pool output sizes need
 * Sums and quotients are what a Conv over a dynamic height gives: floor((h + pads - k) / s) + 1.
 * Anything the arithmetic cannot express (a float scale that is not exact) becomes null.
 *
 * Symbol names are taken as they are; a name containing one of `+-*()/` or a space would read as
 * an expression, so such names are bracketed `[like this]` when they enter (see `symbolDim`).
 */
import type { Dim } from '../../ir/graph';

/** One term: coef x atom1 x atom2 ...; atoms are symbols or 'floor(...)' strings, sorted. */
interface Term {
  coef: number;
  atoms: string[];
}
/** Terms with distinct atom lists; never two with the same key; no zero coefficients. */
type Poly = Term[];

const known = (d: Dim | undefined): d is number => typeof d === 'number';
export { known };

const keyOf = (t: Term) => t.atoms.join('*');

function normalize(terms: Term[]): Poly {
  const by = new Map<string, Term>();
  for (const t of terms) {
    if (t.coef === 0) continue;
    const k = keyOf(t);
    const prev = by.get(k);
    if (prev) prev.coef += t.coef;
    else by.set(k, { coef: t.coef, atoms: t.atoms });
  }
  const out = [...by.values()].filter((t) => t.coef !== 0);
  // the constant last, the rest by key
  return out.sort((a, b) => (a.atoms.length === 0 ? 1 : b.atoms.length === 0 ? -1 : keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
}

function formatTerm(t: Term, first: boolean): string {
  const sign = t.coef < 0 ? '-' : first ? '' : '+';
  const c = Math.abs(t.coef);
  if (t.atoms.length === 0) return `${sign}${c}`;
  return `${sign}${t.atoms.join('*')}${c === 1 ? '' : `*${c}`}`;
}

/**
 * Longest symbolic dim kept; a longer expression becomes unknown (null). Products of sums can grow
 * without bound on a hostile model (each Reshape or Mul of two such dims squares the terms), and
 * nested floors deepen with every stride: the cap keeps symbolic work, and every walk over a dim's
 * text, small.
 */
export const MAX_DIM_TEXT = 256;

function format(p: Poly): Dim {
  if (p.length === 0) return 0;
  if (p.length === 1 && p[0].atoms.length === 0) return Number.isSafeInteger(p[0].coef) ? p[0].coef : null;
  if (p.length > 32) return null;
  const text = p.map((t, i) => formatTerm(t, i === 0)).join('');
  return text.length > MAX_DIM_TEXT && !(p.length === 1 && p[0].atoms.length === 1 && p[0].coef === 1) ? null : text;
}

// ---------------------------------------------------------------------------------------------
// Parsing the canonical spelling back (memoized: the same few strings recur on every value)

const parsed = new Map<string, Poly>();

function parse(s: string): Poly {
  let hit = parsed.get(s);
  if (!hit) {
    hit = new Parser(s).expr();
    parsed.set(s, hit);
  }
  return hit;
}

class Parser {
  private i = 0;
  constructor(private readonly s: string) {}

  expr(): Poly {
    const terms: Term[] = [];
    let sign = 1;
    if (this.s[this.i] === '-') {
      sign = -1;
      this.i++;
    }
    for (;;) {
      const t = this.term();
      terms.push({ coef: sign * t.coef, atoms: t.atoms });
      const c = this.s[this.i];
      if (c === '+') sign = 1;
      else if (c === '-') sign = -1;
      else break;
      this.i++;
    }
    return normalize(terms);
  }

  private term(): Term {
    let coef = 1;
    const atoms: string[] = [];
    for (;;) {
      const a = this.atom();
      if (typeof a === 'number') coef *= a;
      else atoms.push(a);
      if (this.s[this.i] !== '*') break;
      this.i++;
    }
    return { coef, atoms: atoms.sort() };
  }

  private atom(): number | string {
    const s = this.s;
    const start = this.i;
    if (s.startsWith('floor((', this.i) || s.startsWith('floor(', this.i)) {
      // floor(E/k) or floor((E)/k): keep the canonical text as the atom
      let depth = 0;
      for (; this.i < s.length; this.i++) {
        if (s[this.i] === '(') depth++;
        else if (s[this.i] === ')' && --depth === 0) break;
      }
      this.i++;
      return s.slice(start, this.i);
    }
    if (s[this.i] === '[') {
      const end = s.indexOf(']', this.i);
      this.i = end < 0 ? s.length : end + 1;
      return s.slice(start, this.i);
    }
    while (this.i < s.length && !'+-*'.includes(s[this.i])) this.i++;
    const tok = s.slice(start, this.i);
    return /^\d+$/.test(tok) ? Number(tok) : tok;
  }
}

function polyOf(d: number | string): Poly {
  return typeof d === 'number' ? normalize([{ coef: d, atoms: [] }]) : parse(d);
}

// ---------------------------------------------------------------------------------------------
// Arithmetic

/** A model's dim_param as a dim: names that would read as an expression are bracketed. */
export function symbolDim(name: string): Dim {
  return /[+\-*/() ]/.test(name) && !name.startsWith('[') ? `[${name}]` : name;
}

export function addDim(a: Dim, b: Dim): Dim {
  if (known(a) && known(b)) return a + b;
  if (a === null || b === null) return null;
  if (a === 0) return b;
  if (b === 0) return a;
  return format(normalize([...polyOf(a), ...polyOf(b)].map((t) => ({ ...t }))));
}

export function subDim(a: Dim, b: Dim): Dim {
  if (known(a) && known(b)) return a - b;
  if (a === null || b === null) return null;
  if (b === 0) return a;
  return format(normalize([...polyOf(a).map((t) => ({ ...t })), ...polyOf(b).map((t) => ({ coef: -t.coef, atoms: t.atoms }))]));
}

export function mulDim(a: Dim, b: Dim): Dim {
  if (a === 0 || b === 0) return 0;
  if (a === null || b === null) return null;
  if (known(a) && known(b)) return a * b;
  const x = polyOf(a), y = polyOf(b);
  const terms: Term[] = [];
  for (const s of x) for (const t of y) terms.push({ coef: s.coef * t.coef, atoms: [...s.atoms, ...t.atoms].sort() });
  return format(normalize(terms));
}

/** Exact division; null when it is not exact or cannot be told. */
export function divDim(a: Dim, b: Dim): Dim {
  if (a === null || b === null || b === 0) return null;
  if (known(a) && known(b)) return a % b === 0 ? a / b : null;
  if (a === b) return 1;
  const y = polyOf(b);
  if (y.length !== 1) return null; // only division by a single term
  const [d] = y;
  const out: Term[] = [];
  for (const t of polyOf(a)) {
    if (t.coef % d.coef !== 0) return null;
    const atoms = [...t.atoms];
    for (const s of d.atoms) {
      const i = atoms.indexOf(s);
      if (i < 0) return null;
      atoms.splice(i, 1);
    }
    out.push({ coef: t.coef / d.coef, atoms });
  }
  return format(normalize(out));
}

/** floor(a / k) for a positive integer k: exact parts come out, the remainder stays in a floor atom. */
export function floorDivDim(a: Dim, k: number): Dim {
  if (a === null || !Number.isInteger(k) || k <= 0) return null;
  if (known(a)) return Math.floor(a / k);
  if (k === 1) return a;
  const whole: Term[] = [];
  const rest: Term[] = [];
  for (const t of polyOf(a)) {
    const r = ((t.coef % k) + k) % k; // floor mod: 0 <= r < k
    const q = (t.coef - r) / k;
    if (q !== 0) whole.push({ coef: q, atoms: t.atoms });
    if (r !== 0) rest.push({ coef: r, atoms: t.atoms });
  }
  const r = normalize(rest);
  // a remainder that is a constant in [0, k) floors to 0
  if (r.length > 0 && !(r.length === 1 && r[0].atoms.length === 0)) {
    const inner = format(r) as string;
    const simple = r.length === 1 && r[0].coef === 1;
    whole.push({ coef: 1, atoms: [simple ? `floor(${inner}/${k})` : `floor((${inner})/${k})`] });
  }
  return format(normalize(whole));
}

/** ceil(a / k) for a positive integer k. */
export function ceilDivDim(a: Dim, k: number): Dim {
  return floorDivDim(addDim(a, k - 1), k);
}

export function productDims(dims: Dim[]): Dim {
  return dims.reduce<Dim>((p, d) => mulDim(p, d), 1);
}

/** Replace the symbols `values` gives by numbers; the rest stays symbolic (floor atoms re-simplified). */
export function substituteDim(d: Dim, values: Readonly<Record<string, number>>): Dim {
  if (typeof d !== 'string') return d;
  let sum: Dim = 0;
  for (const t of parse(d)) {
    let v: Dim = t.coef;
    for (const a of t.atoms) v = mulDim(v, substituteAtom(a, values));
    sum = addDim(sum, v);
  }
  return sum;
}

function substituteAtom(a: string, values: Readonly<Record<string, number>>): Dim {
  if (a.startsWith('floor(')) {
    const { inner, k } = floorParts(a);
    return floorDivDim(substituteDim(inner, values), k);
  }
  const name = a.startsWith('[') ? a.slice(1, -1) : a;
  // own properties only: a symbol named 'constructor' is a name, not Object.prototype's member
  return Object.hasOwn(values, name) ? values[name] : a;
}

/** 'floor((E)/k)' or 'floor(E/k)' -> E, k */
function floorParts(a: string): { inner: string; k: number } {
  const body = a.slice('floor('.length, -1);
  const slash = body.lastIndexOf('/');
  let inner = body.slice(0, slash);
  if (inner.startsWith('(') && inner.endsWith(')')) inner = inner.slice(1, -1);
  return { inner, k: Number(body.slice(slash + 1)) };
}

/**
 * A dim's value with symbols looked up by `lookup` (undefined: the symbol has no value, the
 * result is null). Floor atoms are evaluated from their text.
 */
export function evalDim(d: Dim, lookup: (symbol: string) => number | undefined): number | null {
  if (d === null) return null;
  if (typeof d === 'number') return d;
  let sum = 0;
  for (const t of parse(d)) {
    let v = t.coef;
    for (const a of t.atoms) {
      const x = evalAtom(a, lookup);
      if (x === null) return null;
      v *= x;
    }
    sum += v;
  }
  return sum;
}

function evalAtom(a: string, lookup: (symbol: string) => number | undefined): number | null {
  if (a.startsWith('floor(')) {
    const { inner, k } = floorParts(a);
    const x = evalDim(inner, lookup);
    return x === null ? null : Math.floor(x / k);
  }
  return lookup(a.startsWith('[') ? a.slice(1, -1) : a) ?? null;
}

/** The plain symbols a dim mentions (inside floor atoms too). */
export function symbolsOf(d: Dim): string[] {
  if (typeof d !== 'string') return [];
  const out = new Set<string>();
  const walk = (s: string) => {
    for (const t of parse(s)) {
      for (const a of t.atoms) {
        if (a.startsWith('floor(')) walk(floorParts(a).inner); else out.add(a.startsWith('[') ? a.slice(1, -1) : a);
      }
    }
  };
  walk(d);
  return [...out];
}

/** "[batch, 3, 64, 64]" */
export function formatShape(s: Dim[] | null): string {
  return s ? `[${s.map((d) => (d === null ? '?' : String(d))).join(', ')}]` : '[?]';
}

/** One axis of numpy broadcasting; 'clash' for two different known sizes, neither 1. */
export function broadcastDim(a: Dim, b: Dim): Dim | 'clash' {
  if (a === 1) return b;
  if (b === 1) return a;
  if (a === b) return a;
  if (known(a) && known(b)) return 'clash';
  if (a === null) return b; // a must be 1 or b
  if (b === null) return a;
  if (known(a)) return a; // the symbol must be 1 or a
  if (known(b)) return b;
  return null; // two different symbols
}
