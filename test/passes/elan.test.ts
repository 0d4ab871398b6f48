/**
 * ELAN conversion: transition relocation (VoVNet) and stacked computational blocks (ResNet,
 * Darknet-53). The gradient-path figures and the cost of the new blocks against hand counts, weight
 * carry-over, validity in onnxruntime, and bad input.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { costModel } from '../../src/analysis/cost';
import { gradientPaths } from '../../src/analysis/gradient-path';
import { recognize } from '../../src/analysis/structure';
import { GptError } from '../../src/errors';
import type { Model } from '../../src/ir/model';
import { loadModel, saveModelToBuffer } from '../../src/onnx/io';
import { convert, ConvertOptions } from '../../src/passes/convert';
import { checkElanOptions } from '../../src/passes/elan';
import { createSession, runFloat } from '../../src/profile/ort';
import { validateConvertReport } from '../../src/report/convert-report';
import { buildSample, ModelBuilder, SampleName } from '../../src/samples';
import { vovnet } from '../../src/samples/vovnet';
import { fixturePath, fixtures, readNpy, repoRoot, tmpDir } from '../helpers';

const elan = (m: Model, o: Partial<ConvertOptions> = {}) => convert(m, { to: 'elan', ...o });

function ioOf(m: Model) {
  const sig = (vs: typeof m.graph.inputs) => vs.map((v) => ({ name: v.name, shape: v.declared?.shape ?? null }));
  return { inputs: sig(m.graph.inputs), outputs: sig(m.graph.outputs) };
}

/** Runs the model in onnxruntime on x; checks the I/O names and the output shape, returns the output. */
async function runChecked(m: Model, x: { data: Float32Array; dims: number[] }, expectShape: number[]): Promise<Float32Array> {
  const s = await createSession(saveModelToBuffer(m));
  const out = await runFloat(s, { [s.inputNames[0]]: x });
  const y = out[s.outputNames[0]];
  assert.equal([...y.dims], expectShape, 'output shape');
  assert.ok(y.data.every(Number.isFinite), 'output is finite');
  return y.data;
}

// ---------------------------------------------------------------------------------------------
// Every fixture converts and runs with the same inputs and outputs

for (const fx of fixtures()) {
  test(`${fx.model}: --to elan converts, validates and runs in onnxruntime with unchanged I/O`, async () => {
    const src = loadModel(fixturePath(fx.model));
    const io = ioOf(src);
    const { model, report } = elan(src);
    validateConvertReport(report);
    assert.equal(ioOf(model), io);
    assert.ok(report.converted.length > 0);
    assert.ok(report.notes.some((n) => /fine-tuned/.test(n)), 'says the model must be fine-tuned');
    assert.ok(report.notes.some((n) => /^stage \d+: longest shortest gradient path \d+ -> \d+/.test(n)), 'per-stage gradient paths');
    assert.ok(report.weightsCarriedOver > 0 && report.weightsCarriedOver < 1);
    const x = readNpy(fixturePath(fx.sampleInput));
    const expected = readNpy(fixturePath(fx.sampleOutput));
    await runChecked(model, { data: x.data, dims: x.shape }, expected.shape);
  });
}

// Samples at a quarter width and 64x64: every family, the same check (full size below runs no ORT).
for (const name of ['resnet18', 'resnet50', 'vovnet39', 'vovnet57', 'darknet53'] as SampleName[]) {
  test(`${name} sample (width 0.25, 64x64): converts and runs with unchanged I/O`, async () => {
    const src = buildSample(name, { width: 0.25, resolution: 64, classes: 10 });
    const io = ioOf(src);
    const { model } = elan(src);
    assert.equal(ioOf(model), io);
    const x = new Float32Array(3 * 64 * 64).map((_, i) => Math.sin(i * 0.37));
    await runChecked(model, { data: x, dims: [1, 3, 64, 64] }, [1, 10]);
  });
}

// ---------------------------------------------------------------------------------------------
// Gradient path planning: VoVNet

