/**
 * The module tree model.py is written as (no Python needed): stem, stages[i] with their entry and
 * blocks, the detector's neck and Detect, each a class named for what it is, widths as constructor
 * arguments. Figures from the architectures: Darknet-53 has 1, 2, 8, 8, 4 residual blocks per stage
 * (Redmon and Farhadi 2018, Table 1); the w25 fixtures have 16, 32, 64, 128, 256 channels in them;
 * YOLOv3 has three conv sets in its neck and three detection convs.
 */
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exportPytorch } from '../../src/export/pytorch';
import { Graph } from '../../src/ir/graph';
import { loadModel } from '../../src/onnx/io';
import { DataType } from '../../src/onnx/schema';
import { convert } from '../../src/passes/convert';
import { fixturePath, repoRoot } from '../helpers';
import { emptyModel } from '../synthetic';

const darknet = () => loadModel(fixturePath('darknet53-w25.onnx'));
const line = (code: string, re: RegExp) => code.match(re)?.[0] ?? '';
/** `class NAME(nn.Module):` text up to the next class. */
const classText = (code: string, name: string) => code.split(/\n(?=class )/).find((c) => c.startsWith(`class ${name}(`)) ?? '';

test('plain Darknet-53: Stem, DarknetStage x 5 with Downsample entries and Sequential DarknetResidual blocks (1, 2, 8, 8, 4), Head', () => {
  const r = exportPytorch(darknet());
  assert.is(r.blocks.DarknetResidual, 1 + 2 + 8 + 8 + 4);
  assert.match(r.code, /self\.stem = Stem\(3, 8, 16\)/);
  const stages = line(r.code, /self\.stages = nn\.ModuleList\(\[.*\]\)/);
  // stage widths (in, out: 16 -> 32 ... 128 -> 256) and block counts as constructor arguments;
  // stage 0 (no downsampling entry) is its own class
  assert.match(stages, /DarknetStage\w*\(16, 32, 2\), DarknetStage\w*\(32, 64, 8\), DarknetStage\w*\(64, 128, 8\), DarknetStage\w*\(128, 256, 4\)/);
  const stage = classText(r.code, 'DarknetStage_1');
  assert.match(stage, /def __init__\(self, c1, c2, n\)/);
  assert.match(stage, /self\.entry = Downsample\(c1, c2\)/);
  // a residual block of width C has its 1x1 at C/2
  assert.match(stage, /self\.blocks = nn\.Sequential\(\*\(DarknetResidual\(c2, c1\) for _ in range\(n\)\)\)/);
  assert.match(r.code, /self\.head = Head\(256, 10\)/);
  // the Net reads as the architecture: stem, five stage calls, head
  const forward = r.code.slice(r.code.lastIndexOf('    def forward(self, input):'));
  assert.is((forward.match(/self\.stages\[\d\]/g) ?? []).length, 5);
  assert.not.match(r.code, /STRUCTURE = \{/, 'a plain model records nothing: the rules recognise it again');
});

test('CSP Darknet-53: CSPStage with the split, part 1 through the blocks, both transitions; the structure kept for export_onnx', () => {
  const r = exportPytorch(convert(darknet(), { to: 'csp', splitOp: 'slice' }).model);
  const stage = classText(r.code, 'CSPStage_1');
  assert.match(stage, /self\.blocks = nn\.Sequential\(\*\(DarknetResidual\(\w+\) for _ in range\(n\)\)\)/);
  assert.match(stage, /torch\.split\(t\d+, \[self\.c\d, self\.c\d\], dim=1\)/);
  // the default producer split: the entry conv makes part 1, its copy (the other filters) part 2, no split
  const producer = classText(exportPytorch(convert(darknet(), { to: 'csp' }).model).code, 'CSPStage_1');
  assert.match(producer, /self\.part2 = nn\.Conv2d\(c1, c1, kernel_size=3, stride=2/);
  assert.not.match(producer, /torch\.split/);
  assert.match(stage, /self\.transition1 = nn\.Conv2d/);
  assert.match(stage, /self\.transition2 = nn\.Conv2d/);
  // split 0.5: part 1 of the 64-channel stage is 32 wide, 8 blocks
  assert.match(line(r.code, /self\.stages = nn\.ModuleList\(\[.*\]\)/), /CSPStage\w*\(32, 64, 8\)/);
  assert.match(r.code, /STRUCTURE = \{"family": "darknet53"/);
  assert.match(r.code, /"rule": "gpt csp"/);
});

test('ELAN and PRN forms: ELANBlock in ELANStage; PRN blocks hold their masked residual as a MaskedResidual module', () => {
  const elan = exportPytorch(convert(darknet(), { to: 'elan' }).model);
  assert.is(elan.blocks.ELANBlock, 5);
  assert.match(elan.code, /class ELANStage\w*\(nn\.Module\)/);
  // the split form (Split / Concat): its masked residual slices channels
  const prn = exportPytorch(convert(darknet(), { to: 'prn', emit: 'split' }).model);
  assert.is(prn.blocks.MaskedResidual, 23);
  assert.match(classText(prn.code, 'MaskedResidual'), /\[:, :self\.c1\]/);
});

test('YOLOv3: three ConvSets in the neck, one Detect reading three maps (the heads and their decode)', () => {
  const r = exportPytorch(loadModel(path.resolve(repoRoot, '..', 'shared', 'fixtures-detectors', 'yolov3-w25.onnx')));
  assert.is((line(r.code, /self\.neck = nn\.ModuleList\(\[.*\]\)/).match(/ConvSet/g) ?? []).length, 3);
  assert.match(r.code, /t\d+ = self\.detect\(t\d+, t\d+, t\d+\)/);
  assert.is((classText(r.code, 'Detect').match(/= nn\.Conv2d\(/g) ?? []).length, 3);
});

test('the negative case: a graph no rule recognises is written op by op, with no stages', () => {
  const g = new Graph();
  const x = g.addInput('x', { elemType: DataType.FLOAT, shape: [1, 4] });
  const n = g.addNode({ opType: 'Relu', name: 'r', inputs: [x], outputs: ['y'] });
  g.addOutput(n.outputs[0]!);
  const r = exportPytorch(emptyModel(g));
  assert.not.match(r.code, /self\.stages|self\.stem/);
  assert.equal(r.blocks, {});
  assert.match(r.code, /= torch\.relu\(x\)/);
});

test.run();
