/**
 * The variant samples (gpt sample resnet50d / seresnet50 / resnext50 / vovnet39-ese) at full size:
 * params and MACs against the published counts of their timm definitions, recognised with every
 * block by the shipped rules, and converted by PRN, CSP and ELAN into models that still run.
 *
 * Published counts (timm's model cards / results tables, 224x224): resnet50d 25.58 M params,
 * 4.35 GMACs; seresnet50 28.09 M, 4.11 G; resnext50_32x4d 25.03 M, 4.26 G; ese_vovnet39b 24.57 M,
 * 7.09 G. Checked independently by hand from the definitions (conv + fc weights, biases and BN
 * affine; conv + fc multiply-adds): resnet50d 25.576 M / 4.329 G, seresnet50 28.088 M / 4.092 G,
 * resnext50_32x4d 25.029 M / 4.230 G, ese_vovnet39b 24.57 M (eSE on the last module of each
 * stage only) / 7.07 G. The MACs differ by pooling and elementwise work the cards count (< 1%).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as ort from 'onnxruntime-node';
import type { Model } from '../../src/ir/model';
import { saveModelToBuffer } from '../../src/onnx/io';
import { buildSample, Rng, SampleName } from '../../src/samples';
import { costModel } from '../../src/analysis/cost';
import { recognize } from '../../src/analysis/structure';
import { convert } from '../../src/passes/convert';

/** Learnable parameters as papers count them: conv and fc weights and biases, BN scale and shift. */
function paramCount(m: Model): number {
  let n = 0;
  for (const node of m.graph.nodes) {
    const slots = node.opType === 'Conv' || node.opType === 'Gemm' || node.opType === 'BatchNormalization' ? [1, 2] : [];
    for (const i of slots) n += m.graph.constantTensor(node.inputs[i] ?? null)?.size ?? 0;
  }
  return n;
}

/** Conv and Gemm multiply-adds, from the weights and the output shapes (independent of the cost model). */
function convMacs(m: Model): number {
  let n = 0;
  for (const node of m.graph.nodes) {
    if (node.opType !== 'Conv' && node.opType !== 'Gemm') continue;
    const w = m.graph.constantTensor(node.inputs[1] ?? null)!.dims;
    const out = node.outputs[0]!.shape!.slice(1) as number[];
    const perOutput = w.slice(1).reduce((a, b) => a * b, 1);
    n += perOutput * out.reduce((a, b) => a * b, 1);
  }
  return n;
}

const PUBLISHED: Record<string, { params: number; macs: number; rule: string; blocks: number[] }> = {
  resnet50d: { params: 25.58e6, macs: 4.35e9, rule: 'resnet-bottleneck', blocks: [3, 4, 6, 3] },
  seresnet50: { params: 28.09e6, macs: 4.11e9, rule: 'resnet-bottleneck', blocks: [3, 4, 6, 3] },
  resnext50: { params: 25.03e6, macs: 4.26e9, rule: 'resnext-bottleneck', blocks: [3, 4, 6, 3] },
  'vovnet39-ese': { params: 24.57e6, macs: 7.09e9, rule: 'vovnet-osa', blocks: [1, 1, 2, 2] },
};

async function runs(m: Model, resolution = 224): Promise<number[]> {
  const s = await ort.InferenceSession.create(saveModelToBuffer(m));
  const x = new Rng(3).normals(3 * resolution * resolution, 1);
  const out = await s.run({ input: new ort.Tensor('float32', x, [1, 3, resolution, resolution]) });
  assert.equal(s.outputNames, ['logits']);
  assert.ok((out.logits.data as Float32Array).every(Number.isFinite));
  return [...out.logits.dims];
}

for (const [name, want] of Object.entries(PUBLISHED)) {
  test(`${name}: full size within 1% of the published ${want.params / 1e6} M params and ${want.macs / 1e9} GMACs; every block recognised; PRN, CSP and ELAN convert it and the results run`, async () => {
    const m = buildSample(name as SampleName);
    const params = paramCount(m);
    assert.ok(Math.abs(params - want.params) / want.params < 0.01, `${params} params`);
    const macs = convMacs(m);
    assert.ok(Math.abs(macs - want.macs) / want.macs < 0.01, `${macs} MACs`);
    // the cost model agrees with the hand count on the weight layers (its total may add pooling / elementwise work)
    const cost = costModel(m).totals.macs;
    assert.ok(cost >= macs && cost < macs * 1.01, `cost model ${cost} vs ${macs}`);

    const s = recognize(m);
    assert.equal(s.unmatched, []);
    assert.equal(s.stages.map((st) => st.blocks.length), want.blocks);
    assert.ok(s.stages.every((st) => st.blocks.every((b) => b.rule === want.rule)));

    for (const to of ['prn', 'csp', 'elan'] as const) {
      const { model, report } = convert(m, { to });
      assert.equal(report.coverage.left, [], `${to}: ${report.coverage.left}`);
      if (to !== 'prn') assert.ok(report.after.params <= report.before.params && report.after.macs <= report.before.macs, `${to} grew the model: ${report.growth}`);
      assert.equal(await runs(model), [1, 1000]);
    }
  });
}

test('negative: the plain resnet50 sample is none of the variants (no SE, no AvgPool shortcut, no grouped 3x3)', () => {
  const m = buildSample('resnet50', { width: 0.25, resolution: 64, classes: 10 });
  const ops = new Set(m.graph.nodes.map((n) => n.opType));
  assert.ok(!ops.has('AveragePool') && !ops.has('ReduceMean') && !ops.has('Mul'));
  assert.ok(m.graph.nodes.every((n) => n.int('group', 1) === 1));
  const d = buildSample('resnet50d', { width: 0.25, resolution: 64, classes: 10 });
  assert.is(d.graph.nodes.filter((n) => n.opType === 'AveragePool').length, 3);
  const x = buildSample('resnext50', { width: 0.25, resolution: 64, classes: 10 });
  assert.is(x.graph.nodes.filter((n) => n.opType === 'Conv' && n.int('group', 1) === 32).length, 16);
});

test.run();
