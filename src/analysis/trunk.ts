/**
 * The trunk of a CNN read from its topology alone, shared by detector recognition (detector.ts) and
 * by structure recognition's plain-conv fallback (structure.ts): the detection convs at the ends, the
 * nodes after an upsample (a detector's top-down paths), and the backbone as "everything up to the
 * deepest downsampling, then the single-consumer chain after it" when no block rule says more.
 *
 *   image ── conv ── pool ── conv ── pool ── ... ── pool ── conv ── conv ─┬─ (neck: branches,
 *            └─────────────────── trunk ─────────────────────────────────┘   upsamples, heads)
 */
import type { Graph, Node, Value } from '../ir/graph';
import { nodeOp } from '../ops/registry';
import { isWeightLayer } from './gradient-path';

/** Ops that raise resolution: where a top-down (FPN) path starts. */
export const UPSAMPLE_OPS = new Set(['Resize', 'Upsample', 'ConvTranspose', 'DepthToSpace']);
export type Spatial = (number | string | null)[] | null;
export const spatial = (v: Value | null | undefined): Spatial => (v?.shape && v.shape.length === 4 ? [v.shape[2], v.shape[3]] : null);
export const area = (s: Spatial): number | null => (s && typeof s[0] === 'number' && typeof s[1] === 'number' ? s[0] * s[1] : null);

export function readers(v: Value): Node[] {
  return [...v.consumers.map((u) => u.node), ...v.subgraphReaders];
}
export function dataInputs(g: Graph, n: Node): Value[] {
  return [...n.inputs, ...n.implicitInputs].filter((v): v is Value => !!v && !g.isConstant(v));
}

/** A gate read by the node that multiplies with it (SiLU written out: x * Sigmoid(x)). */
export function isGateOf(n: Node, mul: Node): boolean {
  return (n.opType === 'Sigmoid' || n.opType === 'HardSigmoid') && n.outputs[0]?.consumers.length === 1 && n.outputs[0].consumers[0].node === mul;
}

/** The one layer reading v (a SiLU's Sigmoid + Mul count as the Mul), or null. */
export function soleReader(v: Value): Node | null {
  const rs = readers(v);
  if (rs.length === 1) return rs[0];
  if (rs.length === 2) {
    const [a, b] = rs;
    if (isGateOf(a, b) && b.opType === 'Mul') return b;
    if (isGateOf(b, a) && a.opType === 'Mul') return a;
  }
  return null;
}

/** A layer's last node: the conv followed by its BN and activation (pointwise, single reader). */
export function layerEnd(n: Node): Node {
  for (;;) {
    const out = n.outputs[0];
    const r = out ? soleReader(out) : null;
    if (!r || !(r.opType === 'BatchNormalization' || nodeOp(r)?.activation || r.opType === 'Mul')) return n;
    n = r;
  }
}

/** Every node reached from `starts` by `next` (the starts included). */
function reach(starts: Iterable<Node>, next: (n: Node) => Iterable<Node>): Set<Node> {
  const seen = new Set<Node>();
  const stack = [...starts];
  while (stack.length) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    stack.push(...next(n));
  }
  return seen;
}

/** Every node reachable downstream of `starts` (the starts included). */
export function downstreamOf(starts: Iterable<Node>): Set<Node> {
  return reach(starts, (n) => n.outputs.flatMap((o) => (o ? readers(o) : [])));
}

/** Every node upstream of `starts` (the starts included). */
export function upstreamOf(g: Graph, starts: Iterable<Node>): Set<Node> {
  return reach(starts, (n) => dataInputs(g, n).flatMap((v) => (v.producer ? [v.producer] : [])));
}

/**
 * The readers of v through which v's values flow on as data: not an input the op reads as indices,
 * boxes or a shape (the registry's `metaInputs`: a Gather's indices, a RoiAlign's rois), and not a
 * Shape / Size (they read v's size only). A subgraph reading v counts as data.
 */
