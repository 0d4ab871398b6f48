/**
 * The parts of a detector that the block rules cannot express, found by topology:
 *
 * - shared head towers: RetinaNet / FCOS / ATSS heads run ONE tower of convs on every pyramid level,
 *   so each tower conv's weight is read by several Conv nodes. Those convs belong to the heads (they
 *   are left as they are), not to the neck;
 * - FPN levels (Lin et al. 2017, Fig. 3): per backbone tap a lateral 1x1 conv, the top-down merge
 *   (the coarser level upsampled and added), then the 3x3 output conv; and the extra levels made by
 *   stride-2 convs above the top one (RetinaNet's P6 / P7) or a stride-2 max pool (Faster R-CNN's P6). A rule matches from one input value,
 *   while a merge reads two values made apart (the tap's lateral and the upsampled coarser level),
 *   so these are read from the graph here rather than written as rules.
 */
import type { Graph, Node, Value } from '../ir/graph';
import { nodeOp } from '../ops/registry';
import { isWeightLayer } from './gradient-path';

export interface FpnLevel {
  /** The backbone value the level reads. */
  tap: string;
  /** The lateral 1x1 conv. */
  lateral: string;
  /** The top-down merge (null on the top level: nothing above it). */
  merge: string | null;
  /** The output conv (3x3 in FPN), null when the merged value itself is the level's output. */
  output: string | null;
  resolution: (number | string | null)[] | null;
}

export interface FpnFound {
  levels: FpnLevel[];
  /** Extra levels: stride-2 convs or max pools above the top level (P6, P7). */
  extra: string[];
  /** Every neck node the levels explain (convs with their BN / activation, upsample size computations). */
  nodes: Set<Node>;
}

function readers(v: Value): Node[] {
  return [...v.consumers.map((u) => u.node), ...v.subgraphReaders];
}

/** A pointwise follower of a layer: its BN, activation, or a SiLU's Mul. */
function pointwise(n: Node): boolean {
  return n.opType === 'BatchNormalization' || !!nodeOp(n)?.activation || n.opType === 'Mul' || n.opType === 'Add';
}

/** The layer's nodes from its weight node through the pointwise nodes that alone read it (BN, act, FrozenBN Mul + Add). */
function layerNodes(g: Graph, w: Node): Node[] {
  const out = [w];
  let n = w;
  for (;;) {
    const o = n.outputs[0];
    if (!o) break;
    const rs = readers(o);
    // SiLU written out: Sigmoid(x) and x * Sigmoid(x)
    const mul = rs.length === 2 ? rs.find((r) => r.opType === 'Mul') : undefined;
    const gate = mul && rs.find((r) => r !== mul && (r.opType === 'Sigmoid' || r.opType === 'HardSigmoid'));
    if (mul && gate && gate.outputs[0] && readers(gate.outputs[0]).every((r) => r === mul)) {
      out.push(gate, mul);
      n = mul;
      continue;
    }
    if (rs.length !== 1 || !pointwise(rs[0])) break;
    // an Add / Mul continues the layer only with a constant operand (FrozenBatchNorm)
    if ((rs[0].opType === 'Add' || rs[0].opType === 'Mul') && g.dataInputs(rs[0]).length !== 1) break;
    out.push(rs[0]);
    n = rs[0];
  }
  return out;
}

const lastOutput = (ns: Node[]): Value | null => ns[ns.length - 1].outputs[0] ?? null;

/** Weight layers whose weight tensor several weight layers read (one module applied to several inputs). */
function sharedWeight(g: Graph, w: Node): boolean {
  const t = w.inputs[1];
  return !!t && t.consumers.filter((u) => u.index === 1 && isWeightLayer(g, u.node)).length > 1;
}

/**
 * The shared towers in front of the detection convs: walking up from each detection conv, every
 * layer with a shared weight (and its BN / activation) joins the heads, until a layer that is not shared.
 */
export function sharedTowers(g: Graph, headConvs: Node[], exclude: Set<Node>): Set<Node> {
  const out = new Set<Node>();
  const stack = [...headConvs];
  while (stack.length) {
    const n = stack.pop()!;
    const data = g.dataInputs(n);
    if (data.length !== 1) continue;
    // back through the pointwise nodes to the layer in front
    let v: Value | undefined = data[0];
    const between: Node[] = [];
    while (v?.producer && !isWeightLayer(g, v.producer) && pointwise(v.producer) && !exclude.has(v.producer)) {
      const p: Node = v.producer;
      between.push(p);
      const ins = g.dataInputs(p);
      // SiLU written out: x * Sigmoid(x) goes on from x
      const gate = ins.length === 2 ? ins.find((u) => u.producer?.opType === 'Sigmoid' && ins.includes(u.producer.inputs[0]!)) : undefined;
      if (gate?.producer) between.push(gate.producer);
      const rest = ins.filter((u) => u !== gate);
      v = rest.length === 1 ? rest[0] : undefined;
    }
    const w = v?.producer;
    if (!w || exclude.has(w) || out.has(w) || !isWeightLayer(g, w) || !sharedWeight(g, w)) continue;
    for (const x of [w, ...between]) out.add(x);
    stack.push(w);
  }
  return out;
}

