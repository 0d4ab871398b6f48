import { Args, Flags } from '@oclif/core';
import { ALL_SAMPLE_NAMES, DETECTOR_SAMPLE_NAMES, buildSample } from '../samples';
import { saveModel } from '../onnx/io';
import { GptCommand, argError, parseDecimalRange, parseIntRange } from '../cli/base';
import { escapeText } from '../report/escape';
import { envelope } from '../report/envelope';
import { SampleReport, validateSampleReport } from '../report/command-reports';
import { bytes } from '../report/format';

export default class Sample extends GptCommand {
  static override summary = 'Build a plain sample model (ResNet-18/50, VoVNet-39/57, Darknet-53; detectors YOLOv3, YOLOv3-tiny) with seeded weights.';
  static override examples = [
    '<%= config.bin %> sample darknet53 -o darknet53.onnx',
    '<%= config.bin %> sample yolov3 -o yolov3.onnx',
    '<%= config.bin %> sample resnet50 -o r50.onnx --width 0.25 --resolution 64 --classes 10',
  ];
  static override args = { name: Args.string({ description: `the sample to build: ${ALL_SAMPLE_NAMES.join(', ')}`, required: true }) };
  static override flags = {
    output: Flags.string({ char: 'o', description: 'output .onnx file', required: true }),
    width: Flags.string({ description: 'channel width multiplier, in (0, 4]', default: '1' }),
    resolution: Flags.string({ description: 'input height and width, 32 to 1024 (vovnet: 45 to 1024; default 224; darknet53 256; yolov3 416)' }),
    classes: Flags.string({ description: 'number of classes, 1 to 100000 (detectors yolov3, yolov3-tiny: 80, COCO, unless given)', default: '1000' }),
    seed: Flags.string({ description: 'weight seed, 0 to 2147483647', default: '0' }),
    batch: Flags.string({ description: 'batch dimension: a number from 1 to 4096, or a name for a symbolic batch', default: '1' }),
    'external-data': Flags.boolean({ description: 'write the weights to a sidecar file <output>.data' }),
    json: Flags.boolean({ description: 'print what was written as JSON' }),
  };

  async run(): Promise<void> {
    const { args, flags, metadata } = await this.parse(Sample);
    if (!(ALL_SAMPLE_NAMES as readonly string[]).includes(args.name)) {
      throw argError(`unknown sample '${escapeText(args.name)}'`, `choose one of ${ALL_SAMPLE_NAMES.join(', ')}`);
    }
    const width = parseDecimalRange(flags.width, '--width', 0, 4, { min: true }, 'e.g. --width 0.25');
    const resolution = parseIntRange(flags.resolution, '--resolution', 1, 1024, 'e.g. --resolution 224');
    // a detector's default is COCO's 80 classes: the flag's default 1000 is a classifier's
    const detectorDefault = (DETECTOR_SAMPLE_NAMES as readonly string[]).includes(args.name) && metadata.flags.classes?.setFromDefault;
    const classes = detectorDefault ? undefined : parseIntRange(flags.classes, '--classes', 1, 100_000, 'e.g. --classes 1000');
    const seed = parseIntRange(flags.seed, '--seed', 0, 2 ** 31 - 1, 'e.g. --seed 0');
    const batch = flags.batch === undefined ? undefined : /^\d+$/.test(flags.batch) ? parseIntRange(flags.batch, '--batch', 1, 4096) : flags.batch;
    // building (seeded weights) takes about four times as long as writing them
    const progress = this.progress([4, 1], !!flags.json);
    let r: ReturnType<typeof saveModel>;
    try {
      progress.next(`building ${args.name}`);
      const model = buildSample(args.name as (typeof ALL_SAMPLE_NAMES)[number], { width, resolution, classes, seed, batch });
      progress.next(`writing ${flags.output}`);
      r = saveModel(model, flags.output, { externalData: flags['external-data'] ? true : 'auto' });
    } finally {
      progress.done();
    }
    const report: SampleReport = {
      ...envelope('sample'), name: args.name, file: r.path, bytes: r.bytes, externalFile: r.externalPath ?? null, externalBytes: r.externalBytes ?? null,
    };
    if (flags.json) {
      validateSampleReport(report);
      return this.printJson(report);
    }
    process.stdout.write(`wrote ${escapeText(r.path)} (${bytes(r.bytes)}${r.externalPath ? ` + ${bytes(r.externalBytes!)} in ${escapeText(r.externalPath)}` : ''})\n`);
  }
}
