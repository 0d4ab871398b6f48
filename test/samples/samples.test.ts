/**
 * Sample models: sizes against the published figures, determinism, that ONNX Runtime runs them,
 * and that the quarter-width builds match the PyTorch-exported fixtures of the same architectures.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as ort from 'onnxruntime-node';
import { isGptError } from '../../src/errors';
import type { Model } from '../../src/ir/model';
import { loadModel, saveModelToBuffer } from '../../src/onnx/io';
import { PLAIN_SAMPLE_NAMES, PlainSampleName, Rng, SampleName, SampleOptions, buildSample, torchScope } from '../../src/samples';
import { fixturePath, maxAbsDiff, readNpy } from '../helpers';

const SMALL: SampleOptions = { width: 0.25, resolution: 64, classes: 10 };

/** Learnable parameters as papers count them: conv and fc weights and biases, BN scale and shift (not running stats). */
function paramCount(m: Model): number {
  let n = 0;
  for (const node of m.graph.nodes) {
    const slots = node.opType === 'Conv' || node.opType === 'Gemm' || node.opType === 'BatchNormalization' ? [1, 2] : [];
    for (const i of slots) n += m.graph.constantTensor(node.inputs[i] ?? null)?.size ?? 0;
  }
  return n;
}

function histogram(m: Model, skip: string[] = []): Record<string, number> {
  const h: Record<string, number> = {};
  for (const n of m.graph.nodes) if (!skip.includes(n.opType)) h[n.opType] = (h[n.opType] ?? 0) + 1;
  return h;
}

/** Per conv, in graph order: weight shape, strides, pads, group (what fixes the architecture). */
function convSignature(m: Model): string[] {
  return m.graph.nodes
    .filter((n) => n.opType === 'Conv')
    .map((n) => `${m.graph.constantTensor(n.inputs[1])!.dims.join('x')} s${n.ints('strides')} p${n.ints('pads')} g${n.int('group', 1)}`);
}

async function runOrt(m: Model, batch = 1, resolution = 64): Promise<ort.Tensor> {
  const session = await ort.InferenceSession.create(saveModelToBuffer(m));
  const input = new Rng(1).normals(batch * 3 * resolution * resolution, 1);
  const out = await session.run({ input: new ort.Tensor('float32', input, [batch, 3, resolution, resolution]) });
  return out.logits;
}

// Published parameter counts (torchvision docs; YOLOv3 paper / timm for Darknet-53; timm vovnet39a / vovnet57a).
const PUBLISHED_PARAMS: Record<PlainSampleName, number> = {
  resnet18: 11.69e6, resnet50: 25.56e6, darknet53: 41.6e6, vovnet39: 22.6e6, vovnet57: 36.6e6,
};

for (const name of PLAIN_SAMPLE_NAMES) {
  test(`${name}: full-size parameter count within 1% of the published ${PUBLISHED_PARAMS[name] / 1e6} M`, () => {
    const n = paramCount(buildSample(name));
    const rel = Math.abs(n - PUBLISHED_PARAMS[name]) / PUBLISHED_PARAMS[name];
    assert.ok(rel < 0.01, `${name}: ${n} params, ${(rel * 100).toFixed(2)}% off`);
  });
}

test('export form: opset 13, IR 7, producer gpt, input [N,3,R,R], output logits [N,classes]', () => {
  const m = buildSample('resnet18', { ...SMALL, batch: 'N' });
  assert.is(m.opset(), 13);
  assert.is(m.irVersion, 7);
  assert.is(m.proto.producerName, 'gpt');
  assert.equal(m.graph.inputs.map((v) => [v.name, v.shape]), [['input', ['N', 3, 64, 64]]]);
  assert.equal(m.graph.outputs.map((v) => [v.name, v.shape]), [['logits', ['N', 10]]]);
  const bn = m.graph.nodes.find((n) => n.name === '/layer1/layer1.0/bn1/BatchNormalization')!;
  assert.equal(bn.inputs.map((v) => v!.name).slice(1), ['layer1.0.bn1.weight', 'layer1.0.bn1.bias', 'layer1.0.bn1.running_mean', 'layer1.0.bn1.running_var']);
  assert.is(bn.outputs.length, 1);
  assert.ok(Math.abs(bn.float('epsilon', 0) - 1e-5) < 1e-9);
  const variance = m.graph.constantTensor(bn.inputs[4])!.data() as Float32Array;
  assert.ok(variance.every((v) => v > 0) && new Set(variance).size > 1, 'BN running_var is positive and not constant');
});

