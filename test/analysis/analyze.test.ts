/**
 * analyze() on every sample, and `inspect` on the samples at the reference sizes against the
 * published parameter and MAC counts (torchvision, the VoVNet paper, YOLOv3 / CSPNet for Darknet-53).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { analyze } from '../../src/analysis/analyze';
import { validateAnalyzeReport } from '../../src/report/analyze-report';
import { inspect } from '../../src/analysis/inspect';
import { Graph, floatType } from '../../src/ir/graph';
import { Tensor } from '../../src/ir/tensor';
import { buildSample, PlainSampleName, SampleName } from '../../src/samples';
import { emptyModel } from '../synthetic';

const expected: Record<PlainSampleName, { family: string; blocks: number[] }> = {
  resnet18: { family: 'resnet', blocks: [2, 2, 2, 2] },
  resnet50: { family: 'resnet', blocks: [3, 4, 6, 3] },
  darknet53: { family: 'darknet53', blocks: [1, 2, 8, 8, 4] },
  vovnet39: { family: 'vovnet', blocks: [1, 1, 2, 2] },
  vovnet57: { family: 'vovnet', blocks: [1, 1, 4, 3] },
};

for (const [name, e] of Object.entries(expected) as [PlainSampleName, (typeof expected)[PlainSampleName]][]) {
  test(`${name} sample (quarter width): recognised as ${e.family} with ${e.blocks.join('/')} blocks`, () => {
    const r = analyze(buildSample(name, { width: 0.25, resolution: 64, classes: 10 }));
    validateAnalyzeReport(r);
    assert.is(r.family, e.family);
    assert.equal(r.stages.map((s) => s.blocks), e.blocks);
    assert.equal(r.unmatched, []);
  });
}

// Published figures (params, MACs): torchvision's model docs (ResNet-18 11.69 M / 1.81 GFLOPS,
// ResNet-50 25.56 M / 4.09 GFLOPS, where torchvision's "FLOPS" are multiply-accumulates), the CSPNet
// paper's Darknet-53 at 256 (41.6 M, 18.57 BFLOPs = 9.29 GMACs), and the VoVNet paper / timm
// (VoVNet-39 22.6 M / 7.09 G, VoVNet-57 36.6 M / 8.95 G at 224).
const published: [SampleName, number, number, number][] = [
  ['resnet18', 224, 11.69e6, 1.81e9],
  ['resnet50', 224, 25.56e6, 4.09e9],
  ['darknet53', 256, 41.6e6, 9.29e9],
  ['vovnet39', 224, 22.6e6, 7.09e9],
  ['vovnet57', 224, 36.6e6, 8.95e9],
];

for (const [name, res, params, macs] of published) {
  test(`inspect ${name} at ${res}: params and MACs within 1% of the published counts`, () => {
    const r = inspect(buildSample(name, { resolution: res }));
    assert.ok(Math.abs(r.params / params - 1) < 0.01, `params ${r.params} vs ${params}`);
    assert.ok(Math.abs(r.macs / macs - 1) < 0.01, `MACs ${r.macs} vs ${macs}`);
  });
}

/**
 *   x [1,3,8,8] -> com.example::Foo -> Conv 1x1 (W [2,3,1,1]) -> y
 * Shape inference does not know Foo: the warning names the node, once.
 */
test('a warning is reported once, though several analyses run shape inference', () => {
  const g = new Graph();
  const x = g.value('x');
  x.declared = floatType([1, 3, 8, 8]);
  g.addInput(x);
  const foo = g.addNode({ opType: 'Foo', domain: 'com.example', name: 'foo', inputs: [x], outputs: ['f'] });
  const w = g.addInitializer(Tensor.float32('w', [2, 3, 1, 1], new Float32Array(6)));
  const conv = g.addNode({ opType: 'Conv', name: 'conv', inputs: [foo.outputs[0], w], outputs: ['y'] });
  g.addOutput(conv.outputs[0]!);
  const r = analyze(emptyModel(g));
  const about = r.warnings.filter((m) => m.includes("'foo'"));
  assert.is(about.length, 1, r.warnings.join(' | '));
  assert.equal(r.warnings, [...new Set(r.warnings)]);
});

test.run();
