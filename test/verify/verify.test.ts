/**
 * gpt verify (src/verify/): every PRN conversion of every fixture that has a PRN reference output is
 * exact, and the masked-residual reference verify builds equals the fixtures' own PRN outputs (made
 * by the fixture authors in PyTorch / Darknet, an independent figure). Negative cases: a tampered
 * weight, a wrong recorded ratio (both fail); CSP is information, not a failure.
 *
 *   source ──(convert --to prn)──> converted ─┐
 *      └──(x * mask on each shortcut)─> ref ──┴─ compare by output name, tol 1e-4 x max(1, max|ref|)
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, saveModel } from '../../src/onnx/io';
import { parseNpy, readNpy } from '../../src/onnx/npy';
import { convert } from '../../src/passes/convert';
import { cloneModel } from '../../src/passes/model-copy';
import { createSession, runFloat } from '../../src/profile/ort';
import { compareOutputs, exactTolerance } from '../../src/verify/compare';
import { maskResidualsForReference } from '../../src/verify/reference';
import { validateVerifyReport, verify } from '../../src/verify';
import { repoRoot, tmpDir } from '../helpers';

interface Entry { model: string; sampleInput: string; prnOutput?: string; outputs?: { name: string; prnOutput?: string }[]; output?: string }
const sets = ['fixtures', 'fixtures-realworld', 'fixtures-detectors'].map((d) => path.resolve(repoRoot, '..', 'shared', d)).filter((d) => fs.existsSync(path.join(d, 'manifest.json')));
const prnFixtures = sets.flatMap((dir) => (JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')).models as Entry[]).filter((m) => m.prnOutput).map((m) => ({ dir, ...m })));

test('compareOutputs: max abs / relative diff and cosine, by hand', () => {
  // a = [1, 2, 2], e = [1, 2, 3]: diff 1, max |e| 3 -> rel 1/3; cos = (1+4+6) / (3 * sqrt 14)
  const d = compareOutputs([1, 2, 2], [1, 2, 3]);
  assert.is(d.maxAbsDiff, 1);
  assert.ok(Math.abs(d.maxRelDiff - 1 / 3) < 1e-15);
  assert.ok(Math.abs(d.cosine - 11 / (3 * Math.sqrt(14))) < 1e-15);
  assert.ok(Math.abs(d.tolerance - 3e-4) < 1e-18);
  assert.is(d.withinTolerance, false);
  assert.is(compareOutputs([0.5, 0.50005], [0.5, 0.5]).withinTolerance, true); // 5e-5 <= 1e-4 x max(1, 0.5)
  assert.is(exactTolerance(0.2), 1e-4);
  assert.is(compareOutputs([NaN], [1]).withinTolerance, false);
});

test('parseNpy: float32 / float64, refuses other dtypes', () => {
  const npy = (descr: string, shape: string, body: Buffer) => {
    let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape}), }`;
    h += ' '.repeat(63 - ((10 + h.length) % 64)) + '\n';
    const head = Buffer.alloc(10);
    head.write('\x93NUMPY', 0, 'latin1');
    head[6] = 1;
    head.writeUInt16LE(h.length, 8);
    return Buffer.concat([head, Buffer.from(h, 'latin1'), body]);
  };
  const f8 = Buffer.alloc(16);
  f8.writeDoubleLE(1.5, 0);
  f8.writeDoubleLE(-2, 8);
  assert.equal(parseNpy(npy('<f8', '2,', f8)), { shape: [2], data: new Float32Array([1.5, -2]) });
  assert.throws(() => parseNpy(npy('<i8', '2,', f8)), /dtype <i8/);
  assert.throws(() => parseNpy(npy('<f4', '3,', f8)), /16 data bytes/);
});

/**
 * Real-world fixtures whose PRN conversion verify finds NOT exact (max abs diff against the
 * masked-residual reference, with the fixture's sample input): gaps of the PRN pass, not of verify.
 */