// A weight layer's shortest gradient path (analyze definitions) counts the weight layers on its
// fewest-layer path to the output. In an OSA module the Concat reads the module input directly, so
// from a module's input the shortest way out passes only its 1x1 transition. stem.0 is the worst layer:
//   plain:  3 stem convs + one transition per module + fc
//           VoVNet-39 (1,1,2,2 modules): 3 + 6 + 1 = 10        VoVNet-57 (1,1,4,3): 3 + 9 + 1 = 13
//   ELAN:   one transition per stage: 3 + 4 + 1 = 8 for both.
for (const [name, before, after] of [['vovnet39', 10, 8], ['vovnet57', 13, 8]] as const) {
  test(`${name} full size: maxShortest ${before} -> ${after}`, () => {
    const { report } = elan(buildSample(name));
    assert.is(report.gradientPaths.before.maxShortest, before);
    assert.is(report.gradientPaths.after.maxShortest, after);
  });
}

for (const [file, before, after] of [['vovnet39-w25.onnx', 10, 8], ['vovnet57-w25-bn.onnx', 13, 8]] as const) {
  test(`${file}: maxShortest ${before} -> ${after}, measured on the written model`, () => {
    const { model, report } = elan(loadModel(fixturePath(file)));
    assert.is(report.gradientPaths.before.maxShortest, before);
    assert.is(gradientPaths(loadModel(saveModelToBuffer(model))).network.maxShortest, after);
    // one relocation per module but the last of stages 2 and 3, the other stages have one module
    assert.is(report.converted.filter((c) => c.change.startsWith('transition relocated')).length, file.startsWith('vovnet39') ? 2 : 5);
    // stages 0 and 1 hold one module each: already one transition per stage, said in a note, not left undone
    assert.equal(report.unconverted, []);
    assert.ok(report.notes.includes("stage 0 (s0.b0): one OSA module, whose transition already is the stage's only one: left as it is"));
  });
}

test('vovnet39-w25 stage 2 with --osa-input concat: params and MACs of the relocated stage, by hand; carried-over weights', () => {
  // Quarter width, 64x64 input: stage 2 (timm stages.2) runs at 4x4 = 16 pixels, conv width 48,
  // output 192, input 128 (stage 1's output). BN folded: every conv has a bias.
  //   module 0: concat 128 + 5*48 = 368 -> transition 368->192 (1x1): 368*192 + 192 = 70848 params
  //   module 1: first 3x3 conv reads 192 -> 48; concat 192 + 240 = 432 -> transition 432->192
  // ELAN: module 0's transition goes; module 1's first conv reads 368 channels, its concat is
  //   368 + 240 = 608 wide.
  //   first conv  48*192*9 = 82944  -> 48*368*9 = 158976     (+76032)
  //   transition 192*432   = 82944  -> 192*608   = 116736     (+33792)
  //   params: +76032 + 33792 - 70848 = +38976; MACs x16 pixels: (76032 + 33792 - 70656) * 16 = 626688
  // Fresh weights: the first conv's 158976 (none of its inputs existed) + the transition's columns over
  //   the 368 aggregated channels, 192*368 = 70656: 229632. Stage 3 (56 wide, 256 out, input 192, 2x2):
  //   concat 192 + 280 = 472; first conv 56*472*9 = 237888 fresh, transition 256*472 = 120832 fresh.
  //   All fresh: 229632 + 358720 = 588352.
  const src = loadModel(fixturePath('vovnet39-w25.onnx'));
  const oldT = src.graph.nodes.find((n) => n.name === '/stages/stages.2/stages.2.2/transition/transition.0/Conv')!;
  const oldW = src.graph.constantTensor(oldT.inputs[1])!.data() as Float32Array;
  const { model, report } = elan(src, { inPlace: false, osaInput: 'concat' });
  const b = report.stages.before.find((s) => s.stage === 2)!, a = report.stages.after.find((s) => s.stage === 2)!;
  assert.is(a.params - b.params, 38976);
  assert.is(a.macs - b.macs, 626688);
  assert.is(report.before.params - report.after.params, -(38976 + (56 * 472 * 9 - 56 * 256 * 9) + 256 * (752 - 536) - (256 * 472 + 256)));
  assert.ok(Math.abs(report.weightsCarriedOver - (1 - 588352 / report.after.params)) < 1e-12);
  // the kept transition's weights over the module's own 5 conv outputs are the old ones, moved
  const t = model.graph.nodes.find((n) => n.name === oldT.name)!;
  const w = model.graph.constantTensor(t.inputs[1])!;
  assert.equal(w.dims, [192, 608, 1, 1]);
  const nw = w.data() as Float32Array;
  for (const o of [0, 77, 191]) {
    for (const j of [0, 100, 239]) assert.is(nw[o * 608 + 368 + j], oldW[o * 432 + 192 + j]);
  }
});