test('torchScope: indexed children take their parent segment as a prefix; a ModuleList opens no scope', () => {
  assert.is(torchScope('layer1.0.conv1'), '/layer1/layer1.0/conv1');
  assert.is(torchScope('features.2.b1.0'), '/features/features.2/b1/b1.0');
  assert.is(torchScope('stages.0.0.layers.0.0', new Set(['layers'])), '/stages/stages.0/stages.0.0/layers.0/layers.0.0');
  assert.is(torchScope('stages.0.0.layers.0.0'), '/stages/stages.0/stages.0.0/layers/layers.0/layers.0.0');
  assert.is(torchScope('fc'), '/fc');
  assert.is(torchScope(''), '');
});

test('determinism: the same seed gives the same bytes, another seed other bytes', () => {
  const a = saveModelToBuffer(buildSample('darknet53', { ...SMALL, seed: 7 }));
  const b = saveModelToBuffer(buildSample('darknet53', { ...SMALL, seed: 7 }));
  const c = saveModelToBuffer(buildSample('darknet53', { ...SMALL, seed: 8 }));
  assert.ok(a.equals(b), 'seed 7 twice');
  assert.is(a.length, c.length);
  assert.not.ok(a.equals(c), 'seed 7 vs seed 8');
});

for (const name of PLAIN_SAMPLE_NAMES) {
  test(`${name}: quarter width runs in ONNX Runtime and gives finite [1,10] logits of a sane size`, async () => {
    const logits = await runOrt(buildSample(name, SMALL));
    assert.equal(logits.dims, [1, 10]);
    const data = logits.data as Float32Array;
    assert.ok(data.every(Number.isFinite));
    // the BN gains keep the signal's scale through the depth (unit-variance input here)
    assert.ok(data.every((v) => Math.abs(v) < 100), `logits up to ${Math.max(...data.map(Math.abs))}`);
  });
}

test('a symbolic batch dim runs with batch 2', async () => {
  const logits = await runOrt(buildSample('vovnet39', { ...SMALL, batch: 'N' }), 2);
  assert.equal(logits.dims, [2, 10]);
});

test('vovnet at its smallest resolution (45: every ceil-mode pool still gets a 3-pixel input) runs', async () => {
  const logits = await runOrt(buildSample('vovnet39', { ...SMALL, resolution: 45 }), 1, 45);
  assert.equal(logits.dims, [1, 10]);
});

// The fixtures are torch.onnx.export output of the same architectures at width 0.25, 64 px, 10
// classes; some have BN folded into the convs, so BN nodes are compared only where they were kept.
const FIXTURES: Record<PlainSampleName, { file: string; bnKept: boolean }> = {
  resnet18: { file: 'resnet18-w25.onnx', bnKept: false },
  resnet50: { file: 'resnet50-w25-bn.onnx', bnKept: true },
  vovnet39: { file: 'vovnet39-w25.onnx', bnKept: false },
  vovnet57: { file: 'vovnet57-w25-bn.onnx', bnKept: true },
  darknet53: { file: 'darknet53-w25.onnx', bnKept: false },
};

for (const name of PLAIN_SAMPLE_NAMES) {
  const { file, bnKept } = FIXTURES[name];
  test(`${name}: quarter-width build matches the exported fixture ${file}`, () => {
    const mine = buildSample(name, SMALL);
    const theirs = loadModel(fixturePath(file));
    const skip = bnKept ? [] : ['BatchNormalization'];
    assert.equal(histogram(mine, skip), histogram(theirs, skip));
    assert.is(histogram(mine).BatchNormalization, histogram(mine).Conv, 'one BN per conv');
    assert.equal(convSignature(mine), convSignature(theirs));
    const names = (m: Model) => m.graph.nodes.filter((n) => !skip.includes(n.opType)).map((n) => n.name);
    assert.equal(names(mine), names(theirs));
    const fc = (m: Model) => m.graph.constantTensor(m.graph.nodes.find((n) => n.opType === 'Gemm')!.inputs[1])!.dims;
    assert.equal(fc(mine), fc(theirs));
    if (bnKept) assert.equal(mine.graph.initializers.map((v) => v.name).sort(), theirs.graph.initializers.map((v) => v.name).sort());
  });
}

