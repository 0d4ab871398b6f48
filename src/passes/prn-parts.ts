/**
 * PRN's masked residual in two parts (emit 'parts'): the same numbers as the mask form with no
 * multiplication by the mask. A block output y (C channels, the shortcut masked to its first k) is
 * carried as two tensors, yA = y[:k] and yB = y[k:], never as one:
 *
 *   mask form:  y = act( B + S x [1]*k + [0]*(C-k) )      parts:  yA = act( B[:k] + S[:k] )
 *                                                                  yB = act( B[k:] )
 *   - a producer is split by output channels: the branch's last conv (+BN, activation) becomes one
 *     conv per part (a projection shortcut keeps only its first k filters: the masked-out ones
 *     would be multiplied by 0);
 *   - a consumer conv is split by input channels: Conv(y, W) = Conv(yA, W[:, :k]) + Conv(yB, W[:, k:])
 *     (the Add is onnxruntime's fused conv sum input; a following BatchNormalization becomes one
 *     per part, the second with zero mean and shift, so each still folds into its conv);
 *   - any other consumer (pooling, a head, a graph output) reads y = Concat(yA, yB) under y's name.
 *
 * onnxruntime's CPU convolutions run in a blocked NCHWc layout: a Slice or Split of a blocked
 * tensor makes it insert layout kernels, and the mask multiplications, which it runs as one
 * depthwise kernel each, cost a pass over the shortcut. The parts are written by convolutions and
 * read by convolutions, so neither happens (README "PRN's emit forms" has the measurement).
 * It rewrites the mask form: any value it cannot write in parts keeps the mask form, exactly.
 */