test('vovnet39-w25 stage 2 by default: reading the concatenation would grow the stage, so the next module reads the last layer; by hand', () => {
  // Same stage as above. The concat link adds 38976 params and 626688 MACs there (counted above), so
  // the default makes module 1's first 3x3 conv read module 0's last layer (48 channels):
  //   module 0's transition goes:  -(368*192 + 192) = -70848 params, -368*192*16 MACs
  //   first conv  48*192*9 = 82944 -> 48*48*9 = 20736   (-62208)
  //   transition 192*432 -> 192*608                     (+33792), the same aggregation as with concat
  //   params: -62208 + 33792 - 70848 = -99264; MACs: (-62208 + 33792 - 70656) * 16 = -1585152
  const { report } = elan(loadModel(fixturePath('vovnet39-w25.onnx')));
  const b = report.stages.before.find((s) => s.stage === 2)!, a = report.stages.after.find((s) => s.stage === 2)!;
  assert.is(a.params - b.params, -99264);
  assert.is(a.macs - b.macs, -1585152);
  assert.ok(report.notes.includes('stage 2: each next OSA module\'s first conv reads the previous module\'s last layer (--osa-input last): reading the whole concatenation would add 38976 params and 626688 MACs to the stage; --osa-input concat to have it anyway'));
  assert.match(report.converted.find((c) => c.block === 's2.b0')!.change, /first conv reads this module's last layer \(48 channels\), its concat the 368-channel concatenation/);
  assert.ok(report.after.params < report.before.params && report.after.macs < report.before.macs);
  assert.is(report.growth, undefined);
});

// ---------------------------------------------------------------------------------------------
// Stacked computational blocks: Darknet-53 and ResNet

test('darknet53 full size at 256x256: whole-model MACs 0.60x the plain model, by hand', () => {
  // Darknet-53 at 256x256: stage s has width C = 64*2^s at R = 128/2^s, so C*R = 8192 and
  // (C*R)^2 = 67108864 in every stage.
  //   stem 3x3 3->32 at 256^2: 65536*32*27 = 56623104; fc 1024*1000 = 1024000
  //   stage entries 3x3/2 C/2->C: 4.5 (CR)^2 each, x5 = 1509949440
  //   residual block 1x1 C->C/2 + 3x3 C/2->C: 0.5 + 4.5 = 5 (CR)^2, 23 blocks = 7717519360
  //   plain total 9285115904
  // ELAN block, c = C/2, stack 2: two 1x1 C->c (1 (CR)^2), four 3x3 c->c (9), 1x1 4c->C (2): 12 (CR)^2,
  //   x5 stages = 4026531840. ELAN total 56623104 + 1509949440 + 4026531840 + 1024000 = 5594128384.
  const { report } = elan(buildSample('darknet53'));
  assert.is(report.before.macs, 9285115904);
  assert.is(report.after.macs, 5594128384);
  assert.ok(report.after.macs / report.before.macs <= 0.75);
});

test('darknet53 sample (width 0.25, 64x64) stage 2: the ELAN block\'s params and MACs, by hand', () => {
  // Stage 2: C = 256/4 = 64 at 8x8 = 64 pixels (64 -> stem -> 32 stage 0, 16, 8), c = 32; BN as nodes.
  //   params: cv1, cv2  1x1 64->32: 2 * (2048 + 64 BN) = 4224
  //           4 x 3x3 32->32: 4 * (9216 + 64) = 37120; transition 1x1 128->64: 8192 + 128 = 8320   total 49664
  //   MACs:   64 px * (2*64*32 + 4*9*32*32 + 128*64) = 64 * (4096 + 36864 + 8192) = 3145728
  const { model, structure } = elan(buildSample('darknet53', { width: 0.25, resolution: 64 }));
  const block = structure.stages[2].blocks.find((b) => b.kind === 'elan')!;
  assert.is(block.nodes.filter((n) => n.endsWith('/Conv')).length, 7);
  const cost = costModel(model);
  const mine = cost.nodes.filter((n) => block.nodes.includes(n.name));
  assert.is(mine.reduce((a, n) => a + n.params, 0), 49664);
  assert.is(mine.reduce((a, n) => a + n.macs, 0), 3145728);
  // the Darknet activation is copied: LeakyRelu(0.1)
  const act = model.graph.nodes.find((n) => n.name === block.nodes.find((x) => x.endsWith('LeakyRelu')))!;
  assert.ok(Math.abs(act.float('alpha', 0) - 0.1) < 1e-7);
});

test('resnet18-w25 stage 1 with --stack 3 --width 0.25: the ELAN block\'s params and MACs, by hand', () => {
  // layer2 (stage 1): C = 32 at 8x8 = 64 pixels. layer2.0 projects (stride 2, 16->32) and stays as
  // the stage input; layer2.1 becomes the ELAN block. c = 0.25 * 32 = 8, 6 3x3 convs, concat of
  // 2 + 3 = 5 parts = 40 channels. BN folded in this fixture: every new conv has a bias, no BN.
  //   params: 2 x (32*8 + 8) = 528; 6 x (9*8*8 + 8) = 3504; 40*32 + 32 = 1312          total 5344
  //   MACs:   64 * (2*32*8 + 6*9*8*8 + 40*32) = 64 * (512 + 3456 + 1280) = 335872
  const { model, structure, report } = elan(loadModel(fixturePath('resnet18-w25.onnx')), { stack: 3, width: 0.25 });
  const st = structure.stages[1];
  assert.equal(st.blocks.map((b) => b.id), ['s1.b0', 's1.b1']);
  const block = st.blocks[1];
  assert.is(block.kind, 'elan');
  assert.ok(block.nodes.every((n) => n.startsWith('/layer2/layer2.1/elan/')), 'named under the stage scope');
  assert.ok(!block.nodes.some((n) => n.includes('BatchNormalization')));
  const cost = costModel(model);
  const mine = cost.nodes.filter((n) => block.nodes.includes(n.name));
  assert.is(mine.reduce((a, n) => a + n.params, 0), 5344);
  assert.is(mine.reduce((a, n) => a + n.macs, 0), 335872);
  assert.equal(report.options, { stack: 3, width: 0.25, csp: false });
  // stage 0 has no projecting block: both its blocks go
  assert.equal(structure.stages[0].blocks.map((b) => b.kind), ['elan']);
});

test('the converted model is the same bytes every time (seeded new weights)', () => {
  const a = saveModelToBuffer(elan(loadModel(fixturePath('darknet53-w25.onnx'))).model);
  const b = saveModelToBuffer(elan(loadModel(fixturePath('darknet53-w25.onnx'))).model);
  assert.ok(Buffer.from(a).equals(Buffer.from(b)));
});

test('full-size resnet18 / resnet50 convert (no ORT at full size)', () => {
  for (const name of ['resnet18', 'resnet50'] as const) {
    const { report } = elan(buildSample(name));
    assert.is(report.converted.length, 4, name);
  }
});

// ---------------------------------------------------------------------------------------------
// --csp: the CSP split on the converted stages, each step reported

for (const file of ['vovnet39-w25.onnx', 'darknet53-w25.onnx', 'resnet50-w25-bn.onnx', 'resnet18-w25-bntrain.onnx']) {
  test(`${file}: --csp splits every converted stage after ELAN, reports both steps, runs`, async () => {
    const src = loadModel(fixturePath(file));
    const io = ioOf(src);
    const plain = elan(loadModel(fixturePath(file))).report;
    const { model, report } = elan(src, { csp: true });
    validateConvertReport(report);
    assert.equal(ioOf(model), io);
    const elanStages = new Set(plain.converted.map((c) => c.stage));
    const cspStages = report.converted.filter((c) => c.change.startsWith('CSP split after ELAN')).map((c) => c.stage);
    assert.equal(cspStages, [...elanStages], 'one CSP entry per converted stage');
    assert.ok(report.notes.some((n) => /^(transition relocation|stacked computational blocks): longest shortest gradient path/.test(n)), 'ELAN step');
    assert.ok(report.notes.some((n) => /^CSP split: longest shortest gradient path \d+ -> \d+, MACs [\d.]+ ?[KMG]? -> [\d.]+/.test(n)), 'CSP step');
    // the split narrows the ELAN layers: fewer MACs than ELAN alone where the ELAN block is wide;
    // on a bottleneck ResNet the default ELAN width is half the bottleneck width (an eighth of the
    // stage width), and the split's transitions cost more than it saves: the report says so
    if (!file.startsWith('resnet50')) assert.ok(report.after.macs < plain.after.macs);
    else if (report.after.macs > report.before.macs || report.after.params > report.before.params) assert.match(report.growth ?? '', /--fusion last/);
    // the fresh share stays a share
    assert.ok(report.weightsCarriedOver > 0 && report.weightsCarriedOver < 1);
    assert.equal(report.options, { stack: 2, width: 0.5, csp: true, split: 0.5, fusion: 'both', splitOp: 'producer', mergeOp: 'concat' });
    const x = readNpy(fixturePath(file.replace('.onnx', '.input.npy')));
    await runChecked(model, { data: x.data, dims: x.shape }, readNpy(fixturePath(file.replace('.onnx', '.output.npy'))).shape);
  });
}

test('vovnet39-w25 --csp: the relocated stage is split as one aggregation; VoVNet maxShortest stays 8', () => {
  const { report } = elan(loadModel(fixturePath('vovnet39-w25.onnx')), { csp: true });
  assert.is(report.gradientPaths.after.maxShortest, 8);
  // stage 2's input is 128 wide (quarter of 512): 64 channels go through both modules, 64 cross
  assert.match(report.converted.find((c) => c.stage === 2 && c.block === 's2')!.change, /^CSP split after ELAN: 64 of 128 channels/);
});

// ---------------------------------------------------------------------------------------------
// The command line: --stack / --width / --csp / --chart

test('gpt convert --to elan: flags, the before/after chart, one-line E_ARG errors', () => {
  const dir = tmpDir('gpt-elan-');
  const gpt = (...args: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'run.js'), ...args], { encoding: 'utf8', cwd: dir });
  const svg = path.join(dir, 'paths.svg');
  const ok = gpt('convert', fixturePath('darknet53-w25.onnx'), '--to', 'elan', '--stack', '1', '--width', '0.25', '--csp', '--json', '-o', path.join(dir, 'out.onnx'), '--chart', svg);
  assert.is(ok.status, 0, ok.stderr);
  const report = JSON.parse(ok.stdout);
  assert.equal(report.options, { stack: 1, width: 0.25, csp: true, split: 0.5, fusion: 'both', splitOp: 'producer', mergeOp: 'concat' });
  const chart = fs.readFileSync(svg, 'utf8');
  assert.match(chart, /<svg /);
  assert.match(chart, />before: shortest</);
  assert.match(chart, />after \(elan\): shortest</);
  for (const bad of [['--stack', '0'], ['--width', '1.5'], ['--width', '0']]) {
    const r = gpt('convert', fixturePath('darknet53-w25.onnx'), '--to', 'elan', '--dry-run', ...bad);
    assert.ok(r.status !== 0);
    assert.match(r.stderr.trim(), new RegExp(`^gpt: ${bad[0]} ${bad[1].replace('.', '\\.')} `));
  }
});

