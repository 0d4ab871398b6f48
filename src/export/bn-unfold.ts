/**
 * --bn unfold: which convs had a BatchNorm in the architecture that the ONNX export folded into
 * them. The usual export (PyTorch's eval-mode export) folds every conv-BN pair into a conv with a
 * bias and leaves no BatchNormalization node. In such a model a conv had a BN when it has a bias,
 * is not a head layer (its output reaches a graph output with no other weight layer in between:
 * detection and classifier convs carry a plain bias) and does not read a 1x1 map (the convs of
 * squeeze-excitation and ESE attention, after a global pool, have none).
 * A model that still has a BatchNormalization after a conv kept its BNs: nothing is unfolded.
 */
import type { Model } from '../ir/model';
import type { Node, Value } from '../ir/graph';
import { opInfo } from '../ops';

export type BnMode = 'unfold' | 'keep';

export function convsToUnfold(model: Model, mode: BnMode): Set<Node> {
  const out = new Set<Node>();
  if (mode === 'keep') return out;
  const g = model.graph;
  const isWeightLayer = (n: Node) => opInfo(n.opType, n.domain)?.weightLayer === true && !!constant(n.inputs[1]);
  if (g.nodes.some((n) => n.opType === 'BatchNormalization' && n.inputs[0]?.producer && isWeightLayer(n.inputs[0].producer))) return out;
  // values from which a graph output is reached through no weight layer
  const headSide = new Set<Value>();
  const stack = [...g.outputs];
  while (stack.length) {
    const v = stack.pop() as Value;
    if (headSide.has(v)) continue;
    headSide.add(v);
    const p = v.producer;
    if (!p || isWeightLayer(p)) continue;
    for (const i of p.inputs) if (i && !i.tensor) stack.push(i);
  }
  for (const n of g.nodes) {
    if (n.opType !== 'Conv' || !constant(n.inputs[1]) || !n.inputs[2] || !constant(n.inputs[2])) continue;
    const y = n.outputs[0];
    if (!y || headSide.has(y)) continue;
    const shape = n.inputs[0]?.shape;
    if (shape && shape.length > 2 && shape.slice(2).every((d) => d === 1)) continue;
    out.add(n);
  }
  return out;
}

/** An initializer, a Constant, or either behind Identity nodes. */
export function constant(v: Value | null | undefined): boolean {
  for (let depth = 0; v && depth < 64; depth++) {
    if (v.tensor) return true;
    const p = v.producer;
    if (!p) return false;
    if (p.opType === 'Constant') return true;
    if (p.opType !== 'Identity') return false;
    v = p.inputs[0];
  }
  return false;
}
