/**
 * Sample models: the plain CNNs the gradient-path papers start from (ResNet, Darknet-53, VoVNet),
 * built in memory with seeded random weights, in the same form torch.onnx.export writes. They give
 * the toolkit real-sized inputs without downloading a model.
 */
import { GptError } from '../errors';
import type { Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { ModelBuilder } from './builder';
import { darknet53 } from './darknet';
import { RESNET18, RESNET50, RESNET50D, RESNEXT50, SERESNET50, resnet } from './resnet';
import { yolov3, yolov3Tiny } from './yolov3';
import { VOVNET39, VOVNET39_ESE, VOVNET57, VOVNET_MODULE_LISTS, vovnet } from './vovnet';

export { ModelBuilder, torchScope } from './builder';
export { Rng } from './random';

/** The plain architectures the gradient-path papers start from. */
export const PLAIN_SAMPLE_NAMES = ['resnet18', 'resnet50', 'vovnet39', 'vovnet57', 'darknet53'] as const;
/** The variants users bring from timm: ResNet-D, SE-ResNet, ResNeXt, VoVNetV2 with eSE. */
export const VARIANT_SAMPLE_NAMES = ['resnet50d', 'seresnet50', 'resnext50', 'vovnet39-ese'] as const;
export const SAMPLE_NAMES = [...PLAIN_SAMPLE_NAMES, ...VARIANT_SAMPLE_NAMES] as const;
export type PlainSampleName = (typeof PLAIN_SAMPLE_NAMES)[number];
export type SampleName = (typeof SAMPLE_NAMES)[number];
/** Detectors (Darknet cfgs): no classifier, the raw head convs are the outputs; classes default 80 (COCO). */
export const DETECTOR_SAMPLE_NAMES = ['yolov3', 'yolov3-tiny'] as const;
export type DetectorSampleName = (typeof DETECTOR_SAMPLE_NAMES)[number];
export const ALL_SAMPLE_NAMES = [...SAMPLE_NAMES, ...DETECTOR_SAMPLE_NAMES] as const;

export interface SampleOptions {
  /** Channel multiplier applied to every channel count (rounded, at least 1); default 1. */
  width?: number;
  /** Input height and width; default 224 (darknet53: 256, as in the YOLOv3 paper). */
  resolution?: number;
  /** Output classes; default 1000. */
  classes?: number;
  /** Weight seed; default 0. The same seed gives the same bytes. */
  seed?: number;
  /** Batch dimension: a number, or a string for a symbolic dim; default 1. */
  batch?: number | string;
}

type Body = (b: ModelBuilder, x: Value, ch: (c: number) => number) => Value;
type DetectorBody = (b: ModelBuilder, x: Value, ch: (c: number) => number, classes: number) => Value[];

interface SampleSpec {
  body?: Body;
  detector?: DetectorBody;
  resolution: number;
  /**
   * Smallest input the downsampling allows: all of these reduce by 32; VoVNet's unpadded
   * 3x3/2 ceil-mode pools also need a 3-pixel input at each of their three places.
   */
  minResolution: number;
  /** nn.ModuleList attribute names, for export-style scopes (see torchScope). */
  moduleLists?: string[];
}

const SPECS: Record<SampleName, SampleSpec> = {
  resnet18: { body: (b, x, ch) => resnet(b, x, RESNET18, ch), resolution: 224, minResolution: 32 },
  resnet50: { body: (b, x, ch) => resnet(b, x, RESNET50, ch), resolution: 224, minResolution: 32 },
  vovnet39: { body: (b, x, ch) => vovnet(b, x, VOVNET39, ch), resolution: 224, minResolution: 45, moduleLists: VOVNET_MODULE_LISTS },
  vovnet57: { body: (b, x, ch) => vovnet(b, x, VOVNET57, ch), resolution: 224, minResolution: 45, moduleLists: VOVNET_MODULE_LISTS },
  darknet53: { body: darknet53, resolution: 256, minResolution: 32 },
  resnet50d: { body: (b, x, ch) => resnet(b, x, RESNET50D, ch), resolution: 224, minResolution: 32 },
  seresnet50: { body: (b, x, ch) => resnet(b, x, SERESNET50, ch), resolution: 224, minResolution: 32 },
  resnext50: { body: (b, x, ch) => resnet(b, x, RESNEXT50, ch), resolution: 224, minResolution: 32 },
  'vovnet39-ese': { body: (b, x, ch) => vovnet(b, x, VOVNET39_ESE, ch), resolution: 224, minResolution: 45, moduleLists: VOVNET_MODULE_LISTS },
};
const DETECTOR_SPECS: Record<DetectorSampleName, SampleSpec> = {
  yolov3: { detector: yolov3, resolution: 416, minResolution: 32 },
  'yolov3-tiny': { detector: yolov3Tiny, resolution: 416, minResolution: 32 },
};

function badOption(option: string, message: string, hint: string): GptError {
  return new GptError('E_ARG', message, { subject: option, hint });
}

/** Build a sample model. Throws E_ARG naming the option for a bad name, width, resolution, classes, seed or batch. */
export function buildSample(name: SampleName | DetectorSampleName, opts: SampleOptions = {}): Model {
  const spec = ({ ...SPECS, ...DETECTOR_SPECS } as Record<string, SampleSpec | undefined>)[name];
  if (!spec) throw badOption('name', `unknown sample '${name}'`, `choose one of ${ALL_SAMPLE_NAMES.join(', ')}`);
  const width = opts.width ?? 1;
  const resolution = opts.resolution ?? spec.resolution;
  const classes = opts.classes ?? (spec.detector ? 80 : 1000);
  const seed = opts.seed ?? 0;
  const batch = opts.batch ?? 1;
  if (!(Number.isFinite(width) && width > 0)) throw badOption('width', `width must be a number above 0, got ${width}`, 'e.g. 1 (published widths) or 0.25');
  if (!Number.isInteger(resolution) || resolution < spec.minResolution) {
    throw badOption('resolution', `resolution ${resolution} is too small for ${name}`, `use an integer of at least ${spec.minResolution}`);
  }
  if (!Number.isInteger(classes) || classes < 1) throw badOption('classes', `classes must be an integer of at least 1, got ${classes}`, 'e.g. 1000');
  if (!Number.isInteger(seed)) throw badOption('seed', `seed must be an integer, got ${seed}`, 'e.g. 0');
  // a dim name is an identifier: '-1', '2.5' or '' are a mistyped number, not a symbolic batch
  if (typeof batch === 'number' ? !(Number.isInteger(batch) && batch >= 1) : !/^[A-Za-z_][A-Za-z0-9_]*$/.test(batch)) {
    throw badOption('batch', `batch must be a positive integer or a dim name, got '${batch}'`, "e.g. 1, or 'N' for a dynamic batch");
  }

  const ch = (c: number) => Math.max(1, Math.round(c * width));
  const b = new ModelBuilder({ seed, batch, moduleLists: spec.moduleLists });
  const x = b.input('input', 3, resolution, resolution);
  const doc = `gpt sample ${name}: width ${width}, resolution ${resolution}, ${classes} classes, seed ${seed}`;
  if (spec.detector) return b.finish(spec.detector(b, x, ch, classes), name, doc);
  const logits = b.gemm(spec.body!(b, x, ch), 'fc', classes, 'logits');
  return b.finish(logits, name, `gpt sample ${name}: width ${width}, resolution ${resolution}, ${classes} classes, seed ${seed}`);
}