export function dataReaders(v: Value): Node[] {
  const direct = v.consumers.filter((u) => !SIZE_OPS.has(u.node.opType) && !nodeOp(u.node)?.metaInputs?.includes(u.index)).map((u) => u.node);
  return [...direct, ...v.subgraphReaders];
}
const SIZE_OPS = new Set(['Shape', 'Size']);

/**
 * Detection convs: Conv weight layers whose output is a feature map, with a graph output downstream
 * and no weight layer on any way there that carries their values as data. A two-stage detector's
 * RPN convs qualify: their proposals reach the RoI heads' weight layers only as the boxes a RoiAlign
 * reads and the indices a Gather takes (Faster R-CNN), never as features. A classifier's final Gemm
 * reads the last conv's values, so a classifier has none.
 */
export function finalConvs(g: Graph): Node[] {
  const outputs = new Set(g.outputs);
  const weight = new Set(g.nodes.filter((n) => isWeightLayer(g, n)));
  const reaches = (w: Node, step: (v: Value) => Node[], stopAtWeight: boolean): 'output' | 'weight' | 'none' => {
    let reachesOutput = false;
    const seen = new Set<Node>();
    const stack = w.outputs.filter((o): o is Value => !!o);
    while (stack.length) {
      const v = stack.pop()!;
      if (outputs.has(v)) reachesOutput = true;
      for (const r of step(v)) {
        if (stopAtWeight && weight.has(r)) return 'weight';
        if (seen.has(r)) continue;
        seen.add(r);
        for (const o of r.outputs) if (o) stack.push(o);
      }
    }
    return reachesOutput ? 'output' : 'none';
  };
  return [...weight].filter((w) => {
    if (w.opType !== 'Conv' || (w.outputs[0]?.shape && w.outputs[0].shape.length !== 4)) return false;
    const data = reaches(w, dataReaders, true);
    if (data === 'weight') return false;
    // an RPN's objectness reaches the outputs only as the indices that select the proposals
    return data === 'output' || reaches(w, readers, false) === 'output';
  });
}

/**
 * Nodes downstream of an upsample that has a weight layer before it (a top-down path); an upsample
 * with no weight layer before it is input preprocessing (torchvision's transform resizes the image).
 */
export function afterUpsample(g: Graph): { afterUp: Set<Node>; afterWeights: Set<Node> } {
  const afterWeights = downstreamOf(g.nodes.filter((n) => isWeightLayer(g, n)));
  const afterUp = downstreamOf(g.nodes.filter((n) => UPSAMPLE_OPS.has(n.opType) && afterWeights.has(n)));
  return { afterUp, afterWeights };
}

/**
 * The trunk found by downsampling: the deepest spatial reduction before any upsample (and not after
 * a detection conv: a decode's reshapes are not a backbone), then the single-consumer chain of layers
 * after it, up to a layer whose output branches (a detector's neck opens there) or an upsample.
 * Null when nothing reduces resolution.
 */
export function downsamplingTrunk(g: Graph, afterUp: Set<Node>, headConvs: Set<Node>): Set<Node> | null {
  const afterHeads = downstreamOf(headConvs);
  let deepest: Node | null = null;
  let deepestArea = Infinity;
  for (const n of g.nodes) {
    if (afterUp.has(n) || afterHeads.has(n)) continue;
    const i = dataInputs(g, n).find((v) => spatial(v));
    const a = area(spatial(n.outputs[0])), b = area(spatial(i));
    if (a !== null && b !== null && a < b && a <= deepestArea) {
      deepest = n;
      deepestArea = a;
    }
  }
  if (!deepest) return null;
  let end = layerEnd(deepest);
  for (;;) {
    const out = end.outputs[0];
    const next = out ? soleReader(out) : null;
    if (!next || afterUp.has(next) || headConvs.has(next) || UPSAMPLE_OPS.has(next.opType)) break;
    const tail = layerEnd(next);
    const tailOut = tail.outputs[0];
    if (!tailOut || !soleReader(tailOut)) break; // a layer whose output branches opens the neck
    end = tail;
  }
  return upstreamOf(g, [end]);
}
