/**
 * CSP on a plain conv stage (Darknet-19, YOLOv3-tiny; YOLOv4-tiny's CSP form of them, Scaled-YOLOv4
 * Sec. 4.1): the stage input is split, part 1 runs the stage's convs at part 1's widths, part 2
 * crosses, transitions fuse them (csp.ts does the rewrite, as for any stage). A stage of residual
 * blocks always gains from it; a plain stage need not: a lone 1x1 conv costs less than the
 * transitions that would replace it, and a conv one channel wide cannot be split. This decides,
 * before anything is changed, whether a plain stage is left as it is, and why.
 *
 * MACs of the CSP form, counted from the widths alone (per output position, summed over positions):
 * each conv at (k_in / w_in) x (k_out / w_out) of its own cost, k = round(w x split) for every
 * stream w; then transition 1 (k_n -> k_n, fusion both; k_n -> w_n - part 2, fusion last), the
 * transition after the Concat (k_n + part 2 -> w_n, fusion both / first), and the conv split's two
 * 1x1 convs (w_0 -> w_0 in all).
 */
import { blockRefs } from '../analysis/structure-refs';
import type { Stage } from '../analysis/structure-types';
import type { Graph, Value } from '../ir/graph';
import { channelsOf, roundHalfEven } from '../ir/surgery';
import type { CspOptions } from './csp';
import { nodesCost, positions } from './elan-fit';
import { isPlainStage } from './elan-stack';

/** Narrowest stream CSP splits: both parts need a channel. */
const MIN_SPLIT_WIDTH = 2;

/** Why CSP leaves this plain stage as it is, or null when it converts it (and for any other stage). */
export function plainStageLeft(g: Graph, stage: Stage, opts: CspOptions): string | null {
  if (!isPlainStage(stage)) return null;
  const refs = stage.blocks.map((b) => blockRefs(b));
  const values = [refs[0].input, ...refs.map((r) => r.output)].filter((v): v is Value => !!v);
  const widths = values.map((v) => channelsOf(v));
  if (widths.some((w) => w === null)) return null; // the CSP plan reports unknown widths itself
  const w = widths as number[];
  const narrow = w.findIndex((x) => x < MIN_SPLIT_WIDTH);
  if (narrow >= 0) return `too narrow to split: '${values[narrow].name}' has ${w[narrow]} channel(s), and CSP needs a channel in each part`;
  const k = w.map((x) => roundHalfEven(x * opts.split));
  if (k.some((x, i) => x < 1 || x >= w[i])) return `--split ${opts.split} leaves a part with no channels at one of its ${w.join(', ')}-channel features`;
  const source = nodesCost(g, refs.flatMap((r) => r.nodes)).macs;
  let csp = 0;
  refs.forEach((r, i) => {
    csp += nodesCost(g, r.nodes).macs * (k[i] / w[i]) * (k[i + 1] / w[i + 1]);
  });
  const n = w.length - 1, hw = positions(values[n]), part2 = w[0] - k[0];
  if (opts.fusion === 'both') csp += (k[n] * k[n] + (k[n] + part2) * w[n]) * hw;
  else if (opts.fusion === 'first') csp += (k[n] + part2) * w[n] * hw;
  else csp += k[n] * Math.max(0, w[n] - part2) * hw;
  if (opts.splitOp === 'conv') csp += w[0] * w[0] * positions(values[0]);
  if (csp >= source) return `CSP (fusion ${opts.fusion}) would not reduce its MACs (${Math.round(csp)} against ${Math.round(source)}): its ${stage.blocks.length} plain conv layer(s) cost less than the split's transitions`;
  return null;
}

/** What CSP and ELAN leave of a plain-conv backbone by design, said in the report (never silently). */
export const PLAIN_STEM_NOTE = 'plain conv backbone: its first conv (on the image) is the stem and stays as it is, as the first conv of Darknet-53 does; a stride-1 max pool between two convs of a stage (Darknet\'s [maxpool] stride=1) runs on part 1 under CSP and is replaced with the stage\'s convs under ELAN';
