/**
 * Structure recognition on real exports (../shared/fixtures-realworld: timm definitions exported by
 * PyTorch's own exporter): every block recognised, nothing unmatched, the variant seen (deep stem and
 * AvgPool shortcut, SE, grouped 3x3, eSE + identity Add, SiLU as Mul(x, Sigmoid(x)), CSP stages).
 * Block counts against the manifest's residual Adds and the timm definitions' depths.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../../src/onnx/io';
import { recognize } from '../../src/analysis/structure';
import { analyze } from '../../src/analysis/analyze';
import { SHIPPED_RULES_DIR, loadRules } from '../../src/analysis/rules';
import { validateAnalyzeReport } from '../../src/report/analyze-report';
import { realworld, realworldPath, tmpDir } from '../helpers';

// timm depths: ResNet-50 [3, 4, 6, 3]; Darknet-53 / CSPDarknet-53 1/2/8/8/4; ese_vovnet39b 1/1/2/2 OSA modules
const DEPTHS: Record<string, { family: string; rule: string; blocks: number[] }> = {
  'resnet50d-w25.onnx': { family: 'resnet', rule: 'resnet-bottleneck', blocks: [3, 4, 6, 3] },
  'resnet50d-w25-op17dyn.onnx': { family: 'resnet', rule: 'resnet-bottleneck', blocks: [3, 4, 6, 3] },
  'seresnet50-w25.onnx': { family: 'resnet', rule: 'resnet-bottleneck', blocks: [3, 4, 6, 3] },
  'resnext50-w25.onnx': { family: 'resnet', rule: 'resnext-bottleneck', blocks: [3, 4, 6, 3] },
  'ese-vovnet39b-w19.onnx': { family: 'vovnet', rule: 'vovnet-osa', blocks: [1, 1, 2, 2] },
  'cspdarknet53-w19.onnx': { family: 'darknet53', rule: 'darknet-residual', blocks: [1, 2, 8, 8, 4] },
  'darknet53-silu-w19.onnx': { family: 'darknet53', rule: 'darknet-residual', blocks: [1, 2, 8, 8, 4] },
};

for (const fx of realworld()) {
  test(`${fx.model}: every block recognised (100% coverage), nothing unmatched, timm's depths`, () => {
    const want = DEPTHS[fx.model];
    assert.ok(want, `no expectation for ${fx.model}`);
    const s = recognize(loadModel(realworldPath(fx.model)));
    assert.is(s.family, want.family);
    assert.equal(s.unmatched, []);
    assert.equal(s.errors ?? [], []);
    assert.equal(s.stages.map((st) => st.blocks.length), want.blocks);
    assert.ok(s.stages.every((st) => st.blocks.every((b) => b.rule === want.rule)));
    assert.is(s.coverage!.blocks, s.coverage!.candidates);
    assert.is(s.coverage!.blocks, want.blocks.reduce((a, b) => a + b, 0));
    // every residual Add of the export is a recognised block's Add
    const adds = s.stages.flatMap((st) => st.blocks).filter((b) => b.residual).length;
    assert.is(adds, fx.residualAdds);
  });
}

test('resnet50d: deep stem in the stem, AvgPool + 1x1 projection inside the first block of stages 2-4', () => {
  const s = recognize(loadModel(realworldPath('resnet50d-w25.onnx')));
  assert.equal(s.stem.filter((n) => n.endsWith('/Conv')).length, 3);
  for (const st of s.stages.slice(1)) {
    const b = st.blocks[0];
    assert.is(b.residual!.shortcut, 'projection');
    assert.ok(b.residual!.projectionNodes.some((n) => n.endsWith('AveragePool')), `${b.id}: ${b.residual!.projectionNodes}`);
  }
  assert.ok(!s.stages[0].blocks[0].residual!.projectionNodes.some((n) => n.endsWith('AveragePool')));
});

test('seresnet50: the SE module is inside each bottleneck, before the Add (attention role)', () => {
  const s = recognize(loadModel(realworldPath('seresnet50-w25.onnx')));
  for (const b of s.stages.flatMap((st) => st.blocks)) {
    const att = b.roles.attention ?? [];
    assert.equal(att.map((n) => n.split('/').pop()), ['ReduceMean', 'Conv', 'Relu', 'Conv', 'Sigmoid', 'Mul']);
    assert.ok(b.residual!.branchValue.length > 0);
  }
});

test('ese-vovnet39b: eSE on the last OSA module of each stage, identity Add on the second module of stages 3 and 4', () => {
  const s = recognize(loadModel(realworldPath('ese-vovnet39b-w19.onnx')));
  const withAdd = s.stages.flatMap((st) => st.blocks).filter((b) => b.residual).map((b) => b.id);
  assert.equal(withAdd, ['s2.b1', 's3.b1']);
  const withEse = s.stages.flatMap((st) => st.blocks).filter((b) => (b.roles.attention ?? []).some((n) => n.endsWith('HardSigmoid'))).map((b) => b.id);
  assert.equal(withEse, ['s0.b0', 's1.b0', 's2.b1', 's3.b1']);
});

test('cspdarknet53: every stage recognised as cross-stage partial (Split from a Constant, halves, fusion both)', () => {
  const s = recognize(loadModel(realworldPath('cspdarknet53-w19.onnx')));
  // timm cspdarknet53 at 3/16: stage outputs 12/24/48/96/192; expand x2 in stage 0, x1 after; Split in halves
  const parts = [[12, 12], [12, 12], [24, 24], [48, 48], [96, 96]];
  s.stages.forEach((st, i) => {
    assert.ok(st.csp, `stage ${i} not CSP`);
    assert.is(st.csp!.splitOp, 'split');
    assert.equal(st.csp!.parts, parts[i]);
    assert.is(st.csp!.fusion, 'both');
    assert.is(st.csp!.expand.filter((n) => n.endsWith('/Conv')).length, 1);
    assert.is(st.channels, [12, 24, 48, 96, 192][i]);
  });
  // negative: the plain Darknet-53 has no CSP stage
  const plain = recognize(loadModel(realworldPath('darknet53-silu-w19.onnx')));
  assert.ok(plain.stages.every((st) => !st.csp));
});

test('a family read with fewer stages than its resolutions is an error; the analyze report carries it', () => {
  // Darknet-53's own rule (the 1x1 halves: C -> C/2) sees only stage 0's block of CSPDarknet-53
  // (bottle_ratio 1 after it): 1 stage, but 5 resolutions after the stem
  const dir = tmpDir();
  const halving = JSON.parse(fs.readFileSync(path.join(SHIPPED_RULES_DIR, 'darknet-residual.json'), 'utf8'));
  halving.name = 'darknet-halving';
  halving.pattern[0].channels = { in: 'C', out: 'C/2' };
  fs.writeFileSync(path.join(dir, 'halving.json'), JSON.stringify({ ...halving, $schema: undefined }));
  const rules = loadRules([dir]).filter((r) => r.name !== 'darknet-residual');
  const s = recognize(loadModel(realworldPath('cspdarknet53-w19.onnx')), { rules });
  assert.is(s.stages.length, 1);
  assert.is(s.coverage!.resolutions, 5);
  assert.is(s.errors!.length, 1);
  assert.match(s.errors![0], /1 stage\(s\) but the feature map takes 5 resolutions/);
  const r = analyze(loadModel(realworldPath('cspdarknet53-w19.onnx')), { rules });
  validateAnalyzeReport(r);
  assert.is(r.errors.length, 1);
  assert.ok(r.coverage.candidates > r.coverage.blocks);
  // negative: with the shipped rules, no error
  const ok = analyze(loadModel(realworldPath('cspdarknet53-w19.onnx')));
  validateAnalyzeReport(ok);
  assert.equal(ok.errors, []);
  assert.is(ok.coverage.blocks, 23);
  assert.is(ok.coverage.candidates, 23);
});

test.run();
