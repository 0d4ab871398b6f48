/**
 * The generic matcher: finds where a rule's pattern (rules.ts) sits in a graph. It knows no block
 * type; everything block-specific is in rules/*.json. What it does know are exporter habits that
 * no pattern should have to spell out:
 *   - Identity nodes on the data path are looked through (and belong to the match);
 *   - constants (weights, BN statistics, Clip bounds, also behind Identity) are not data inputs;
 *   - a node's first output is its data output (training-mode BN has 4 more, unused);
 *   - Add / Mul operands come in either order (ResNet: Add(branch, shortcut); Darknet the reverse).
 * A match is closed: no value made inside it is read outside it, except its output.
 *
 * The search backtracks (generators): an optional element is tried present, then absent; a repeat
 * tries the longest chain first, so a Concat that must read every repeat can make it give some back.
 */
import { GptError } from '../errors';
import type { Graph, Node, Value } from '../ir/graph';
import { nodeOp } from '../ops/registry';
import { channelMaskValues } from './channel-mask';
import { AttrConstraint, ChannelConstraint, Element, Role, Rule } from './rules';
import type { DividedProducers } from './divided-producer';

export interface Match {
  rule: Rule;
  input: Value;
  output: Value;
  /** Data nodes of the match (Identity nodes it looked through included), in graph order. */
  nodes: Node[];
  /** Element path -> nodes: 'reduce.conv', 'layer[2].bn', 'add'. */
  parts: Map<string, Node[]>;
  roles: Map<Role, Node[]>;
  /** Top-level element id -> the values it produced ('$in' too); an absent optional element stands for its input. */
  values: Map<string, Value[]>;
  /** Channel symbols bound by the rule ('C' -> 64). */
  symbols: Map<string, number>;
}

interface State {
  nodes: Set<Node>;
  tagged: { path: string; role?: Role; node: Node }[];
  symbols: Map<string, number>;
}

type Scope = Map<string, Value[]>;
/** Scope key suffix marking an optional element that is absent (ids cannot contain it). */
const ABSENT = '#absent';

