/**
 * ELAN's gradient path planning on VoVNet (paper §3.3): transition relocation. A plain VoVNet adds
 * one transition layer per OSA module, so every module it stacks lengthens the shortest gradient
 * path of every earlier layer by one. The transitions of all but the last module of a stage are
 * removed, so the stage's whole aggregation meets one transition:
 *
 *   x ─ 5 conv ─ Concat ─ T ─ 5 conv ─ Concat ─ T        x ─ 5 conv ─ Concat ─ 5 conv ─ Concat ─ T
 *   └────────────┘       └──────────────┘         ==>   └─────────────┴─────────────────┘
 *                                                        (the second Concat takes x and all 10 outputs)
 *
 * What the next module's first conv reads (`OsaInput`): 'concat', the whole concatenation (a dense
 * link; its input widens), or 'last', the previous module's last layer (ELAN's chained
 * computational blocks; its input narrows to the layer width). By default a stage takes 'concat'
 * unless that makes the stage larger (params or MACs), then 'last' (which always shrinks it).
 *
 * VoVNetV2 (CenterMask; timm ese_vovnet*): a module may end in eSE attention and an identity Add
 * of its input. A relocated module's transition goes with its eSE (the gate was sized for the
 * removed transition's output) and its Add; the last module's eSE stays after the kept transition
 * (the stage's attention). The last module's identity Add is removed too: its shortcut was the
 * previous module's output, which no longer exists, and the stage input (also a Concat input) already
 * reaches the kept transition directly, the short path the Add gave.
 *
 * planRelocation checks every module before any is changed: a stage that cannot be relocated stays
 * whole (listed as left as it was), never half-rewritten.
 */
