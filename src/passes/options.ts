/**
 * The options of convert(), one shape per target: `{ to: 'csp', ratio: 0.3 }` does not compile, and
 * at run time an option of another target is an E_ARG naming it (a plain-JS caller, or a cast, would
 * otherwise see it ignored without a word).
 */
import { GptError } from '../errors';
import type { Rule } from '../analysis/rules';

export const TARGETS = ['prn', 'csp', 'elan'] as const;
export type ConvertTarget = (typeof TARGETS)[number];

export const FUSIONS = ['both', 'first', 'last'] as const;
export const SPLIT_OPS = ['slice', 'conv', 'producer'] as const;
export const MERGE_OPS = ['concat', 'sum'] as const;
export type Fusion = (typeof FUSIONS)[number];
export type SplitOp = (typeof SPLIT_OPS)[number];
export type MergeOp = (typeof MERGE_OPS)[number];

/** Options every target takes. */
export interface CommonOptions {
  /** Fail (E_PATTERN) when a block cannot be converted or nothing can be converted; nothing is changed then. */
  strict?: boolean;
  /** Rules to recognise blocks with (default: the shipped rules). */
  rules?: Rule[];
  /** Convert the given model object in place instead of a copy (on failure it is left exactly as it was). */
  inPlace?: boolean;
  /** Symbolic dims for the cost model (default 1). */
  dims?: Record<string, number>;
}

export interface PrnConvertOptions extends CommonOptions {
  to: 'prn';
  /** Share of channels that receive the shortcut, (0, 1]; default 0.5. */
  ratio?: number;
  /** Drop stride-1 projection shortcuts that only widen (asymmetric residual). */
  asymmetric?: boolean;
  /**
   * How the masked residual is written (the same numbers every way): 'parts' (default) carries each
   * block output as two tensors, its first k channels and the rest: the branch's last conv and the
   * readers' convs are split by channels and nothing multiplies by a mask (projections shrink to k
   * filters); where onnxruntime would not fuse the split convs' sum (an activation other than Relu
   * after it, e.g. Darknet's LeakyRelu) that part keeps the mask form. 'mask' multiplies the shortcut
   * by a constant 0/1 channel mask before an Add over all channels (the plain model's MACs); 'split'
   * splits the branch and concatenates after the Add (onnxruntime inserts layout kernels around each
   * block). README "PRN's emit forms" has the measurement.
   */
  emit?: PrnEmit;
}

export const PRN_EMITS = ['mask', 'split', 'parts'] as const;
export type PrnEmit = (typeof PRN_EMITS)[number];

/** The CSP split's own options (target csp, and elan with csp: true). */
export interface CspSplitOptions {
  /** Share of channels in part 1 (through the blocks), in (0, 1); default 0.5. */
  split?: number;
  /** Where the transition layers go (paper's gradient-flow truncation variants); default 'both'. */
  fusion?: Fusion;
  /**
   * How the stage input is split; default 'slice' (zero-parameter Split). 'conv': two new 1x1 convs
   * on x; 'producer': the layer that makes x written once per part (its filters divided, no Split, no
   * new weights; a stage whose x is not made by a conv + per-channel ops is sliced, with a warning).
   */
  splitOp?: SplitOp;
  /**
   * How the parts meet before transition 2 (fusion both / first; the same numbers either way):
   * 'concat' a Concat, then the 1x1 transition over it; 'sum' the transition's two halves as two
   * 1x1 convs, one per part, whose outputs are added (W·[a;b] = W_a·a + W_b·b: no Concat, and
   * onnxruntime fuses the Add into the second conv). Fusion last ends in the Concat itself and is
   * always 'concat'. README "CSP's emit forms" has the measurement behind the default.
   */
  mergeOp?: MergeOp;
}

export const PARTS = ['backbone', 'neck', 'all'] as const;
/** What a CSP / ELAN conversion changes in a detector: its backbone stages, its neck, or both (default). */
export type Parts = (typeof PARTS)[number];

export interface CspConvertOptions extends CommonOptions, CspSplitOptions {
  to: 'csp';
  /** A detector's parts to convert; default 'all' (a classifier has a backbone only). */
  parts?: Parts;
}

export interface ElanConvertOptions extends CommonOptions, CspSplitOptions {
  to: 'elan';
  /**
   * 2·stack 3x3 convs per stacked block; default 2. With neither stack, width nor neckStack given, a
   * neck block or a backbone stage in CSP form takes the first setting from the defaults down that
   * does not make it larger (passes/elan-fit.ts); any of them given, every block keeps the values.
   */
  stack?: number;
  /** Computational-block width as a share of the replaced blocks' computational width (their 3x3 convs' width: the bottleneck width in a bottleneck), in (0, 1]; default 0.5. */
  width?: number;
  /** Also apply the CSP split (split / fusion / splitOp) to the converted stages. */
  csp?: boolean;
  /** A detector's parts to convert; default 'all'. */
  parts?: Parts;
  /** 2·neckStack 3x3 convs per ELAN block of a detector's neck; default: stack (the paper's "2, 1s" is stack 2, neckStack 1). */
  neckStack?: number;
  /**
   * VoVNet transition relocation: what the next OSA module's first conv reads, the whole
   * concatenation ('concat') or the previous module's last layer ('last'); default per stage:
   * 'concat' unless that makes the stage larger.
   */
  osaInput?: 'concat' | 'last';
}

export type ConvertOptions = PrnConvertOptions | CspConvertOptions | ElanConvertOptions;

const COMMON = ['to', 'strict', 'rules', 'inPlace', 'dims'];
const SPLIT = ['split', 'fusion', 'splitOp', 'mergeOp'];
const OWN: Record<ConvertTarget, string[]> = { prn: ['ratio', 'asymmetric', 'emit'], csp: [...SPLIT, 'parts'], elan: ['stack', 'width', 'csp', 'parts', 'neckStack', 'osaInput'] };

/**
 * The target, after checking that every option given belongs to it: E_ARG "option 'ratio' does not
 * apply to target 'csp'" otherwise (an option set to undefined counts as not given).
 */
export function checkTargetOptions(options: ConvertOptions): ConvertTarget {
  const target = (options as { to?: unknown } | undefined)?.to;
  if (!TARGETS.includes(target as ConvertTarget)) {
    throw new GptError('E_ARG', `unknown target '${String(target)}'`, { hint: 'use --to prn, csp or elan' });
  }
  const to = target as ConvertTarget;
  const o = options as unknown as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (o[key] === undefined || COMMON.includes(key) || OWN[to].includes(key)) continue;
    if (to === 'elan' && SPLIT.includes(key)) {
      if (o.csp) continue;
      throw new GptError('E_ARG', `option '${key}' does not apply to target 'elan' without csp: true`, { subject: key, hint: 'set csp: true for the CSP split, or leave it out' });
    }
    const owners = TARGETS.filter((t) => OWN[t].includes(key) || (t === 'elan' && SPLIT.includes(key)));
    throw new GptError('E_ARG', owners.length ? `option '${key}' does not apply to target '${to}'` : `unknown option '${key}'`, {
      subject: key,
      hint: owners.length ? `it is an option of target ${owners.map((t) => `'${t}'`).join(' and ')}; leave it out` : `target '${to}' takes ${[...COMMON.slice(1), ...OWN[to]].join(', ')}`,
    });
  }
  return to;
}
