import * as path from 'node:path';
import { Args, Flags } from '@oclif/core';
import { loadRuleSet } from '../analysis/rules';
import { loadModel, saveModel } from '../onnx/io';
import { convert, ConvertTarget } from '../passes/convert';
import { formatConvertReport, validateConvertReport } from '../report/convert-report';
import { GptCommand, argError } from './base';
import { parseDims } from './inspect';

export default class Convert extends GptCommand {
  static override summary = 'Rewrite a plain CNN into a gradient-path architecture: PRN (masked residual), CSP or ELAN.';
  static override examples = [
    '<%= config.bin %> convert resnet50.onnx --to prn -o resnet50-prn.onnx',
    '<%= config.bin %> convert resnet50.onnx --to prn --ratio 0.25 --asymmetric -o out.onnx',
    '<%= config.bin %> convert darknet53.onnx --to prn --dry-run',
  ];
  static override args = { model: Args.string({ description: 'ONNX model file', required: true }) };
  static override flags = {
    to: Flags.string({ description: 'target architecture', options: ['prn', 'csp', 'elan'], required: true }),
    output: Flags.string({ char: 'o', description: 'output .onnx file (not needed with --dry-run)' }),
    ratio: Flags.string({ description: 'PRN: share of channels that receive the shortcut, in (0, 1]', default: '0.5' }),
    asymmetric: Flags.boolean({ description: 'PRN: drop stride-1 projection shortcuts that only widen; add the input into the first channels' }),
    'dry-run': Flags.boolean({ description: 'print the plan and the numbers; write nothing' }),
    strict: Flags.boolean({ description: 'fail when a block cannot be converted or a node matches no rule' }),
    json: Flags.boolean({ description: 'print the report as JSON (validated against the shipped schema)' }),
    rules: Flags.string({ description: 'extra rule file or folder (repeatable)', multiple: true }),
    dim: Flags.string({ description: 'value of a symbolic dimension for the cost model, NAME=N (default 1)', multiple: true }),
    'external-data': Flags.boolean({ description: 'write the weights to a sidecar file <output>.data' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Convert);
    if (!flags.output && !flags['dry-run']) throw argError('no output file', 'give -o OUT.onnx, or --dry-run to only see the plan');
    if (flags.output && path.resolve(flags.output) === path.resolve(args.model)) {
      throw argError(`the output path ${flags.output} is the input file`, 'write the result to a new file');
    }
    const ratio = Number(flags.ratio);
    if (!Number.isFinite(ratio) || !(ratio > 0 && ratio <= 1)) throw argError(`--ratio ${flags.ratio} is outside (0, 1]`, 'e.g. --ratio 0.5');
    const model = loadModel(args.model);
    const rules = flags.rules ? loadRuleSet(flags.rules) : undefined;
    const { model: out, report } = convert(model, {
      to: flags.to as ConvertTarget, ratio, asymmetric: flags.asymmetric, strict: flags.strict, rules, inPlace: true, dims: parseDims(flags.dim),
    });
    let written: string | undefined;
    if (!flags['dry-run']) {
      written = saveModel(out, flags.output!, { externalData: flags['external-data'] ? true : 'auto', overwriteSource: false }).path;
    }
    if (flags.json) {
      validateConvertReport(report);
      this.printJson({ ...report, output: undefined });
    } else {
      process.stdout.write(formatConvertReport(report, { dryRun: flags['dry-run'], output: written }) + '\n');
    }
    for (const w of report.warnings) if (flags.json) process.stderr.write(`gpt: warning: ${w}\n`);
  }
}