// ---------------------------------------------------------------------------------------------
// Bad input

test('--stack and --width outside their ranges are E_ARG', () => {
  const m = loadModel(fixturePath('darknet53-w25.onnx'));
  for (const o of [{ stack: 0 }, { stack: 1.5 }, { stack: -2 }, { width: 0 }, { width: 1.01 }, { width: -0.5 }, { width: NaN }]) {
    try {
      elan(m, o);
      assert.unreachable(JSON.stringify(o));
    } catch (e) {
      assert.instance(e, GptError);
      assert.is((e as GptError).code, 'E_ARG', JSON.stringify(o));
      assert.match((e as GptError).message, o.stack !== undefined ? /--stack/ : /--width/);
    }
  }
  // the edges of the ranges are fine
  checkElanOptions({ stack: 1, width: 1 });
});

test('a VoVNet with one module per stage has no transition to relocate: written unchanged with a warning; E_PATTERN under --strict', () => {
  //   stem ─ OSA ─ pool ─ OSA ─ pool ─ OSA ─ pool ─ OSA ─ head: every transition is its stage's own
  const b = new ModelBuilder({ seed: 0, batch: 1, moduleLists: ['layers'] });
  const x = b.input('input', 3, 64, 64);
  const m = b.finish(b.gemm(vovnet(b, x, { blocks: [1, 1, 1, 1] }, (c) => c / 8), 'fc', 10, 'logits'), 'vovnet-1111');
  const { model, report } = elan(m);
  assert.equal(report.converted, []);
  assert.equal(report.unconverted, []);
  assert.ok(report.warnings.some((w) => /every stage has one OSA module.*the model is written unchanged/.test(w)));
  assert.is(report.after.params, report.before.params);
  assert.is(model.graph.nodes.length, m.graph.nodes.length);
  try {
    elan(m, { strict: true });
    assert.unreachable();
  } catch (e) {
    assert.is((e as GptError).code, 'E_PATTERN');
    assert.match((e as GptError).message, /ELAN has nothing to convert/);
  }
});

