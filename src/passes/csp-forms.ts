/**
 * CSP's emit forms: two ways each to write the split and the merge, computing the same numbers
 * (README "CSP's emit forms" has the measurement behind the defaults).
 *
 * The split (`--split-op producer`): instead of a Split after the layer that makes the stage input
 * x, that layer itself is written twice, once per part, each with its own filters (part 1's kept
 * channels, part 2's rest) and the same per-channel ops after it:
 *
 *   slice:     ── Conv(C) ─ BN ─ act ── x ── Split ─┬─ part 1 (k)        producer:  ─┬─ Conv(k)   ─ BN ─ act ── part 1
 *                                                   └─ part 2 (C - k)                 └─ Conv(C-k) ─ BN ─ act ── part 2
 *
 * The same filters as the slice split (no new weights, the same MACs), so the same numbers; but no
 * Split, and onnxruntime's CPU provider keeps both parts in its blocked NCHWc layout (a Split makes
 * it reorder part 1's whole residual stream to NCHW and back around every block). Possible where x
 * is made by convs (+BN) followed only by per-channel ops without per-channel constants
 * (activations, pooling, Identity) and Adds of such paths (ResNet's projecting entry block: both its
 * conv branch and its projection are divided), every value on the way read by the next op only —
 * the layers the slice split reorders; elsewhere the stage is split with a Split, and the report
 * says why.
 *
 * The merge (`--merge-op sum`): a 1x1 conv over the parts' Concat, W·[a; b], written as
 * W_a·a + W_b·b (the weights split by input channels, one conv per part, outputs added): no Concat.
 */
