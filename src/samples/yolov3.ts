/**
 * YOLOv3 and YOLOv3-tiny as Darknet's cfg files define them (pjreddie/darknet cfg/yolov3.cfg,
 * cfg/yolov3-tiny.cfg; Redmon and Farhadi 2018), without the [yolo] decode: the raw head convs
 * (3 x (classes + 5) channels per scale) are the graph outputs, as a detector exported for its own
 * post-processing has them.
 *
 *   Darknet-53 ── s32 ─ conv set ─ 3x3 ─ head (yolo_s32)
 *       │ s16           └ 1x1 ─ up x2 ─ concat ─ conv set ─ 3x3 ─ head (yolo_s16)
 *       └ s8                              └ 1x1 ─ up x2 ─ concat ─ conv set ─ 3x3 ─ head (yolo_s8)
 *
 * The conv set is the cfg's five [convolutional]: 1x1 M, 3x3 2M, 1x1 M, 3x3 2M, 1x1 M.
 */
import type { Value } from '../ir/graph';
import type { ModelBuilder } from './builder';
import { darknet53Features } from './darknet';

/** Anchors per scale in yolov3.cfg (mask = 6,7,8 / 3,4,5 / 0,1,2) and yolov3-tiny.cfg (3 / 3). */
const ANCHORS_PER_SCALE = 3;

type Ch = (c: number) => number;

function layer(b: ModelBuilder, x: Value, m: string, cout: number, k: number, stride = 1): Value {
  return b.convBnAct(x, { conv: `${m}.conv`, bn: `${m}.bn`, act: `${m}.leaky` }, cout, k, stride, 'LeakyRelu');
}

function convSet(b: ModelBuilder, x: Value, m: string, width: number): Value {
  let y = x;
  [1, 3, 1, 3, 1].forEach((k, i) => (y = layer(b, y, `${m}.${i}`, k === 1 ? width : width * 2, k)));
  return y;
}

/** YOLOv3 (416 in the cfg): the three raw head outputs yolo_s32, yolo_s16, yolo_s8. */
export function yolov3(b: ModelBuilder, x: Value, ch: Ch, classes: number): Value[] {
  const [, , s8, s16, s32] = darknet53Features(b, x, ch);
  const heads: Value[] = [];
  const out = ANCHORS_PER_SCALE * (classes + 5);
  let y = s32;
  const laterals = [s16, s8];
  [512, 256, 128].forEach((w, i) => {
    const set = convSet(b, y, `neck.set${i}`, ch(w));
    heads.push(b.convBias(layer(b, set, `head${i}.conv3x3`, ch(w * 2), 3), `head${i}.pred`, out, `yolo_s${32 >> i}`));
    if (i < 2) y = b.concat([b.upsample(layer(b, set, `neck.lateral${i}`, ch(w / 2), 1), `neck.up${i}`, 2), laterals[i]], `neck.route${i}`);
  });
  return heads;
}

/** YOLOv3-tiny (416 in the cfg): a MaxPool backbone, two scales, outputs yolo_s32 and yolo_s16. */
export function yolov3Tiny(b: ModelBuilder, x: Value, ch: Ch, classes: number): Value[] {
  let y = x;
  let s16: Value | undefined;
  [16, 32, 64, 128, 256, 512].forEach((c, i) => {
    y = layer(b, y, `backbone.${i}`, ch(c), 3);
    if (c === 256) s16 = y;
    // the sixth [maxpool] is size=2 stride=1: Darknet pads right/bottom; a 3x3/1 pad 1 pool keeps the size the same way
    y = i < 5 ? b.maxPool(y, `backbone.pool${i}`, 2, 2, 0, false) : b.maxPool(y, `backbone.pool${i}`, 3, 1, 1, false);
  });
  y = layer(b, y, 'backbone.6', ch(1024), 3);
  const out = ANCHORS_PER_SCALE * (classes + 5);
  const set = layer(b, y, 'neck.reduce', ch(256), 1);
  const h0 = b.convBias(layer(b, set, 'head0.conv3x3', ch(512), 3), 'head0.pred', out, 'yolo_s32');
  const up = b.concat([b.upsample(layer(b, set, 'neck.lateral0', ch(128), 1), 'neck.up0', 2), s16!], 'neck.route0');
  const h1 = b.convBias(layer(b, up, 'head1.conv3x3', ch(256), 3), 'head1.pred', out, 'yolo_s16');
  return [h0, h1];
}
