import { Args, Flags } from '@oclif/core';
import * as path from 'node:path';
import { GptCommand, withFile } from '../cli/base';
import { exportPytorch, writePytorchExport } from '../export/pytorch';
import { assertValid } from '../ir/validate';
import { loadModel } from '../onnx/io';
import { escapeText } from '../report/escape';

export default class Export extends GptCommand {
  static override summary = 'Export a model to PyTorch: DIR/model.py (an nn.Module, torch only) and DIR/model.safetensors.';
  static override examples = [
    '<%= config.bin %> export darknet53-csp.onnx --to pytorch -o darknet53-csp',
    '<%= config.bin %> export resnet50.onnx --to pytorch -o resnet50-torch --bn keep',
  ];
  static override args = { model: Args.string({ description: 'ONNX model file', required: true }) };
  static override flags = {
    to: Flags.string({ description: 'target framework', options: ['pytorch'], default: 'pytorch' }),
    output: Flags.string({ char: 'o', description: 'output folder (created if missing)', required: true }),
    bn: Flags.string({ description: 'unfold: BatchNorm2d back after each conv the export folded one into (output unchanged); keep: as the ONNX has it', options: ['unfold', 'keep'], default: 'unfold' }),
    'prn-parts': Flags.string({ description: "PRN's parts form (convert --to prn, emit parts): whole writes the architecture it computes, one layer per layer on whole tensors; keep writes the partial convs as they are", options: ['whole', 'keep'], default: 'whole' }),
    json: Flags.boolean({ description: 'print what was written as JSON' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Export);
    // full-size models: loading 1, translating 1, writing the weights 2
    const progress = this.progress([1, 1, 2], flags.json);
    let result: ReturnType<typeof exportPytorch>;
    let files: ReturnType<typeof writePytorchExport>;
    try {
      progress.next(`loading ${args.model}`);
      const model = loadModel(args.model);
      assertValid(model.graph, args.model);
      progress.next('translating to PyTorch');
      result = withFile(args.model, () => exportPytorch(model, { bn: flags.bn as 'unfold' | 'keep', prnParts: flags['prn-parts'] as 'whole' | 'keep' }));
      progress.next(`writing ${flags.output}`);
      files = writePytorchExport(result, flags.output);
    } finally {
      progress.done();
    }
    const summary = { files, modules: result.modules, ops: result.ops, unfolded: result.unfolded.length, notes: result.notes };
    if (flags.json) {
      this.printJson(summary);
      return;
    }
    const mods = Object.entries(result.modules).map(([k, v]) => `${v} ${k}`).join(', ');
    const lines = [
      `wrote ${files.map((f) => escapeText(f)).join(', ')}`,
      `modules: ${mods || 'none'}; ${result.unfolded.length} BatchNorm layers unfolded from the convs`,
      ...result.notes.map((n) => `note: ${escapeText(n)}`),
      `use: import sys; sys.path.insert(0, ${JSON.stringify(path.resolve(flags.output))}); from model import Net; net = Net.load(${JSON.stringify(path.resolve(flags.output))})`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  }
}
