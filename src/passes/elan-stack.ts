/**
 * ELAN's stacked computational blocks (ResNet, Darknet-53; paper §3.3 and §4.3): a stage's chain of
 * residual blocks becomes one ELAN block in YOLOv7's layout (c = width x the blocks' computational width,
 * i.e. their 3x3 convs' width; 2·stack 3x3 convs):
 *
 *        ┌─ 1x1 → c ───────────────────────────────────────────────┐
 *   x ───┤                                                          Concat ─ 1x1 → C ─ y
 *        └─ 1x1 → c ─┬─ 3x3 ─ 3x3 ─┬─ 3x3 ─ 3x3 ─┬─ ...            │        (2 + stack)·c
 *                    └─────────────┴─────────────┴─────────────────┘
 *
 * Stage input x: the stage entry's output (Darknet-53's stride-2 conv), or, when a ResNet stage
 * opens with a projecting block, that block's output: the projecting block stays, as the CSP pass
 * keeps it (computationBlocks), and the identity blocks after it are replaced. The stage keeps its
 * input/output widths and resolution, so the rest of the model is untouched. New layers copy the
 * replaced blocks' form: BN as separate nodes or folded (conv bias), and the activation the matcher
 * matched (activation.ts), with seeded weights (surgery.addConvBnAct).
 */
