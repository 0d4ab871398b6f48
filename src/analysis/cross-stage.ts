/**
 * Cross-stage partials already in a model (CSPNet, Wang et al. 2020, Fig. 2 and 3): found around a
 * run of recognised blocks, whatever the block type, so CSPDarknet-53, CSPResNet and CSPResNeXt read
 * as CSP stages and not as plain stages with nodes left over.
 *
 *              ┌─ part 2 ──────────────────────────────────────────┐
 *   x ─[expand]┤                                                    Concat ─[transition after]─ y
 *              └─ part 1 ── block ── ... ── block ─[transition before]┘
 *
 * The split is a Split node, two Slices, two 1x1 convs on the same input, or the layers that make
 * the stage input written once per part (divided-producer.ts); the transitions are matches of the
 * `transition` rules (rules/csp-transition.json). Nothing here knows a block type.
 */
import type { Node, Value } from '../ir/graph';
import { Match, MatchContext, matchAt, throughIdentity } from './matcher';
import type { Rule } from './rules';
import type { CrossStagePartial } from './structure-types';

export interface FoundCrossStage {
  record: CrossStagePartial;
  nodes: Node[];
  input: Value;
  output: Value;
  concat: Node;
  transitionAfter: Node[];
}

/** Data consumers of a value, looking through Identity. */
function consumersOf(v: Value): Node[] {
  const out: Node[] = [];
  for (const { node } of v.consumers) {
    if (node.opType === 'Identity' && node.outputs[0]) out.push(...consumersOf(node.outputs[0]));
    else if (!out.includes(node)) out.push(node);
  }
  return out;
}

/** A transition match reading `input` (its output must be read by nothing but `reader` when given). */
function transitionAt(ctx: MatchContext, rules: Rule[], input: Value): Match | null {
  for (const r of rules) {
    const m = matchAt(ctx, r, input);
    if (m) return m;
  }
  return null;
}

/** The transition match whose output is `v`: walk up a few single-input nodes to a 1x1 conv and match from its input. */
function transitionEndingAt(ctx: MatchContext, rules: Rule[], v: Value): Match | null {
  let cur: Value | null = throughIdentity(v).value;
  for (let i = 0; i < 6 && cur?.producer; i++) {
    const p: Node = cur.producer;
    const data = ctx.graph.dataInputs(p).map((x) => throughIdentity(x).value);
    if (p.opType === 'Conv') {
      if (!data[0]) return null;
      const m = transitionAt(ctx, rules, data[0]);
      if (m && m.output === throughIdentity(v).value) return m;
      // the rule's first match from that input may be a sibling 1x1 (a conv split's other half):
      // match again with the siblings' consumers hidden is not possible, so check this chain itself
      const k = p.ints('kernel_shape');
      if (!(k.length && k.every((d) => d === 1) && p.ints('strides').every((d) => d === 1))) return null;
      const chain = chainBetween(ctx, p, throughIdentity(v).value);
      return chain ? ({ input: data[0], output: throughIdentity(v).value, nodes: chain } as unknown as Match) : null;
    }
    // an activation written out (x * Sigmoid(x)) has two data inputs from the same value
    const distinct = [...new Set(data)];
    cur = distinct.length === 1 ? distinct[0] : (distinct.find((d) => d.producer?.opType !== 'Sigmoid' && d.producer?.opType !== 'HardSigmoid' && d.producer?.opType !== 'Tanh' && d.producer?.opType !== 'Clip') ?? null);
  }
  return null;
}

/** The nodes from conv `p` to `v` when every value between is read only inside that chain (BN, activations, x * Sigmoid(x)). */
function chainBetween(ctx: MatchContext, p: Node, v: Value): Node[] | null {
  const nodes = new Set<Node>([p]);
  const stack: Value[] = [v];
  while (stack.length) {
    const cur = stack.pop()!;
    const q = cur.producer;
    if (!q || nodes.has(q)) continue;
    if (nodes.size > 8) return null;
    nodes.add(q);
    for (const d of ctx.graph.dataInputs(q)) stack.push(d);
  }
  for (const n of nodes) {
    for (const o of n.outputs) if (o && o !== v && o.consumers.some((u) => !nodes.has(u.node))) return null;
    if (n !== p && ctx.graph.dataInputs(n).some((d) => !d.producer || !nodes.has(d.producer))) return null;
  }
  return [...nodes].sort((a, b) => (ctx.order.get(a) ?? 0) - (ctx.order.get(b) ?? 0));
}

function isChannelConcat(n: Node): boolean {
  return n.opType === 'Concat' && n.int('axis', 0) === 1;
}

/**
 * The cross-stage partial around the run of blocks that reads `first` and writes `last`, or null.
 * `transitions` are the rules of kind 'transition'.
 */
