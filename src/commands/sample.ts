import { Args, Flags } from '@oclif/core';
import { SAMPLE_NAMES, buildSample } from '../samples';
import { saveModel } from '../onnx/io';
import { GptCommand, argError, parseDecimal } from '../cli/base';

export default class Sample extends GptCommand {
  static override summary = 'Build a plain sample model (ResNet-18/50, VoVNet-39/57, Darknet-53) with seeded weights.';
  static override examples = [
    '<%= config.bin %> sample darknet53 -o darknet53.onnx',
    '<%= config.bin %> sample resnet50 -o r50.onnx --width 0.25 --resolution 64 --classes 10',
  ];
  static override args = { name: Args.string({ description: `one of ${SAMPLE_NAMES.join(', ')}`, required: true }) };
  static override flags = {
    output: Flags.string({ char: 'o', description: 'output .onnx file', required: true }),
    width: Flags.string({ description: 'channel width multiplier (default 1)' }),
    resolution: Flags.integer({ description: 'input height and width (default 224; darknet53 256)' }),
    classes: Flags.integer({ description: 'number of classes (default 1000)' }),
    seed: Flags.integer({ description: 'weight seed (default 0)' }),
    batch: Flags.string({ description: 'batch dimension: a number, or a name for a symbolic batch (default 1)' }),
    'external-data': Flags.boolean({ description: 'write the weights to a sidecar file <output>.data' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Sample);
    if (!(SAMPLE_NAMES as readonly string[]).includes(args.name)) {
      throw argError(`unknown sample '${args.name}'`, `choose one of ${SAMPLE_NAMES.join(', ')}`);
    }
    const width = flags.width === undefined ? undefined : parseDecimal(flags.width, '--width', 'e.g. --width 0.25');
    if (width !== undefined && !(width > 0)) throw argError(`--width ${flags.width}: expected a number > 0`);
    const batch = flags.batch === undefined ? undefined : /^\d+$/.test(flags.batch) ? Number(flags.batch) : flags.batch;
    const model = buildSample(args.name as (typeof SAMPLE_NAMES)[number], {
      width, resolution: flags.resolution, classes: flags.classes, seed: flags.seed, batch,
    });
    const r = saveModel(model, flags.output, { externalData: flags['external-data'] ? true : 'auto' });
    process.stdout.write(`wrote ${r.path} (${(r.bytes / 2 ** 20).toFixed(1)} MiB${r.externalPath ? ` + ${(r.externalBytes! / 2 ** 20).toFixed(1)} MiB in ${r.externalPath}` : ''})\n`);
  }
}
