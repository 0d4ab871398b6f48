/**
 * PRN's emit forms (src/passes/prn.ts, convert --emit parts|mask|split; parts the default, its own
 * tests in prn-parts.test.ts) compute the same numbers: each reproduces the fixtures' PRN reference
 * outputs (made outside gpt), and the mask form leaves no Split / Concat behind. A bad form is E_ARG.
 *
 *   split:  Add(B[:k], S[:k]) ─ Concat(·, B[k:])        mask:  Add(B, S x [1]*k + [0]*(C-k))
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../../src/onnx/io';
import { readNpy } from '../../src/onnx/npy';
import { convert } from '../../src/passes/convert';
import { createSession, runFloat } from '../../src/profile/ort';
import { compareOutputs } from '../../src/verify/compare';
import { repoRoot } from '../helpers';

interface Entry { model: string; sampleInput: string; prnOutput?: string; outputs?: { name: string; prnOutput?: string }[] }
const sets = ['fixtures', 'fixtures-detectors'].map((d) => path.resolve(repoRoot, '..', 'shared', d)).filter((d) => fs.existsSync(path.join(d, 'manifest.json')));
const prnFixtures = sets.flatMap((dir) => (JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')).models as Entry[]).filter((m) => m.prnOutput).map((m) => ({ dir, ...m })));

for (const fx of prnFixtures) {
  test(`${fx.model}: --emit mask reproduces the PRN reference output, with no Split / Concat added`, async () => {
    const { model, report } = convert(loadModel(path.join(fx.dir, fx.model)), { to: 'prn', ratio: 0.5, emit: 'mask' });
    assert.ok(report.converted.length > 0);
    assert.ok(report.converted.every((c) => /mask form/.test(c.change)), report.converted.map((c) => c.change).join('\n'));
    assert.not.ok(model.graph.nodes.some((n) => /\/prn\//.test(n.name) && (n.opType === 'Split' || n.opType === 'Concat')));
    assert.ok(model.graph.nodes.some((n) => n.opType === 'Mul' && /\/prn\/Mul/.test(n.name)));
    const s = await createSession(model);
    const x = readNpy(path.join(fx.dir, fx.sampleInput));
    const out = await runFloat(s, { [s.inputNames[0]]: { data: x.data, dims: x.shape } });
    await s.release();
    const files = fx.outputs?.length ? fx.outputs.filter((o) => o.prnOutput).map((o) => ({ name: o.name, file: o.prnOutput! })) : [{ name: s.outputNames[0], file: fx.prnOutput! }];
    for (const { name, file } of files) {
      const d = compareOutputs(out[name].data, readNpy(path.join(fx.dir, file)).data);
      assert.ok(d.withinTolerance, `${name}: ${d.maxAbsDiff} > ${d.tolerance}`);
    }
  });
}

test('the mask form keeps the plain model\'s MACs; the split form shrinks projections', () => {
  const file = path.resolve(repoRoot, '..', 'shared', 'fixtures', 'resnet18-w25.onnx');
  const split = convert(loadModel(file), { to: 'prn', emit: 'split' }).report;
  const mask = convert(loadModel(file), { to: 'prn', emit: 'mask' }).report;
  assert.is(mask.after.macs, mask.before.macs);
  assert.is(split.before.macs - split.after.macs, 49152); // test/passes/prn.test.ts works it out by hand
});

test('the default form is parts where onnxruntime fuses it: no Mul, Split or Slice on ResNet, recorded as emit parts; Darknet keeps the mask', () => {
  const file = path.resolve(repoRoot, '..', 'shared', 'fixtures', 'resnet18-w25.onnx');
  const { model, report } = convert(loadModel(file), { to: 'prn' });
  assert.ok(report.converted.every((c) => /parts form/.test(c.change)));
  assert.not.ok(model.graph.nodes.some((n) => ['Mul', 'Split', 'Slice'].includes(n.opType)));
  assert.is(JSON.parse(model.metadata()['gpt.conversion']).options.emit, 'parts');
  // negative: asked for, the mask form is still there; and Darknet's default keeps it
  const mask = convert(loadModel(file), { to: 'prn', emit: 'mask' }).model;
  assert.ok(mask.graph.nodes.some((n) => /\/prn\/Mul/.test(n.name)));
  const dk = convert(loadModel(path.resolve(repoRoot, '..', 'shared', 'fixtures', 'darknet53-w25.onnx')), { to: 'prn' }).report;
  assert.ok(dk.converted.every((c) => /mask form/.test(c.change)));
});

test('negative: an unknown emit form is E_ARG', () => {
  const file = path.resolve(repoRoot, '..', 'shared', 'fixtures', 'resnet18-w25.onnx');
  try {
    convert(loadModel(file), { to: 'prn', emit: 'concat' as 'split' });
    assert.unreachable();
  } catch (e) {
    assert.is((e as { code: string }).code, 'E_ARG');
    assert.match((e as Error).message, /emit 'concat'/);
  }
});

test.run();
