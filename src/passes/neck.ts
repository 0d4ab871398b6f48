/**
 * The neck of a detector, converted like its backbone (gradient-path paper, Sec. 4: YOLOR-CSP and
 * YOLOR-ELAN stack their computational blocks in the backbone AND the neck). Each YOLO conv set
 * (1x1 C->M, then 3x3 M->2M / 1x1 2M->M pairs; detector.ts finds them by the neck rules) becomes:
 *
 *   csp (Scaled-YOLOv4's CSP neck):  x ─ 1x1 C->M (kept) ─ split ─ p1 ─ [3x3 p1->2p1, 1x1 2p1->p1] x n ─ (1x1 p1) ─┐
 *                                                               └ M-p1 ───────────────────────────── concat ─ (1x1 M) ─ out
 *   elan (YOLOv7's neck ELAN):       x ─ 1x1 C->h ─────────────────────────────────┐
 *                                    x ─ 1x1 C->h ─ 3x3 h->h/2 ─ 3x3 ─ ... (2 x stack) ┴ concat of all ─ 1x1 -> M ─ out
 *
 * A tiny YOLO's set (1x1 C->M, then one 3x3 M->2M before the head; the 1x1's output also feeds the
 * FPN lateral) keeps its 1x1 under both: CSP splits its output and runs the 3x3 on part 1 at
 * part 1's width (p1 -> 2 p1); ELAN reads the 1x1's output in place of the set's input (the lateral
 * still needs the 1x1, so an ELAN block reading x would add to it rather than replace it).
 *
 * The set's output keeps its width M, so the heads and the lateral 1x1 after it keep their inputs;
 * every graph output keeps its name and shape; decode and NMS after the heads are not touched.
 * New layers get seeded He-normal weights (the model must be trained again, as the backbone's CSP).
 */
