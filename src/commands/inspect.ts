import { Args, Flags } from '@oclif/core';
import { inspect, formatInspect, validateInspectReport } from '../analysis/inspect';
import { assertValid } from '../ir/validate';
import { loadModel } from '../onnx/io';
import { GptCommand, checkDimNames, commonFlags, parseDims, withFile } from '../cli/base';
import { escapeStrings } from '../report/escape';

export default class Inspect extends GptCommand {
  static override summary = 'Show a model: IR, opset, producer, inputs/outputs, op histogram, params, MACs, peak activation memory.';
  static override examples = ['<%= config.bin %> inspect model.onnx', '<%= config.bin %> inspect model.onnx --json', '<%= config.bin %> inspect model.onnx --dim batch=8'];
  static override args = { model: Args.string({ description: 'ONNX model file', required: true }) };
  static override flags = {
    json: Flags.boolean({ description: 'print the report as JSON (validated against the shipped schema)' }),
    dim: commonFlags.dim,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Inspect);
    const model = loadModel(args.model);
    assertValid(model.graph, args.model);
    const dims = parseDims(flags.dim);
    checkDimNames(dims, [{ model, file: args.model }]);
    const report = withFile(args.model, () => inspect(model, { dims }));
    if (flags.json) {
      validateInspectReport(report);
      this.printJson(report);
    } else {
      process.stdout.write(formatInspect(escapeStrings(report)) + '\n');
    }
  }
}
