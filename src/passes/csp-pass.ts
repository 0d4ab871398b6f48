/** convert --to csp: every stage with computation blocks becomes a cross stage partial stage (csp.ts). */
import { GptError, isGptError } from '../errors';
import type { CspConvertOptions } from './options';
import { CrossStagePartialChange, CrossStagePartialPlan, CspOptions, applyCrossStagePartial, checkCspOptions, planCrossStagePartial } from './csp';
import { Pass, PassContext, PassOutcome, Plan, addTo } from './pass';
import type { Value } from '../ir/graph';
import type { Writer } from './csp-streams';
import { PLAIN_STEM_NOTE, plainStageLeft } from './plain-stage';

export function describeCsp(c: CrossStagePartialChange): string {
  const split = c.splitOp === 'slice' ? `Split${c.splitFallback ? ` (the layers before it cannot be written per part: ${c.splitFallback})` : ''}` : c.splitOp === 'conv' ? 'two 1x1 convs' : 'the layers before it written once per part (no Split)';
  // the sum merge writes transition 2 over [a; b] as two 1x1 convs whose outputs are added
  const merge = c.mergeOp === 'sum' ? (a: number) => `transition ${a}->${c.channelsOut} + transition ${c.part2}->${c.channelsOut} on part 2 (summed, no concat)` : (a: number) => `concat with part 2, transition ${a + c.part2}->${c.channelsOut}`;
  const fuse = c.fusion === 'both'
    ? `transition ${c.part1Out}->${c.part1Out}, ${merge(c.part1Out)}`
    : c.fusion === 'first'
      ? merge(c.part1Out)
      : `transition ${c.part1Out}->${c.channelsOut - c.part2}, concat with part 2`;
  const chosen = c.selection === 'l1' ? 'highest-L1 channels' : `first ${c.part1} channels`;
  const after = c.entryBlocks.length ? `after entry block ${c.entryBlocks.join(', ')}, ` : '';
  const act = c.activation ? `, transitions with ${c.activation}` : '';
  return `cross stage partial: ${after}${split} of ${c.channelsIn} channels into ${c.part1} (${chosen}) through ${c.blocks.length} block(s) + ${c.part2} across; ${fuse} (fusion ${c.fusion}${act})`;
}

interface CspPlan extends Plan {
  stages: CrossStagePartialPlan[];
}

/**
 * Plan the CSP split of each stage; a stage that cannot be split is listed as left as it was (under
 * strict its E_PATTERN is thrown as it is).
 */
export function planCspStages(ctx: PassContext, stages: CrossStagePartialPlan['stage'][], opts: CspOptions, what = ''): CspPlan {
  const plan: CspPlan = { stages: [], unconverted: [], notApplicable: [], warnings: [] };
  const rewritten = new Map<Value, 'conv' | 'concat'>();
  for (const stage of stages) {
    // a plain conv stage CSP cannot split or would not make smaller is kept, with why (plain-stage.ts)
    const left = plainStageLeft(ctx.model.graph, stage, opts);
    if (left) {
      plan.unconverted.push({ block: `s${stage.index}`, reason: `${what}plain conv stage kept: ${left}` });
      plan.notApplicable!.push(`s${stage.index}`);
      continue;
    }
    try {
      plan.stages.push(planCrossStagePartial(ctx.model, stage, opts, rewritten));
    } catch (e) {
      if (!isGptError(e) || e.code !== 'E_PATTERN' || ctx.strict) throw e;
      plan.unconverted.push({ block: `s${stage.index}`, reason: `${what}${e.message}` });
    }
  }
  return plan;
}

