/**
 * PRN, the layer-level strategy (paper §3.1, "Partial Residual Networks"):
 *
 *   masked residual:      y = concat( B[:k] + S[:k] , B[k:] )        k = round(C x ratio)
 *                         written by default as y = B + S x m, m = [1]*k + [0]*(C-k) (emit 'mask':
 *                         onnxruntime keeps its blocked layout through it); emit 'split' below
 *   asymmetric residual:  (split form) a projection shortcut computes only its first k filters (same
 *                         numbers, fewer params and MACs); with `dropProjection`, a stride-1 projection that
 *                         only widens (ResNet-50's first bottleneck) is removed and the block input's
 *                         Cin channels are added into the first min(Cin, k) channels.
 *
 *        S ──────────────┐                       S ──(Slice :k | first k filters)──┐
 *   x ─┤                 Add ── y    ==>    x ─┤                                    Add ─┐
 *        B(branch) ──────┘                       B ──Split[k, C-k]── B[:k] ─────────┘    Concat ── y
 *                                                                    B[k:] ──────────────┘
 *
 * Every trained weight is kept: the kept channels compute exactly what they did.
 */
import { GptError } from '../errors';
import { detectorRefs } from '../analysis/detector';
import { blockRefs, setBlockRefs } from '../analysis/structure-refs';
import type { Block } from '../analysis/structure-types';
import type { Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { channelsOf, concatChannels, convProducer, elemTypeOf, keepOutputChannels, range, roundHalfEven, sliceChannels, splitChannels } from '../ir/surgery';
import { PRN_EMITS, PrnConvertOptions, PrnEmit } from './options';
import { writeInParts } from './prn-parts';
import { Tensor } from '../ir/tensor';
import { Pass, PassOutcome, Plan, Unconverted, addTo } from './pass';

export interface PrnOptions {
  /** Share of channels that receive the shortcut, in (0, 1]. */
  ratio: number;
  /** Drop stride-1 projection shortcuts that only change the channel count. */
  dropProjection?: boolean;
}

export interface MaskedResidualChange {
  block: string;
  add: string;
  channels: number;
  /** Channels that receive the shortcut. */
  masked: number;
  shortcut: 'identity' | 'projection' | 'projection-shrunk' | 'projection-dropped';
}

export interface PrnResult {
  changes: MaskedResidualChange[];
  skipped: Unconverted[];
}

/** One block's masked residual, decided: what apply will do, with the objects it does it to. */
interface MaskedResidualPlan {
  block: Block;
  add: Node;
  shortcut: Value;
  branch: Value;
  channels: number;
  masked: number;
  kind: MaskedResidualChange['shortcut'];
  /** projection-shrunk: the projection conv (+BN) that keeps its first k filters. */
  projection?: { conv: Node; bn?: Node };
  /** projection-dropped: the block input that replaces the projection. */
  blockInput?: Value;
}

export function checkRatio(ratio: number): void {
  if (!(ratio > 0 && ratio <= 1)) {
    throw new GptError('E_ARG', `--ratio ${ratio} is outside (0, 1]`, { hint: 'the share of channels that receive the shortcut, e.g. 0.5' });
  }
}

/** Decide one block's masked residual (reads the graph only); a string says why it cannot be done. */
function planBlock(model: Model, block: Block, opts: PrnOptions): MaskedResidualPlan | string {
  const g = model.graph;
  const res = blockRefs(block).residual;
  if (!res) return `${block.rule} has no residual connection`;
  const { add, shortcut: S, branch: B } = res;
  if (!g.nodes.includes(add)) return `residual add '${add.name}' is not in the graph`;
  const C = channelsOf(add.outputs[0]) ?? channelsOf(B);
  if (C === null) return `channel count of '${B.name}' unknown`;
  const k = Math.max(1, roundHalfEven(C * opts.ratio));
  if (k >= C) return `ratio ${opts.ratio} keeps all ${C} channels`;
  const si = add.inputs.indexOf(S), bi = add.inputs.indexOf(B);
  if (si < 0 || bi < 0 || si === bi) return `'${add.name}' does not add '${S.name}' and '${B.name}'`;
  const p: MaskedResidualPlan = { block, add, shortcut: S, branch: B, channels: C, masked: k, kind: 'identity' };
  if (block.residual?.shortcut !== 'projection') return p;
  const proj = convProducer(g, S);
  const blockInput = blockRefs(block).input ?? undefined;
  const cin = channelsOf(blockInput);
  const pointwise = proj && proj.conv.ints('strides', [1, 1]).every((s) => s === 1) && proj.conv.ints('kernel_shape', [1, 1]).every((s) => s === 1);
  // only a projection that just changes the width (1x1, stride 1, Cin != C) can be dropped
  if (opts.dropProjection && proj && pointwise && blockInput && cin !== null && cin !== C) {
    return { ...p, kind: 'projection-dropped', masked: Math.min(cin, k), blockInput };
  }
  if (proj && S.consumers.length === 1 && proj.conv.outputs[0]!.consumers.length === 1 && proj.conv.int('group', 1) === 1) {
    return { ...p, kind: 'projection-shrunk', projection: proj };
  }
  return { ...p, kind: 'projection' };
}

/** Carry one block's plan out; returns the nodes it added. */
function applyBlock(model: Model, p: MaskedResidualPlan): Node[] {
  const g = model.graph;
  const { add, channels: C, masked } = p;
  // new nodes go under the Add's scope; an unnamed Add lends its output's name instead of a label
  const base = (add.proto.name ? add.name.replace(/\/Add$/, '') : add.outputs[0]!.name) + '/prn';
  const added: Value[] = [];
  let shortcutK = p.shortcut;
  if (p.kind === 'projection-dropped') {
    const cin = channelsOf(p.blockInput)!;
    shortcutK = cin > masked ? sliceChannels(model, p.blockInput!, 0, masked, `${base}/shortcut`, add) : p.blockInput!;
    if (shortcutK !== p.blockInput) added.push(shortcutK);
  } else if (p.kind === 'projection-shrunk') {
    keepOutputChannels(model, p.projection!.conv, p.projection!.bn, range(0, masked));
  } else {
    shortcutK = sliceChannels(model, p.shortcut, 0, masked, `${base}/shortcut`, add);
    added.push(shortcutK);
  }
  const si = add.inputs.indexOf(p.shortcut), bi = add.inputs.indexOf(p.branch);
  const [branchK, branchRest] = splitChannels(model, p.branch, [masked, C - masked], `${base}/branch`, add);
  add.setInput(si, shortcutK);
  add.setInput(bi, branchK);
  const y = add.outputs[0]!;
  const sum = g.newValue(`${y.name}_masked`, branchK.type);
  add.setOutput(0, sum);
  const afterAdd = g.nodes[g.nodes.indexOf(add) + 1];
  const cat = concatChannels(model, [sum, branchRest], base, afterAdd, y);
  added.push(branchK, cat);
  return added.map((v) => v.producer!).filter((n) => n !== add);
}

/**
 * The same masked residual as one elementwise Mul and the Add over all C channels:
 *   y = B + S * mask,  mask = [1 x k, 0 x (C - k)] (shape C x 1 x 1)
 * x * 1 and x + 0 are exact, so every channel computes what the split form computes; the projection
 * (if any) keeps all its filters, so MACs stay those of the plain model.
 */
function applyBlockMasked(model: Model, p: MaskedResidualPlan): Node[] {
  const g = model.graph;
  const { add, channels: C, masked } = p;
  const base = (add.proto.name ? add.name.replace(/\/Add$/, '') : add.outputs[0]!.name) + '/prn';
  const rank = p.shortcut.type?.shape?.length ?? 4;
  const mask = new Float32Array(C);
  mask.fill(1, 0, masked);
  const m = g.addInitializer(Tensor.float32(g.uniqueName(`${base}_mask`), [C, ...Array(Math.max(0, rank - 2)).fill(1)], mask));
  const out = g.newValue(`${p.shortcut.name}_masked`, p.shortcut.type ?? undefined);
  const mul = g.addNode({ opType: 'Mul', name: g.uniqueName(`${base}/Mul`), inputs: [p.shortcut, m], outputs: [out] }, add);
  add.setInput(add.inputs.indexOf(p.shortcut), out);
  return [mul];
}

/** Masked residuals on `blocks` (every block planned first, then all applied). */
export function maskedResidual(model: Model, blocks: Block[], opts: PrnOptions): PrnResult {
  checkRatio(opts.ratio);
  const plans = blocks.map((b) => planBlock(model, b, opts));
  const result: PrnResult = { changes: [], skipped: [] };
  plans.forEach((p, i) => {
    if (typeof p === 'string') result.skipped.push({ block: blocks[i].id, reason: p });
    else {
      applyBlock(model, p);
      result.changes.push(describeChange(p));
    }
  });
  model.graph.toposort().cleanup();
  return result;
}

function describeChange(p: MaskedResidualPlan): MaskedResidualChange {
  return { block: p.block.id, add: p.add.name, channels: p.channels, masked: p.masked, shortcut: p.kind };
}

interface PrnPassOptions {
  ratio: number;
  asymmetric: boolean;
  emit: PrnEmit;
}

interface PrnPlan extends Plan {
  blocks: { stage: number; plan: MaskedResidualPlan }[];
  /** What PRN saw in a detector's neck (a note). */
  neckSeen?: string;
}

/** Stage key of a detector neck's residual blocks (as neck.ts reports the neck). */
const NECK = -1;

/**
 * The residual Adds inside a detector's neck blocks (a C3 with shortcut=True: bottleneck input +
 * its 3x3 output), as blocks PRN can plan: the shortcut is the operand another node of the block
 * reads too (the bottleneck's first 1x1), the branch the one only the Add reads. Blocks without
 * such an Add (C3 with shortcut=False, SPP, conv sets) are counted for the note.
 */
function neckResiduals(ctx: Parameters<typeof prnPass.plan>[0]): { blocks: Block[]; seen: string } | null {
  const d = ctx.detector;
  const refs = d?.detector ? detectorRefs(d) : undefined;
  if (!d || !refs || refs.blocks.length + d.neck.paths.length === 0) return null;
  const g = ctx.model.graph;
  // an Add a backbone rule already explains (a bottleneck read as a Darknet residual) is planned once, as that block
  const known = new Set(ctx.structure.stages.flatMap((st) => st.blocks.map((b) => blockRefs(b).residual?.add)).filter((a): a is Node => !!a));
  const blocks: Block[] = [];
  const plain: Record<string, number> = {};
  refs.blocks.forEach((m, i) => {
    const inBlock = new Set(m.nodes);
    let j = 0;
    for (const add of m.nodes) {
      const ins = add.opType === 'Add' ? g.dataInputs(add) : [];
      if (known.has(add)) {
        j++;
        continue;
      }
      if (ins.length !== 2 || JSON.stringify(ins[0].shape) !== JSON.stringify(ins[1].shape) || ins[0].shape?.length !== 4) continue;
      const sharedBy = (v: Value) => v.consumers.filter((u) => u.node !== add && inBlock.has(u.node)).length;
      const [S, B] = sharedBy(ins[0]) > 0 && sharedBy(ins[1]) === 0 ? ins : sharedBy(ins[1]) > 0 && sharedBy(ins[0]) === 0 ? [ins[1], ins[0]] : [null, null];
      if (!S || !B) continue;
      const block: Block = {
        id: `neck.n${i}.r${j++}`, rule: m.rule.name, kind: 'residual', nodes: [add.name], roles: {}, input: S.name, output: add.outputs[0]!.name,
        residual: { add: add.name, shortcutValue: S.name, branchValue: B.name, shortcut: 'identity', projectionNodes: [], postAdd: [] },
        channelsIn: channelsOf(S), channelsOut: channelsOf(add.outputs[0]),
      };
      setBlockRefs(block, { nodes: [add], input: S, output: add.outputs[0]!, parts: new Map(), roles: new Map(), residual: { add, shortcut: S, branch: B } });
      blocks.push(block);
    }
    if (j === 0) plain[m.rule.name] = (plain[m.rule.name] ?? 0) + 1;
  });
  // the neck's residual adds: planned here, or already as a backbone rule's block
  const residualAdds = blocks.length + [...known].filter((a) => refs.blocks.some((m) => m.nodes.includes(a))).length;
  const kinds = Object.entries(plain).map(([r, n]) => `${n} ${r}`).join(', ');
  const fpn = d.neck.paths.length ? `; its ${d.neck.paths.length} FPN / PAN merge(s) join two paths (not shortcuts) and are left as they are` : '';
  return {
    blocks,
    seen: `neck: ${refs.blocks.length} block(s) recognised, ${residualAdds} residual add(s) in them${kinds ? `; without a residual add (nothing to mask): ${kinds}` : ''}${fpn}`,
  };
}

/** convert --to prn: every recognised residual block gets a masked (and, where apt, asymmetric) residual. */
export const prnPass: Pass<PrnPassOptions, PrnPlan> = {
  target: 'prn',
  options(o) {
    const p = o as PrnConvertOptions;
    const ratio = p.ratio ?? 0.5;
    checkRatio(ratio);
    const emit = p.emit ?? 'parts';
    if (!PRN_EMITS.includes(emit)) throw new GptError('E_ARG', `emit '${String(emit)}': expected ${PRN_EMITS.map((e) => `'${e}'`).join(', ')}`);
    return { ratio, asymmetric: !!p.asymmetric, emit };
  },
  recorded: (o) => ({ ratio: o.ratio, asymmetric: o.asymmetric, emit: o.emit }),
  plan(ctx, o) {
    const { structure } = ctx;
    const plan: PrnPlan = { blocks: [], unconverted: [], warnings: [] };
    const all = structure.stages.flatMap((s) => s.blocks.map((b) => ({ stage: s.index, b })));
    const residual = all.filter(({ b }) => b.residual);
    for (const { b } of all) if (!b.residual && b.kind !== 'downsample') plan.unconverted.push({ block: b.id, reason: `${b.rule} has no residual connection` });
    const neck = neckResiduals(ctx);
    if (residual.length === 0 && !neck?.blocks.length) {
      const msg = structure.family === 'vovnet'
        ? 'a VoVNet has no residual connections, so PRN has nothing to convert'
        : 'no residual block was recognised, so PRN has nothing to convert';
      if (ctx.strict) throw new GptError('E_PATTERN', msg, { subject: ctx.subject, hint: 'PRN applies to ResNet and Darknet residual blocks; try --to csp or --to elan' });
      plan.warnings.push(`${msg}; the model is written unchanged`);
    }
    for (const { stage, b } of [...residual, ...(neck?.blocks ?? []).map((b) => ({ stage: NECK, b }))]) {
      const p = planBlock(ctx.model, b, { ratio: o.ratio, dropProjection: o.asymmetric });
      if (typeof p === 'string') plan.unconverted.push({ block: b.id, reason: p });
      else plan.blocks.push({ stage, plan: p });
    }
    if (neck) plan.neckSeen = neck.seen;
    return plan;
  },
  apply(ctx, plan, o) {
    const outcome: PassOutcome = {
      converted: [], unconverted: [...plan.unconverted], freshParams: 0, warnings: [...plan.warnings], added: new Map(),
      notes: ['PRN keeps every trained weight: the converted model computes the same features except for the masked shortcut channels; a short fine-tune recovers accuracy.'],
    };
    if (plan.neckSeen) outcome.notes.push(plan.neckSeen);
    const muls: Node[] = [], outputs: Value[] = [];
    const done: { stage: number; p: MaskedResidualPlan; mul?: Node }[] = [];
    for (const { stage, plan: p } of plan.blocks) {
      // the mask form cannot add a narrower block input (a dropped projection) nor a float16 mask: those stay split
      const masked = o.emit !== 'split' && p.kind !== 'projection-dropped' && elemTypeOf(p.shortcut) === 1;
      const nodes = masked ? applyBlockMasked(ctx.model, p) : applyBlock(ctx.model, p);
      addTo(outcome.added, stage, nodes);
      if (masked) {
        muls.push(nodes[0]);
        outputs.push(blockRefs(p.block).output ?? p.add.outputs[0]!);
      }
      done.push({ stage, p, mul: masked ? nodes[0] : undefined });
    }
    if (o.emit === 'parts' && muls.length) {
      const r = writeInParts(ctx.model, muls, outputs);
      for (const [s, ns] of outcome.added) outcome.added.set(s, ns.filter((n) => n.graph));
      if (r.values) outcome.notes.push(`parts form: ${r.values} block input(s) / output(s) carried as two tensors (first k channels, the rest), ${r.concats} joined by a Concat for a reader that needs them whole`);
      if (r.skipped.length) {
        outcome.notes.push(`parts form: ${r.skipped.length} shortcut(s) / block output(s) keep the mask form (the same numbers, with the mask multiplication), e.g. '${r.skipped[0].value}': ${r.skipped[0].reason}`);
      }
    }
    for (const { stage, p, mul } of done) {
      const c = describeChange(p);
      // a block whose mask multiplication is gone is in the parts form (its projection shrunk)
      const form = !mul ? null : mul.graph ? 'mask form' : 'parts form';
      const kind = c.shortcut === 'projection-shrunk' && form === 'mask form' ? 'projection' : c.shortcut;
      outcome.converted.push({ block: c.block, stage, change: `${c.add}: masked residual, shortcut into ${c.masked} of ${c.channels} channels (${form ? `${kind}, ${form}` : kind})` });
    }
    return outcome;
  },
};
