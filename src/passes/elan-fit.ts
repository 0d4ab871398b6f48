/**
 * ELAN's defaults that do not grow a block (a user who did not ask for a larger model should not get
 * one): where the stack and width were not given, a neck block (and a backbone stage already in CSP
 * form, whose few small residual blocks a stack-2 ELAN block outweighs) takes the first setting,
 * from the defaults down, whose ELAN block has no more params and no more MACs than the block it
 * replaces. Given values are kept as given (the report then says when the model grows).
 *
 * Both sides are counted alike: conv weights + bias, BN scale + shift, and conv weights x output
 * positions for MACs; every layer of an ELAN block runs at the block's output resolution.
 */
import type { Graph, Node, Value } from '../ir/graph';
import { roundHalfEven } from '../ir/surgery';

/** One conv layer of a planned block. */
export interface LayerSpec {
  cin: number;
  cout: number;
  k: number;
  group?: number;
}

export interface BlockCost {
  params: number;
  macs: number;
}

export interface ElanSetting {
  stack: number;
  width: number;
}

/** Which of stack / width the defaults may choose (those the user did not give). */
export interface FitFreedom {
  stack: boolean;
  width: boolean;
}

/** Output positions of a value (H x W), 1 when unknown (then MACs compare as params do). */
export function positions(v: Value | null | undefined): number {
  const s = v?.shape;
  return s && s.length === 4 && typeof s[2] === 'number' && typeof s[3] === 'number' ? s[2] * s[3] : 1;
}

export function layersCost(layers: LayerSpec[], hw: number, batchNorm: boolean): BlockCost {
  let params = 0, macs = 0;
  for (const l of layers) {
    const w = (l.cout * l.cin * l.k * l.k) / (l.group ?? 1);
    params += w + (batchNorm ? 2 : 1) * l.cout;
    macs += w * hw;
  }
  return { params, macs };
}

/** What the given nodes cost in the graph (their Conv and BatchNormalization layers). */
export function nodesCost(g: Graph, nodes: Iterable<Node>): BlockCost {
  let params = 0, macs = 0;
  for (const n of nodes) {
    if (n.opType !== 'Conv' && n.opType !== 'BatchNormalization') continue;
    const sizes = [1, 2].map((i) => g.constantTensor(n.inputs[i] ?? null)?.size ?? 0);
    params += sizes[0] + sizes[1];
    if (n.opType === 'Conv') macs += sizes[0] * positions(n.outputs[0]);
  }
  return { params, macs };
}

/** A neck ELAN block's widths (neck.ts): two 1x1 C->h, chained 3x3 h->q, q->q, ...; the concat of all -> 1x1 M. */
export function neckElanWidths(M: number, width: number): { h: number; q: number } {
  const h = Math.max(2, roundHalfEven(M * width));
  return { h, q: Math.max(1, Math.floor(h / 2)) };
}

export function neckElanLayers(cin: number, M: number, s: ElanSetting): LayerSpec[] {
  const { h, q } = neckElanWidths(M, s.width);
  const chain: LayerSpec[] = Array.from({ length: 2 * s.stack }, (_, i) => ({ cin: i === 0 ? h : q, cout: q, k: 3 }));
  return [{ cin, cout: h, k: 1 }, { cin, cout: h, k: 1 }, ...chain, { cin: 2 * h + 2 * s.stack * q, cout: M, k: 1 }];
}

/** A backbone stage's stacked ELAN block (elan-stack.ts) at block width c. */
export function stackedElanLayers(cin: number, C: number, c: number, stack: number, group: number): LayerSpec[] {
  const chain: LayerSpec[] = Array.from({ length: 2 * stack }, () => ({ cin: c, cout: c, k: 3, group }));
  return [{ cin, cout: c, k: 1 }, { cin, cout: c, k: 1 }, ...chain, { cin: (2 + stack) * c, cout: C, k: 1 }];
}

/** The settings to try, the defaults first: fewer stacked pairs at the default width, then narrower. */
export function fitCandidates(d: ElanSetting, free: FitFreedom): ElanSetting[] {
  const stacks = free.stack ? Array.from({ length: d.stack }, (_, i) => d.stack - i) : [d.stack];
  const widths = free.width ? [1, 0.75, 0.5, 0.25].map((f) => d.width * f) : [d.width];
  return widths.flatMap((width) => stacks.map((stack) => ({ stack, width })));
}

export interface FitResult {
  setting: ElanSetting;
  cost: BlockCost;
  /** The defaults' cost, when they were not kept (they grow the block). */
  defaults?: BlockCost;
  /** false: no setting keeps the block from growing (the defaults are used, the report says it grows). */
  fits: boolean;
}

const within = (a: BlockCost, b: BlockCost) => a.params <= b.params && a.macs <= b.macs;

/** The first candidate whose block costs no more than `source`; the defaults when none does. */
export function fitSetting(d: ElanSetting, free: FitFreedom, source: BlockCost, cost: (s: ElanSetting) => BlockCost): FitResult {
  const first = cost(d);
  if (within(first, source) || (!free.stack && !free.width)) return { setting: d, cost: first, fits: within(first, source) };
  for (const s of fitCandidates(d, free).slice(1)) {
    const c = cost(s);
    if (within(c, source)) return { setting: s, cost: c, defaults: first, fits: true };
  }
  return { setting: d, cost: first, fits: false };
}

const num = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(2)} K` : String(x));

/** "stack 1 (the default stack 2 would grow it: params 111.62 K > 90.11 K)", for the change line. */
export function describeFit(r: FitResult, d: ElanSetting, source: BlockCost): string {
  if (!r.defaults) return '';
  const what = [r.setting.stack !== d.stack ? `stack ${r.setting.stack}` : '', r.setting.width !== d.width ? `width ${r.setting.width}` : ''].filter(Boolean).join(', ');
  const by = r.defaults.params > source.params ? `params ${num(r.defaults.params)} > ${num(source.params)}` : `MACs ${num(r.defaults.macs)} > ${num(source.macs)}`;
  return ` [default ${what}: stack ${d.stack}, width ${d.width} would grow the block, ${by}]`;
}
