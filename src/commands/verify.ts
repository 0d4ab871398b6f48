import { Args, Flags } from '@oclif/core';
import { GptError } from '../errors';
import { readNpy, NpyArray } from '../onnx/npy';
import { escapeStrings } from '../report/escape';
import { formatVerifyReport } from '../report/verify-report';
import { verify, validateVerifyReport, VerifyReport } from '../verify';
import { GptCommand, argError, parseIntRange } from '../cli/base';

export default class Verify extends GptCommand {
  static override summary = 'Run a source model and its conversion on the same inputs and compare every output: PRN must be exact, CSP / ELAN show how far the untrained conversion is.';
  static override examples = [
    '<%= config.bin %> verify resnet50.onnx resnet50-prn.onnx',
    '<%= config.bin %> verify darknet53.onnx dk-csp.onnx --json',
    '<%= config.bin %> verify yolov3.onnx yolov3-prn.onnx --inputs images.npy',
  ];
  static override args = {
    source: Args.string({ description: 'the model before conversion', required: true }),
    converted: Args.string({ description: 'the converted model', required: true }),
  };
  static override flags = {
    inputs: Flags.string({ description: 'float32 .npy input: FILE (the first input) or NAME=FILE; repeatable', multiple: true }),
    seed: Flags.string({ description: 'seed of the generated inputs, 0 to 2^31-1 (default 1)' }),
    json: Flags.boolean({ description: 'print the report as JSON (validated against the shipped schema)' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Verify);
    const seed = parseIntRange(flags.seed, '--seed', 0, 2 ** 31 - 1, 'e.g. --seed 1');
    const progress = this.progress([1], flags.json);
    let report: VerifyReport;
    try {
      progress.next('verify');
      report = await verifyFiles(args.source, args.converted, flags.inputs, seed, (f, what) => progress.within(f, what));
    } finally {
      progress.done();
    }
    if (flags.json) {
      validateVerifyReport(report);
      this.printJson(report);
    } else {
      process.stdout.write(formatVerifyReport(escapeStrings(report)) + '\n');
    }
    if (!report.passed) throw verifyFailure(report);
  }
}

/** --inputs values as arrays by input name ('' for "the first input"). */
export function parseInputsFlag(list: string[] | undefined): Record<string, NpyArray> {
  const out: Record<string, NpyArray> = {};
  for (const item of list ?? []) {
    const m = /^([^=]+)=(.+)$/.exec(item);
    const [name, file] = m && !m[1].includes('/') && !m[1].endsWith('.npy') ? [m[1], m[2]] : ['', item];
    if (Object.hasOwn(out, name)) throw argError(`--inputs: ${name || 'the first input'} given twice`);
    out[name] = readNpy(file);
  }
  return out;
}

export async function verifyFiles(source: string, converted: string, inputs: string[] | undefined, seed?: number, onProgress?: (fraction: number, what: string) => void): Promise<VerifyReport> {
  const given = parseInputsFlag(inputs);
  if (Object.hasOwn(given, '')) {
    // the first input of the source, by name
    const { loadModel } = await import('../onnx/io');
    const first = loadModel(source).graph.inputs.find((v) => !v.tensor)?.name;
    if (!first) throw new GptError('E_ARG', 'the source has no input to feed', { subject: source });
    if (Object.hasOwn(given, first)) throw argError(`--inputs: ${first} given twice`);
    given[first] = given[''];
    delete given[''];
  }
  return verify(source, converted, { inputs: given, seed, onProgress });
}

export function verifyFailure(r: VerifyReport): GptError {
  const bad = r.outputs.filter((o) => !o.withinTolerance);
  const worst = bad[0];
  return new GptError('E_VERIFY', worst
    ? `not exact: output '${worst.name}' differs by ${worst.maxAbsDiff} (tolerance ${worst.tolerance.toExponential(2)})${bad.length > 1 ? ` and ${bad.length - 1} more output(s)` : ''}`
    : `not exact: source output(s) missing from the conversion: ${r.unmatched.source.join(', ')}`, {
    subject: r.converted, hint: 'the PRN conversion must keep the masked residual exact; report this with the model',
  });
}