/**
 * FPN levels on the taps: a 1x1 weight layer reading the tap inside the neck, its output merged with
 * an upsampled coarser level (`topDown`: the merges found, with the upsample each is fed by) or
 * upsampled itself (the top level), then an optional stride-1 output layer; the extra levels above.
 */
export function fpnLevels(g: Graph, neck: Set<Node>, taps: Value[], topDown: Map<Node, Node>): FpnFound {
  const found: FpnFound = { levels: [], extra: [], nodes: new Set() };
  const isConv = (n: Node, k?: number, stride = 1) => n.opType === 'Conv' && isWeightLayer(g, n) && neck.has(n)
    && (k === undefined || (g.constantTensor(n.inputs[1] ?? null)?.dims.slice(2) ?? []).every((d) => d === k))
    && (n.ints('strides').length ? n.ints('strides') : [1]).every((s) => s === stride);
  // torchvision's LastLevelMaxPool: P6 = max_pool2d(P5, 1, 2), the extra level of Faster R-CNN's RPN
  const isPoolDown = (n: Node) => n.opType === 'MaxPool' && neck.has(n) && n.ints('strides').some((s) => s === 2);
  const upsamples = new Set(topDown.values());
  const levelOutputs: Value[] = [];
  for (const tap of taps) {
    for (const lat of readers(tap).filter((r) => isConv(r, 1))) {
      const latNodes = layerNodes(g, lat);
      const latOut = lastOutput(latNodes);
      if (!latOut) continue;
      const rs = readers(latOut);
      const merge = rs.find((r) => topDown.has(r)) ?? null;
      // the top level has no merge: its lateral output goes up into an upsample (the next level's top-down input)
      const feedsUp = rs.some((r) => upsamples.has(r));
      if (!merge && !feedsUp) continue;
      const level = merge?.outputs[0] ?? latOut;
      const out = readers(level).find((r) => isConv(r));
      const outNodes = out ? layerNodes(g, out) : [];
      for (const x of [...latNodes, ...(merge ? [merge] : []), ...outNodes]) found.nodes.add(x);
      const lv = outNodes.length ? lastOutput(outNodes) : level;
      if (lv) levelOutputs.push(lv);
      found.levels.push({
        tap: tap.name, lateral: lat.name, merge: merge?.name ?? null, output: out?.name ?? null,
        resolution: level.shape && level.shape.length === 4 ? [level.shape[2], level.shape[3]] : null,
      });
    }
  }
  if (found.levels.length === 0) return found;
  // the upsamples' size computations (Shape -> Gather -> Concat of the lateral's size)
  for (const up of upsamples) {
    if (!neck.has(up)) continue;
    found.nodes.add(up);
    const stack = up.inputs.slice(1).filter((v): v is Value => !!v && !g.isConstant(v)).map((v) => v.producer).filter((p): p is Node => !!p);
    while (stack.length) {
      const p = stack.pop()!;
      if (found.nodes.has(p) || !neck.has(p) || p.outputs.some((o) => o?.shape?.length === 4)) continue;
      found.nodes.add(p);
      for (const v of g.dataInputs(p)) if (v.producer) stack.push(v.producer);
    }
  }
  // extra levels: stride-2 layers reading a level output, a tap or an extra level (through an activation)
  const sources = new Set<Value>([...levelOutputs, ...taps]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const n of g.nodes) {
      if (found.nodes.has(n) || !(isConv(n, undefined, 2) || isPoolDown(n))) continue;
      let v: Value | undefined = g.dataInputs(n)[0];
      const before: Node[] = [];
      while (v?.producer && !sources.has(v) && nodeOp(v.producer)?.activation && neck.has(v.producer)) {
        before.push(v.producer);
        v = g.dataInputs(v.producer)[0];
      }
      if (!v || !sources.has(v)) continue;
      const ns = layerNodes(g, n);
      for (const x of [...before, ...ns]) found.nodes.add(x);
      found.extra.push(n.name);
      const o = lastOutput(ns);
      if (o) sources.add(o);
      grew = true;
    }
  }
  return found;
}
