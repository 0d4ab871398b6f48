/**
 * ResNet-18 / ResNet-50 as torchvision builds them (He et al. 2016; torchvision's v1.5 Bottleneck
 * puts the stride on the 3x3 conv). Module paths follow torchvision's attribute names, so the
 * export-style names match a real torch.onnx.export of torchvision.models.resnet*.
 */
import type { Value } from '../ir/graph';
import type { ModelBuilder } from './builder';

export interface ResNetSpec {
  block: 'basic' | 'bottleneck';
  /** Blocks per stage (layer1..layer4). */
  depths: number[];
  /** timm's ResNet-D: 3-conv deep stem (32, 32, 64) and AvgPool 2x2 + 1x1 projection shortcuts (avg_down). */
  resnetD?: boolean;
  /** Squeeze-excitation in every block before the Add (timm SEModule: C/16 rounded to a multiple of 8). */
  se?: boolean;
  /** ResNeXt: groups of the 3x3 (cardinality) and the width per group at 64 planes (base_width). */
  cardinality?: number;
  baseWidth?: number;
}

export const RESNET18: ResNetSpec = { block: 'basic', depths: [2, 2, 2, 2] };
export const RESNET50: ResNetSpec = { block: 'bottleneck', depths: [3, 4, 6, 3] };
/** timm resnet50d: stem_width 32, stem_type 'deep', avg_down. */
export const RESNET50D: ResNetSpec = { ...RESNET50, resnetD: true };
/** timm seresnet50: block_args attn_layer 'se'. */
export const SERESNET50: ResNetSpec = { ...RESNET50, se: true };
/** timm resnext50_32x4d: cardinality 32, base_width 4. */
export const RESNEXT50: ResNetSpec = { ...RESNET50, cardinality: 32, baseWidth: 4 };

/** timm's make_divisible(v, 8): the nearest multiple of 8, at least 8, not below 90% of v. */
function makeDivisible(v: number, divisor = 8): number {
  const r = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  return r < 0.9 * v ? r + divisor : r;
}

const PLANES = [64, 128, 256, 512];
const EXPANSION = { basic: 1, bottleneck: 4 };
/** BN gain at the end of each residual branch (see ModelBuilder.batchNorm). */
const BRANCH_END_GAIN = 0.2;

/** Builds the network from `x` to the pooled, flattened features; returns them. */
export function resnet(b: ModelBuilder, x: Value, spec: ResNetSpec, ch: (c: number) => number): Value {
  let y: Value;
  if (spec.resnetD) {
    // timm's deep stem: conv1 = Sequential(conv 3->32 /2, BN, ReLU, conv 32->32, BN, ReLU, conv 32->64), then bn1, act1
    y = b.convBnAct(x, { conv: 'conv1.0', bn: 'conv1.1', act: 'conv1.2' }, ch(32), 3, 2, 'Relu');
    y = b.convBnAct(y, { conv: 'conv1.3', bn: 'conv1.4', act: 'conv1.5' }, ch(32), 3, 1, 'Relu');
    y = b.convBnAct(y, { conv: 'conv1.6', bn: 'bn1', act: 'act1' }, ch(64), 3, 1, 'Relu');
  } else {
    y = b.convBnAct(x, { conv: 'conv1', bn: 'bn1', act: 'relu' }, ch(64), 7, 2, 'Relu');
  }
  y = b.maxPool(y, 'maxpool', 3, 2, 1, false);
  spec.depths.forEach((n, s) => {
    for (let i = 0; i < n; i++) {
      const stride = s > 0 && i === 0 ? 2 : 1;
      const m = `layer${s + 1}.${i}`;
      if (spec.block === 'basic') {
        y = basicBlock(b, y, m, ch(PLANES[s]), stride);
      } else {
        const width = spec.cardinality ? ch(Math.floor((PLANES[s] * (spec.baseWidth ?? 64)) / 64) * spec.cardinality) : ch(PLANES[s]);
        y = bottleneck(b, y, m, width, ch(PLANES[s] * EXPANSION.bottleneck), stride, spec);
      }
    }
  });
  return b.flatten(b.globalAveragePool(y, 'avgpool'));
}

