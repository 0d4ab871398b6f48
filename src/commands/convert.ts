import * as path from 'node:path';
import { Args, Flags } from '@oclif/core';
import { chartSeries, gradientPathChart } from '../analysis/chart';
import { gradientPaths } from '../analysis/gradient-path';
import { recognize } from '../analysis/structure';
import { loadRuleSet } from '../analysis/rules';
import { checkOutputPath, loadModel, modelInputFiles, saveModel, writeFileAtomic } from '../onnx/io';
import { checkOutputs } from '../onnx/files';
import { escapeStrings, escapeText } from '../report/escape';
import { aggregateWarnings } from '../report/warnings';
import { convert, ConvertOptions, stageSpecs } from '../passes/convert';
import type { Fusion, MergeOp, Parts, PrnEmit, SplitOp } from '../passes/options';
import { formatConvertReport, validateConvertReport } from '../report/convert-report';
import type { ConvertReport } from '../passes/convert';
import { formatVerifyReport } from '../report/verify-report';
import { validateVerifyReport, VerifyReport } from '../verify';
import { verifyFiles, verifyFailure } from './verify';
import { GptCommand, argError, checkDimNames, commonFlags, parseDecimalRange, parseDims, parseIntRange, ruleInputFiles, withFile } from '../cli/base';

export default class Convert extends GptCommand {
  static override summary = 'Rewrite a plain CNN into a gradient-path architecture: PRN (masked residual), CSP or ELAN.';
  static override examples = [
    '<%= config.bin %> convert resnet50.onnx --to prn -o resnet50-prn.onnx',
    '<%= config.bin %> convert resnet50.onnx --to prn --ratio 0.25 --asymmetric -o out.onnx',
    '<%= config.bin %> convert darknet53.onnx --to prn --dry-run',
    '<%= config.bin %> convert darknet53.onnx --to csp --split 0.5 --fusion both -o darknet53-csp.onnx',
    '<%= config.bin %> convert vovnet57.onnx --to elan -o vovnet57-elan.onnx --chart paths.svg',
    '<%= config.bin %> convert darknet53.onnx --to elan --stack 2 --width 0.5 --csp -o darknet53-elan.onnx',
    '<%= config.bin %> convert yolov3.onnx --to elan --stack 2,1 -o yolov3-elan.onnx',
    '<%= config.bin %> convert yolov3.onnx --to csp --parts neck -o yolov3-csp-neck.onnx',
  ];
  static override args = { model: Args.string({ description: 'ONNX model file', required: true }) };
  static override flags = {
    to: Flags.string({ description: 'target architecture', options: ['prn', 'csp', 'elan'], required: true }),
    output: Flags.string({ char: 'o', description: 'output .onnx file (not needed with --dry-run)' }),
    ratio: Flags.string({ description: 'PRN: share of channels that receive the shortcut, in (0, 1]', default: '0.5' }),
    asymmetric: Flags.boolean({ description: 'PRN: drop stride-1 projection shortcuts that only widen; add the input into the first channels' }),
    emit: Flags.string({ description: 'PRN: how the masked residual is written, the same numbers either way (split: Split + Add + Concat; mask: shortcut x constant 0/1 channel mask, then Add; parts: each block output carried as two tensors, no mask multiplication)', options: ['split', 'mask', 'parts'], default: 'parts' }),
    split: Flags.string({ description: 'CSP: share of each stage\'s channels that go through its blocks (part 1), in (0, 1)', default: '0.5' }),
    fusion: Flags.string({ description: 'CSP: where the 1x1 transitions go (both: CSPNet\'s own; first: after the concat; last: on part 1 only); default both, or last / first where both would make the model larger', options: ['both', 'first', 'last'] }),
    'split-op': Flags.string({ description: 'CSP: how the stage input is split (slice: a zero-parameter Split; conv: two 1x1 convs; producer: the layers that make the input written once per part, their filters divided, no Split and no new weights, where they are convs + per-channel ops / Adds, else slice); default producer', options: ['slice', 'conv', 'producer'] }),
    'merge-op': Flags.string({ description: 'CSP: how part 1 and part 2 meet before the transition after them, the same numbers either way (concat: a Concat, then the 1x1 transition; sum: the transition split into one 1x1 conv per part, outputs added, no Concat); default concat; fusion last always ends in a Concat', options: ['concat', 'sum'] }),
    stack: Flags.string({ description: 'ELAN: pairs of 3x3 convs in a stacked computational block (2 x N convs), a whole number from 1 to 16; a detector may take backbone,neck (e.g. 2,1); default 2, or, with --width not given either, per neck block and CSP-form stage the first setting that does not grow it', default: '2' }),
    parts: Flags.string({ description: 'CSP / ELAN on a detector: which parts to convert', options: ['backbone', 'neck', 'all'], default: 'all' }),
    width: Flags.string({ description: 'ELAN: computational-block width as a share of the replaced blocks\' computational width (their 3x3 convs\' width: the bottleneck width in a bottleneck), in (0, 1]', default: '0.5' }),
    csp: Flags.boolean({ description: 'ELAN: also apply the CSP split (--split, --fusion, --split-op, --merge-op) to the converted stages' }),
    'osa-input': Flags.string({ description: 'ELAN on VoVNet: what the next OSA module\'s first conv reads once a transition is removed (concat: the whole concatenation; last: the previous module\'s last layer); default concat, or last in a stage that concat would make larger', options: ['concat', 'last'] }),
    chart: Flags.string({ description: 'write an SVG chart of the shortest and longest gradient path per weight layer, before and after' }),
    'dry-run': Flags.boolean({ description: 'print the plan and the numbers; write nothing' }),
    strict: Flags.boolean({ description: 'fail when a block cannot be converted or a node matches no rule' }),
    json: Flags.boolean({ description: 'print the report as JSON (validated against the shipped schema)' }),
    rules: commonFlags.rules,
    dim: commonFlags.dim,
    'external-data': Flags.boolean({ description: 'write the weights to a sidecar file <output>.data' }),
    verify: Flags.boolean({ description: 'run the source and the written model on the same seeded inputs and compare every output (as gpt verify): PRN must be exact' }),
  };