import { blockRefs } from '../analysis/structure-refs';
import type { Block, Stage } from '../analysis/structure-types';
import type { Graph, Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { requireChannels, widenInputChannels } from '../ir/surgery';
import type { Unconverted } from './pass';

export const OSA_INPUTS = ['concat', 'last'] as const;
export type OsaInput = (typeof OSA_INPUTS)[number];

export interface RelocatedTransition {
  /** The module whose transition was removed. */
  block: string;
  /** The removed nodes: the transition, and the module's eSE and identity Add when it had them. */
  transition: Node[];
  /** Attention / Add nodes among them (VoVNetV2). */
  attention: number;
  add: boolean;
  /** Channels the module's concatenation holds (all of them reach the kept transition). */
  channels: number;
  /** Channels the transition produced. */
  replacedChannels: number;
  /** The next module's first conv, whose input changed. */
  widened: Node;
  /** Its input channels now (the concatenation's, or the last layer's). */
  firstChannels: number;
  /** With the 'last' link the module's own Concat is read by nothing: removed too; the module ends at this layer. */
  droppedConcat?: Node;
  lastLayer: Value;
}

export interface TransitionRelocation {
  stage: number;
  link: OsaInput;
  relocated: RelocatedTransition[];
  /** The stage's remaining transition (the last module's), widened to the stage's whole aggregation. */
  transition?: { block: string; conv: Node; channels: number; replacedChannels: number; carriedChannels: number };
  /** The last module's identity Add, removed (its shortcut is gone). */
  droppedAdd?: { block: string; add: Node; output: Value; branch: Value };
  freshParams: number;
}

interface ModulePlan {
  m: Block;
  T: Value;
  concat: Node;
  first: Node;
  nextConcat: Node;
  /** Nodes removed with the transition (transition, eSE, identity Add). */
  removed: Node[];
  /** The module's last layer output (the last Concat input). */
  lastLayer: Value;
}

export interface RelocationPlan {
  stage: Stage;
  link: OsaInput;
  /** Why the link was chosen, when it was not asked for. */
  linkReason?: string;
  modules: ModulePlan[];
  lastBlock: Block;
  lastConcat: Node;
  lastTransition: Node;
  /** The last module's identity Add: its shortcut (the previous module's output) goes. */
  lastAdd?: { add: Node; output: Value; branch: Value };
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

/** Weight elements and output pixels of a conv (pixels 1 where the map size is symbolic). */
function convSize(g: Graph, conv: Node): { weights: number; perIn: number; params: number; pixels: number } {
  const w = g.constantTensor(conv.inputs[1] ?? null);
  const dims = w?.dims ?? [0, 0, 1, 1];
  const perIn = dims[0] * dims.slice(2).reduce((a, b) => a * b, 1);
  const shape = conv.outputs[0]?.type?.shape ?? [];
  const pixels = shape.slice(2).reduce<number>((a, d) => a * (typeof d === 'number' ? d : 1), 1);
  const bias = g.constantTensor(conv.inputs[2] ?? null)?.size ?? 0;
  return { weights: w?.size ?? 0, perIn, params: (w?.size ?? 0) + bias, pixels };
}

/** Params and MACs the 'concat' link adds to the stage (negative: it shrinks), from the plan's widths. */
function concatGrowth(g: Graph, modules: ModulePlan[], lastTransition: Node, oldCin: number, newCin: number): { params: number; macs: number } {
  let params = 0, macs = 0;
  const add = (conv: Node, dIn: number) => {
    const s = convSize(g, conv);
    params += s.perIn * dIn;
    macs += s.perIn * dIn * s.pixels;
  };
  for (const p of modules) {
    add(p.first, requireChannels(p.concat.outputs[0]!, p.m.id) - requireChannels(p.T, p.m.id));
    for (const n of p.removed) {
      if (n.opType === 'Conv') {
        const s = convSize(g, n);
        params -= s.params;
        macs -= s.weights * s.pixels;
      } else if (n.opType === 'BatchNormalization') {
        // scale and shift, as the cost model counts a BN node (no MACs)
        params -= (g.constantTensor(n.inputs[1] ?? null)?.size ?? 0) + (g.constantTensor(n.inputs[2] ?? null)?.size ?? 0);
      }
    }
  }
  add(lastTransition, newCin - oldCin);
  return { params, macs };
}

const skip = (block: string, reason: string) => ({ skipped: [{ block, reason }] });

/**
 * Decide the relocation of a stage's transitions, reading the graph only: the plan, or the modules
 * left as they were and why. `link` forces what the next module's first conv reads.
 */
export function planRelocation(model: Model, stage: Stage, link?: OsaInput): { plan?: RelocationPlan; skipped: Unconverted[]; already?: string } {
  const skipped: Unconverted[] = [];
  const blocks = stage.blocks;
  const osa = (b: Block) => b.kind === 'osa' && role(b, 'concat').length === 1 && role(b, 'transition').length > 0;
  for (const b of blocks) if (!osa(b)) skipped.push({ block: b.id, reason: `${b.rule} is not an OSA module with one Concat and a transition; its transition stays` });
  if (skipped.length > 0) return { skipped };
  // one module: its transition already is the stage's only one (the form relocation makes), nothing left undone
  if (blocks.length === 1) return { skipped, already: `stage ${stage.index} (${blocks[0].id}): one OSA module, whose transition already is the stage's only one` };
  if (blocks.length === 0) return { skipped };
  for (let i = 1; i < blocks.length; i++) {
    if (blockRefs(blocks[i]).input !== blockRefs(blocks[i - 1]).output) return skip(blocks[i].id, `does not read the previous module's output '${blocks[i - 1].output}'`);
  }
  const g = model.graph;
  const last = blocks[blocks.length - 1];
  const lastConcat = role(last, 'concat')[0];
  const lastTransition = convReading(lastConcat.outputs[0]!, new Set(blockRefs(last).nodes));
  if (!lastTransition) return skip(last.id, 'no 1x1 conv reads its concatenation');
  const modules: ModulePlan[] = [];
  for (let i = 0; i + 1 < blocks.length; i++) {
    const m = blocks[i], next = blocks[i + 1];
    const nextNodes = new Set(blockRefs(next).nodes);
    const T = blockRefs(m).output!;
    const outside = T.consumers.filter((u) => !nextNodes.has(u.node));
    if (outside.length > 0 || g.isGraphOutput(T)) {
      return skip(m.id, `its output '${T.name}' is also read by '${outside[0]?.node.name ?? 'a graph output'}'; transition relocation needs each module to feed only the next one`);
    }
    const first = convReading(T, nextNodes);
    const nextConcat = role(next, 'concat')[0];
    const nextAdd = role(next, 'add');
    if (!first || nextConcat.inputs.indexOf(T) < 0 || T.consumers.some((u) => u.node !== first && u.node !== nextConcat && !nextAdd.includes(u.node))) {
      return skip(next.id, `does not read '${T.name}' as an OSA module does (its first conv, its concat and its identity Add)`);
    }
    // a grouped first conv (a depthwise layer reading the module input) cannot take new input channels
    if (first.int('group', 1) !== 1) return skip(next.id, `its first conv '${first.name}' is grouped; its input width cannot change`);
    const concat = role(m, 'concat')[0];
    // widths are checked now: apply must not find one unknown
    for (const v of [T, concat.outputs[0]!, ...concat.inputs]) requireChannels(v!, m.id);
    modules.push({ m, T, concat, first, nextConcat, removed: [...role(m, 'transition'), ...role(m, 'attention'), ...role(m, 'add')], lastLayer: concat.inputs[concat.inputs.length - 1]! });
  }
  let lastAdd: RelocationPlan['lastAdd'];
  const res = blockRefs(last).residual;
  if (res) {
    if (g.isGraphOutput(res.add.outputs[0]!)) return skip(last.id, `its identity Add's output '${res.add.outputs[0]!.name}' is a graph output; removing the Add would rename it`);
    lastAdd = { add: res.add, output: res.add.outputs[0]!, branch: res.branch };
  }
  const oldLayout = concatLayout(lastConcat);
  const oldCin = oldLayout.reduce((a, p) => a + p.width, 0);
  // the kept transition reads the stage input and every layer's output, whatever the link
  const newCin = requireChannels(blockRefs(blocks[0]).input!, blocks[0].id) + blocks.reduce((a, b) => a + role(b, 'concat')[0].inputs.slice(1).reduce((s, v) => s + requireChannels(v!, b.id), 0), 0);
  let linkReason: string | undefined;
  if (!link) {
    const grow = concatGrowth(g, modules, lastTransition, oldCin, newCin);
    link = grow.params > 0 || grow.macs > 0 ? 'last' : 'concat';
    if (link === 'last') linkReason = `reading the whole concatenation would add ${grow.params} params and ${grow.macs} MACs to the stage`;
  }
  return { plan: { stage, link, linkReason, modules, lastBlock: last, lastConcat, lastTransition, lastAdd, oldLayout }, skipped };
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
  const result: TransitionRelocation = { stage: plan.stage.index, link: plan.link, relocated: [], freshParams: 0 };
  for (const { m, T, concat, first, nextConcat, removed, lastLayer } of plan.modules) {
    const C = concat.outputs[0]!;
    const at = nextConcat.inputs.indexOf(T);
    const wT = requireChannels(T, m.id);
    const wC = requireChannels(C, m.id);
    const read = plan.link === 'concat' ? C : lastLayer;
    // detach: the transition's nodes go; the first conv reads the concatenation (or the last
    // layer), and the next concat takes the concatenated features themselves (one flat
    // aggregation, same channel order)
    first.setInput(first.inputs.indexOf(T), read);
    const flat = [...nextConcat.inputs.slice(0, at), ...concat.inputs, ...nextConcat.inputs.slice(at + 1)];
    flat.forEach((v, k) => nextConcat.setInput(k, v));
    for (const n of removed) if (g.nodes.includes(n)) g.removeNode(n);
    // with the 'last' link nothing reads the module's own Concat any more (its inputs moved to the next one)
    const droppedConcat = plan.link === 'last' && C.consumers.length === 0 && !g.isGraphOutput(C) ? concat : undefined;
    if (droppedConcat) g.removeNode(droppedConcat);
    // the first conv reads features it never saw: every input channel is new
    const firstChannels = requireChannels(read, m.id);
    result.freshParams += widenInputChannels(model, first, firstChannels, () => null);
    // the next module's concat grows by the difference
    setChannels(model, nextConcat.outputs[0]!, concatLayout(nextConcat).reduce((a, p) => a + p.width, 0));
    result.relocated.push({
      block: m.id, transition: removed, attention: removed.filter((n) => role(m, 'attention').includes(n)).length, add: role(m, 'add').length > 0,
      channels: wC, replacedChannels: wT, widened: first, firstChannels, droppedConcat, lastLayer,
    });
  }
  if (plan.lastAdd) {
    const { add, output, branch } = plan.lastAdd;
    g.replaceAllUses(output, branch, add);
    g.removeNode(add);
    result.droppedAdd = { block: plan.lastBlock.id, add, output, branch };
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