test('a module output read outside its stage: that stage stays whole, the others convert', async () => {
  //   stage 2 of VoVNet-57 (4 modules):  M0 ─ T ─ M1 ─ T ─┬─ M2 ─ T ─ M3 ─ T ─ ...
  //                                                       └─ extra graph output (a head reading midway)
  // Relocating M1's transition would take that output away: stage 2 is listed as left as it was,
  // and must not be half-rewritten (M0's transition stays); stage 3 (3 modules) still relocates.
  const src = loadModel(fixturePath('vovnet57-w25-bn.onnx'));
  const stage2 = recognize(src).stages[2];
  const mid = src.graph.values.get(stage2.blocks[1].output)!;
  mid.declared = mid.type;
  src.graph.addOutput(mid);
  const { model, report } = elan(src);
  assert.equal(report.unconverted.map((u) => u.block), ['s2.b1']);
  assert.match(report.unconverted[0].reason, /also read by 'a graph output'/);
  assert.equal(report.converted.filter((c) => c.change.startsWith('transition relocated')).map((c) => c.stage), [3, 3]);
  // every transition of stage 2 is still there
  for (const b of stage2.blocks) for (const n of b.roles.transition) assert.ok(model.graph.nodes.some((x) => x.name === n), n);
  const x = readNpy(fixturePath('vovnet57-w25-bn.input.npy'));
  const s = await createSession(saveModelToBuffer(model));
  const out = await runFloat(s, { [s.inputNames[0]]: { data: x.data, dims: x.shape } });
  assert.is(Object.keys(out).length, 2);
  // under --strict the stage that stayed is an error
  assert.throws(() => elan(src, { strict: true }), (e: GptError) => e.code === 'E_PATTERN');
});

test('a plain conv net (no recognised stage) is E_PATTERN', () => {
  //   input ─ conv ─ relu ─ conv ─ relu ─ GAP ─ fc
  const b = new ModelBuilder({ seed: 0, batch: 1 });
  let y = b.input('input', 3, 32, 32);
  y = b.convBnAct(y, { conv: 'c1', bn: 'b1', act: 'r1' }, 8, 3, 2, 'Relu');
  y = b.convBnAct(y, { conv: 'c2', bn: 'b2', act: 'r2' }, 8, 3, 2, 'Relu');
  const m = b.finish(b.gemm(b.flatten(b.globalAveragePool(y, 'pool')), 'fc', 10, 'logits'), 'plain');
  try {
    elan(m);
    assert.unreachable();
  } catch (e) {
    assert.is((e as GptError).code, 'E_PATTERN');
  }
});

test.run();