import { blockRefs, computationBlocks } from '../analysis/structure-refs';
import type { Block, Stage } from '../analysis/structure-types';
import type { Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { addConvBnAct, concatChannels, requireChannels } from '../ir/surgery';
import { CapturedActivation, blockActivation, emitActivation } from './activation';
import { FitFreedom, describeFit, fitSetting, layersCost, nodesCost, positions, stackedElanLayers } from './elan-fit';

export interface ElanOptions {
  /** Pairs of 3x3 convs in a stacked block: 2·stack convs, every second one aggregated. Integer >= 1. */
  stack: number;
  /**
   * Width c of the computational block as a share of the replaced blocks' computational width, in
   * (0, 1]: the width their 3x3 convs work at (the bottleneck width of a bottleneck, the stage width
   * of a basic or Darknet block), so ELAN shrinks a bottleneck ResNet as it shrinks Darknet-53.
   */
  width: number;
}

/** The width the blocks compute at: the widest output of their spatial (k > 1) convs, else the stage width. */
export function computationalWidth(model: Model, blocks: Block[], stageWidth: number): number {
  let w = 0;
  for (const b of blocks) {
    for (const n of blockRefs(b).nodes) {
      if (n.opType !== 'Conv') continue;
      const dims = model.graph.constantTensor(n.inputs[1] ?? null)?.dims;
      if (dims && dims.slice(2).some((k) => k > 1)) w = Math.max(w, dims[0]);
    }
  }
  return w || stageWidth;
}

export interface StackPlan {
  stage: Stage;
  kept?: Block;
  replaced: Block[];
  /** The replaced blocks' nodes. */
  nodes: Node[];
  x: Value;
  y: Value;
  channels: number;
  width: number;
  stack: number;
  form: { batchNorm: boolean; epsilon?: number; act: CapturedActivation | null };
  /** Groups of the stacked 3x3 convs: the replaced blocks' channels per group kept (ResNeXt stays grouped), 1 for dense blocks. */
  group: number;
  /** Set when the defaults were replaced by a setting that does not grow the stage's blocks: what and why. */
  fitted?: string;
}

/**
 * Groups for the stacked 3x3 convs at width c: the source's channels per group (a ResNeXt's grouped
 * 3x3, a depthwise 3x3's 1) kept where c allows, else the nearest larger per-group width dividing c.
 */
export function stackGroups(model: Model, blocks: Block[], c: number): number {
  let perGroup = 0;
  for (const b of blocks) {
    for (const n of blockRefs(b).nodes) {
      const g = n.opType === 'Conv' ? n.int('group', 1) : 1;
      const dims = g > 1 ? model.graph.constantTensor(n.inputs[1] ?? null)?.dims : undefined;
      if (dims && dims.slice(2).some((k) => k > 1)) perGroup = Math.max(perGroup, dims[1]);
    }
  }
  if (perGroup === 0) return 1;
  for (let cpg = Math.min(perGroup, c); cpg <= c; cpg++) if (c % cpg === 0) return c / cpg;
  return 1;
}

export interface StackedBlock {
  stage: number;
  /** Ids of the residual blocks the ELAN block replaced. */
  replaced: string[];
  /** Id of a first block kept as the stage input (a projecting ResNet block). */
  kept?: string;
  input: Value;
  output: Value;
  /** Stage width C and computational-block width c. */
  channels: number;
  width: number;
  stack: number;
  /** Groups of the stacked 3x3 convs. */
  group: number;
  /** The new nodes, in order, and by role; the activation nodes of the first layer (its 'act' part). */
  nodes: Node[];
  roles: { conv: Node[]; concat: Node[]; transition: Node[] };
  firstActivation: Node[];
  /** Parameters of the new layers (all seeded). */
  params: number;
}

/** Common '/'-scope of node names ('/layer2/layer2.1/conv1/Conv', ... -> '/layer2/layer2.1'). */
function commonScope(names: string[]): string {
  const parts = names.map((n) => n.split('/').slice(0, -1));
  const first = parts[0] ?? [];
  let k = 0;
  while (k < first.length && parts.every((p) => p[k] === first[k])) k++;
  return first.slice(0, k).join('/');
}

/**
 * Which blocks of a stage the ELAN block replaces, and which first block (if any) stays: the CSP
 * pass's choice (computationBlocks), so --csp splits exactly the stacked block.
 */
export function stackedRegion(stage: Stage): { kept?: Block; replaced: Block[] } | { reason: string } {
  if (stage.blocks.length === 0) return { reason: 'the stage has no blocks' };
  const { entry, blocks: replaced } = computationBlocks(stage);
  const kept = entry[0];
  if (replaced.length === 0) return { reason: `only its projecting first block ${kept?.id}, which stays as the stage input` };
  // a stage of plain conv layers (Darknet-19, YOLOv3-tiny) is replaced whole, as YOLOv7-tiny's ELAN replaces one
  if (isPlainStage(stage)) return { kept, replaced };
  const nonResidual = replaced.find((b) => !b.residual);
  if (nonResidual) return { reason: `${nonResidual.id} (${nonResidual.rule}) is not a residual block` };
  const bad = replaced.find((b) => b.residual!.shortcut !== 'identity');
  if (bad) return { reason: `${bad.id} has a projection shortcut inside the stage` };
  for (let i = 1; i < replaced.length; i++) {
    if (blockRefs(replaced[i]).input !== blockRefs(replaced[i - 1]).output) return { reason: `${replaced[i].id} does not read the output of ${replaced[i - 1].id}` };
  }
  return { kept, replaced };
}

/** A stage made of plain conv layers only (rule family 'plain': no residual, nothing to keep apart). */
export function isPlainStage(stage: Stage): boolean {
  return stage.blocks.length > 0 && stage.blocks.every((b) => b.kind === 'plain');
}

/** Decide a stage's ELAN block, reading the graph only: the plan, or why the stage stays. */
export function planStack(model: Model, stage: Stage, opts: ElanOptions, free?: FitFreedom): StackPlan | { reason: string } {
  const g = model.graph;
  const region = stackedRegion(stage);
  if ('reason' in region) return region;
  const { kept, replaced } = region;
  const x = blockRefs(replaced[0]).input;
  const y = blockRefs(replaced[replaced.length - 1]).output;
  if (!x || !y) return { reason: 'its blocks have no recorded input or output' };
  const C = requireChannels(y, replaced[replaced.length - 1].id);
  requireChannels(x, replaced[0].id);
  const nodes = replaced.flatMap((b) => blockRefs(b).nodes);
  const inRegion = new Set(nodes);
  // nothing but the stage output may leave the region (a detection head reading a block midway would lose it)
  for (const n of nodes) {
    for (const o of n.outputs) {
      if (!o || o === y) continue;
      const leak = o.consumers.find((u) => !inRegion.has(u.node));
      if (leak || g.isGraphOutput(o)) return { reason: `'${o.name}' inside the stage is also read by '${leak?.node.name ?? 'a graph output'}'` };
    }
  }
  const bn = nodes.find((n) => n.opType === 'BatchNormalization');
  const cw = computationalWidth(model, replaced, C);
  const widthOf = (w: number) => Math.max(1, Math.round(w * cw));
  let setting = { stack: opts.stack, width: opts.width };
  let fitted: string | undefined;
  const plain = isPlainStage(stage);
  if ((stage.csp || plain) && free && (free.stack || free.width)) {
    // a stage already in CSP form holds few, narrow residual blocks (part 1 only), a plain stage often
    // one conv: a stack-2 ELAN block can outweigh them, so the defaults give way to the first setting
    // that does not (elan-fit.ts)
    const source = nodesCost(g, nodes);
    const cin = requireChannels(x, replaced[0].id), hw = positions(y);
    const fit = fitSetting(setting, free, source, (s) => layersCost(stackedElanLayers(cin, C, widthOf(s.width), s.stack, stackGroups(model, replaced, widthOf(s.width))), hw, !!bn));
    // a plain stage no setting keeps from growing (a lone 1x1 conv, say) stays as it is
    if (plain && !fit.fits) return { reason: `an ELAN block of any setting tried would be larger than its ${replaced.length} plain conv layer(s) (${Math.round(source.macs)} MACs), so it stays as it is` };
    fitted = describeFit(fit, setting, source) || undefined;
    setting = fit.setting;
  }
  const c = widthOf(setting.width);
  return {
    stage, kept, replaced, nodes, x, y, channels: C, width: c, stack: setting.stack, group: stackGroups(model, replaced, c),
    form: { batchNorm: !!bn, epsilon: bn?.float('epsilon', 1e-5), act: blockActivation(g, replaced) }, ...(fitted ? { fitted } : {}),
  };
}

/** Replace the stage's residual blocks by the planned ELAN block (in place). */
export function applyStack(model: Model, p: StackPlan): StackedBlock {
  const g = model.graph;
  const { x, y, channels: C, width: c } = p;
  const inRegion = new Set(p.nodes);
  // detach the blocks; the new nodes go where they were, and write the stage output's value
  const lastIndex = Math.max(...p.nodes.map((n) => g.nodes.indexOf(n)));
  const before = g.nodes.slice(lastIndex + 1).find((n) => !inRegion.has(n));
  const scope = `${commonScope(p.replaced[0].nodes) || `/stage${p.stage.index}`}/elan`;
  for (const n of p.nodes) g.removeNode(n);

  const made: { nodes: Node[]; act: Node[]; params: number }[] = [];
  const layer = (input: Value, name: string, cout: number, kernel: number, output?: Value): Value => {
    const act = p.form.act;
    const r = addConvBnAct(model, input, { scope: `${scope}/${name}`, cout, kernel, group: kernel > 1 ? p.group : 1, before, output: act ? undefined : output, batchNorm: p.form.batchNorm, epsilon: p.form.epsilon, act: null });
    const a = act ? emitActivation(model, act, r.output, cout, { name: `${scope}/${name}`, before, output }) : { output: r.output, nodes: [] };
    made.push({ nodes: [r.conv, ...(r.bn ? [r.bn] : []), ...a.nodes], act: a.nodes, params: r.params });
    return a.output;
  };
  const aggregated = [layer(x, 'cv1', c, 1), layer(x, 'cv2', c, 1)];
  let z = aggregated[1];
  for (let k = 1; k <= 2 * p.stack; k++) {
    z = layer(z, `m.${k - 1}`, c, 3);
    if (k % 2 === 0) aggregated.push(z);
  }
  const catNode = concatChannels(model, aggregated, scope, before).producer!;
  layer(catNode.outputs[0]!, 'transition', C, 1, y);
  const convs = made.slice(0, -1).flatMap((m) => m.nodes);
  const transition = made[made.length - 1].nodes;
  g.touch();
  return {
    stage: p.stage.index, replaced: p.replaced.map((b) => b.id), kept: p.kept?.id, input: x, output: y, channels: C, width: c, stack: p.stack, group: p.group,
    nodes: [...convs, catNode, ...transition], roles: { conv: convs, concat: [catNode], transition }, firstActivation: made[0].act,
    params: made.reduce((a, m) => a + m.params, 0),
  };
}