  async run(): Promise<void> {
    const { args, flags, metadata } = await this.parse(Convert);
    if (!flags.output && !flags['dry-run']) throw argError('no output file', 'give -o OUT.onnx, or --dry-run to only see the plan');
    // an option of another target would be ignored without a word: say so instead
    const given = (f: string) => !!(flags as Record<string, unknown>)[f] && !metadata.flags[f]?.setFromDefault;
    const applies: Record<string, boolean> = {
      ratio: flags.to === 'prn', asymmetric: flags.to === 'prn', emit: flags.to === 'prn',
      split: flags.to === 'csp' || (flags.to === 'elan' && flags.csp), fusion: flags.to === 'csp' || (flags.to === 'elan' && flags.csp),
      'split-op': flags.to === 'csp' || (flags.to === 'elan' && flags.csp),
      'merge-op': flags.to === 'csp' || (flags.to === 'elan' && flags.csp),
      stack: flags.to === 'elan', width: flags.to === 'elan', csp: flags.to === 'elan', 'osa-input': flags.to === 'elan', parts: flags.to !== 'prn',
    };
    for (const [f, ok] of Object.entries(applies)) {
      if (!ok && given(f)) {
        const whom = f === 'parts' ? '--to csp or --to elan' : ['split', 'fusion', 'split-op', 'merge-op'].includes(f) ? '--to csp (or --to elan --csp)' : `--to ${['ratio', 'asymmetric', 'emit'].includes(f) ? 'prn' : 'elan'}`;
        throw argError(`--${f} does not apply to --to ${flags.to}${flags.to === 'elan' ? ' without --csp' : ''}`, `it is an option of ${whom}; leave it out`);
      }
    }
    // each target gets its own options (the library refuses another target's: "option 'ratio' does
    // not apply to target 'csp'"; the check above says the same in the CLI's words)
    const dims = parseDims(flags.dim);
    const common = { strict: flags.strict, inPlace: true, dims };
    const cspSplit = () => {
      const split = parseDecimalRange(flags.split, '--split', 0, 1, { min: true, max: true }, 'e.g. --split 0.5')!;
      return { split, fusion: flags.fusion as Fusion, ...(flags['split-op'] ? { splitOp: flags['split-op'] as SplitOp } : {}), ...(flags['merge-op'] ? { mergeOp: flags['merge-op'] as MergeOp } : {}) };
    };
    let options: ConvertOptions;
    if (flags.to === 'prn') {
      const ratio = parseDecimalRange(flags.ratio, '--ratio', 0, 1, { min: true }, 'e.g. --ratio 0.5')!;
      options = { to: 'prn', ratio, asymmetric: flags.asymmetric, emit: flags.emit as PrnEmit, ...common };
    } else if (flags.to === 'csp') {
      options = { to: 'csp', ...cspSplit(), parts: flags.parts as Parts, ...common };
    } else {
      // --stack 2,1: backbone 2, neck 1 (the paper's "2, 1s")
      const [backboneStack, neckStackText, ...extra] = flags.stack.split(',');
      if (extra.length) throw argError(`--stack ${flags.stack} has more than two values`, 'give one value, or backbone,neck such as 2,1');
      const stack = parseIntRange(backboneStack, '--stack', 1, 16, 'e.g. --stack 2')!;
      const neckStack = neckStackText === undefined ? undefined : parseIntRange(neckStackText, '--stack (neck)', 1, 16, 'e.g. --stack 2,1')!;
      const width = parseDecimalRange(flags.width, '--width', 0, 1, { min: true }, 'e.g. --width 0.5')!;
      // stack / width left at their defaults are not passed: ELAN then chooses them per neck block
      // (and per CSP-form stage) so that no block grows (passes/elan-fit.ts)
      const explicit = (f: string) => !metadata.flags[f]?.setFromDefault;
      options = { to: 'elan', ...(explicit('stack') ? { stack } : {}), ...(explicit('width') ? { width } : {}), csp: flags.csp, ...(flags.csp ? cspSplit() : {}), parts: flags.parts as Parts, ...(neckStack !== undefined ? { neckStack } : {}), ...(flags['osa-input'] ? { osaInput: flags['osa-input'] as 'concat' | 'last' } : {}), ...common };
    }
    if (flags.chart) checkOutputPath(flags.chart);
    if (flags.output) checkOutputPath(flags.output);
    // relative costs on full-size models: loading 1, the conversion 2-6 (CSP tries its fusions),
    // each gradient-path pass of the chart 1, writing 2, verify's sessions and runs 8
    const dryRun = flags['dry-run'];
    const progress = this.progress([1, ...(flags.chart ? [1] : []), flags.to === 'csp' ? 6 : flags.to === 'elan' ? 3 : 2, ...(flags.chart ? [1] : []), ...(dryRun ? [] : [2]), ...(flags.verify ? [8] : [])], !!flags.json);
    let report: ConvertReport;
    let written: string | undefined;
    let verified: VerifyReport | undefined;
    try {
      progress.next(`loading ${args.model}`);
      const model = loadModel(args.model);
      const inputs = [...modelInputFiles(model), ...ruleInputFiles(flags.rules)];
      // every output against every input (and each other), as real files
      checkOutputs([
        ...(flags.output ? [{ path: flags.output, flag: '-o' }] : []),
        ...(flags.chart ? [{ path: flags.chart, flag: '--chart' }] : []),
      ], inputs);
      checkDimNames(dims, [{ model, file: args.model }]);
      const rules = flags.rules ? loadRuleSet(flags.rules) : undefined;
      // the conversion edits the model in place: the "before" paths are measured first
      if (flags.chart) progress.next('gradient paths before');
      const pathsBefore = flags.chart ? withFile(args.model, () => gradientPaths(model, { stages: stageSpecs(recognize(model, { rules })) })) : undefined;
      progress.next(`converting to ${flags.to.toUpperCase()}`);
      const converted = withFile(args.model, () => convert(model, { ...options, rules }));
      const { model: out, structure } = converted;
      report = converted.report;
      report.warnings = aggregateWarnings(report.warnings);
      if (flags.chart && pathsBefore) {
        progress.next('gradient paths after');
        const after = gradientPaths(out, { stages: stageSpecs(structure) });
        const svg = gradientPathChart([chartSeries('before', pathsBefore), chartSeries(`after (${flags.to})`, after)], {
          title: `Gradient paths per weight layer: ${path.basename(args.model)} -> ${flags.to.toUpperCase()}`,
        });
        writeFileAtomic(flags.chart, svg, { inputs });
      }
      if (!dryRun) {
        progress.next(`writing ${flags.output}`);
        written = saveModel(out, flags.output!, { externalData: flags['external-data'] ? true : 'auto', overwriteSource: false, inputs }).path;
      }
      if (flags.verify && written === undefined) throw argError('--verify needs a written model', 'give -o OUT.onnx instead of --dry-run');
      if (flags.verify) progress.next('verifying');
      verified = flags.verify ? await verifyFiles(args.model, written!, undefined, undefined, (f, what) => progress.within(f, `verifying: ${what}`)) : undefined;
    } finally {
      progress.done();
    }
    if (flags.json) {
      validateConvertReport(report);
      if (verified) validateVerifyReport(verified);
      this.printJson(verified ? { ...report, verify: verified } : report);
    } else {
      process.stdout.write(formatConvertReport(escapeStrings(report), { dryRun: flags['dry-run'], output: written === undefined ? undefined : escapeText(written) }) + '\n');
      if (verified) process.stdout.write('\n' + formatVerifyReport(escapeStrings(verified)) + '\n');
    }
    if (verified && !verified.passed) throw verifyFailure(verified);
    for (const w of report.warnings) if (flags.json) this.warning(w);
    // one line each on stderr, whatever the output format: work left undone, and a model made larger
    if (report.incomplete) process.stderr.write(`gpt: incomplete: ${escapeText(report.incomplete)}\n`);
    if (report.growth) process.stderr.write(`gpt: grows: ${escapeText(report.growth)}\n`);
  }
}