/** Per-graph caches: graph order, constant-ness, channel counts. */
export class MatchContext {
  readonly order = new Map<Node, number>();
  /** Steps taken by the current matchAt, and the most it may take (backtracking is exponential on adversarial rules). */
  steps = 0;
  maxSteps = MAX_MATCH_STEPS;
  private rule?: Rule;
  /** Count one step of the search; throws E_RULE past the limit. */
  tick(): void {
    if (++this.steps > this.maxSteps) {
      throw new GptError('E_RULE', `rule '${this.rule?.name ?? '?'}' took more than ${this.maxSteps} matching steps at one place in the graph`, {
        subject: this.rule?.file, hint: 'its optional elements, repeats or unit alternatives let the matcher backtrack too much; make the pattern more specific',
      });
    }
  }
  /** Start the step count for one rule at one place. */
  begin(rule: Rule): void {
    this.rule = rule;
    this.steps = 0;
  }
  private readonly channelMemo = new Map<Value, number | null>();
  /**
   * Layers written once per part (divided-producer.ts): a match takes part 1's copy where both
   * copies would do, and part 2's copy reading a value inside a match that holds its twin does not
   * open the match (the two copies are one layer).
   */
  divided?: DividedProducers;
  constructor(readonly graph: Graph) {
    graph.nodes.forEach((n, i) => this.order.set(n, i));
  }
  isConstant(v: Value): boolean {
    return this.graph.isConstant(v);
  }
  /**
   * Channels of an NCHW value: from its shape, else from the conv weights upstream. Evaluated with
   * an explicit stack: a chain of thousands of shapeless nodes must not overflow the call stack.
   */
  channels(v: Value): number | null {
    const memo = this.channelMemo.get(v);
    if (memo !== undefined) return memo;
    const stack: Value[] = [v];
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      if (this.channelMemo.has(top)) {
        stack.pop();
        continue;
      }
      const step = this.channelStep(top);
      if ('value' in step) {
        this.channelMemo.set(top, step.value);
        stack.pop();
        continue;
      }
      const missing = step.inputs.filter((i) => !this.channelMemo.has(i));
      if (missing.length > 0 && !this.visiting.has(top)) {
        // first visit: its inputs first (a cycle back to `top` then reads null on the second visit)
        this.visiting.add(top);
        stack.push(...missing);
        continue;
      }
      this.visiting.delete(top);
      this.channelMemo.set(top, step.combine(step.inputs.map((i) => this.channelMemo.get(i) ?? null)));
      stack.pop();
    }
    return this.channelMemo.get(v) ?? null;
  }
  private readonly visiting = new Set<Value>();
  /** Per the registry's channel flow of the producer: a number, or the inputs it depends on and how. */
  private channelStep(v: Value): { value: number | null } | { inputs: Value[]; combine: (cs: (number | null)[]) => number | null } {
    const fromShape = v.shape?.[1];
    if (typeof fromShape === 'number') return { value: fromShape };
    const p = v.producer;
    if (!p || v !== p.outputs[0]) return { value: null };
    switch (nodeOp(p)?.channels) {
      case 'conv':
        return { value: this.graph.constantTensor(p.inputs[1] ?? null)?.dims[0] ?? null };
      case 'convTranspose': {
        const d = this.graph.constantTensor(p.inputs[1] ?? null)?.dims[1];
        return { value: d === undefined ? null : d * p.int('group', 1) };
      }
      case 'concat': {
        if (p.int('axis', 0) !== 1 || p.inputs.some((i) => !i)) return { value: null };
        const inputs = p.inputs as Value[];
        return { inputs, combine: (cs) => (cs.some((c) => c === null) ? null : (cs as number[]).reduce((a, b) => a + b, 0)) };
      }
      case 'preserve':
      case 'across': {
        const first = this.graph.dataInputs(p)[0];
        return first ? { inputs: [first], combine: (cs) => cs[0] } : { value: null };
      }
      default:
        return { value: null };
    }
  }
}

/** Steps one rule may take at one place: the shipped rules take a few dozen. */
export const MAX_MATCH_STEPS = 100_000;

/** The value behind a chain of Identity nodes, and the Identity nodes passed. */
export function throughIdentity(v: Value): { value: Value; via: Node[] } {
  const via: Node[] = [];
  let cur = v;
  while (cur.producer?.opType === 'Identity' && cur.producer.inputs[0]) {
    via.push(cur.producer);
    cur = cur.producer.inputs[0];
  }
  return { value: cur, via };
}

/** The consumers of `v`, looking through chains of Identity nodes (walked with a stack: a chain may be thousands long). */
function* dataConsumers(v: Value): Generator<{ node: Node; via: Node[] }> {
  const seen = new Set<Node>();
  // depth-first, in consumer order, as the recursive walk it replaces
  const stack: { value: Value; identity?: Node; next: number }[] = [{ value: v, next: 0 }];
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.next >= top.value.consumers.length) {
      stack.pop();
      continue;
    }
    const { node } = top.value.consumers[top.next++];
    if (seen.has(node)) continue;
    seen.add(node);
    if (node.opType === 'Identity' && node.outputs[0]) stack.push({ value: node.outputs[0], identity: node, next: 0 });
    else yield { node, via: stack.slice(1).map((e) => e.identity!) };
  }
}

/** The Identity nodes between `node`'s data inputs and `expected`, or null when they are not the same values. */
function inputsMatch(ctx: MatchContext, node: Node, expected: Value[]): Node[] | null {
  const actual = node.inputs.filter((v): v is Value => v !== null && !ctx.isConstant(v)).map(throughIdentity);
  if (actual.length !== expected.length) return null;
  const via: Node[] = [];
  if (nodeOp(node)?.commutative) {
    const left = [...actual];
    for (const e of expected) {
      const k = left.findIndex((a) => a.value === e);
      if (k < 0) return null;
      via.push(...left[k].via);
      left.splice(k, 1);
    }
  } else {
    for (let i = 0; i < expected.length; i++) {
      if (actual[i].value !== expected[i]) return null;
      via.push(...actual[i].via);
    }
  }
  return via;
}

