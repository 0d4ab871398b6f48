/**
 * Detectors through PRN / CSP / ELAN: PRN exact against the fixtures' PRN outputs (all three raw
 * outputs); CSP and ELAN convert backbone and neck, and every output runs in onnxruntime with its
 * name and shape, optimisation off and at ORT's default level; full-size YOLOv3 MACs ratios.
 */
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../../src/onnx/io';
import { convert } from '../../src/passes/convert';
import { createSession, runFloat } from '../../src/profile/ort';
import { buildSample } from '../../src/samples';
import { fixturesDir, maxAbsDiff, readNpy } from '../helpers';

const D = path.join(fixturesDir, '..', 'fixtures-detectors');
const f = (name: string) => path.join(D, name);

async function runAll(model: Parameters<typeof createSession>[0], input: string, level: 'disabled' | 'all' = 'disabled') {
  const s = await createSession(model, { graphOptimizationLevel: level });
  const x = readNpy(f(input));
  return { names: s.outputNames, out: await runFloat(s, { [s.inputNames[0]]: { data: x.data, dims: x.shape } }) };
}

test('yolov3-w25-raw: --to prn (ratio 0.5) reproduces all three PRN reference outputs', async () => {
  const { model, report } = convert(loadModel(f('yolov3-w25-raw.onnx')), { to: 'prn', ratio: 0.5 });
  assert.is(report.converted.length, 23);
  const { names, out } = await runAll(model, 'yolov3-w25-raw.input.npy');
  assert.equal(names, ['yolo_s32', 'yolo_s16', 'yolo_s8']);
  names.forEach((n, i) => {
    const { diff, tol } = maxAbsDiff(out[n].data, readNpy(f(`yolov3-w25-raw.prn-output${i ? i : ''}.npy`)).data);
    assert.ok(diff <= tol, `${n}: ${diff} > ${tol}`);
  });
});

test('negative: the plain yolov3-w25-raw is NOT within tolerance of the PRN reference', async () => {
  const { out } = await runAll(loadModel(f('yolov3-w25-raw.onnx')), 'yolov3-w25-raw.input.npy');
  const { diff, tol } = maxAbsDiff(out.yolo_s32.data, readNpy(f('yolov3-w25-raw.prn-output.npy')).data);
  assert.ok(diff > tol);
});

test('yolov3-w25 (decode in the graph): --to prn reproduces the PRN reference output; the decode Adds are not touched', async () => {
  const { model, report } = convert(loadModel(f('yolov3-w25.onnx')), { to: 'prn', ratio: 0.5 });
  assert.is(report.converted.length, 23);
  const { out } = await runAll(model, 'yolov3-w25.input.npy');
  const { diff, tol } = maxAbsDiff(out.output.data, readNpy(f('yolov3-w25.prn-output.npy')).data);
  assert.ok(diff <= tol, `${diff} > ${tol}`);
});

for (const m of ['yolov3-w25', 'yolov3-w25-raw']) {
  for (const to of ['csp', 'elan'] as const) {
    test(`${m}: --to ${to} converts backbone and the 3 neck conv sets; outputs keep names and shapes and run (ORT opt off and default)`, async () => {
      const src = loadModel(f(`${m}.onnx`));
      const shapes = src.graph.outputs.map((o) => [o.name, o.shape]);
      const { model, report } = convert(src, { to });
      assert.is(report.converted.filter((c) => c.stage === 'neck').length, 3);
      assert.ok(report.converted.some((c) => typeof c.stage === 'number'), 'backbone converted too');
      assert.equal(model.graph.outputs.map((o) => [o.name, o.shape]), shapes);
      for (const level of ['disabled', 'all'] as const) {
        const { names, out } = await runAll(model, `${m}.input.npy`, level);
        assert.equal(names, shapes.map(([n]) => n));
        for (const [n, s] of shapes) {
          assert.equal([...out[n as string].dims], s);
          assert.ok(out[n as string].data.every(Number.isFinite), `${n} finite at ${level}`);
        }
      }
    });
  }
}