// Where the exporter kept BN, every initializer name matches, so the fixture's weights drop into
// the sample; the sample must then compute what PyTorch computed (pads, strides, ceil mode, order).
for (const name of ['resnet50', 'vovnet57'] as const) {
  const { file } = FIXTURES[name];
  test(`${name} with ${file}'s weights reproduces its sample output`, async () => {
    const mine = buildSample(name, SMALL);
    const theirs = loadModel(fixturePath(file));
    for (const v of mine.graph.initializers) {
      const t = theirs.graph.constantTensor(theirs.graph.values.get(v.name) ?? null)!;
      v.tensor!.setData(t.dims, t.data());
    }
    const input = readNpy(fixturePath(file.replace('.onnx', '.input.npy')));
    const expected = readNpy(fixturePath(file.replace('.onnx', '.output.npy')));
    const session = await ort.InferenceSession.create(saveModelToBuffer(mine));
    const out = await session.run({ input: new ort.Tensor('float32', input.data, input.shape) });
    const { diff, tol } = maxAbsDiff(out.logits.data as Float32Array, expected.data);
    assert.ok(diff <= tol, `max abs diff ${diff} > ${tol}`);
  });
}

test('the expected conv / Add / Concat / MaxPool counts (independent of the fixtures)', () => {
  const counts: Record<PlainSampleName, Record<string, number>> = {
    resnet18: { Conv: 20, Add: 8 },
    resnet50: { Conv: 53, Add: 16 },
    darknet53: { Conv: 52, Add: 23 },
    vovnet39: { Conv: 39, Concat: 6, MaxPool: 3 },
    vovnet57: { Conv: 57, Concat: 9, MaxPool: 3 },
  };
  for (const name of PLAIN_SAMPLE_NAMES) {
    const h = histogram(buildSample(name, SMALL));
    for (const [op, n] of Object.entries(counts[name])) assert.is(h[op], n, `${name} ${op}`);
  }
});

function throwsArg(fn: () => unknown, option: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(isGptError(e) && e.code === 'E_ARG', `expected E_ARG, got ${String(e)}`);
    assert.is(e.subject, option);
    return;
  }
  assert.unreachable(`expected E_ARG about ${option}`);
}

test('bad options throw E_ARG naming the option', () => {
  throwsArg(() => buildSample('resnet34' as SampleName), 'name');
  throwsArg(() => buildSample('resnet18', { width: 0 }), 'width');
  throwsArg(() => buildSample('resnet18', { width: -1 }), 'width');
  throwsArg(() => buildSample('resnet18', { width: NaN }), 'width');
  throwsArg(() => buildSample('resnet18', { resolution: 16 }), 'resolution');
  throwsArg(() => buildSample('vovnet39', { resolution: 44 }), 'resolution');
  throwsArg(() => buildSample('resnet18', { resolution: 64.5 }), 'resolution');
  throwsArg(() => buildSample('resnet18', { classes: 0 }), 'classes');
  throwsArg(() => buildSample('resnet18', { classes: 2.5 }), 'classes');
  throwsArg(() => buildSample('resnet18', { batch: 0 }), 'batch');
  // `gpt sample --batch -1` or `--batch 2.5` reaches here as a string: a mistyped number, not a dim name
  for (const batch of ['-1', '2.5', '', 'my batch']) throwsArg(() => buildSample('resnet18', { batch }), 'batch');
  // negative beside positive: identifiers are dim names
  for (const batch of ['N', 'batch_size', '_b2']) assert.equal(buildSample('resnet18', { width: 0.01, resolution: 32, batch }).graph.inputs[0].declared?.shape?.[0], batch);
});

test('good edge options build: tiny width, one class', () => {
  const m = buildSample('resnet18', { width: 0.01, resolution: 32, classes: 1 });
  assert.equal(m.graph.outputs[0].shape, [1, 1]);
  assert.is(m.graph.constantTensor(m.graph.nodes[0].inputs[1])!.dims[0], 1, 'at least one channel');
});

test.run();
