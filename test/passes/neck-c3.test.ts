/**
 * C3 blocks in a detector's neck, with and without the bottleneck shortcut (ultralytics' C3:
 * cv1 1x1 -> n Bottlenecks (1x1, 3x3, + input when shortcut=True), cv2 1x1 across, concat, cv3 1x1).
 * PRN masks the shortcut Add of a C3 with shortcut wherever it sits, exactly as the masked-residual
 * reference computes it; a C3 without shortcut is seen and said, and not counted as left undone.
 * ELAN rewrites both forms into an ELAN block of the same output width.
 *
 *   x ─ c1 /2 ─ c2 /2 ─┬───────────────────── h0 (1x1) ─ out0
 *          │           └ Resize x2 ─ concat ─ C3 ─ h1 (1x1) ─ out1
 *          └─────────────────────────┘
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { recognizeDetector } from '../../src/analysis/detector';
import { inferShapes } from '../../src/analysis/shapes';
import { floatTensor } from '../../src/ir/float-data';
import type { Model } from '../../src/ir/model';
import { convert } from '../../src/passes/convert';
import { createSession, runFloat } from '../../src/profile/ort';
import { maskResidualsForReference } from '../../src/verify/reference';
import { c3NeckDetector } from '../fixtures/c3-neck-detector';
import { maxAbsDiff } from '../helpers';

/** Seeded weights in place of Tiny's zeros (BN variances positive), so outputs depend on every path. */
function randomize(m: Model, seed = 7): Model {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const g = m.graph;
  for (const n of [...g.nodes]) {
    n.inputs.forEach((v, i) => {
      if (!v?.isInitializer || v.tensor?.dataType !== 1 || !(n.opType === 'Conv' || n.opType === 'BatchNormalization')) return;
      const size = v.tensor.dims.reduce((a, b) => a * b, 1);
      const pos = /running_var|bn\.weight/.test(v.name);
      const data = Float32Array.from({ length: size }, () => (pos ? 0.5 + rnd() : rnd() - 0.5));
      n.setInput(i, g.addInitializer(floatTensor(g.uniqueName(`${v.name}_r`), v.tensor.dims, data)));
    });
  }
  g.cleanup();
  return m;
}

function detector(shortcut: boolean): Model {
  return randomize(c3NeckDetector(shortcut));
}

async function outputs(m: Model): Promise<Record<string, Float32Array>> {
  const s = await createSession(m, { graphOptimizationLevel: 'disabled' });
  const x = Float32Array.from({ length: 3 * 32 * 32 }, (_, i) => Math.sin(i * 0.37));
  const out = await runFloat(s, { x: { data: x, dims: [1, 3, 32, 32] } });
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float32Array]));
}

test('C3 with shortcut in the neck: recognised (csp-c3), PRN masks its Add, exact against the masked-residual reference', async () => {
  const d = recognizeDetector(detector(true));
  assert.ok(d.detector);
  assert.equal(d.neck.blocks.map((b) => b.rule), ['csp-c3']);
  const { model, report } = convert(detector(true), { to: 'prn' });
  assert.is(report.converted.length, 1);
  assert.match(report.converted[0].change, /^n\.m0\.add: masked residual, shortcut into 8 of 16 channels/);
  assert.equal(report.coverage.left, []);
  const ref = detector(true);
  assert.equal(maskResidualsForReference(ref, 0.5), { masked: 1 });
  const [a, b, plain] = [await outputs(model), await outputs(ref), await outputs(detector(true))];
  for (const k of Object.keys(b)) {
    const { diff, tol } = maxAbsDiff(a[k], b[k]);
    assert.ok(diff <= tol, `${k}: ${diff} > ${tol}`);
  }
  // negative: the plain model is not the reference on the neck's output
  assert.ok(maxAbsDiff(plain[model.graph.outputs[1].name], b[model.graph.outputs[1].name]).diff > maxAbsDiff(plain.h1_out, b.h1_out).tol);
});

test('C3 without shortcut in the neck: PRN changes nothing there, says what it saw, and leaves nothing counted undone', () => {
  const { report } = convert(detector(false), { to: 'prn' });
  assert.is(report.converted.length, 0);
  assert.equal(report.coverage.left, []);
  assert.ok(report.notes.concat(report.warnings).some((n) => /neck: 1 block\(s\) recognised, 0 residual add\(s\) in them; without a residual add \(nothing to mask\): 1 csp-c3/.test(n)), [...report.notes, ...report.warnings].join(' / '));
});

for (const shortcut of [true, false]) {
  test(`--to elan on a neck C3 ${shortcut ? 'with' : 'without'} shortcut: an ELAN block labelled neck.n0 / neck, output widths and names unchanged, runs`, async () => {
    const src = detector(shortcut);
    inferShapes(src);
    const shapes = src.graph.outputs.map((o) => [o.name, o.shape]);
    const { model, report } = convert(src, { to: 'elan', parts: 'neck' });
    assert.equal(report.converted.map((c) => [c.block, c.stage]), [['neck.n0', 'neck']]);
    assert.match(report.converted[0].change, /^csp-c3 -> ELAN block/);
    assert.equal(model.graph.outputs.map((o) => [o.name, o.shape]), shapes);
    const neckRow = report.stages.after.find((s) => s.stage === 'neck');
    assert.ok(neckRow && neckRow.params > 0, 'the stage table has a neck row');
    const out = await outputs(model);
    assert.ok(Object.values(out).every((v) => v.every(Number.isFinite)));
  });
}

test.run();
