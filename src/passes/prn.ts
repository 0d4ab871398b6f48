/**
 * PRN, the layer-level strategy (paper §3.1, "Partial Residual Networks"):
 *
 *   masked residual:      y = concat( B[:k] + S[:k] , B[k:] )        k = round(C x ratio)
 *   asymmetric residual:  a projection shortcut computes only its first k filters (same numbers,
 *                         fewer params and MACs); with `dropProjection`, a stride-1 projection that
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
import type { Block, Structure } from '../analysis/structure-types';
import type { ConvertOptions, PassOutcome } from './convert';
import type { Model } from '../ir/model';
import { channelsOf, concatChannels, convProducer, keepOutputChannels, range, roundHalfEven, sliceChannels, splitChannels } from '../ir/surgery';

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
  skipped: { block: string; reason: string }[];
}

export function checkRatio(ratio: number): void {
  if (!(ratio > 0 && ratio <= 1)) {
    throw new GptError('E_ARG', `--ratio ${ratio} is outside (0, 1]`, { hint: 'the share of channels that receive the shortcut, e.g. 0.5' });
  }
}

export function maskedResidual(model: Model, blocks: Block[], opts: PrnOptions): PrnResult {
  checkRatio(opts.ratio);
  const g = model.graph;
  const result: PrnResult = { changes: [], skipped: [] };
  const byName = new Map(g.nodes.map((n) => [n.name, n]));
  for (const block of blocks) {
    const res = block.residual;
    if (!res) continue;
    const add = byName.get(res.add);
    const S = g.values.get(res.shortcutValue);
    const B = g.values.get(res.branchValue);
    if (!add || !S || !B) {
      result.skipped.push({ block: block.id, reason: `residual add '${res.add}' not found in the graph` });
      continue;
    }
    const C = channelsOf(add.outputs[0]) ?? channelsOf(B);
    if (C === null) {
      result.skipped.push({ block: block.id, reason: `channel count of '${B.name}' unknown` });
      continue;
    }
    let k = roundHalfEven(C * opts.ratio);
    if (k < 1) k = 1;
    if (k >= C) {
      result.skipped.push({ block: block.id, reason: `ratio ${opts.ratio} keeps all ${C} channels` });
      continue;
    }
    const base = add.name.replace(/\/Add$/, '') + '/prn';
    const shortcutIdx = add.inputs.indexOf(S);
    const branchIdx = add.inputs.indexOf(B);
    if (shortcutIdx < 0 || branchIdx < 0 || shortcutIdx === branchIdx) {
      result.skipped.push({ block: block.id, reason: `'${add.name}' does not add '${S.name}' and '${B.name}'` });
      continue;
    }

    let shortcutK = S;
    let masked = k;
    let kind: MaskedResidualChange['shortcut'] = 'identity';
    if (res.shortcut === 'projection') {
      const proj = convProducer(g, S);
      const blockInput = g.values.get(block.input);
      const cin = channelsOf(blockInput);
      const stride1 = proj && proj.conv.ints('strides', [1, 1]).every((s) => s === 1) && proj.conv.ints('kernel_shape', [1, 1]).every((s) => s === 1);
      // only a projection that just changes the width (1x1, stride 1, Cin != C) can be dropped
      if (opts.dropProjection && proj && stride1 && blockInput && cin !== null && cin !== C) {
        // asymmetric residual: the block input's Cin channels go into the first min(Cin, k) channels
        masked = Math.min(cin, k);
        shortcutK = cin > masked ? sliceChannels(model, blockInput, 0, masked, `${base}/shortcut`, add) : blockInput;
        kind = 'projection-dropped';
      } else if (proj && S.consumers.length === 1 && proj.conv.outputs[0]!.consumers.length === 1) {
        // asymmetric residual: the projection computes only the k filters that are used
        keepOutputChannels(model, proj.conv, proj.bn, range(0, k));
        kind = 'projection-shrunk';
      } else {
        shortcutK = sliceChannels(model, S, 0, k, `${base}/shortcut`, add);
        kind = 'projection';
      }
    } else {
      shortcutK = sliceChannels(model, S, 0, k, `${base}/shortcut`, add);
    }
    const [branchK, branchRest] = splitChannels(model, B, [masked, C - masked], `${base}/branch`, add);
    add.setInput(shortcutIdx, shortcutK);
    add.setInput(branchIdx, branchK);
    const y = add.outputs[0]!;
    const sum = g.newValue(`${add.name}_masked`, branchK.type);
    add.setOutput(0, sum);
    const afterAdd = g.nodes[g.nodes.indexOf(add) + 1];
    concatChannels(model, [sum, branchRest], base, afterAdd, y);
    result.changes.push({ block: block.id, add: add.name, channels: C, masked, shortcut: kind });
  }
  g.toposort().cleanup();
  return result;
}

/** convert --to prn: every recognised residual block gets a masked (and, where apt, asymmetric) residual. */
export function runPrn(model: Model, structure: Structure, options: ConvertOptions, subject: string): PassOutcome {
  const ratio = options.ratio ?? 0.5;
  const outcome: PassOutcome = {
    options: { ratio, asymmetric: !!options.asymmetric }, converted: [], unconverted: [], freshParams: 0, warnings: [],
    notes: ['PRN keeps every trained weight: the converted model computes the same features except for the masked shortcut channels; a short fine-tune recovers accuracy.'],
  };
  const stageOf = new Map<string, number>();
  for (const s of structure.stages) for (const b of s.blocks) stageOf.set(b.id, s.index);
  const blocks = structure.stages.flatMap((s) => s.blocks);
  const residual = blocks.filter((b) => b.residual);
  for (const b of blocks) if (!b.residual && b.kind !== 'downsample') outcome.unconverted.push({ block: b.id, reason: `${b.rule} has no residual connection` });
  if (residual.length === 0) {
    const msg = structure.family === 'vovnet'
      ? 'a VoVNet has no residual connections, so PRN has nothing to convert'
      : 'no residual block was recognised, so PRN has nothing to convert';
    if (options.strict) throw new GptError('E_PATTERN', msg, { subject, hint: 'PRN applies to ResNet and Darknet residual blocks; try --to csp or --to elan' });
    outcome.warnings.push(`${msg}; the model is written unchanged`);
  }
  const r = maskedResidual(model, residual, { ratio, dropProjection: options.asymmetric });
  for (const c of r.changes) {
    outcome.converted.push({ block: c.block, stage: stageOf.get(c.block) ?? -1, change: `${c.add}: masked residual, shortcut into ${c.masked} of ${c.channels} channels (${c.shortcut})` });
  }
  for (const s of r.skipped) outcome.unconverted.push({ block: s.block, reason: s.reason });
  return outcome;
}