/** Fixtures whose PRN conversion verify finds inexact (none since the variant rules of issue 12). */
const KNOWN_GAPS: Record<string, string> = {};

for (const fx of prnFixtures) {
  test(`${path.basename(fx.dir)}/${fx.model}: the masked-residual reference equals the fixture's PRN output`, async () => {
    const ref = cloneModel(loadModel(path.join(fx.dir, fx.model)));
    const r = maskResidualsForReference(ref, 0.5);
    assert.ok('masked' in r && r.masked > 0, JSON.stringify(r));
    const s = await createSession(ref);
    const x = readNpy(path.join(fx.dir, fx.sampleInput));
    const out = await runFloat(s, { [s.inputNames[0]]: { data: x.data, dims: x.shape } });
    await s.release();
    const files = fx.outputs?.length ? fx.outputs.filter((o) => o.prnOutput).map((o) => ({ name: o.name, file: o.prnOutput! })) : [{ name: s.outputNames[0], file: fx.prnOutput! }];
    for (const { name, file } of files) {
      const d = compareOutputs(out[name].data, readNpy(path.join(fx.dir, file)).data);
      assert.ok(d.withinTolerance, `${name}: ${d.maxAbsDiff} > ${d.tolerance}`);
    }
  });

  const gap = KNOWN_GAPS[fx.model];
  test(`${path.basename(fx.dir)}/${fx.model}: verify says the PRN conversion is ${gap ? 'NOT exact (a known gap of the PRN pass, found by verify)' : 'exact'}, output by output`, async () => {
    const file = path.join(fx.dir, fx.model);
    const { model } = convert(loadModel(file), { to: 'prn', ratio: 0.5 });
    const x = readNpy(path.join(fx.dir, fx.sampleInput));
    const inputName = loadModel(file).graph.inputs.find((v) => !v.tensor)!.name;
    const r = await verify(file, model, { inputs: { [inputName]: x } });
    validateVerifyReport(r);
    assert.is(r.reference, 'masked-residual');
    assert.is(r.expectation, 'exact');
    if (gap) {
      // the reference equals the fixture's PRN output (test above); the conversion does not: when the
      // pass is fixed this fails, and the model comes off KNOWN_GAPS
      assert.is(r.passed, false, `${fx.model} is now exact: remove it from KNOWN_GAPS`);
      return;
    }
    assert.ok(r.passed, JSON.stringify(r.outputs));
    assert.is(r.outputs.length, fx.outputs?.length || 1);
    // masking changes the output: the source is not what PRN computes (so the check has teeth)
    assert.ok(r.outputs.some((o) => o.vsSource!.maxAbsDiff > o.tolerance));
  });
}

const r18 = path.resolve(repoRoot, '..', 'shared', 'fixtures', 'resnet18-w25.onnx');

test('negative: a tampered weight in a PRN model fails verify', async () => {
  const { model } = convert(loadModel(r18), { to: 'prn', ratio: 0.5 });
  const w = model.graph.nodes.find((n) => n.opType === 'Conv')!.inputs[1]!.tensor!;
  const f = Float32Array.from(w.data() as Float32Array);
  f[0] += 0.5;
  w.setData(w.dims, f);
  const r = await verify(r18, model);
  assert.is(r.expectation, 'exact');
  assert.is(r.passed, false);
  assert.is(r.outputs[0].withinTolerance, false);
});

test('negative: a PRN model whose metadata records another ratio fails verify', async () => {
  const { model } = convert(loadModel(r18), { to: 'prn', ratio: 0.5 });
  model.setMetadata('gpt.conversion', JSON.stringify({ target: 'prn', options: { ratio: 0.25, asymmetric: false } }));
  assert.is((await verify(r18, model)).passed, false);
});

