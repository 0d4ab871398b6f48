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
}

export const RESNET18: ResNetSpec = { block: 'basic', depths: [2, 2, 2, 2] };
export const RESNET50: ResNetSpec = { block: 'bottleneck', depths: [3, 4, 6, 3] };

const PLANES = [64, 128, 256, 512];
const EXPANSION = { basic: 1, bottleneck: 4 };
/** BN gain at the end of each residual branch (see ModelBuilder.batchNorm). */
const BRANCH_END_GAIN = 0.2;

/** Builds the network from `x` to the pooled, flattened features; returns them. */
export function resnet(b: ModelBuilder, x: Value, spec: ResNetSpec, ch: (c: number) => number): Value {
  let y = b.convBnAct(x, { conv: 'conv1', bn: 'bn1', act: 'relu' }, ch(64), 7, 2, 'Relu');
  y = b.maxPool(y, 'maxpool', 3, 2, 1, false);
  spec.depths.forEach((n, s) => {
    for (let i = 0; i < n; i++) {
      const stride = s > 0 && i === 0 ? 2 : 1;
      const m = `layer${s + 1}.${i}`;
      y = spec.block === 'basic' ? basicBlock(b, y, m, ch(PLANES[s]), stride) : bottleneck(b, y, m, ch(PLANES[s]), ch(PLANES[s] * EXPANSION.bottleneck), stride);
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

/** 1x1 reduce -> 3x3 (stride here: v1.5) -> 1x1 expand, Add(branch, shortcut), Relu. */
function bottleneck(b: ModelBuilder, x: Value, m: string, width: number, out: number, stride: number): Value {
  let y = b.convBnAct(x, { conv: `${m}.conv1`, bn: `${m}.bn1`, act: `${m}.relu` }, width, 1, 1, 'Relu');
  y = b.convBnAct(y, { conv: `${m}.conv2`, bn: `${m}.bn2`, act: `${m}.relu_1` }, width, 3, stride, 'Relu');
  y = b.convBnAct(y, { conv: `${m}.conv3`, bn: `${m}.bn3` }, out, 1, 1, 'Relu', BRANCH_END_GAIN);
  return b.activation(b.add(y, shortcut(b, x, m, out, stride), m), `${m}.relu_2`, 'Relu');
}

/** Identity, or a projection (1x1 conv + BN, torchvision's `downsample`) where stride or width changes. */
function shortcut(b: ModelBuilder, x: Value, m: string, out: number, stride: number): Value {
  if (stride === 1 && b.channels(x) === out) return x;
  return b.convBnAct(x, { conv: `${m}.downsample.0`, bn: `${m}.downsample.1` }, out, 1, stride, 'Relu');
}