import type { Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { floatTensor, floatValues } from '../ir/float-data';
import { channelsOf, keepInputChannels, keepOutputChannels, range } from '../ir/surgery';
import { channelMaskValues } from '../analysis/channel-mask';
import { activationSpec } from '../ops';

/** A part of a value: a tensor, or null for a part known to be all zeros (the masked-out shortcut). */
type Part = Value | null;
type Parts = readonly [Part, Part];

export interface PartsOutcome {
  /** Values now carried in parts. */
  values: number;
  /** Values some consumer still reads whole (a Concat of the parts). */
  concats: number;
  /** Why a value could not be carried in parts (it keeps the mask form). */
  skipped: { value: string; reason: string }[];
}

/** First k mask entries 1, the rest 0: the k the mask keeps; null for any other mask. */
export function maskedPrefix(model: Model, mul: Node): { shortcut: Value; k: number } | null {
  if (mul.opType !== 'Mul' || mul.inputs.length !== 2) return null;
  const g = model.graph;
  for (const i of [0, 1]) {
    const t = g.constantTensor(mul.inputs[1 - i] ?? null);
    const s = mul.inputs[i];
    if (!t || !s || g.isConstant(s)) continue;
    const keep = channelMaskValues(t);
    const C = channelsOf(s);
    if (!keep || C === null || keep.length !== C || t.dims.length < 2 || t.dims[t.dims.length - 3] !== C) continue;
    const k = keep.indexOf(false);
    if (k > 0 && keep.slice(k).every((x) => !x)) return { shortcut: s, k };
  }
  return null;
}

const POOLS = new Set(['MaxPool', 'AveragePool', 'LpPool']);
/** Activations onnxruntime's blocked conv applies after its sum input (measured with onnxruntime-node 1.30). */
const SUM_FUSED_ACTIVATIONS = new Set(['Relu']);

class PartsWriter {
  private readonly memo = new Map<Value, { k: number; parts: Parts | string }>();
  constructor(private readonly model: Model) {}

  private get g() {
    return this.model.graph;
  }

  private newLike(base: string, like: Value, channels: number): Value {
    const shape = like.shape ? [...like.shape] : null;
    if (shape) shape[1] = channels;
    return this.g.newValue(base, shape ? { elemType: like.type!.elemType, shape } : undefined);
  }

  /** A copy of `node` (attributes, inputs) writing new values. */
  private copyNode(node: Node, inputs: readonly (Value | null)[], outputs: Value[], suffix: string): Node {
    // the copies are named after the node (a layer's partial convs are read as that layer by name)
    if (!node.proto.name) node.name = this.g.uniqueName(node.opType || 'node');
    const n = this.g.addNode({ opType: node.opType, domain: node.domain || undefined, name: this.g.uniqueName(`${node.name}/${suffix}`), inputs, outputs }, node);
    for (const a of node.attributes) n.copyAttr(a);
    return n;
  }

  /** Values that stay whole (the mask form), and why. */
  readonly whole = new Map<Value, string>();

  /** Drop every part made so far (nothing reads them yet: cleanup removes them). */
  forget(): void {
    this.memo.clear();
    this.g.cleanup();
  }

  /** v's parts [0, k) and [k, C), memoised; a string says why v cannot be written in parts. */
  partsOf(v: Value, k: number): Parts | string {
    const no = this.whole.get(v);
    if (no) return no;
    const seen = this.memo.get(v);
    if (seen) return seen.k === k ? seen.parts : `'${v.name}' is split at ${seen.k} and at ${k} channels`;
    const parts = this.split(v, k);
    this.memo.set(v, { k, parts });
    return parts;
  }

  private split(v: Value, k: number): Parts | string {
    const C = channelsOf(v);
    const p = v.producer;
    if (C === null || !(k > 0 && k < C)) return `'${v.name}': channel count unknown or not above ${k}`;
    if (!p || p.hasSubgraphs) return `'${v.name}' has no producer that can be split`;
    const ranges = [range(0, k), range(k, C)];
    if (p.opType === 'Conv' && p.int('group', 1) === 1 && this.g.isConstant(p.inputs[1] ?? null)) {
      // one conv per part, each keeping its own filters
      return ranges.map((keep, i) => {
        const out = this.newLike(`${v.name}_part${i}`, v, keep.length);
        keepOutputChannels(this.model, this.copyNode(p, p.inputs, [out], `part${i}`), undefined, keep);
        return out;
      }) as unknown as Parts;
    }
    if (p.opType === 'BatchNormalization' && p.outputs.filter(Boolean).length === 1) {
      const x = this.partsOf(p.inputs[0]!, k);
      if (typeof x === 'string') return x;
      if (!x[0] || !x[1]) return `'${p.name}' normalizes an all-zero part`;
      return ranges.map((keep, i) => this.channelsOfBn(p, x[i]!, keep, `${v.name}_part${i}`, `part${i}`)) as unknown as Parts;
    }
    const act = activationSpec(p);
    // per-channel ops with no per-channel parameters: pooling, activations (not PRelu's learned slope)
    if ((act && act.slope === undefined) || (POOLS.has(p.opType) && p.outputs.filter(Boolean).length === 1) || p.opType === 'Identity') {
      const x = this.partsOf(p.inputs[0]!, k);
      if (typeof x === 'string') return x;
      if (!x[0] || !x[1]) return `'${p.name}' applies ${p.opType} to an all-zero part`;
      return x.map((xi, i) => {
        const out = this.newLike(`${v.name}_part${i}`, v, ranges[i].length);
        this.copyNode(p, [xi, ...p.inputs.slice(1)], [out], `part${i}`);
        return out;
      }) as unknown as Parts;
    }
    if (p.opType === 'Mul') {
      const m = maskedPrefix(this.model, p);
      if (m) {
        if (m.k !== k) return `'${p.name}' masks ${m.k} channels, not ${k}`;
        const s = this.partsOf(m.shortcut, k);
        return typeof s === 'string' ? s : [s[0], null];
      }
    }
    if ((p.opType === 'Add' || p.opType === 'Mul') && p.inputs.length === 2) {
      const [a, b] = p.inputs;
      if (!a || !b || JSON.stringify(a.shape) !== JSON.stringify(b.shape) || this.g.isConstant(a) || this.g.isConstant(b)) return `'${p.name}' is not an elementwise ${p.opType} of two ${C}-channel tensors`;
      const pa = this.partsOf(a, k), pb = this.partsOf(b, k);
      if (typeof pa === 'string') return pa;
      if (typeof pb === 'string') return pb;
      return [0, 1].map((i) => {
        const [x, y] = [pa[i], pb[i]];
        if (p.opType === 'Add' && (!x || !y)) return x ?? y; // x + 0 = x exactly
        if (!x || !y) return null; // x * 0
        const out = this.newLike(`${v.name}_part${i}`, v, ranges[i].length);
        this.copyNode(p, [x, y], [out], `part${i}`);
        return out;
      }) as unknown as Parts;
    }
    return `'${p.name}' (${p.opType}) cannot be split by channels here`;
  }

  /** BatchNormalization `bn` restricted to channels `keep`, applied to x. */
  private channelsOfBn(bn: Node, x: Value, keep: number[], base: string, suffix: string): Value {
    const out = this.newLike(base, x, keep.length);
    const params = bn.inputs.slice(1).map((t) => this.pick(t!, keep, suffix));
    this.copyNode(bn, [x, ...params], [out], suffix);
    return out;
  }

  private pick(t: Value, keep: number[], suffix: string, fill?: number): Value {
    const tensor = this.g.constantTensor(t)!;
    const data = floatValues(tensor, t.name);
    const out = new Float32Array(keep.length);
    keep.forEach((c, i) => (out[i] = fill ?? data[c]));
    return this.g.addInitializer(floatTensor(this.g.uniqueName(`${t.name}_${suffix}`), [keep.length], out, tensor.dataType));
  }

  /**
   * A consumer conv of v read from the parts: Conv(vA, W[:, :k]) + Conv(vB, W[:, k:]), the bias in
   * the first; a BatchNormalization right after it goes with each (the second shifts nothing).
   * Returns false when the conv cannot be split (it then reads v whole).
   */
  splitConsumer(conv: Node, v: Value, k: number, parts: Parts): boolean {
    const g = this.g;
    const C = channelsOf(v)!;
    if (typeof this.splittable(conv, v) === 'string') return false;
    const y = conv.outputs[0]!;
    const withBn = this.bnAfter(conv);
    const sums: Value[] = [];
    [range(0, k), range(k, C)].forEach((keep, i) => {
      const part = parts[i];
      if (!part) return; // an all-zero part adds nothing
      let out = this.newLike(`${y.name}_part${i}`, y, channelsOf(y) ?? 0);
      const c = this.copyNode(conv, i === 0 && conv.inputs[2] ? [part, conv.inputs[1]!, conv.inputs[2]] : [part, conv.inputs[1]!], [out], `in${i}`);
      keepInputChannels(this.model, c, keep);
      if (withBn) {
        const all = range(0, channelsOf(y)!);
        const shifted = i === 0; // the second part's BN: the same scale, no mean, no shift
        const [scale, bias, mean, variance] = withBn.inputs.slice(1) as Value[];
        const bnOut = this.newLike(`${withBn.outputs[0]!.name}_part${i}`, y, all.length);
        const ps = shifted ? [scale, bias, mean, variance] : [scale, this.pick(bias, all, 'zero', 0), this.pick(mean, all, 'zero', 0), variance];
        this.copyNode(withBn, [out, ...ps], [bnOut], `in${i}`);
        out = bnOut;
      }
      sums.push(out);
    });
    const target = withBn ? withBn.outputs[0]! : y;
    const owner = withBn ?? conv;
    owner.setOutput(0, g.newValue(`${target.name}_whole`, target.type));
    if (sums.length === 1) g.addNode({ opType: 'Identity', name: g.uniqueName(`${owner.name}/parts`), inputs: sums, outputs: [target] }, owner);
    // the second part's conv output first: onnxruntime fuses the Add into the conv that writes input 0
    else g.addNode({ opType: 'Add', name: g.uniqueName(`${owner.name}/parts/Add`), inputs: [sums[1], sums[0]], outputs: [target] }, owner);
    return true;
  }

  /** The BatchNormalization (inference form, constant parameters) that alone reads conv's output. */
  private bnAfter(conv: Node): Node | null {
    const g = this.g;
    const y = conv.outputs[0]!;
    const bn = y.consumers.length === 1 && !g.isGraphOutput(y) ? y.consumers[0].node : null;
    return bn && bn.opType === 'BatchNormalization' && bn.outputs.filter(Boolean).length === 1 && bn.inputs.slice(1).every((t) => t && g.isConstant(t)) ? bn : null;
  }

  /**
   * Whether a conv reading v can be split by input channels (true) or why not. Its two halves are
   * summed by an Add, which onnxruntime fuses into the conv as its sum input; it fuses an
   * activation after that sum only when it is a Relu (measured: a LeakyRelu there runs unfused, in
   * the plain layout, with a layout kernel on each side), so any other activation keeps v whole.
   */
  splittable(conv: Node, v: Value): true | string {
    const g = this.g;
    if (conv.opType !== 'Conv' || conv.inputs[0] !== v || conv.int('group', 1) !== 1 || !g.isConstant(conv.inputs[1] ?? null) || (conv.inputs[2] && !g.isConstant(conv.inputs[2]))) {
      return `'${conv.name}' is not a conv over it with constant weights`;
    }
    const out = (this.bnAfter(conv) ?? conv).outputs[0]!;
    for (const u of out.consumers) {
      if (activationSpec(u.node) && !SUM_FUSED_ACTIVATIONS.has(u.node.opType)) {
        return `'${conv.name}' would add its two halves before ${u.node.opType} '${u.node.name}', which onnxruntime does not fuse into a conv's sum`;
      }
    }
    return true;
  }

  /** Carry v in parts: split its conv consumers; any other reader gets v = Concat(vA, vB). */
  carry(v: Value, k: number): true | string {
    const parts = this.partsOf(v, k);
    if (typeof parts === 'string') return parts;
    if (!parts[0] || !parts[1]) return `'${v.name}' has an all-zero part`;
    for (const u of [...v.consumers]) this.splitConsumer(u.node, v, k, parts);
    const p = v.producer!;
    p.setOutput(v.producerIndex, this.g.newValue(`${v.name}_whole`, v.type));
    this.g.addNode({ opType: 'Concat', name: this.g.uniqueName(`${v.name}/parts/Concat`), inputs: [parts[0], parts[1]], outputs: [v], attrs: { axis: 1 } }, p);
    return true;
  }
}

/**
 * Rewrite the mask form's masked residuals (`muls`: their Mul nodes, `outputs`: the blocks' output
 * values) so every shortcut and block output is carried in parts. Values that cannot be keep the
 * mask form (listed in `skipped`); the graph computes the same numbers either way.
 */
export function writeInParts(model: Model, muls: Node[], outputs: Value[]): PartsOutcome {
  const w = new PartsWriter(model);
  const roots = new Map<Value, number>();
  for (const mul of muls) {
    const m = maskedPrefix(model, mul);
    if (!m) continue;
    roots.set(m.shortcut, m.k);
    const out = outputs[muls.indexOf(mul)];
    if (out && !roots.has(out)) roots.set(out, m.k);
  }
  const outcome: PartsOutcome = { values: 0, concats: 0, skipped: [] };
  // a value some conv must read whole stays whole, and so does every value computed from its parts
  for (const [v] of roots) {
    for (const u of v.consumers) {
      if (u.node.opType !== 'Conv') continue;
      const r = w.splittable(u.node, v);
      if (typeof r === 'string') {
        w.whole.set(v, r);
        break;
      }
    }
  }
  // the parts of every value first (new nodes only), then the consumers: a value's producer may be
  // another value's consumer (a stage's last block output feeds the next stage's downsampling conv).
  // A shortcut whose block output stays whole stays whole too (its mask would still read it whole):
  // repeat until nothing changes, from a clean graph each time.
  for (let changed = true; changed; ) {
    changed = false;
    w.forget();
    for (const [v, k] of roots) {
      if (w.whole.has(v)) continue;
      const r = w.partsOf(v, k);
      if (typeof r === 'string') {
        w.whole.set(v, r);
        changed = true;
      }
    }
    for (const [v] of roots) {
      if (w.whole.has(v)) continue;
      const i = v.consumers.findIndex((u) => muls.includes(u.node) && w.whole.has(outputs[muls.indexOf(u.node)]));
      if (i >= 0) {
        const mul = v.consumers[i].node;
        w.whole.set(v, `it is the shortcut of '${mul.name}', whose block output stays whole`);
        changed = true;
      }
    }
  }
  for (const [v, k] of roots) {
    const r = w.whole.get(v) ?? w.carry(v, k);
    if (r === true) outcome.values++;
    else outcome.skipped.push({ value: v.name, reason: r });
  }
  model.graph.toposort().cleanup();
  outcome.concats = model.graph.nodes.filter((n) => n.opType === 'Concat' && /\/parts\/Concat$/.test(n.name)).length;
  return outcome;
}