export function crossStageAround(ctx: MatchContext, transitions: Rule[], first: Value, last: Value): FoundCrossStage | null {
  if (transitions.length === 0) return null;
  const g = ctx.graph;
  const part1 = throughIdentity(first).value;
  const p = part1.producer;
  if (!p) return null;
  let splitOp: CrossStagePartial['splitOp'];
  let splitNodes: Node[];
  let part2: Value | null = null;
  let input: Value;
  if (p.opType === 'Split' && p.int('axis', 0) === 1 && p.outputs.filter(Boolean).length === 2) {
    splitOp = 'split';
    splitNodes = [p];
    part2 = p.outputs.find((o) => o && o !== part1) ?? null;
    input = throughIdentity(g.dataInputs(p)[0]).value;
  } else if (p.opType === 'Slice') {
    input = throughIdentity(g.dataInputs(p)[0]).value;
    const sibling = consumersOf(input).find((n) => n !== p && n.opType === 'Slice');
    if (!sibling) return null;
    splitOp = 'slice';
    splitNodes = [p, sibling];
    part2 = sibling.outputs[0];
  } else {
    const m1 = transitionEndingAt(ctx, transitions, part1);
    const divided = ctx.divided?.byPart1.get(part1);
    if (m1) {
      input = m1.input;
      splitOp = 'conv';
      splitNodes = [...m1.nodes];
      // part 2: another 1x1 unit on the same input; which one is settled by the Concat below
      part2 = null;
    } else if (divided) {
      // no value holds the undivided stage input: part 1's copy stands for it (the blocks before
      // read it as the slice split's input), part 2's copy is the split
      input = part1;
      splitOp = 'producer';
      splitNodes = [...divided.nodes2];
      part2 = divided.part2;
    } else {
      return null;
    }
  }
  if (!input) return null;

  // part 1's end: the last block's output, or a transition after it, read by a channel Concat
  let before: Match | null = null;
  let end = throughIdentity(last).value;
  let readers = consumersOf(end);
  if (!(readers.length === 1 && isChannelConcat(readers[0]))) {
    before = readers.length === 1 ? transitionAt(ctx, transitions, end) : null;
    if (!before) return null;
    end = before.output;
    readers = consumersOf(end);
    if (!(readers.length === 1 && isChannelConcat(readers[0]))) return null;
  }
  const concat = readers[0];
  const others = g.dataInputs(concat).map((v) => throughIdentity(v).value).filter((v) => v !== end);
  if (others.length !== 1) return null;
  let conv2: Match | null = null;
  if (splitOp === 'conv') {
    conv2 = transitionEndingAt(ctx, transitions, others[0]);
    if (!conv2 || conv2.input !== input) return null;
    splitNodes.push(...conv2.nodes);
    part2 = others[0];
  } else if (others[0] !== part2) {
    return null;
  }
  const cat = concat.outputs[0]!;
  const after = consumersOf(cat).length === 1 ? transitionAt(ctx, transitions, cat) : null;
  const output = after ? after.output : cat;

  // the expand conv in front of a Split / Slice: a transition whose output only the split reads
  let expand: Match | null = null;
  if (splitOp === 'split' || splitOp === 'slice') {
    const e = transitionEndingAt(ctx, transitions, input);
    if (e && consumersOf(input).every((n) => splitNodes.includes(n))) expand = e;
  }
  const fusion: CrossStagePartial['fusion'] = before && after ? 'both' : after ? 'first' : before ? 'last' : 'none';
  const names = (m: Match | null) => (m ? m.nodes.map((n) => n.name) : []);
  const cspInput = expand ? expand.input : input;
  const nodes = [...(expand?.nodes ?? []), ...splitNodes, ...(before?.nodes ?? []), concat, ...(after?.nodes ?? [])];
  return {
    record: {
      splitOp, parts: [ctx.channels(part1), part2 ? ctx.channels(part2) : null], fusion,
      expand: names(expand), split: splitNodes.map((n) => n.name), transitionBefore: names(before), concat: concat.name,
      transitionAfter: names(after), input: cspInput.name, output: output.name,
    },
    nodes, input: cspInput, output, concat, transitionAfter: after?.nodes ?? [],
  };
}

/**
 * The channel Concats that join a split's part 2 (a Split's or a Slice's output, or a divided
 * layer's part-2 copy) to the path of part 1, and the 1x1 units of the cross-stage partial around
 * them: the transition that writes the Concat's other input, the one that reads the Concat, the
 * expand conv whose output only the Split / Slices read, and part 1's 1x1 unit of a conv split (a
 * divided 1x1 layer: YOLOv5's C3). A plain conv net's CSP form (YOLOv4-tiny's layout of Darknet
 * stages) has nothing else to tell these 1x1 convs from the stage's own conv layers: structure
 * recognition keeps them out of the plain layers, for the cross-stage partial to read.
 */
export function crossStageJoins(ctx: MatchContext, transitions: Rule[]): { concats: Set<Node>; transitions: Set<Node> } {
  const g = ctx.graph;
  const concats = new Set<Node>();
  const nodes = new Set<Node>();
  const divided = new Map([...(ctx.divided?.byPart1.values() ?? [])].map((d) => [d.part2, d]));
  const part2s = new Set(divided.keys());
  const isPart2 = (v: Value): boolean => {
    const p = v.producer;
    if (!p) return false;
    if (part2s.has(v)) return true;
    if (p.opType === 'Split') return p.int('axis', 0) === 1 && p.outputs.filter(Boolean).length === 2;
    if (p.opType !== 'Slice') return false;
    const input = throughIdentity(g.dataInputs(p)[0]).value;
    return consumersOf(input).some((n) => n !== p && n.opType === 'Slice');
  };
  for (const n of g.nodes) {
    if (!isChannelConcat(n)) continue;
    const ins = g.dataInputs(n).map((v) => throughIdentity(v).value);
    if (ins.length !== 2 || ins.filter(isPart2).length !== 1) continue;
    concats.add(n);
    const part2 = ins.find(isPart2)!;
    const before = transitionEndingAt(ctx, transitions, ins.find((v) => !isPart2(v))!);
    const after = transitionAt(ctx, transitions, n.outputs[0]!);
    let split: Match | null = null;
    const d = divided.get(part2);
    if (d) split = transitionEndingAt(ctx, transitions, d.part1);
    else {
      const input = throughIdentity(g.dataInputs(part2.producer!)[0]).value;
      const readers = consumersOf(input);
      if (readers.every((r) => r.opType === 'Split' || r.opType === 'Slice')) split = transitionEndingAt(ctx, transitions, input);
    }
    for (const m of [before, after, split]) for (const x of m?.nodes ?? []) nodes.add(x);
  }
  return { concats, transitions: nodes };
}