function oneOf(allowed: number | number[], n: number): boolean {
  return Array.isArray(allowed) ? allowed.includes(n) : allowed === n;
}

function attrsMatch(ctx: MatchContext, node: Node, a: AttrConstraint): boolean {
  if (a.kernel !== undefined) {
    let k = node.ints('kernel_shape');
    if (k.length === 0) k = ctx.graph.constantTensor(node.inputs[1] ?? null)?.dims.slice(2) ?? [];
    if (k.length === 0 || !k.every((d) => oneOf(a.kernel!, d))) return false;
  }
  if (a.stride !== undefined) {
    const s = node.ints('strides');
    if (!(s.length ? s : [1]).every((d) => oneOf(a.stride!, d))) return false;
  }
  if (a.group !== undefined) {
    const g = node.int('group', 1);
    if (a.group === 'grouped') return g > 1;
    if (a.group === 'depthwise') {
      const x = ctx.graph.dataInputs(node)[0];
      return g > 1 && x !== undefined && ctx.channels(x) === g;
    }
    if (g !== a.group) return false;
  }
  // the mask constrains a Mul only: the split form's Slice sits in the same place (maskedShortcut)
  if (a.constant === 'binaryMask' && node.opType === 'Mul' && !isBinaryMask(ctx, node)) return false;
  return true;
}

/**
 * One constant operand that is a per-channel 0/1 mask with at least one 0 and one 1 (C, C x 1 x 1
 * or 1 x C x 1 x 1): PRN's masked shortcut S * mask.
 */
function isBinaryMask(ctx: MatchContext, node: Node): boolean {
  const consts = node.inputs.filter((v): v is Value => v !== null && ctx.isConstant(v));
  if (consts.length !== 1) return false;
  const t = ctx.graph.constantTensor(consts[0]);
  const mask = t ? channelMaskValues(t) : null;
  return mask !== null && mask.includes(true) && mask.includes(false);
}

const EXPR = /^(?:([A-Z][A-Za-z0-9]*)(?:\s*([*/])\s*(\d+))?|(\d+))$/;

/** Check `n` channels against 'C', 'C/2', 'M*4' or '64'; a bare or scaled symbol seen first is bound. */
function channelExpr(expr: string, n: number, symbols: Map<string, number>): boolean {
  const m = EXPR.exec(expr);
  if (!m) return false;
  if (m[4] !== undefined) return n === Number(m[4]);
  const [, sym, op, kStr] = m;
  const k = kStr === undefined ? 1 : Number(kStr);
  const bound = symbols.get(sym);
  if (bound === undefined) {
    // solve for the symbol: n = C/k -> C = n*k; n = C*k -> C = n/k
    const value = op === '*' ? n / k : n * k;
    if (!Number.isInteger(value)) return false;
    symbols.set(sym, value);
    return true;
  }
  return op === '*' ? bound * k === n : op === '/' ? bound % k === 0 && bound / k === n : bound === n;
}

function channelsMatch(ctx: MatchContext, c: ChannelConstraint | undefined, input: Value, output: Value, symbols: Map<string, number>): boolean {
  if (!c) return true;
  for (const [expr, v] of [[c.in, input], [c.out, output]] as const) {
    if (!expr) continue;
    const n = ctx.channels(v);
    if (n === null) continue; // unknown width: the structure decides
    if (!channelExpr(expr, n, symbols)) return false;
  }
  return true;
}

function fork(st: State): State {
  return { nodes: new Set(st.nodes), tagged: [...st.tagged], symbols: new Map(st.symbols) };
}

