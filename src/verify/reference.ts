/**
 * The reference a PRN conversion must reproduce, built from the SOURCE model in the paper's own
 * words and independently of the recogniser and of the PRN pass's Split / Slice / Concat surgery:
 * every residual Add `B + S` becomes `B + S * mask`, mask = 1 on the first k = round(C x ratio)
 * channels and 0 on the rest (paper §3.1, masked residual). Multiplying by 1 and adding 0 are exact in
 * float32, so this computes precisely what the masked residual should.
 *
 * A residual Add is found from the graph alone: an Add of two computed (non-constant) tensors of
 * the same channel count that fork from one tensor (the block input). The shortcut S is the side
 * with fewer nodes since the fork (identity: none; projection: conv [+ BN]); a tie is ambiguous.
 * An Add whose longer side passes an upsample is a top-down merge (FPN), not a residual.
 */
import { inferShapes } from '../analysis/shapes';
import type { Graph, Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { channelsOf, elemTypeOf, roundHalfEven } from '../ir/surgery';
import { Tensor } from '../ir/tensor';

const FLOAT = 1;
const UPSAMPLE = new Set(['Resize', 'Upsample', 'ConvTranspose', 'DepthToSpace']);
/** How far back (in nodes) a fork is looked for: a residual branch is a handful of layers. */
const MAX_DEPTH = 64;

/** Values reachable backwards from v, with the fewest nodes passed on the way. */
function ancestors(g: Graph, v: Value): Map<Value, number> {
  const dist = new Map<Value, number>([[v, 0]]);
  const queue: Value[] = [v];
  for (let i = 0; i < queue.length; i++) {
    const x = queue[i];
    const d = dist.get(x)!;
    const p = x.producer;
    if (!p || d >= MAX_DEPTH) continue;
    for (const u of g.dataInputs(p)) {
      if (!dist.has(u)) {
        dist.set(u, d + 1);
        queue.push(u);
      }
    }
  }
  return dist;
}

export interface ResidualAdd {
  add: Node;
  shortcut: Value;
  branch: Value;
  channels: number;
}

/** The residual Adds of a graph, each with its shortcut side (see the header). */
export function residualAdds(model: Model): ResidualAdd[] {
  const g = model.graph;
  inferShapes(model); // channel counts
  const out: ResidualAdd[] = [];
  for (const add of g.nodes) {
    if (add.opType !== 'Add' || add.inputs.length !== 2) continue;
    const [a, b] = add.inputs;
    if (!a || !b || a === b || g.isConstant(a) || g.isConstant(b)) continue;
    const C = channelsOf(add.outputs[0]) ?? channelsOf(a);
    if (C === null || channelsOf(a) !== C || channelsOf(b) !== C) continue;
    const da = ancestors(g, a);
    const db = ancestors(g, b);
    let best: { sum: number; sa: number; sb: number } | null = null;
    for (const [v, x] of da) {
      const y = db.get(v);
      if (y === undefined) continue;
      if (!best || x + y < best.sum) best = { sum: x + y, sa: x, sb: y };
      void v;
    }
    if (!best || best.sa === best.sb) continue;
    // a residual branch never raises the resolution: an Add whose longer side passes an upsample
    // since the fork is an FPN top-down merge (lateral + upsampled coarser level), not a shortcut
    const [far, dist] = best.sa < best.sb ? [db, best.sb] : [da, best.sa];
    if ([...far].some(([v, d]) => d < dist && v.producer && UPSAMPLE.has(v.producer.opType))) continue;
    out.push(best.sa < best.sb ? { add, shortcut: a, branch: b, channels: C } : { add, shortcut: b, branch: a, channels: C });
  }
  return out;
}

/** Masks the source's residual shortcuts in place; returns how many, or why it cannot. */
export function maskResidualsForReference(source: Model, ratio: number): { masked: number } | { unavailable: string } {
  const g = source.graph;
  let masked = 0;
  for (const { add, shortcut: S, channels: C } of residualAdds(source)) {
    const k = Math.max(1, roundHalfEven(C * ratio));
    if (k >= C) continue;
    if (elemTypeOf(S) !== FLOAT) return { unavailable: 'the reference is built for float32 models only' };
    const rank = S.type?.shape?.length ?? 4;
    const mask = new Float32Array(C);
    mask.fill(1, 0, k);
    const m = g.addInitializer(Tensor.float32(g.uniqueName(`${add.name}/reference_mask`), [C, ...Array(Math.max(0, rank - 2)).fill(1)], mask));
    const out = g.newValue(`${S.name}_masked_reference`);
    g.addNode({ opType: 'Mul', name: g.uniqueName(`${add.name}/reference_Mul`), inputs: [S, m], outputs: [out] }, add);
    add.setInput(add.inputs.indexOf(S), out);
    masked++;
  }
  return { masked };
}
