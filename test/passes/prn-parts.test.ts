/**
 * PRN's parts form (src/passes/prn-parts.ts, convert --emit parts): each block output carried as
 * two tensors, the first k channels and the rest, with no mask multiplication. It must compute the
 * fixtures' PRN reference outputs (made outside gpt), read as the same weight layers and gradient
 * paths as the mask form, and leave onnxruntime no layout kernel or elementwise Mul beyond the
 * plain model's (a count from onnxruntime's own profile, no timing). Where onnxruntime would not
 * fuse the split convs' sum (a LeakyRelu or SiLU after it: Darknet), the mask form stays.
 *
 *   mask:   y = Relu(B + S x [1]*k + [0]*(C-k))      parts:  yA = Relu(B[:k] + S[:k])   yB = Relu(B[k:])
 *           next = Conv(y, W)                                next = Conv(yA, W[:, :k]) + Conv(yB, W[:, k:])
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gradientPaths, layerOf } from '../../src/analysis/gradient-path';
import { analyzeModel } from '../../src/analysis/analyze';
import { STRUCTURE_KEY } from '../../src/analysis/recorded-structure';
import { loadModel, saveModelToBuffer } from '../../src/onnx/io';
import { readNpy } from '../../src/onnx/npy';
import { convert } from '../../src/passes/convert';
import { makeFeeds, resolveInputs } from '../../src/profile/measure';
import { findProfileFile, LAYOUT_KERNELS, readOrtProfile } from '../../src/profile/node-profile';
import { createSession, runFloat } from '../../src/profile/ort';
import type { Model } from '../../src/ir/model';
import { compareOutputs } from '../../src/verify/compare';
import { fixturesDir, repoRoot } from '../helpers';

interface Entry { model: string; sampleInput: string; prnOutput?: string; outputs?: { name: string; prnOutput?: string }[] }
const sets = [fixturesDir, path.resolve(repoRoot, '..', 'shared', 'fixtures-detectors')].filter((d) => fs.existsSync(path.join(d, 'manifest.json')));
const prnFixtures = sets.flatMap((dir) => (JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')).models as Entry[]).filter((m) => m.prnOutput || m.outputs?.some((o) => o.prnOutput)).map((m) => ({ dir, ...m })));
const fixture = (name: string) => path.join(fixturesDir, name);
const prnMuls = (m: Model) => m.graph.nodes.filter((n) => n.opType === 'Mul' && /\/prn\/Mul/.test(n.name));

for (const fx of prnFixtures) {
  test(`${fx.model}: --emit parts reproduces the PRN reference output; a mask left only where the note says why`, async () => {
    const { model, report } = convert(loadModel(path.join(fx.dir, fx.model)), { to: 'prn', ratio: 0.5, emit: 'parts' });
    assert.ok(report.converted.length > 0);
    const kept = report.notes.find((n) => /keep the mask form/.test(n));
    // every mask multiplication left is one the note accounts for, and the other way round
    assert.is(prnMuls(model).length > 0, !!kept, kept ?? 'no note');
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

test('ResNet-50: no mask multiplication, Split or Slice left; only the head reads the last block output whole', () => {
  const { model, report } = convert(loadModel(fixture('resnet50-w25.onnx')), { to: 'prn', emit: 'parts' });
  assert.ok(report.converted.every((c) => /parts form/.test(c.change)), report.converted.map((c) => c.change).join('\n'));
  const ops = model.graph.nodes.map((n) => n.opType);
  for (const op of ['Mul', 'Split', 'Slice']) assert.not.ok(ops.includes(op), op);
  // the global average pool is the one reader that is not a conv: one Concat, feeding it
  const cats = model.graph.nodes.filter((n) => n.opType === 'Concat');
  assert.is(cats.length, 1);
  assert.is(cats[0].outputs[0]!.consumers[0].node.opType, 'GlobalAveragePool');
});

test('ResNet-50, ResNet-18: the same weight layers and gradient paths as the mask form (2 channel groups)', () => {
  for (const f of ['resnet50-w25.onnx', 'resnet18-w25.onnx']) {
    const key = (m: Model) => gradientPaths(m).layers.map((l) => [l.name, l.shortest, l.longest, l.timestamps, l.sources, l.channelGroups].join(' '));
    const mask = key(convert(loadModel(fixture(f)), { to: 'prn', emit: 'mask' }).model);
    const partsModel = convert(loadModel(fixture(f)), { to: 'prn', emit: 'parts' }).model;
    assert.equal(key(partsModel), mask, f);
    assert.ok(mask.some((l) => l.endsWith(' 2')), 'a masked residual gives 2 channel groups');
    // written as more convs than it has layers
    assert.ok(partsModel.graph.nodes.filter((n) => n.opType === 'Conv').length > mask.length, f);
  }
});

test('MACs: a projection computes only its first k filters, as in the split form', () => {
  const file = fixture('resnet18-w25.onnx');
  const parts = convert(loadModel(file), { to: 'prn', emit: 'parts' }).report;
  const split = convert(loadModel(file), { to: 'prn', emit: 'split' }).report;
  assert.is(parts.before.macs - parts.after.macs, 49152); // test/passes/prn.test.ts works it out by hand
  assert.is(parts.after.macs, split.after.macs);
});

test('negative: Darknet-53 (a LeakyRelu after each split conv\'s sum) keeps the mask form, saying why', () => {
  const file = fixture('darknet53-w25.onnx');
  const parts = convert(loadModel(file), { to: 'prn', emit: 'parts' });
  const mask = convert(loadModel(file), { to: 'prn', emit: 'mask' });
  assert.is(prnMuls(parts.model).length, prnMuls(mask.model).length);
  assert.is(parts.model.graph.nodes.length, mask.model.graph.nodes.length);
  assert.ok(parts.report.notes.some((n) => /keep the mask form.*LeakyRelu/.test(n)), parts.report.notes.join('\n'));
  assert.is(parts.report.after.macs, parts.report.before.macs);
});

test('read back: with gpt\'s record the parts form has the mask form\'s family, stages and blocks; without it the rules do not read it', () => {
  const file = fixture('resnet50-w25.onnx');
  const shape = (m: Model) => {
    const r = analyzeModel(m).report;
    return { family: r.family, rules: r.stages.map((st) => st.blockRules), blocks: r.stages.map((st) => st.blocks) };
  };
  const mask = shape(loadModel(saveModelToBuffer(convert(loadModel(file), { to: 'prn', emit: 'mask' }).model)));
  assert.is(mask.family, 'resnet');
  const m = convert(loadModel(file), { to: 'prn', emit: 'parts' }).model;
  const back = loadModel(saveModelToBuffer(m));
  assert.equal(shape(back), mask);
  assert.is(analyzeModel(back).report.gradientPaths.maxChannelGroups, 2);
  // the limit README states: without the record (a plain torch.onnx.export) it is not recognised
  m.setMetadata(STRUCTURE_KEY, '');
  assert.is(shape(loadModel(saveModelToBuffer(m))).family, 'unknown');
});

test('layerOf: the partial convs of one layer, and names that only look alike', () => {
  assert.is(layerOf('/layer1/conv1/Conv/part0'), '/layer1/conv1/Conv');
  assert.is(layerOf('/layer1/conv1/Conv/part1/in0'), '/layer1/conv1/Conv');
  assert.is(layerOf('/layer1/conv1/Conv/in1'), '/layer1/conv1/Conv');
  // negative
  assert.is(layerOf('/layer1/conv1/Conv/part2'), '/layer1/conv1/Conv/part2');
  assert.is(layerOf('/layer1/partial'), '/layer1/partial');
  assert.is(layerOf('/part0'), '/part0');
});

/** Kernels onnxruntime ran in one profiled run (after its own fusions), by op type. */
async function kernelCounts(model: Model): Promise<Map<string, number>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gpt-parts-'));
  try {
    const s = await createSession(model, { executionProviders: ['cpu'], intraOpNumThreads: 1, enableProfiling: true, profileFilePrefix: path.join(dir, 'p') });
    await s.run(makeFeeds(resolveInputs(model, {}).inputs, 1));
    s.endProfiling();
    await s.release();
    const counts = new Map<string, number>();
    for (const k of readOrtProfile(findProfileFile(dir, 'p')!).kernels) if (k.run === 0) counts.set(k.opType, (counts.get(k.opType) ?? 0) + 1);
    return counts;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('onnxruntime runs the parts form with no layout kernel and no Mul beyond the plain model\'s; the split form needs layout kernels', async () => {
  const file = fixture('resnet50-w25.onnx');
  const layout = (c: Map<string, number>) => [...LAYOUT_KERNELS].reduce((a, op) => a + (c.get(op) ?? 0), 0);
  const plain = await kernelCounts(loadModel(file));
  const parts = await kernelCounts(convert(loadModel(file), { to: 'prn', emit: 'parts' }).model);
  assert.is(layout(parts), layout(plain));
  assert.not.ok(parts.has('Mul'));
  // the sums of the split convs are fused into the convs: no Add kernel runs
  assert.not.ok(parts.has('Add'), JSON.stringify([...parts]));
  // negative: the split form's Split / Concat make onnxruntime reorder
  const split = await kernelCounts(convert(loadModel(file), { to: 'prn', emit: 'split' }).model);
  assert.ok(layout(split) > layout(plain), JSON.stringify([...split]));
});

test.run();
