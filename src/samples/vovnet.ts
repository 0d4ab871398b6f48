/**
 * VoVNet-39 / VoVNet-57 (Lee et al. 2019, Table 1; timm's vovnet39a / vovnet57a). A stem of three
 * 3x3 convs (64/2, 64, 128/2), then four stages of One-Shot Aggregation modules: 5 chained 3x3
 * convs, one Concat of the module input and all 5 outputs, a 1x1 transition conv to the stage's
 * output width. Stages 3-5 start with MaxPool 3x3/2 ceil_mode. Module paths follow timm's layout
 * (stem.i, stages.s.b.layers.i, .transition, the stage's pool as stages.s.0).
 */
import type { Value } from '../ir/graph';
import type { ModelBuilder } from './builder';

export interface VoVNetSpec {
  /** OSA modules per stage. */
  blocks: number[];
  /**
   * VoVNetV2 (timm ese_vovnet*b, Lee and Park 2020): eSE on the last module of each stage
   * (ReduceMean, 1x1 conv with bias, hard sigmoid, Mul) and an identity Add on the modules after a stage's first.
   */
  ese?: boolean;
}

export const VOVNET39: VoVNetSpec = { blocks: [1, 1, 2, 2] };
export const VOVNET57: VoVNetSpec = { blocks: [1, 1, 4, 3] };
/** timm ese_vovnet39b. */
export const VOVNET39_ESE: VoVNetSpec = { blocks: [1, 1, 2, 2], ese: true };

const STEM = [64, 64, 128];
const STEM_STRIDES = [2, 1, 2];
const CONV_WIDTHS = [128, 160, 192, 224];
const OUT_WIDTHS = [256, 512, 768, 1024];
const LAYERS_PER_BLOCK = 5;
/** The OSA module keeps its 5 convs in an nn.ModuleList `layers` (indexed in forward, never called). */
export const VOVNET_MODULE_LISTS = ['layers'];

export function vovnet(b: ModelBuilder, x: Value, spec: VoVNetSpec, ch: (c: number) => number): Value {
  let y = x;
  STEM.forEach((c, i) => {
    y = b.convBnAct(y, names(`stem.${i}`), ch(c), 3, STEM_STRIDES[i], 'Relu');
  });
  spec.blocks.forEach((n, s) => {
    let first = 0;
    if (s > 0) y = b.maxPool(y, `stages.${s}.${first++}`, 3, 2, 0, true);
    for (let i = 0; i < n; i++) {
      const m = spec.ese ? `stages.${s}.blocks.${i}` : `stages.${s}.${first + i}`;
      y = osaModule(b, y, m, ch(CONV_WIDTHS[s]), ch(OUT_WIDTHS[s]), !!spec.ese && i === n - 1, !!spec.ese && i > 0);
    }
  });
  return b.flatten(b.globalAveragePool(y, 'pool'));
}

/** One-Shot Aggregation: every conv output is aggregated once, at the end (paper, Fig. 2b). */
function osaModule(b: ModelBuilder, x: Value, m: string, width: number, out: number, ese = false, residual = false): Value {
  const features = [x];
  let y = x;
  for (let i = 0; i < LAYERS_PER_BLOCK; i++) {
    y = b.convBnAct(y, names(`${m}.layers.${i}`), width, 3, 1, 'Relu');
    features.push(y);
  }
  y = b.convBnAct(b.concat(features, m), names(`${m}.transition`), out, 1, 1, 'Relu');
  if (ese) {
    // timm EffectiveSEModule with hard_sigmoid: relu6(x + 3) / 6 is HardSigmoid(alpha 1/6, beta 0.5)
    const gate = b.pointwise(b.fcConv(b.reduceMean(y, `${m}.attn`), `${m}.attn.fc`, out), `${m}.attn.gate`, 'HardSigmoid', { alpha: { float: 1 / 6 }, beta: { float: 0.5 } });
    y = b.mul(y, gate, `${m}.attn`);
  }
  return residual ? b.add(y, x, m) : y;
}

/** timm's ConvNormAct as a Sequential: .0 conv, .1 BN, .2 Relu. */
function names(m: string) {
  return { conv: `${m}.0`, bn: `${m}.1`, act: `${m}.2` };
}