import { GptError, isGptError } from '../errors';
import { DetectorStructure, detectorRefs, recognizeDetector } from '../analysis/detector';
import type { Match } from '../analysis/matcher';
import type { Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { addConvBnAct, concatChannels, requireChannels, roundHalfEven, sliceChannels } from '../ir/surgery';
import { CapturedActivation, captureActivation, emitActivation } from './activation';
import { ElanSetting, FitFreedom, describeFit, fitSetting, neckElanLayers, neckElanWidths, nodesCost, layersCost, positions } from './elan-fit';
import { defaultsFree } from './elan';
import { PARTS, Parts } from './options';
import type { Fusion } from './options';
import type { AnyPass, PassContext, PassOutcome, Plan } from './pass';

/** Stage key under which the neck's new nodes are reported (not a backbone stage). */
export const NECK_STAGE = -1;

export type NeckTarget = { to: 'csp'; split: number; fusion: Fusion } | { to: 'elan'; stack: number; width: number };

interface ConvSetPlan {
  id: string;
  /** The neck rule matched: a YOLO conv set, or (ELAN only) a C3 / CSP block. */
  rule: string;
  input: Value;
  /** The kept first 1x1 layer's output (CSP; a conv set only) and the block's output. */
  reduced: Value | null;
  output: Value;
  pairs: number;
  /** The set ends with a lone 3x3 M->2M (a tiny YOLO's set): part 1 runs it at p1 -> 2 p1. */
  expand: boolean;
  /** The first 1x1's output is read outside the set too (the lateral): ELAN reads it and keeps the 1x1. */
  shared: boolean;
  width: number;
  act: CapturedActivation;
  batchNorm: boolean;
  /** ELAN: this block's stack and width (the defaults, or the first setting that does not grow it), and why. */
  elan?: ElanSetting;
  fitted?: string;
}

export interface NeckPlan extends Plan {
  sets: ConvSetPlan[];
  detector: DetectorStructure | null;
}

function lastOf(m: Match, prefix: string): Node[] {
  return [...m.parts].filter(([p]) => p.startsWith(prefix)).flatMap(([, ns]) => ns);
}

/** The first layer of each neck rule the passes rewrite, by element id: its activation is copied. */
const FIRST_LAYER: Record<string, string> = { 'yolo-conv-set': 'reduce', 'yolo-tiny-conv-set': 'reduce', 'csp-c3': 'part1' };
/** The neck rules CSP rewrites: the YOLO conv sets, full and tiny. */
const CSP_SETS = new Set(['yolo-conv-set', 'yolo-tiny-conv-set']);

/**
 * Plan the conversion of the neck's blocks: CSP rewrites each YOLO conv set (a C3 block is already
 * cross stage partial: kept); ELAN replaces each conv set and each C3 block by an ELAN block of the
 * same output width. A model that is not a detector plans nothing.
 */
export function planNeck(ctx: PassContext, to: 'csp' | 'elan', elan?: { setting: ElanSetting; free: FitFreedom }): NeckPlan {
  if (ctx.detector === null) return { sets: [], detector: null, unconverted: [], warnings: [] };
  const d = ctx.detector ?? recognizeDetector(ctx.model, { rules: ctx.rules, structure: ctx.structure });
  const plan: NeckPlan = { sets: [], detector: d.detector ? d : null, unconverted: [], notApplicable: [], warnings: [] };
  const refs = detectorRefs(d);
  if (!d.detector || !refs) return plan;
  const g = ctx.model.graph;
  refs.blocks.forEach((m, i) => {
    const id = `neck.n${i}`;
    const first = FIRST_LAYER[m.rule.name];
    if (!first || (to === 'csp' && !CSP_SETS.has(m.rule.name))) {
      const pooling = m.rule.name.startsWith('spp');
      const why = m.rule.name === 'csp-c3'
        ? 'already a cross stage partial block'
        : pooling
          ? 'a pooling block (one 1x1 before and after the max pools, no conv chain to split or restack; YOLOv7 keeps its SPP too)'
          : `--to ${to} rewrites ${to === 'csp' ? 'YOLO conv sets' : 'YOLO conv sets and C3 blocks'} in the neck`;
      plan.unconverted.push({ block: id, reason: `${m.rule.name}: ${why}; kept` });
      if (pooling) plan.notApplicable!.push(id);
      return;
    }
    const acts = lastOf(m, `${first}.act`);
    if (acts.length === 0) {
      plan.unconverted.push({ block: id, reason: `${m.rule.name} without an activation on its first layer; kept` });
      return;
    }
    const reduced = CSP_SETS.has(m.rule.name) ? m.values.get('reduce')?.at(-1) ?? null : null;
    const inSet = new Set(m.nodes);
    const shared = !!reduced && reduced.consumers.some((u) => !inSet.has(u.node));
    const set: ConvSetPlan = {
      id, rule: m.rule.name, input: m.input, reduced, output: m.output, pairs: m.values.get('pair')?.length ?? 0,
      expand: m.rule.name === 'yolo-tiny-conv-set', shared,
      width: requireChannels(m.output, id), act: captureActivation(g, acts), batchNorm: lastOf(m, `${first}.bn`).length > 0,
    };
    if (to === 'elan' && elan) {
      // the block's own setting: the defaults unless they make it larger than the block it replaces
      // (with a shared first 1x1, what it replaces is the rest of the set)
      const kept = new Set(shared ? lastOf(m, 'reduce') : []);
      const source = nodesCost(g, m.nodes.filter((n) => !kept.has(n)));
      const cin = requireChannels(shared ? reduced : m.input, id), hw = positions(m.output);
      const fit = fitSetting(elan.setting, elan.free, source, (s) => layersCost(neckElanLayers(cin, set.width, s), hw, set.batchNorm));
      set.elan = fit.setting;
      set.fitted = describeFit(fit, elan.setting, source);
    }
    plan.sets.push(set);
  });
  return plan;
}

/** Carry the neck plan out (after the backbone's own rewrite: only neck nodes are referenced). */
export function applyNeck(model: Model, plan: NeckPlan, t: NeckTarget, outcome: PassOutcome): void {
  const g = model.graph;
  for (const s of plan.sets) {
    const added: Node[] = [];
    const layer = (x: Value, scope: string, cout: number, k: number): Value => {
      const r = addConvBnAct(model, x, { scope: `/neck/${s.id}/${scope}`, cout, kernel: k, batchNorm: s.batchNorm, act: null });
      outcome.freshParams += r.params;
      added.push(r.conv, ...(r.bn ? [r.bn] : []));
      const a = emitActivation(model, s.act, r.output, cout, { name: `/neck/${s.id}/${scope}/act` });
      added.push(...a.nodes);
      return a.output;
    };
    const M = s.width;
    let out: Value;
    let change: string;
    if (t.to === 'csp' && s.reduced) {
      // R: the kept 1x1's width (= M for a full set; M / 2 for a tiny set, whose 3x3 doubles it)
      const R = requireChannels(s.reduced, s.id);
      const p1 = Math.max(1, Math.min(R - 1, roundHalfEven(R * t.split)));
      const part1 = sliceChannels(model, s.reduced, 0, p1, `/neck/${s.id}/part1`);
      const part2 = sliceChannels(model, s.reduced, p1, R, `/neck/${s.id}/part2`);
      let y = part1;
      for (let i = 0; i < s.pairs; i++) y = layer(layer(y, `chain${i}/expand`, 2 * p1, 3), `chain${i}/reduce`, p1, 1);
      if (s.expand) y = layer(y, 'chain/expand', 2 * p1, 3);
      const yw = s.expand ? 2 * p1 : p1;
      if (t.fusion === 'both') {
        out = layer(concatChannels(model, [layer(y, 'transition1', yw, 1), part2], `/neck/${s.id}/concat`), 'transition', M, 1);
      } else if (t.fusion === 'first') {
        out = layer(concatChannels(model, [y, part2], `/neck/${s.id}/concat`), 'transition', M, 1);
      } else {
        out = concatChannels(model, [layer(y, 'transition1', M - (R - p1), 1), part2], `/neck/${s.id}/concat`);
      }
      const chain = [s.pairs ? `${s.pairs} pair(s) of 3x3 ${p1}->${2 * p1} / 1x1 ${2 * p1}->${p1}` : '', s.expand ? `3x3 ${p1}->${2 * p1}` : ''].filter(Boolean).join(', then ');
      change = `${s.rule} -> CSP block: first 1x1 kept, split ${p1} + ${R - p1}, ${chain} on part 1, fusion ${t.fusion}, output ${M}`;
    } else {
      if (t.to !== 'elan') continue; // (a CSP plan holds conv sets only)
      const { stack, width } = s.elan ?? t;
      const { h, q } = neckElanWidths(M, width);
      const x = s.shared && s.reduced ? s.reduced : s.input;
      const cv1 = layer(x, 'cv1', h, 1);
      let y = layer(x, 'cv2', h, 1);
      const cat = [cv1, y];
      for (let i = 0; i < 2 * stack; i++) cat.push((y = layer(y, `conv${i}`, q, 3)));
      out = layer(concatChannels(model, cat, `/neck/${s.id}/concat`), 'transition', M, 1);
      change = `${s.rule} -> ELAN block: ${x === s.input ? '' : 'first 1x1 kept (the lateral reads it too), '}1x1 ${requireChannels(x, s.id)}->${h} twice, ${2 * stack} chained 3x3 ${h}->${q}, concat of all ${2 * h + 2 * stack * q}, 1x1 -> ${M}${s.fitted ?? ''}`;
    }
    for (const n of g.nodes) if (!added.includes(n) && n.outputs.includes(out)) added.push(n);
    g.replaceAllUses(s.output, out);
    outcome.added.set(NECK_STAGE, [...(outcome.added.get(NECK_STAGE) ?? []), ...g.nodes.filter((n) => added.includes(n) || n.name.startsWith(`/neck/${s.id}/`))]);
    outcome.converted.push({ block: s.id, stage: NECK_STAGE, change });
  }
  if (plan.sets.length) {
    g.cleanup();
    const by: Record<string, number> = {};
    for (const x of plan.sets) by[x.rule] = (by[x.rule] ?? 0) + 1;
    const fitted = plan.sets.filter((x) => x.fitted && x.elan);
    if (fitted.length) {
      const what = fitted.map((x) => `${x.id} stack ${x.elan!.stack}, width ${x.elan!.width}`).join('; ');
      outcome.notes.push(`ELAN defaults per neck block (none larger than the block it replaces): ${what}; give --stack / --width to have one setting everywhere`);
    }
    outcome.notes.push(`neck: ${plan.sets.length} block(s) rewritten (${Object.entries(by).map(([r, n]) => `${n} ${r}`).join(', ')}); their new layers have seeded weights (train or fine-tune the model). Heads, decode and NMS are unchanged.`);
  }
}

/** The neck options the wrapped passes take beside their own: parts, and ELAN's neck stack. */
export interface NeckOptions {
  parts: Parts;
  neckStack?: number;
}

function checkNeckOptions(o: Record<string, unknown>): NeckOptions {
  const parts = (o.parts ?? 'all') as Parts;
  if (!PARTS.includes(parts)) throw new GptError('E_ARG', `parts '${String(o.parts)}' is not one of ${PARTS.join(', ')}`, { subject: 'parts', hint: 'e.g. --parts neck' });
  const ns = o.neckStack;
  if (ns !== undefined && !(Number.isInteger(ns) && (ns as number) >= 1)) {
    throw new GptError('E_ARG', `neck stack ${String(ns)} is not a whole number of at least 1`, { subject: 'neckStack', hint: 'e.g. --stack 2,1 (backbone 2, neck 1)' });
  }
  return { parts, ...(ns !== undefined ? { neckStack: ns as number } : {}) };
}

/**
 * A backbone pass (CSP, ELAN) that also converts the neck of a detector: the backbone's plan (a
 * detector without a recognised backbone plans its neck alone), then the neck's; apply in that order.
 * `parts` picks one side; ELAN's neck blocks take `neckStack` (default: the backbone's stack).
 */
export function withNeck(pass: AnyPass, target: (o: Record<string, unknown>) => NeckTarget): AnyPass {
  type Both = Plan & { inner: Plan | null; neck: NeckPlan };
  type Opts = { inner: unknown; neck: NeckOptions; all: Record<string, unknown> };
  const empty = (): NeckPlan => ({ sets: [], detector: null, unconverted: [], warnings: [] });
  return {
    target: pass.target,
    options(o): Opts {
      const all = o as unknown as Record<string, unknown>;
      const { parts: _p, neckStack: _n, ...rest } = all;
      return { inner: pass.options(rest as never), neck: checkNeckOptions(all), all };
    },
    // parts is recorded when it narrows the conversion (the default, all, is what every model had before)
    recorded: (o: Opts) => ({ ...pass.recorded(o.inner), ...(o.neck.parts !== 'all' ? { parts: o.neck.parts } : {}), ...(o.neck.neckStack !== undefined ? { neckStack: o.neck.neckStack } : {}) }),
    plan(ctx, o: Opts): Both {
      const to = o.all.to === 'csp' ? 'csp' : 'elan';
      // ELAN's neck blocks: stack / width not given are chosen per block so that none grows (elan-fit.ts)
      const t = target({ ...o.all, ...(o.inner as object), ...(o.neck.neckStack !== undefined ? { stack: o.neck.neckStack } : {}) });
      const elan = t.to === 'elan'
        ? { setting: { stack: t.stack, width: t.width }, free: defaultsFree(o.all) }
        : undefined;
      const neck = o.neck.parts === 'backbone' ? empty() : planNeck(ctx, to, elan);
      let inner: Plan | null = null;
      if (o.neck.parts !== 'neck') {
        try {
          inner = pass.plan(ctx, o.inner);
        } catch (e) {
          if (!isGptError(e) || e.code !== 'E_PATTERN' || neck.sets.length === 0 || ctx.strict) throw e;
          neck.warnings.push(`backbone left as it was: ${e.message}`);
        }
      } else if (neck.sets.length === 0) {
        throw new GptError('E_PATTERN', 'no neck conv set was recognised, so --parts neck has nothing to convert', {
          subject: ctx.subject, hint: 'the neck conversion applies to detectors whose neck has YOLO conv sets; see gpt analyze',
        });
      }
      return {
        inner, neck, unconverted: [...(inner?.unconverted ?? []), ...neck.unconverted],
        notApplicable: [...(inner?.notApplicable ?? []), ...(neck.notApplicable ?? [])], warnings: [...(inner?.warnings ?? []), ...neck.warnings],
      };
    },
    apply(ctx, plan: Plan, o: Opts): PassOutcome {
      const p = plan as Both;
      const outcome: PassOutcome = p.inner
        ? pass.apply(ctx, p.inner, o.inner)
        : { converted: [], unconverted: [], freshParams: 0, notes: [], warnings: [], added: new Map() };
      outcome.unconverted.push(...p.neck.unconverted);
      outcome.warnings.push(...p.neck.warnings);
      applyNeck(ctx.model, p.neck, target({ ...o.all, ...(o.inner as object), ...(o.neck.neckStack !== undefined ? { stack: o.neck.neckStack } : {}) }), outcome);
      return outcome;
    },
    notes: pass.notes,
  };
}