import type { Writer } from './csp-streams';
import type { Graph, Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { addConv, channelsOf, concatChannels, keepOutputChannels, NewConvSpec, withChannels } from '../ir/surgery';
import type { MergeOp } from './options';
import { nodeOp } from '../ops/registry';

/** The layers that make x, to be written once per part: convs (+BN) and what joins them up to x. */
export interface ProducerTree {
  /** Every node from the convs down to x, in graph order. */
  nodes: Node[];
  writers: { conv: Node; bn?: Node }[];
}

/**
 * The nodes that make x, back to convs (with their BN): per-channel ops without per-channel
 * constants (activations, pooling, Identity) and Adds of two such paths (a residual block's output),
 * every value on the way read by the next op only; or why x cannot be written per part (`later`:
 * not yet, because a stage planned before this one rewrites a value on the way).
 */
export function producerTree(g: Graph, x: Value, rewritten: (v: Value) => 'conv' | 'concat' | undefined = () => undefined): ProducerTree | { reason: string; later?: boolean } {
  const nodes = new Set<Node>();
  const writers: ProducerTree['writers'] = [];
  const stack = [x];
  while (stack.length) {
    const cur = stack.pop()!;
    const p = cur.producer;
    if (!p || g.inputs.includes(cur)) return { reason: `'${cur.name}' is not made by a layer of the graph` };
    // the output of a stage converted before this one: its new transition (a conv) can be divided
    // once that stage is written (later: true), a Concat (fusion last) cannot
    const before = rewritten(cur);
    if (before) return { reason: `'${cur.name}' is the output of a stage converted before it${before === 'concat' ? ', a Concat' : ''}`, later: before === 'conv' };
    if (cur !== x && (cur.consumers.length !== 1 || g.isGraphOutput(cur))) return { reason: `'${cur.name}' before it is read elsewhere too` };
    // only output 0 may be read (a training-mode BN lists its statistics as unread outputs)
    if (p.outputs.some((o, i) => o && i > 0 && (o.consumers.length > 0 || g.isGraphOutput(o)))) return { reason: `'${p.name}' has other outputs that are read` };
    if (nodes.size > 32) return { reason: `more than 32 layers make '${x.name}'` };
    nodes.add(p);
    const conv = p.opType === 'BatchNormalization' ? p.inputs[0]?.producer : p;
    if (conv?.opType === 'Conv') {
      if (conv.int('group', 1) !== 1) return { reason: `'${conv.name}' is a grouped conv` };
      if (conv !== p) {
        const between = p.inputs[0]!;
        if (between.consumers.length !== 1 || g.isGraphOutput(between)) return { reason: `'${between.name}' before it is read elsewhere too` };
        nodes.add(conv);
      }
      writers.push({ conv, bn: conv !== p ? p : undefined });
      continue;
    }
    const data = g.dataInputs(p);
    if (p.opType === 'Add' && data.length === 2 && p.inputs.filter(Boolean).length === 2) {
      stack.push(...data);
      continue;
    }
    // a per-channel op with one data input and no per-channel constant (a PRelu's slope would need dividing too)
    const op = nodeOp(p);
    const perChannelConst = p.inputs.some((v, i) => v && !data.includes(v) && !op?.metaInputs?.includes(i) && (g.constantTensor(v)?.size ?? 2) > 1);
    if (op?.channels !== 'preserve' || data.length !== 1 || perChannelConst) return { reason: `'${p.name}' (${p.opType}) between the layers and the split cannot be written per part` };
    stack.push(data[0]);
  }
  const order = new Map(g.nodes.map((n, i) => [n, i]));
  return { nodes: [...nodes].sort((a, b) => order.get(a)! - order.get(b)!), writers };
}

/**
 * Write the tree twice: the original narrowed to part 1's channels `keep` (its output, x, becomes
 * part 1), a copy with part 2's channels `rest`, inserted before `before`. Returns part 2 and the new nodes.
 */
export function splitProducer(model: Model, tree: ProducerTree, x: Value, keep: number[], rest: number[], base: string, before?: Node): { part2: Value; nodes: Node[] } {
  const g = model.graph;
  const copyOf = new Map<Value, Value>();
  const copies = new Map<Node, Node>();
  const types = new Map(tree.nodes.map((n) => [n, n.outputs[0]!.type]));
  for (const n of tree.nodes) {
    // as many outputs as the original: onnxruntime runs a BN in training mode only with its statistics outputs
    const outs = n.outputs.map((_, i) => g.newValue(`${base}/part2/${n.opType}_output_${i}`));
    const out = outs[0];
    const copy = g.addNode({
      opType: n.opType, domain: n.domain || undefined, name: g.uniqueName(`${base}/part2/${n.opType}`),
      inputs: n.inputs.map((v) => (v && copyOf.get(v)) ?? v), outputs: outs,
    }, before);
    for (const a of n.attributes) copy.copyAttr(a);
    copyOf.set(n.outputs[0]!, out);
    copies.set(n, copy);
  }
  for (const w of tree.writers) {
    keepOutputChannels(model, copies.get(w.conv)!, w.bn && copies.get(w.bn), rest);
    keepOutputChannels(model, w.conv, w.bn, keep);
  }
  // every op after the convs keeps their width (shape inference redoes the rest)
  for (const n of tree.nodes) {
    n.outputs[0]!.inferred = withChannels(types.get(n), keep.length);
    copies.get(n)!.outputs[0]!.inferred = withChannels(types.get(n), rest.length);
  }
  return { part2: copyOf.get(x)!, nodes: [...copies.values()] };
}

/** Columns [from, from + n) of a [outC, inC] 1x1 weight matrix. */
function columnsOf(w: Float32Array, outC: number, inC: number, from: number, n: number): Float32Array {
  const out = new Float32Array(outC * n);
  for (let o = 0; o < outC; o++) out.set(w.subarray(o * inC + from, o * inC + from + n), o * n);
  return out;
}

/**
 * A 1x1 conv (weight [outC, Σ inputs' channels], zero bias) over the parts: over their Concat, or
 * with the sum merge one conv per part (its columns of the weight; the bias on the first) whose
 * outputs are added. Returns the conv's (or the Add's) output and the conv(s) that write it.
 */
export function linearOverParts(model: Model, inputs: Value[], spec: NewConvSpec & { mergeOp: MergeOp; concatBase: string; before?: Node }): { value: Value; writers: Writer[] } {
  const g = model.graph;
  const { mergeOp, concatBase, before, ...conv } = spec;
  if (inputs.length === 1 || mergeOp === 'concat') {
    const input = inputs.length === 1 ? inputs[0] : concatChannels(model, inputs, concatBase, before);
    const value = addConv(model, input, conv, before);
    return { value, writers: [{ conv: value.producer! }] };
  }
  const widths = inputs.map((v) => channelsOf(v)!);
  const inC = widths.reduce((a, b) => a + b, 0);
  const dir = conv.name.slice(0, conv.name.lastIndexOf('/'));
  const halves = inputs.map((v, j) => addConv(model, v, {
    name: j === 0 ? conv.name : `${dir}/part${j + 1}/Conv`, outChannels: conv.outChannels,
    weight: columnsOf(conv.weight, conv.outChannels, inC, widths.slice(0, j).reduce((a, b) => a + b, 0), widths[j]), bias: j === 0 ? conv.bias : null,
  }, before));
  const value = g.newValue(`${dir}/Add_output_0`, halves[0].type ? { ...halves[0].type } : undefined);
  g.addNode({ opType: 'Add', name: g.uniqueName(`${dir}/Add`), inputs: halves, outputs: [value] }, before);
  return { value, writers: halves.map((h) => ({ conv: h.producer! })) };
}