test('CSP: information against the source, never a failure', async () => {
  const { model } = convert(loadModel(r18), { to: 'csp' });
  const r = await verify(r18, model);
  validateVerifyReport(r);
  assert.is(r.reference, 'source');
  assert.is(r.expectation, 'information');
  assert.is(r.passed, true);
  assert.ok(r.outputs[0].maxAbsDiff > 0 && r.outputs[0].cosine < 1);
  assert.match(r.notes.join(' '), /untrained/);
});

test('onProgress: from 0 to 1, never backwards, each step named; with and without a reference to run', async () => {
  for (const to of ['prn', 'csp'] as const) {
    const { model } = convert(loadModel(r18), { to });
    const seen: [number, string][] = [];
    await verify(r18, model, { onProgress: (f, what) => seen.push([f, what]) });
    const fractions = seen.map(([f]) => f);
    assert.is(fractions[0], 0);
    assert.is(fractions[fractions.length - 1], 1);
    assert.ok(fractions.every((f, i) => i === 0 || f >= fractions[i - 1]), fractions.join(' '));
    const whats = seen.map(([, w]) => w).join(' | ');
    // weights load 2, reference 1, each run 3 (of 12): PRN runs the reference at 9/12, CSP has none to run
    if (to === 'prn') assert.equal(fractions.slice(0, -1), [0, 2 / 12, 3 / 12, 6 / 12, 9 / 12], whats);
    else assert.equal(fractions.slice(0, -1), [0, 6 / 12, 9 / 12], whats);
    assert.is(/reference/.test(whats), to === 'prn', whats);
  }
});

test('CLI: gpt verify exits 0 on an exact PRN, 1 with one E_VERIFY line when not; convert --verify', () => {
  const dir = tmpDir('gpt-verify-');
  const gpt = (...a: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'run.js'), ...a], { encoding: 'utf8', timeout: 120_000 });
  const prn = path.join(dir, 'prn.onnx');
  const c = gpt('convert', r18, '--to', 'prn', '-o', prn, '--verify');
  assert.is(c.status, 0, c.stderr);
  assert.match(c.stdout, /exact: every output within 1e-4 x max\(1, max \|expected\|\)/);
  const ok = gpt('verify', r18, prn, '--json');
  assert.is(ok.status, 0, ok.stderr);
  const doc = JSON.parse(ok.stdout);
  assert.is(doc.kind, 'verify');
  assert.is(doc.passed, true);
  const bad = loadModel(prn); // one weight changed: no longer what PRN computes
  const w = bad.graph.nodes.find((n) => n.opType === 'Conv')!.inputs[1]!.tensor!;
  const f = Float32Array.from(w.data() as Float32Array);
  f[0] += 0.5;
  w.setData(w.dims, f);
  const badFile = path.join(dir, 'bad.onnx');
  saveModel(bad, badFile);
  const no = gpt('verify', r18, badFile);
  assert.is(no.status, 1);
  const lines = no.stderr.trim().split('\n');
  assert.is(lines.length, 1, no.stderr);
  assert.match(lines[0], /^gpt: .*bad\.onnx: not exact: output '[^']+' differs by/);
  assert.match(no.stdout, /NOT exact/);
});

test.run();

test('negative: a converted model that does not take the source\'s input is one E_ARG line naming both, exit 2', () => {
  const yolo = path.resolve(repoRoot, '..', 'shared', 'fixtures-detectors', 'yolov5n.onnx');
  if (!fs.existsSync(yolo)) return;
  const gpt = (...a: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'run.js'), ...a], { encoding: 'utf8', timeout: 120_000 });
  // resnet18-w25 takes 1x3x64x64 (its manifest), yolov5n 1x3x160x160 with static H and W
  const r = gpt('verify', r18, yolo);
  assert.is(r.status, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.is(lines.length, 1, r.stderr);
  assert.match(lines[0], /^gpt: yolov5n\.onnx: it does not take resnet18-w25\.onnx's inputs: .*dim 2 is fixed at 160/);
  assert.not.match(r.stderr, /internal error/);
});