export const cspPass: Pass<CspOptions, CspPlan> = {
  target: 'csp',
  options: (o) => {
    const c = o as CspConvertOptions;
    return checkCspOptions({ split: c.split, fusion: c.fusion, splitOp: c.splitOp, mergeOp: c.mergeOp });
  },
  recorded: (o) => ({ split: o.split, fusion: o.fusion, splitOp: o.splitOp, mergeOp: o.mergeOp }),
  plan(ctx, opts) {
    const already = ctx.structure.stages.filter((s) => s.csp);
    const todo = ctx.structure.stages.filter((s) => !s.csp);
    if (already.length && todo.length === 0) {
      // every stage is cross-stage partial already (timm CSPDarknet / CSPResNet, YOLOv5's C3
      // stages): like PRN without a residual and ELAN on one-module stages, the model is written
      // unchanged with a warning, and --strict makes it an error
      const s = already[0];
      // a detector built of C3 blocks (YOLOv5, YOLOv4-CSP) has its neck in CSP form as well
      const c3 = ctx.detector?.neck.blocks.filter((b) => b.rule === 'csp-c3').length ?? 0;
      const neck = c3 ? `, and its neck's ${c3} C3 block(s) are CSP blocks too` : '';
      const msg = `the model is already cross-stage partial (${already.length} of ${ctx.structure.stages.length} stages; stage ${s.index}: ${s.csp!.splitOp} into ${s.csp!.parts.map((p) => p ?? '?').join(' + ')} channels, fusion ${s.csp!.fusion}${neck}), so CSP has nothing to convert`;
      const hint = `convert --to elan (it converts from the CSP form${c3 ? ', the neck\'s C3 blocks included' : ''}) or --to prn (it masks the residual adds inside the CSP stages)`;
      if (ctx.strict) throw new GptError('E_PATTERN', msg, { subject: ctx.subject, hint });
      return { stages: [], unconverted: [], warnings: [`${msg}; the model is written unchanged (${hint})`] };
    }
    const plan = planCspStages(ctx, todo, opts);
    // a stage in CSP form beside plain ones is kept as it is, and listed
    for (const s of already) {
      plan.unconverted.push({ block: `s${s.index}`, reason: `already cross-stage partial (${s.csp!.splitOp} into ${s.csp!.parts.map((p) => p ?? '?').join(' + ')} channels, fusion ${s.csp!.fusion})` });
    }
    if (plan.stages.length === 0) {
      const why = plan.unconverted.map((u) => `${u.block}: ${u.reason}`).join('; ');
      throw new GptError('E_PATTERN', `no stage with computation blocks ${why ? `can be split (${why})` : 'was recognised'}, so CSP has nothing to convert`, {
        subject: ctx.subject, hint: 'CSP applies to the residual stages of ResNet and Darknet-53, the OSA stages of VoVNet and plain conv-BN-act stages (Darknet-19, YOLOv3-tiny)',
      });
    }
    return plan;
  },
  apply(ctx, plan) {
    const outcome: PassOutcome = {
      converted: [], unconverted: [...plan.unconverted], freshParams: 0, warnings: [...plan.warnings], added: new Map(),
      notes: plan.stages.length === 0 ? [] : [
        'A CSP model must be fine-tuned (or trained): unlike PRN it does not keep the source\'s accuracy. Part 1\'s blocks lose channels and the transitions are new layers.',
        'Kept channels: the highest L1-norm channels of each stage\'s residual stream / OSA input and output (filters and input slices, BN scale folded in); new 1x1 transitions: He-normal weights seeded by the layer name, zero bias.',
      ],
    };
    if (ctx.structure.family === 'plain') outcome.notes.push(PLAIN_STEM_NOTE);
    const made = new Map<Value, Writer[]>();
    for (const p of plan.stages) {
      const change = applyCrossStagePartial(ctx.model, p, made);
      const s = change.stage;
      outcome.freshParams += change.freshParams;
      addTo(outcome.added, s, change.addedNodes);
      outcome.converted.push({ block: `s${s}`, stage: s, change: describeCsp(change) });
      for (const id of change.blocks) {
        const dw = change.depthwise.filter((d) => d.block === id);
        const more = dw.length ? `; depthwise conv(s) reading the input narrowed with it, group = channels (${dw.map((d) => `'${d.conv}' ${d.channels}`).join(', ')})` : '';
        const plain = p.blocks.find((b) => b.id === id)?.kind === 'plain';
        outcome.converted.push({ block: id, stage: s, change: plain ? 'part 1 conv layer: input and output narrowed to part 1\'s widths' : `part 1 block: input and output narrowed, middle widths kept${more}` });
      }
      if (change.splitFallback && p.opts.splitOpGiven) outcome.warnings.push(`stage ${s}: --split-op producer: ${change.splitFallback}; split with a Split instead`);
      if (change.selection === 'first') {
        outcome.warnings.push(`stage ${s}: the layer before the split cannot be reordered, so part 1 is the first ${change.part1} channels rather than the most important ones`);
      }
    }
    return outcome;
  },
};

/** The CSP split of a stage ELAN converted, as the ELAN report lists it. */
export function describeCspAfterElan(c: CrossStagePartialChange): string {
  const merge = c.mergeOp === 'sum' ? `transition of each part -> ${c.channelsOut}, summed` : `concat with part 2, transition -> ${c.channelsOut}`;
  const fuse = c.fusion === 'both' ? `transition, ${merge}`
    : c.fusion === 'first' ? merge : `transition -> ${c.channelsOut - c.part2}, concat with part 2`;
  return `CSP split after ELAN: ${c.part1} of ${c.channelsIn} channels through the block(s), ${c.part2} across the stage; ${fuse} (fusion ${c.fusion}, ${c.splitOp} split${c.fusion === 'last' ? '' : `, ${c.mergeOp} merge`})`;
}