test('yolov5n: --to elan replaces the 5 C3 blocks of the neck (SiLU copied), output0 keeps name and shape and runs at both ORT levels; --to csp has nothing to convert', async () => {
  const { model, report } = convert(loadModel(f('yolov5n.onnx')), { to: 'elan' });
  const neck = report.converted.filter((c) => c.stage === 'neck');
  // yolov5n has 8 C3 blocks; the backbone's last one (at P5, before SPPF) reads as a backbone stage
  // since structure recognises cross-stage partials (issue 12), so the neck has 4 of them here
  assert.is(neck.length, 4);
  assert.is(report.converted.filter((c) => c.stage !== 'neck').length + neck.length, 8);
  assert.ok(neck.every((c) => c.change.startsWith('csp-c3 -> ELAN')));
  assert.ok(report.unconverted.some((u) => u.reason.startsWith('sppf')), 'SPPF listed as kept');
  assert.ok(model.graph.nodes.some((n) => n.name.startsWith('/neck/') && n.opType === 'Sigmoid'), 'SiLU written out as the source did');
  for (const level of ['disabled', 'all'] as const) {
    const { out } = await runAll(model, 'yolov5n.input.npy', level);
    assert.equal([...out.output0.dims], [1, 1575, 85]);
    assert.ok(out.output0.data.every(Number.isFinite));
  }
  assert.throws(() => convert(loadModel(f('yolov5n.onnx')), { to: 'csp', strict: true }), (e: { code?: string }) => e.code === 'E_PATTERN');
});

