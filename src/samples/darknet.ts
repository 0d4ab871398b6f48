/**
 * Darknet-53 (YOLOv3 paper, Redmon & Farhadi 2018, Table 1): a 3x3 stem of 32, then five stages,
 * each a 3x3 stride-2 conv that doubles the width followed by 1, 2, 8, 8, 4 residual blocks
 * (1x1 C -> C/2, 3x3 C/2 -> C). Every conv is conv + BN + LeakyRelu(0.1); the residual Add has no
 * activation after it. Module paths: one flat `features` Sequential, as the fixture's exporter saw.
 */
import type { Value } from '../ir/graph';
import type { ModelBuilder } from './builder';

const STAGE_WIDTHS = [64, 128, 256, 512, 1024];
const STAGE_BLOCKS = [1, 2, 8, 8, 4];
/** BN gain at the end of each residual branch (see ModelBuilder.batchNorm). */
const BRANCH_END_GAIN = 0.2;

export function darknet53(b: ModelBuilder, x: Value, ch: (c: number) => number): Value {
  return b.flatten(b.globalAveragePool(darknet53Features(b, x, ch).at(-1)!, 'pool'));
}

/** Darknet-53 without its classifier: the outputs of its five stages (strides 2 ... 32). */
export function darknet53Features(b: ModelBuilder, x: Value, ch: (c: number) => number): Value[] {
  const taps: Value[] = [];
  let idx = 0;
  const convLayer = (y: Value, m: string, cout: number, k: number, stride: number, gain = 1) =>
    b.convBnAct(y, { conv: `${m}.0`, bn: `${m}.1`, act: `${m}.2` }, cout, k, stride, 'LeakyRelu', gain);

  let y = convLayer(x, `features.${idx++}`, ch(32), 3, 1);
  STAGE_WIDTHS.forEach((c, s) => {
    y = convLayer(y, `features.${idx++}`, ch(c), 3, 2);
    for (let i = 0; i < STAGE_BLOCKS[s]; i++) {
      const m = `features.${idx++}`;
      const branch = convLayer(convLayer(y, `${m}.b1`, ch(c / 2), 1, 1), `${m}.b2`, ch(c), 3, 1, BRANCH_END_GAIN);
      y = b.add(y, branch, m); // Add(shortcut, branch): the exporter's operand order for `x + self.b2(self.b1(x))`
    }
    taps.push(y);
  });
  return taps;
}
