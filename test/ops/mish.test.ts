/**
 * Mish as a single node (opset 18) is one registry entry, `Mish: act()`: with it, a network whose
 * activation is Mish gets shapes, MACs, gradient paths, and is recognised where the rules accept an
 * activation (PRN converts it); without that entry (removed here), none of it. The network is
 * resnet18 at width 1/4, 64x64, every Relu replaced by Mish: its MACs are the hand count of
 * cost.test.ts (11060480); its gradient paths those of the Relu network, which
 * gradient-path.test.ts checks against the reference figures (an activation is transparent).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { costModel } from '../../src/analysis/cost';
import { gradientPaths } from '../../src/analysis/gradient-path';
import { inferShapes } from '../../src/analysis/shapes';
import { recognize } from '../../src/analysis/structure';
import { opInfo, unregisterOp } from '../../src/ops';
import { convert } from '../../src/passes/convert';
import { createSession, runFloat } from '../../src/profile/ort';
import { buildSample } from '../../src/samples';

function resnet18(act: string) {
  const m = buildSample('resnet18', { width: 0.25, resolution: 64, classes: 10 });
  m.setOpset(18);
  for (const n of m.graph.nodes) if (n.opType === 'Relu') n.opType = act;
  return m;
}

test('the Mish entry: a pointwise activation, channels preserved, no parameters, transparent', () => {
  const e = opInfo('Mish')!;
  assert.ok(e.shape && e.activation);
  assert.is(e.channels, 'preserve');
  assert.is(e.params, undefined);
  assert.is(e.weightLayer, undefined);
});

test('single-node Mish at opset 18: onnxruntime runs it; shapes, MACs (11060480 by hand), gradient paths, structure, PRN', async () => {
  const m = resnet18('Mish');
  assert.ok(m.graph.nodes.filter((n) => n.opType === 'Mish').length === 17);
  const s = await createSession(m, { logSeverityLevel: 3 });
  const y = await runFloat(s, { [s.inputNames[0]]: { data: new Float32Array(3 * 64 * 64).fill(0.1), dims: [1, 3, 64, 64] } });
  assert.equal([...y[s.outputNames[0]].dims], [1, 10]);

  assert.equal(inferShapes(m).warnings, []);
  assert.equal(m.graph.outputs[0].inferred!.shape, [1, 10]);
  assert.is(costModel(m).totals.macs, 11060480);
  const relu = gradientPaths(resnet18('Relu')).network;
  assert.equal(gradientPaths(m).network, relu);
  assert.is(relu.layers, 21);

  const st = recognize(m);
  assert.is(st.family, 'resnet');
  assert.equal(st.stages.map((x) => x.blocks.length), [2, 2, 2, 2]);
  assert.is(convert(m, { to: 'prn' }).report.converted.length, 8);
});

test('negative: without the Mish entry, no shapes past the first Mish, no structure, PRN converts nothing', () => {
  const restore = unregisterOp('Mish');
  try {
    assert.is(opInfo('Mish'), undefined);
    const m = resnet18('Mish');
    assert.ok(inferShapes(m).warnings.some((w) => w.includes('does not know op Mish')));
    assert.is(recognize(m).family, 'unknown');
    assert.is(convert(m, { to: 'prn' }).report.converted.length, 0);
  } finally {
    restore();
  }
  assert.ok(opInfo('Mish'));
});

test.run();