function resolve(ref: string, scope: Scope): Value[] {
  if (ref.endsWith('*')) return scope.get(ref.slice(0, -1)) ?? [];
  const nth = /^(.*):(\d)$/.exec(ref);
  if (nth) {
    // another output of the node the element matched (a Split's second part); an absent element has none
    if (scope.has(`${nth[1]}${ABSENT}`)) return [];
    const v = (scope.get(nth[1]) ?? [])[0];
    const o = v?.producer?.outputs[Number(nth[2])];
    return v && o && v.producer!.outputs[0] === v ? [o] : [];
  }
  const vs = scope.get(ref) ?? [];
  return vs.length ? [vs[vs.length - 1]] : [];
}

function* matchSequence(ctx: MatchContext, els: Element[], input: Value, st: State, prefix: string, role?: Role): Generator<[State, Scope]> {
  function* step(i: number, scope: Scope, cur: State): Generator<[State, Scope]> {
    ctx.tick();
    if (i === els.length) {
      yield [cur, scope];
      return;
    }
    const el = els[i];
    const inputs = el.inputs.flatMap((r) => resolve(r, scope));
    if (inputs.length === 0) return;
    for (const [next, outs] of matchElement(ctx, el, inputs, cur, prefix + el.id, el.role ?? role)) {
      const s = new Map(scope).set(el.id, outs);
      // an absent optional element yields the unchanged state (a present one always forks it)
      if (next === cur) s.set(`${el.id}${ABSENT}`, []);
      yield* step(i + 1, s, next);
    }
  }
  yield* step(0, new Map([['$in', [input]]]), st);
}

function* matchElement(ctx: MatchContext, el: Element, inputs: Value[], st: State, path: string, role?: Role): Generator<[State, Value[]]> {
  if (el.repeat) {
    const { min, max } = el.repeat;
    const chain = function* (cur: State, outs: Value[]): Generator<[State, Value[]]> {
      if (outs.length < max) {
        const from = outs.length ? [outs[outs.length - 1]] : inputs;
        for (const [next, out] of matchOnce(ctx, el, from, cur, `${path}[${outs.length}]`, role)) yield* chain(next, [...outs, out]);
      }
      if (outs.length >= min) yield [cur, outs];
    };
    yield* chain(st, []);
  } else {
    for (const [next, out] of matchOnce(ctx, el, inputs, st, path, role)) yield [next, [out]];
  }
  // absent: the element stands for its last input (Add(shortcut, branch) absent leaves the branch)
  if (el.optional) yield [st, [inputs[inputs.length - 1]]];
}

function* matchOnce(ctx: MatchContext, el: Element, inputs: Value[], st: State, path: string, role?: Role): Generator<[State, Value]> {
  for (const alt of el.alternatives) {
    if ('op' in alt) {
      for (const { node, via } of part1First(ctx, [...dataConsumers(inputs[0])])) {
        ctx.tick();
        if (node.opType !== alt.op || st.nodes.has(node) || !node.outputs[0]) continue;
        const skipped = inputsMatch(ctx, node, inputs);
        if (!skipped || (el.attrs && !attrsMatch(ctx, node, el.attrs))) continue;
        const next = fork(st);
        if (!channelsMatch(ctx, el.channels, inputs[0], node.outputs[0], next.symbols)) continue;
        for (const n of [...via, ...skipped]) next.nodes.add(n);
        next.nodes.add(node);
        next.tagged.push({ path, role, node });
        yield [next, node.outputs[0]];
      }
    } else {
      const last = alt.pattern[alt.pattern.length - 1].id;
      for (const [next, scope] of matchSequence(ctx, alt.pattern, inputs[0], st, `${path}.`, role)) {
        ctx.tick();
        const out = resolve(last, scope)[0];
        if (out === inputs[0]) continue; // a unit whose every element was absent is not there
        const checked = { ...next, symbols: new Map(next.symbols) };
        if (channelsMatch(ctx, el.channels, inputs[0], out, checked.symbols)) yield [checked, out];
      }
    }
  }
}

/** Consumers with part 2's copies of a divided layer after part 1's (the order is kept otherwise). */
function part1First<T extends { node: Node }>(ctx: MatchContext, consumers: T[]): T[] {
  const d = ctx.divided;
  if (!d || d.part2Nodes.size === 0) return consumers;
  const late = (c: T) => d.part2Nodes.has(c.node) && consumers.some((o) => o.node === d.twin.get(c.node));
  return [...consumers.filter((c) => !late(c)), ...consumers.filter(late)];
}

