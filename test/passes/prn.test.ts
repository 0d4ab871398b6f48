/**
 * PRN conversion: exact against the fixtures' PRN reference outputs, params / MACs against hand
 * counts, the gradient-path effect, validity of the output, and bad input.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../../src/onnx/io';
import { convert } from '../../src/passes/convert';
import { validateConvertReport } from '../../src/report/convert-report';
import { validateGraph } from '../../src/ir/validate';
import { createSession, runFloat } from '../../src/profile/ort';
import { buildSample } from '../../src/samples';
import { GptError } from '../../src/errors';
import { fixturePath, fixtures, maxAbsDiff, readNpy } from '../helpers';
import { Tiny } from '../fixtures/tiny-graph';
import { inferShapes } from '../../src/analysis/shapes';
import { maskedResidual } from '../../src/passes/prn';
import { setBlockRefs } from '../../src/analysis/structure-refs';
import type { Block } from '../../src/analysis/structure-types';

async function run(model: ReturnType<typeof loadModel>, inputNpy: string): Promise<Float32Array> {
  const s = await createSession(model);
  const x = readNpy(fixturePath(inputNpy));
  const out = await runFloat(s, { [s.inputNames[0]]: { data: x.data, dims: x.shape } });
  return out[s.outputNames[0]].data;
}

for (const fx of fixtures().filter((f) => f.prnOutput)) {
  // --asymmetric only changes blocks whose projection is stride-1 (ResNet-50's layer1.0); elsewhere
  // it must give the same reference output
  const variants = fx.family === 'resnet' && fx.model.startsWith('resnet50') ? [false] : [false, true];
  for (const asymmetric of variants) {
    test(`${fx.model}: --to prn${asymmetric ? ' --asymmetric' : ''} reproduces the PRN reference output`, async () => {
      const { model, report } = convert(loadModel(fixturePath(fx.model)), { to: 'prn', ratio: 0.5, asymmetric });
      const y = await run(model, fx.sampleInput);
      const { diff, tol } = maxAbsDiff(y, readNpy(fixturePath(fx.prnOutput!)).data);
      assert.ok(diff <= tol, `max abs diff ${diff} > ${tol}`);
      assert.ok(report.converted.length > 0);
      assert.is(report.weightsCarriedOver, 1);
    });
  }
}

test('resnet18-w25: params and MACs saved by the asymmetric (shrunk) projections, by hand', () => {
  // Input 64x64: conv1/2 -> 32, maxpool/2 -> 16; layer2 at 8x8, layer3 at 4x4, layer4 at 2x2.
  // Projections (1x1, BN folded: weight + bias), k = C/2 of their filters are kept:
  //   layer2.0: 16->32  params 32*16+32 = 544   -> 16*16+16 = 272    saves 272
  //   layer3.0: 32->64  params 64*32+64 = 2112  -> 32*32+32 = 1056   saves 1056
  //   layer4.0: 64->128 params 128*64+128 = 8320 -> 64*64+64 = 4160  saves 4160      total 5488
  //   MACs: 32*8*8*16 = 32768, 64*4*4*32 = 32768, 128*2*2*64 = 32768, each halved: saves 3 * 16384 = 49152
  const { report } = convert(loadModel(fixturePath('resnet18-w25.onnx')), { to: 'prn', emit: 'split' });
  assert.is(report.before.params - report.after.params, 5488);
  assert.is(report.before.macs - report.after.macs, 49152);
  assert.is(report.converted.length, 8);
  // the parts form (the default) shrinks them alike: the same hand figures
  const parts = convert(loadModel(fixturePath('resnet18-w25.onnx')), { to: 'prn' }).report;
  assert.is(parts.before.params - parts.after.params, 5488);
  assert.is(parts.before.macs - parts.after.macs, 49152);
  // the mask form keeps every projection filter: nothing saved
  const mask = convert(loadModel(fixturePath('resnet18-w25.onnx')), { to: 'prn', emit: 'mask' }).report;
  assert.is(mask.after.params, mask.before.params);
  assert.is(mask.after.macs, mask.before.macs);
});

test('resnet50-w25: --asymmetric drops the stride-1 widening projection of layer1.0, by hand', () => {
  // layer1.0 projection 16->64 (1x1, stride 1, folded bias) at 16x16: 64*16+64 = 1088 params,
  // 64*16*16*16 = 262144 MACs. Without --asymmetric it shrinks to 32 filters (544 params, 131072 MACs);
  // with it, it is gone. Other projections shrink by half either way:
  //   layer2.0 64->128: 8320 -> 4160; layer3.0 128->256: 33024 -> 16512; layer4.0 256->512: 131584 -> 65792
  const plain = convert(loadModel(fixturePath('resnet50-w25.onnx')), { to: 'prn', emit: 'split' }).report;
  const asym = convert(loadModel(fixturePath('resnet50-w25.onnx')), { to: 'prn', asymmetric: true, emit: 'split' }).report;
  assert.is(plain.before.params - plain.after.params, 544 + 4160 + 16512 + 65792);
  assert.is(asym.before.params - asym.after.params, 1088 + 4160 + 16512 + 65792);
  assert.is(plain.before.macs - asym.after.macs - (plain.before.macs - plain.after.macs), 131072);
  assert.match(asym.converted[0].change, /projection-dropped/);
});

test('resnet50-w25 --asymmetric runs in onnxruntime with unchanged I/O', async () => {
  const { model } = convert(loadModel(fixturePath('resnet50-w25.onnx')), { to: 'prn', asymmetric: true });
  const y = await run(model, 'resnet50-w25.input.npy');
  assert.is(y.length, 10);
  assert.ok(y.every(Number.isFinite));
});

test('full-size samples: ResNet-18 projections and a Darknet-53 block, by hand', () => {
  // ResNet-18 at 224, BN as nodes (scale + bias = 2 params per channel), projections k = C/2:
  //   layer2.0 64->128 at 28x28: 8192 + 256 params -> 4096 + 128  saves 4224;  MACs 128*784*64 = 6422528, half saved
  //   layer3.0 128->256 at 14x14: 32768 + 512 -> 16384 + 256      saves 16640; MACs 256*196*128 = 6422528, half saved
  //   layer4.0 256->512 at 7x7: 131072 + 1024 -> 65536 + 512      saves 66048; MACs 512*49*256 = 6422528, half saved
  const r18 = convert(buildSample('resnet18'), { to: 'prn', emit: 'split' }).report;
  assert.is(r18.before.params - r18.after.params, 4224 + 16640 + 66048);
  assert.is(r18.before.macs - r18.after.macs, 3 * 3211264);
  assert.is(r18.before.params, 11689512); // torchvision's resnet18: 11,689,512 parameters
  // Darknet-53: identity shortcuts only: weights and MACs unchanged, 23 blocks masked
  const d = convert(buildSample('darknet53', { resolution: 256 }), { to: 'prn' }).report;
  assert.is(d.converted.length, 23);
  assert.is(d.after.params, d.before.params);
  assert.is(d.after.macs, d.before.macs);
  // ResNet-50: layer1.0's projection 64->256 at 56x56: 16384 + 512 params -> 8192 + 256 (saves 8448)
  const r50 = convert(buildSample('resnet50', { resolution: 64 }), { to: 'prn', asymmetric: true, emit: 'split' }).report;
  const r50plain = convert(buildSample('resnet50', { resolution: 64 }), { to: 'prn', emit: 'split' }).report;
  assert.is(r50.after.params - r50plain.after.params, -(8192 + 256), 'dropping vs shrinking layer1.0 projection');
});

test('the masked residual splits the gradient: channelGroups 2 where a layer reaches a masked shortcut, in both forms', () => {
  for (const emit of ['mask', 'split'] as const) {
    const { report } = convert(loadModel(fixturePath('darknet53-w25.onnx')), { to: 'prn', emit });
    assert.is(report.gradientPaths.before.maxChannelGroups, 1, emit);
    assert.is(report.gradientPaths.after.maxChannelGroups, 2, emit);
    assert.is(report.gradientPaths.after.layers, report.gradientPaths.before.layers, emit);
  }
});

test('the output is valid, keeps I/O, IR and opset, and records the conversion', () => {
  const file = fixturePath('resnet50-w25.onnx');
  const src = loadModel(file);
  const { model, report } = convert(src, { to: 'prn', ratio: 0.25 });
  assert.equal(validateGraph(model.graph), []);
  assert.equal(model.graph.inputs.map((v) => [v.name, v.declared?.shape]), [['input', ['batch', 3, 64, 64]]]);
  assert.equal(model.graph.outputs.map((v) => [v.name, v.declared?.shape]), [['logits', ['batch', 10]]]);
  assert.is(model.irVersion, 8);
  assert.is(model.opset(), 17);
  const meta = model.metadata();
  assert.equal(JSON.parse(meta['gpt.conversion']), { target: 'prn', options: { ratio: 0.25, asymmetric: false, emit: 'parts' } });
  assert.is(meta['gpt.source_sha256'], crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'));
  assert.ok(meta['gpt.version']);
  validateConvertReport(report);
  // the source model object is untouched (convert works on a copy)
  assert.is(src.graph.nodes.filter((n) => n.opType === 'Mul').length, 0);
});

test('a VoVNet has no residual: warning and unchanged model; --strict makes it an error', () => {
  const file = fixturePath('vovnet39-w25.onnx');
  const { model, report } = convert(loadModel(file), { to: 'prn' });
  assert.match(report.warnings.join(' '), /VoVNet has no residual/);
  assert.is(report.converted.length, 0);
  assert.is(model.graph.nodes.length, loadModel(file).graph.nodes.length);
  assert.throws(() => convert(loadModel(file), { to: 'prn', strict: true }), (e: GptError) => e.code === 'E_PATTERN' && /VoVNet/.test(e.message));
});

test('ratio outside (0, 1] is an E_ARG error', () => {
  for (const ratio of [0, -0.5, 1.5, Number.NaN]) {
    assert.throws(() => convert(loadModel(fixturePath('resnet18-w25.onnx')), { to: 'prn', ratio }), (e: GptError) => e.code === 'E_ARG' && /ratio/.test(e.message));
  }
  // ratio 1 keeps every channel: nothing changes, each block says why
  const { report } = convert(loadModel(fixturePath('resnet18-w25.onnx')), { to: 'prn', ratio: 1 });
  assert.is(report.converted.length, 0);
  assert.match(report.unconverted[0].reason, /keeps all/);
});

test('--asymmetric keeps a stride-1 projection that does not change the width (it is not a pure widening)', () => {
  //   x(8) ── conv3x3 ── bn ── relu ── conv3x3 ── bn ──┐
  //     └──── conv1x1 stride 1, 8 -> 8 ── bn ───────────Add ── relu ── head
  // The projection keeps Cin = C = 8: dropping it would not be "only a channel change", so it is shrunk.
  const t = new Tiny(8, 8);
  const a = t.convBnAct(t.x, 'b.c1', 8, 3);
  const branch = t.bn(t.conv(a, 'b.c2', 8, 3), 'b.bn2');
  const proj = t.bn(t.conv(t.x, 'b.proj', 8, 1), 'b.projbn');
  const y = t.op('Relu', 'b.relu', [t.op('Add', 'b.add', [branch, proj])]);
  t.head(y);
  const model = t.model();
  inferShapes(model);
  const block: Block = {
    id: 's0.b0', rule: 'resnet-basic', kind: 'residual', nodes: [], roles: {}, input: 'x', output: y.name, channelsIn: 8, channelsOut: 8,
    residual: { add: 'b.add', shortcutValue: proj.name, branchValue: branch.name, shortcut: 'projection', projectionNodes: ['b.proj', 'b.projbn'], postAdd: ['b.relu'] },
  };
  const add = model.graph.nodes.find((n) => n.name === 'b.add')!;
  setBlockRefs(block, { nodes: [], input: t.x, output: y, parts: new Map(), roles: new Map(), residual: { add, shortcut: proj, branch } });
  const r = maskedResidual(model, [block], { ratio: 0.5, dropProjection: true });
  assert.is(r.changes[0].shortcut, 'projection-shrunk');
  assert.is(r.changes[0].masked, 4);
});

test.run();
