/**
 * ELAN's gradient path planning on VoVNet (paper §3.3): transition relocation. A plain VoVNet adds
 * one transition layer per OSA module, so every module it stacks lengthens the shortest gradient
 * path of every earlier layer by one. The transitions of all but the last module of a stage are
 * removed; the next module reads the concatenated features directly, so the stage's whole
 * aggregation meets one transition:
 *
 *   x ─ 5 conv ─ Concat ─ T ─ 5 conv ─ Concat ─ T        x ─ 5 conv ─ Concat ─ 5 conv ─ Concat ─ T
 *   └────────────┘       └──────────────┘         ==>   └─────────────┴─────────────────┘
 *                                                        (the second Concat takes x and all 10 outputs)
 *
 * planRelocation checks every module before any is changed: a stage that cannot be relocated stays
 * whole (listed as left as it was), never half-rewritten.
 */
import { blockRefs } from '../analysis/structure-refs';
import type { Block, Stage } from '../analysis/structure-types';
import type { Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { requireChannels, widenInputChannels } from '../ir/surgery';
import type { Unconverted } from './pass';

export interface RelocatedTransition {
  /** The module whose transition was removed. */
  block: string;
  /** The removed transition's nodes. */
  transition: Node[];
  /** Channels the next module now reads (its concatenated features instead of the transition's output). */
  channels: number;
  /** Channels the transition produced. */
  replacedChannels: number;
  /** The next module's first conv, whose input was widened. */
  widened: Node;
}

export interface TransitionRelocation {
  stage: number;
  relocated: RelocatedTransition[];
  /** The stage's remaining transition (the last module's), widened to the stage's whole aggregation. */
  transition?: { block: string; conv: Node; channels: number; replacedChannels: number; carriedChannels: number };
  freshParams: number;
}

export interface RelocationPlan {
  stage: Stage;
  modules: { m: Block; T: Value; concat: Node; first: Node; nextConcat: Node; transition: Node[] }[];
  lastBlock: Block;
  lastConcat: Node;
  lastTransition: Node;
  /** The last concat's inputs and widths before relocation (its transition's weights follow them). */
  oldLayout: { value: Value; width: number }[];
}

const role = (b: Block, r: string): Node[] => blockRefs(b).roles.get(r) ?? [];

/** The Conv among a value's consumers that belongs to `nodes`. */
function convReading(v: Value, nodes: Set<Node>): Node | undefined {
  return v.consumers.map((u) => u.node).find((n) => n.opType === 'Conv' && nodes.has(n));
}

/** A concat's inputs, in order, with their channel counts. */
function concatLayout(concat: Node): { value: Value; width: number }[] {
  return concat.inputs.map((v) => ({ value: v!, width: requireChannels(v!, concat.name) }));
}

/**
 * Decide the relocation of a stage's transitions, reading the graph only: the plan, or the modules
 * left as they were and why. Modules with attention or an identity Add (VoVNetV2) are left alone.
 */
export function planRelocation(model: Model, stage: Stage): { plan?: RelocationPlan; skipped: Unconverted[] } {
  const skipped: Unconverted[] = [];
  const blocks = stage.blocks;
  const plain = (b: Block) => b.kind === 'osa' && !b.residual && !(b.roles.attention?.length) && role(b, 'concat').length === 1 && role(b, 'transition').length > 0;
  for (const b of blocks) if (!plain(b)) skipped.push({ block: b.id, reason: `${b.rule} is not a plain OSA module (attention or identity Add); its transition stays` });
  if (blocks.length < 2 || !blocks.every(plain)) {
    if (blocks.length < 2 && blocks.every(plain)) skipped.push({ block: blocks[0]?.id ?? `s${stage.index}`, reason: 'the only module of its stage: its transition is the stage transition' });
    return { skipped };
  }
  for (let i = 1; i < blocks.length; i++) {
    if (blockRefs(blocks[i]).input !== blockRefs(blocks[i - 1]).output) {
      return { skipped: [{ block: blocks[i].id, reason: `does not read the previous module's output '${blocks[i - 1].output}'` }] };
    }
  }
  const last = blocks[blocks.length - 1];
  const lastConcat = role(last, 'concat')[0];
  const lastTransition = convReading(lastConcat.outputs[0]!, new Set(blockRefs(last).nodes));
  if (!lastTransition) return { skipped: [{ block: last.id, reason: 'no 1x1 conv reads its concatenation' }] };
  const modules: RelocationPlan['modules'] = [];
  for (let i = 0; i + 1 < blocks.length; i++) {
    const m = blocks[i], next = blocks[i + 1];
    const nextNodes = new Set(blockRefs(next).nodes);
    const T = blockRefs(m).output!;
    const outside = T.consumers.filter((u) => !nextNodes.has(u.node));
    if (outside.length > 0 || model.graph.isGraphOutput(T)) {
      return { skipped: [{ block: m.id, reason: `its transition output '${T.name}' is also read by '${outside[0]?.node.name ?? 'a graph output'}'; transition relocation needs each module to feed only the next one` }] };
    }
    const first = convReading(T, nextNodes);
    const nextConcat = role(next, 'concat')[0];
    if (!first || nextConcat.inputs.indexOf(T) < 0 || T.consumers.some((u) => u.node !== first && u.node !== nextConcat)) {
      return { skipped: [{ block: next.id, reason: `does not read '${T.name}' as an OSA module does (its first conv and its concat)` }] };
    }
    // widths are checked now: apply must not find one unknown
    for (const v of [T, role(m, 'concat')[0].outputs[0]!]) requireChannels(v, m.id);
    modules.push({ m, T, concat: role(m, 'concat')[0], first, nextConcat, transition: role(m, 'transition') });
  }
  return { plan: { stage, modules, lastBlock: last, lastConcat, lastTransition, oldLayout: concatLayout(lastConcat) }, skipped };
}

/** A value's new channel count (the Concat's output widened); a declared type would be stale. */
function setChannels(model: Model, v: Value, c: number): void {
  const t = v.type;
  if (t?.shape) {
    const shape = [...t.shape];
    shape[1] = c;
    v.inferred = { elemType: t.elemType, shape };
  }
  // an exporter's value_info would now be stale: shape inference redoes it
  if (!model.graph.isGraphOutput(v)) {
    v.declared = undefined;
    model.graph.removeValueInfo(v);
  }
}

/** Carry a relocation plan out (in place). */
export function applyRelocation(model: Model, plan: RelocationPlan): TransitionRelocation {
  const g = model.graph;
  const result: TransitionRelocation = { stage: plan.stage.index, relocated: [], freshParams: 0 };
  for (const { m, T, concat, first, nextConcat, transition } of plan.modules) {
    const C = concat.outputs[0]!;
    const at = nextConcat.inputs.indexOf(T);
    const wT = requireChannels(T, m.id);
    const wC = requireChannels(C, m.id);
    // detach: the transition's nodes go; the first conv reads the concatenation, and the next
    // concat takes the concatenated features themselves (one flat aggregation, same channel order)
    first.setInput(first.inputs.indexOf(T), C);
    const flat = [...nextConcat.inputs.slice(0, at), ...concat.inputs, ...nextConcat.inputs.slice(at + 1)];
    flat.forEach((v, k) => nextConcat.setInput(k, v));
    for (const n of transition) if (g.nodes.includes(n)) g.removeNode(n);
    // the first conv reads features it never saw: every input channel is new
    result.freshParams += widenInputChannels(model, first, wC, () => null);
    // the next module's concat grows by the difference
    setChannels(model, nextConcat.outputs[0]!, concatLayout(nextConcat).reduce((a, p) => a + p.width, 0));
    result.relocated.push({ block: m.id, transition, channels: wC, replacedChannels: wT, widened: first });
  }

  // the kept transition: weights over the module's own conv outputs carry over, the aggregated
  // features of the earlier modules are new input channels
  const newLayout = concatLayout(plan.lastConcat);
  const oldOffset = new Map<Value, number>();
  let off = 0;
  for (const p of plan.oldLayout) {
    if (!oldOffset.has(p.value)) oldOffset.set(p.value, off);
    off += p.width;
  }
  const from: (number | null)[] = [];
  for (const p of newLayout) {
    const o = plan.oldLayout.some((q) => q.value === p.value && q.width === p.width) ? oldOffset.get(p.value)! : null;
    for (let k = 0; k < p.width; k++) from.push(o === null ? null : o + k);
  }
  const oldCin = plan.oldLayout.reduce((a, p) => a + p.width, 0);
  result.freshParams += widenInputChannels(model, plan.lastTransition, from.length, (j) => from[j]);
  result.transition = { block: plan.lastBlock.id, conv: plan.lastTransition, channels: from.length, replacedChannels: oldCin, carriedChannels: from.filter((f) => f !== null).length };
  g.touch();
  return result;
}
