/**
 * A layer divided by output channels: the layer(s) that make a value written once per part, each
 * copy with its own filters and the same per-channel ops after it, in place of one layer and a
 * Split. CSP's producer split writes a stage input so (README "CSP's emit forms"); a plain
 * torch.onnx.export of such a model keeps it. Read here as that one layer split in two:
 *
 *   ── f ─┬─ Conv(k)   ─ BN ─ act ── part 1 ── blocks ── ...
 *         └─ Conv(C-k) ─ BN ─ act ── part 2 ─────────────── Concat
 *
 * Part 2 is the copy that a channel Concat alone reads (the part that crosses the stage); part 1 is
 * its twin: node for node the same ops and attributes, the convs reading the same values, every
 * other node reading the twins of its counterpart's inputs. The layers may be any tree of convs
 * (+BN), per-channel ops and Adds / Muls of such paths (ResNet's projecting block: both branches
 * and their Add; SiLU written as x * Sigmoid(x)). Nothing here knows a block type.
 */
import type { Graph, Node, Value } from '../ir/graph';
import { nodeOp } from '../ops/registry';
import { throughIdentity } from './matcher';

export interface DividedProducer {
  /** The values the two copies write: part 1 (read on, e.g. by a stage's blocks) and part 2 (read by `concat` only). */
  part1: Value;
  part2: Value;
  /** Each copy's nodes, in graph order. */
  nodes1: Node[];
  nodes2: Node[];
  concat: Node;
}

/** Nodes in one copy's tree at most (a divided residual block with its attention is about 20). */
const MAX_TREE = 32;

/** The data consumers of `v`, looking through Identity. */
function readers(v: Value): Node[] {
  const out: Node[] = [];
  for (const { node } of v.consumers) {
    if (node.opType === 'Identity' && node.outputs[0]) out.push(...readers(node.outputs[0]));
    else if (!out.includes(node)) out.push(node);
  }
  return out;
}

/**
 * The nodes that make `end` back to convs: per-channel ops and Adds / Muls whose every input is
 * made inside, each value read inside only (but `end`); null when anything else is on the way.
 */
function treeBehind(g: Graph, end: Value): Node[] | null {
  const nodes = new Set<Node>();
  const stack = [end];
  while (stack.length) {
    const p = stack.pop()!.producer;
    if (!p) return null;
    if (nodes.has(p)) continue;
    if (nodes.size >= MAX_TREE) return null;
    // only output 0 may be read (a training-mode BN lists its statistics as unread outputs)
    if (p.outputs.some((o, i) => o && i > 0 && (o.consumers.length > 0 || g.isGraphOutput(o)))) return null;
    nodes.add(p);
    if (p.opType === 'Conv') {
      if (p.int('group', 1) !== 1) return null;
      continue;
    }
    const data = g.dataInputs(p);
    if (nodeOp(p)?.channels !== 'preserve' || data.length === 0) return null;
    if (data.length > 1 && !(data.length === 2 && (p.opType === 'Add' || p.opType === 'Mul'))) return null;
    stack.push(...data);
  }
  if (![...nodes].some((n) => n.opType === 'Conv')) return null;
  return closed(g, nodes, end) ? [...nodes] : null;
}

/** Every value made by `nodes` is read by them only, except `end`. */
function closed(g: Graph, nodes: Set<Node>, end: Value): boolean {
  for (const n of nodes) {
    for (const o of n.outputs) {
      if (!o || o === end) continue;
      if (g.isGraphOutput(o) || o.consumers.some((u) => !nodes.has(u.node))) return false;
    }
  }
  return true;
}

/** Attributes as a comparable string (names sorted), or null when one holds a tensor or a graph. */
function attrKey(n: Node): string | null {
  const attrs = [...n.attributes].sort((a, b) => (a.name ?? '').localeCompare(b.name ?? ''));
  if (attrs.some((a) => a.t || a.g || a.tensors.length || a.graphs.length)) return null;
  return JSON.stringify(attrs.map((a) => [a.name, a.type, a.i === undefined ? null : Number(a.i), a.f ?? null, a.ints.map(Number), a.floats, a.s ? [...a.s] : null]));
}

/**
 * Constant inputs of two copies agree: a layer's parameters (Conv weight and bias, BN's four) per
 * output channel, so only their dims after the first; any other constant (a Clip bound, a
 * HardSwish's 3 and 6) is the same tensor.
 */