test('yolov5n coverage: the neck\'s C3 blocks and SPPF count as recognised, its FPN / PAN concats as explained; nothing is left undone by ELAN or PRN', () => {
  // 8 C3 (4 read as backbone CSP stages, 4 in the neck) and one SPPF; the 4 FPN / PAN concats join paths
  const elan = convert(loadModel(f('yolov5n.onnx')), { to: 'elan' }).report;
  assert.is(elan.coverage.blocks, elan.coverage.candidates);
  assert.equal(elan.coverage.left, []);
  assert.is(elan.incomplete, undefined);
  const sppf = elan.unconverted.find((u) => u.reason.startsWith('sppf'));
  assert.ok(sppf && /pooling block/.test(sppf.reason), 'SPPF is listed, with why it is kept');
  assert.equal(elan.unrecognized, []);
  // PRN: the neck's C3 blocks are shortcut=False: nothing to mask there, and it says so
  const prn = convert(loadModel(f('yolov5n.onnx')), { to: 'prn' }).report;
  assert.is(prn.converted.length, 7, 'the backbone C3s hold 1 + 2 + 3 + 1 bottleneck shortcuts');
  assert.equal(prn.coverage.left, []);
  assert.ok(prn.notes.some((n) => /neck: 5 block\(s\) recognised, 0 residual add\(s\) in them; without a residual add \(nothing to mask\): 1 sppf, 4 csp-c3/.test(n)), prn.notes.join(' / '));
  // the stage table has the neck as a row of its own; its params are what the parts add up to
  const neck = elan.stages.before.find((s) => s.stage === 'neck')!;
  assert.ok(neck.params > 0 && neck.macs > 0);
  assert.ok(elan.stages.after.find((s) => s.stage === 'neck')!.params !== neck.params, 'the neck changed');
  // negative: --to csp has nothing to do on a model already CSP in backbone and neck: it is written
  // unchanged, and the warning names the neck's C3 blocks (--strict makes it an error)
  const same = convert(loadModel(f('yolov5n.onnx')), { to: 'csp' });
  assert.is(same.report.converted.length, 0);
  assert.ok(same.report.warnings.some((w) => /already cross-stage partial.*neck's 4 C3 block\(s\) are CSP blocks too.*written unchanged/.test(w)), same.report.warnings.join('\n'));
  assert.throws(() => convert(loadModel(f('yolov5n.onnx')), { to: 'csp', strict: true }), (e: Error) => /already cross-stage partial.*neck's 4 C3 block\(s\) are CSP blocks too/.test(e.message));
});

test('yolov3-tiny-w25: no residual -> PRN says nothing to convert; plain model runs with opt off (ORT default level differs: PadFusion)', async () => {
  assert.is(convert(loadModel(f('yolov3-tiny-w25.onnx')), { to: 'prn' }).report.converted.length, 0);
  const { out } = await runAll(loadModel(f('yolov3-tiny-w25.onnx')), 'yolov3-tiny-w25.input.npy');
  const { diff, tol } = maxAbsDiff(out.output.data, readNpy(f('yolov3-tiny-w25.output.npy')).data);
  assert.ok(diff <= tol, `opt off: ${diff} > ${tol}`);
  const all = await runAll(loadModel(f('yolov3-tiny-w25.onnx')), 'yolov3-tiny-w25.input.npy', 'all');
  const d2 = maxAbsDiff(all.out.output.data, readNpy(f('yolov3-tiny-w25.output.npy')).data);
  // the fixture README's known ORT bug (PadFusion folds the computed pads wrongly): reported, not hidden
  console.log(`  yolov3-tiny-w25 at ORT's default level: max abs diff ${d2.diff.toFixed(3)} vs tolerance ${d2.tol.toFixed(4)} (PadFusion bug)`);
});

test('full-size YOLOv3 at 416 (gpt sample yolov3): CSP (split 0.5, fusion both) <= 0.78x MACs, ELAN defaults <= 0.74x, neck included', () => {
  const csp = convert(buildSample('yolov3'), { to: 'csp', split: 0.5, fusion: 'both', inPlace: true }).report;
  const elan = convert(buildSample('yolov3'), { to: 'elan', inPlace: true }).report;
  for (const [r, bound] of [[csp, 0.78], [elan, 0.74]] as const) {
    assert.ok(r.after.macs / r.before.macs <= bound, `${r.target}: ${(r.after.macs / r.before.macs).toFixed(3)}x`);
    assert.is(r.converted.filter((c) => c.stage === 'neck').length, 3);
  }
});

// The three conv sets of YOLOv3 at 416: M = 512 at 13x13, 256 at 26x26, 128 at 52x52, so
// sum(M^2 x H x W) = 3 x 44,302,336 = 132,907,008 (each set the same).
const M2HW = 3 * 512 * 512 * 13 * 13;

test('neck MACs by hand: CSP (split 0.5, fusion both) saves 28.75 M^2 HW per set; ELAN saves 35.1875 (stack 2) / 36.8125 (neck stack 1)', () => {
  // a set: 1x1 C->M, then 2 x (3x3 M->2M, 1x1 2M->M) = 40 M^2 per pixel after the first 1x1.
  // CSP: first 1x1 kept; p1 = M/2: 2 x (3x3 p1->2p1, 1x1 2p1->p1) = 10 M^2, transition p1->p1 0.25 M^2,
  //   transition M->M 1 M^2: saves 40 - 11.25 = 28.75 M^2.
  // ELAN (width 0.5): two 1x1 C->M/2 (= the old C->M), 3x3 M/2->M/4 (1.125 M^2), 3 x 3x3 M/4->M/4
  //   (1.6875 M^2), concat 2M, 1x1 2M->M (2 M^2): 4.8125 M^2, saves 35.1875; neck stack 1: 3.1875, saves 36.8125.
  const base = convert(buildSample('yolov3'), { to: 'csp', parts: 'neck', inPlace: true }).report;
  assert.is(base.before.macs - base.after.macs, 28.75 * M2HW);
  const elan = convert(buildSample('yolov3'), { to: 'elan', parts: 'neck', inPlace: true }).report;
  assert.is(elan.before.macs - elan.after.macs, 35.1875 * M2HW);
  const elan1 = convert(buildSample('yolov3'), { to: 'elan', parts: 'neck', neckStack: 1, inPlace: true }).report;
  assert.is(elan1.before.macs - elan1.after.macs, 36.8125 * M2HW);
  // the backbone is left alone with parts: 'neck'
  assert.ok(base.converted.every((c) => c.stage === 'neck'));
});

test('parts add up: CSP all = backbone + neck savings; backbone only leaves the neck conv sets', () => {
  const r = (parts: 'all' | 'backbone' | 'neck') => convert(buildSample('yolov3'), { to: 'csp', parts, inPlace: true }).report;
  const [all, bb, neck] = [r('all'), r('backbone'), r('neck')];
  assert.is(all.before.macs - all.after.macs, (bb.before.macs - bb.after.macs) + (neck.before.macs - neck.after.macs));
  assert.is(bb.converted.filter((c) => c.stage === 'neck').length, 0);
  assert.is(all.options.parts, undefined);
  assert.is(neck.options.parts, 'neck');
});

test('negative: parts neck on a classifier is E_PATTERN; a bad neck stack or parts is E_ARG; parts is not a PRN option', () => {
  const small = () => buildSample('darknet53', { width: 0.25, resolution: 64, classes: 10 });
  assert.throws(() => convert(small(), { to: 'csp', parts: 'neck' }), (e: { code?: string }) => e.code === 'E_PATTERN');
  assert.throws(() => convert(small(), { to: 'elan', neckStack: 0 }), (e: { code?: string }) => e.code === 'E_ARG');
  assert.throws(() => convert(small(), { to: 'csp', parts: 'head' as 'neck' }), (e: { code?: string }) => e.code === 'E_ARG');
  assert.throws(() => convert(small(), { to: 'prn', parts: 'neck' } as never), (e: { code?: string }) => e.code === 'E_ARG');
});

test.run();