/** 3x3 -> 3x3, Add(branch, shortcut), Relu. */
function basicBlock(b: ModelBuilder, x: Value, m: string, planes: number, stride: number): Value {
  let y = b.convBnAct(x, { conv: `${m}.conv1`, bn: `${m}.bn1`, act: `${m}.relu` }, planes, 3, stride, 'Relu');
  y = b.convBnAct(y, { conv: `${m}.conv2`, bn: `${m}.bn2` }, planes, 3, 1, 'Relu', BRANCH_END_GAIN);
  // torchvision's forward calls self.relu twice; the exporter numbers the second call relu_1
  return b.activation(b.add(y, shortcut(b, x, m, planes, stride), m), `${m}.relu_1`, 'Relu');
}

/**
 * 1x1 reduce -> 3x3 (stride here: v1.5; grouped in ResNeXt) -> 1x1 expand [-> SE], Add(branch,
 * shortcut), Relu. The variants take timm's module names (act1..act3, se.fc1, downsample.1).
 */
function bottleneck(b: ModelBuilder, x: Value, m: string, width: number, out: number, stride: number, spec: ResNetSpec = RESNET50): Value {
  const timm = !!(spec.resnetD || spec.se || spec.cardinality);
  const act = (i: number, torchvision: string) => (timm ? `${m}.act${i}` : `${m}.${torchvision}`);
  let y = b.convBnAct(x, { conv: `${m}.conv1`, bn: `${m}.bn1`, act: act(1, 'relu') }, width, 1, 1, 'Relu');
  // the cardinality, or the largest group count below it that divides a reduced width
  let groups = spec.cardinality ?? 1;
  while (width % groups !== 0) groups--;
  y = b.convBnAct(y, { conv: `${m}.conv2`, bn: `${m}.bn2`, act: act(2, 'relu_1') }, width, 3, stride, 'Relu', 1, groups);
  y = b.convBnAct(y, { conv: `${m}.conv3`, bn: `${m}.bn3` }, out, 1, 1, 'Relu', BRANCH_END_GAIN);
  if (spec.se) y = squeezeExcitation(b, y, `${m}.se`, makeDivisible(out / 16));
  const sc = spec.resnetD ? avgDownShortcut(b, x, m, out, stride) : shortcut(b, x, m, out, stride);
  return b.activation(b.add(y, sc, m), act(3, 'relu_2'), 'Relu');
}

/** timm SEModule: x * Sigmoid(fc2(ReLU(fc1(x.mean((2, 3)))))), the FCs as 1x1 convs with bias. */
function squeezeExcitation(b: ModelBuilder, x: Value, m: string, reduced: number): Value {
  const s = b.activation(b.fcConv(b.reduceMean(x, m), `${m}.fc1`, reduced), `${m}.act`, 'Relu');
  return b.mul(x, b.pointwise(b.fcConv(s, `${m}.fc2`, b.channels(x)), `${m}.gate`, 'Sigmoid'), m);
}

/** timm's downsample_avg: AvgPool 2x2/2 (ceil, count_include_pad=False; Identity at stride 1), 1x1 conv, BN. */
function avgDownShortcut(b: ModelBuilder, x: Value, m: string, out: number, stride: number): Value {
  if (stride === 1 && b.channels(x) === out) return x;
  const pooled = stride > 1 ? b.avgPool(x, `${m}.downsample.0`, 2, stride, true, false) : x;
  return b.convBnAct(pooled, { conv: `${m}.downsample.1`, bn: `${m}.downsample.2` }, out, 1, 1, 'Relu');
}

/** Identity, or a projection (1x1 conv + BN, torchvision's `downsample`) where stride or width changes. */
function shortcut(b: ModelBuilder, x: Value, m: string, out: number, stride: number): Value {
  if (stride === 1 && b.channels(x) === out) return x;
  return b.convBnAct(x, { conv: `${m}.downsample.0`, bn: `${m}.downsample.1` }, out, 1, stride, 'Relu');
}