function constantsAgree(g: Graph, a: Node, b: Node): boolean {
  const perChannel = a.opType === 'Conv' || a.opType === 'BatchNormalization' || !!nodeOp(a)?.params?.length;
  for (let i = 0; i < Math.max(a.inputs.length, b.inputs.length); i++) {
    const va = a.inputs[i] ?? null;
    const vb = b.inputs[i] ?? null;
    if (!va || !vb) {
      if (va !== vb) return false;
      continue;
    }
    const ca = g.isConstant(va);
    if (ca !== g.isConstant(vb)) return false;
    if (!ca || va === vb) continue;
    const ta = g.constantTensor(va);
    const tb = g.constantTensor(vb);
    if (!ta || !tb || ta.dims.length !== tb.dims.length) return false;
    if (perChannel) {
      if (ta.dims.some((d, k) => k > 0 && d !== tb.dims[k])) return false;
    } else {
      if (ta.dims.some((d, k) => d !== tb.dims[k]) || ta.size > 64 || tb.size > 64) return false;
      const na = ta.numbers();
      const nb = tb.numbers();
      if (na.some((x, k) => x !== nb[k])) return false;
    }
  }
  return true;
}

function sameOp(g: Graph, a: Node, b: Node): boolean {
  const key = attrKey(a);
  return a.opType === b.opType && a.domain === b.domain && key !== null && key === attrKey(b) && constantsAgree(g, a, b);
}

/**
 * Part 1's nodes for part 2's `nodes2` (graph order), node for node, or null. A conv's twin reads
 * the same value; any other node's twin reads the twins of its inputs (either order where the op
 * is commutative). Convs with several candidates are tried in turn.
 */
function twinTree(g: Graph, nodes2: Node[]): Map<Node, Node> | null {
  const inTree = new Set(nodes2);
  const map = new Map<Node, Node>();
  const used = new Set<Node>();
  const twinValue = (v: Value): Value | undefined => {
    const p = v.producer;
    const t = p && map.get(p);
    return t ? t.outputs[p!.outputs.indexOf(v)] ?? undefined : undefined;
  };
  const candidates = (n: Node): Node[] => {
    const data = g.dataInputs(n).map((v) => throughIdentity(v).value);
    if (n.opType === 'Conv') {
      return readers(data[0]).filter((c) => c !== n && !inTree.has(c) && !used.has(c) && g.dataInputs(c).length === 1 &&
        throughIdentity(g.dataInputs(c)[0]).value === data[0] && sameOp(g, n, c));
    }
    const wanted = g.dataInputs(n).map(twinValue);
    if (wanted.some((v) => !v)) return [];
    return readers(wanted[0]!).filter((c) => {
      if (inTree.has(c) || used.has(c) || !sameOp(g, n, c)) return false;
      const ins = g.dataInputs(c);
      if (ins.length !== wanted.length) return false;
      if (nodeOp(c)?.commutative) return wanted.every((w) => ins.includes(w!)) && ins.every((v) => wanted.includes(v));
      return ins.every((v, k) => v === wanted[k]);
    });
  };
  const assign = (i: number): boolean => {
    if (i === nodes2.length) return true;
    for (const c of candidates(nodes2[i])) {
      map.set(nodes2[i], c);
      used.add(c);
      if (assign(i + 1)) return true;
      map.delete(nodes2[i]);
      used.delete(c);
    }
    return false;
  };
  return assign(0) ? map : null;
}

/** The divided layers of a graph whose part 2 a channel Concat reads, keyed by part 1's value. */
export class DividedProducers {
  readonly byPart1 = new Map<Value, DividedProducer>();
  /** Each copy's node -> its twin in the other copy (both ways). */
  readonly twin = new Map<Node, Node>();
  /** The nodes of every part-2 copy. */
  readonly part2Nodes = new Set<Node>();

  constructor(g: Graph) {
    const order = new Map(g.nodes.map((n, i) => [n, i]));
    const byOrder = (a: Node, b: Node) => order.get(a)! - order.get(b)!;
    for (const concat of g.nodes) {
      if (concat.opType !== 'Concat' || concat.int('axis', 0) !== 1) continue;
      const ins = g.dataInputs(concat).map((v) => throughIdentity(v).value);
      for (const part2 of ins) {
        if (g.isGraphOutput(part2) || readers(part2).some((r) => r !== concat)) continue;
        const nodes2 = treeBehind(g, part2)?.sort(byOrder);
        if (!nodes2 || nodes2.some((n) => this.twin.has(n))) continue;
        const map = twinTree(g, nodes2);
        if (!map) continue;
        const nodes1 = [...map.values()].sort(byOrder);
        const part1 = map.get(part2.producer!)!.outputs[0]!;
        if (ins.includes(part1) || this.byPart1.has(part1) || nodes1.some((n) => this.twin.has(n)) || !closed(g, new Set(nodes1), part1)) continue;
        this.byPart1.set(part1, { part1, part2, nodes1, nodes2, concat });
        for (const [b, a] of map) {
          this.twin.set(a, b);
          this.twin.set(b, a);
          this.part2Nodes.add(b);
        }
      }
    }
  }
}