/** Nothing made inside the match may be read outside it, except its output and the outputs of elements marked shared. */
function isClosed(ctx: MatchContext, nodes: Set<Node>, output: Value, shared: Set<Value>): boolean {
  const twin = ctx.divided?.twin;
  // the other copy of a divided layer in the match reads what its twin reads
  const inside = (u: Node) => {
    const t = twin?.get(u);
    return nodes.has(u) || (!!t && nodes.has(t));
  };
  for (const n of nodes) {
    for (const o of n.outputs) {
      if (!o || o === output || shared.has(o)) continue;
      if (ctx.graph.isGraphOutput(o)) return false;
      if (o.consumers.some((u) => !inside(u.node))) return false;
    }
  }
  return true;
}

/** The first (most preferred) closed match of `rule` whose block input is `input`, or null. */
export function matchAt(ctx: MatchContext, rule: Rule, input: Value): Match | null {
  if (rule.pattern.length === 0) return null;
  ctx.begin(rule);
  const lastId = rule.pattern[rule.pattern.length - 1].id;
  for (const [st, scope] of matchSequence(ctx, rule.pattern, input, { nodes: new Set(), tagged: [], symbols: new Map() }, '')) {
    ctx.tick();
    const output = resolve(lastId, scope)[0];
    const shared = new Set(rule.pattern.filter((el) => el.shared).flatMap((el) => resolve(el.id, scope)));
    if (output === input || !isClosed(ctx, st.nodes, output, shared)) continue;
    const byOrder = (a: Node, b: Node) => (ctx.order.get(a) ?? 0) - (ctx.order.get(b) ?? 0);
    const parts = new Map<string, Node[]>();
    const roles = new Map<Role, Node[]>();
    for (const t of st.tagged) {
      parts.set(t.path, [...(parts.get(t.path) ?? []), t.node]);
      if (t.role) roles.set(t.role, [...(roles.get(t.role) ?? []), t.node]);
    }
    for (const list of roles.values()) list.sort(byOrder);
    return { rule, input, output, nodes: [...st.nodes].sort(byOrder), parts, roles, values: scope, symbols: st.symbols };
  }
  return null;
}

/** Values a block can start from: graph inputs and outputs of data nodes (not of Identity, which is looked through). */
function anchors(ctx: MatchContext): Value[] {
  const out: Value[] = [...ctx.graph.inputs.filter((v) => !v.tensor)];
  for (const n of ctx.graph.nodes) {
    if (n.opType === 'Identity') continue;
    for (const v of n.outputs) if (v && v.consumers.length > 0 && !ctx.isConstant(v)) out.push(v);
  }
  return out;
}

/** Every closed match of every rule, overlapping ones included. */
export function matchAll(graph: Graph, rules: Rule[], ctx = new MatchContext(graph)): Match[] {
  const starts = anchors(ctx);
  const out: Match[] = [];
  for (const rule of rules) {
    for (const v of starts) {
      const m = matchAt(ctx, rule, v);
      if (m) out.push(m);
    }
  }
  return out;
}

/**
 * Non-overlapping matches, biggest first (maximal munch: an OSA module with its eSE tail wins over
 * the same module without it), then in graph order. Nodes in `taken` are not available.
 */
export function selectMatches(matches: Match[], ctx: MatchContext, taken: Set<Node> = new Set()): Match[] {
  const pos = (m: Match) => ctx.order.get(m.output.producer!) ?? 0;
  const sorted = [...matches].sort((a, b) => b.nodes.length - a.nodes.length || pos(a) - pos(b));
  const used = new Set(taken);
  const chosen: Match[] = [];
  for (const m of sorted) {
    if (m.nodes.some((n) => used.has(n))) continue;
    for (const n of m.nodes) used.add(n);
    chosen.push(m);
  }
  return chosen.sort((a, b) => pos(a) - pos(b));
}
