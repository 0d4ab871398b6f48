/**
 * ECA (efficient channel attention, timm's EcaModule) inside ResNet blocks, as PyTorch exports it:
 * `y * sigmoid(conv1d(mean(y).view(B, 1, -1))).view(B, -1, 1, 1).expand_as(y)`. Recognised as the
 * block's attention; PRN exact; CSP narrows the blocks around it and leaves the ECA as it is (its 1-D
 * conv has one input and one output channel: a single kernel slid along the channel axis fits any
 * width, and its trained kernel size is kept); ELAN replaces the blocks. Each result runs in
 * onnxruntime. Negative: an ECA whose reshape names the width as a constant cannot follow a narrowed
 * width, and CSP refuses it, naming the node of each stage.
 *
 *   x ─ stem ─ [3x3 ─ 3x3 ─ ECA ─ Add ─ Relu] x2 (16 ch) ─ [3x3/2 ─ 3x3 ─ ECA ─ Add(1x1/2 proj)] ─ [.. ECA ..] (32 ch) ─ head
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Value } from '../../src/ir/graph';
import { Tensor } from '../../src/ir/tensor';
import { floatTensor, floatValues } from '../../src/ir/float-data';
import type { Model } from '../../src/ir/model';
import { recognize } from '../../src/analysis/structure';
import { convert } from '../../src/passes/convert';
import { createSession, runFloat } from '../../src/profile/ort';
import { verify } from '../../src/verify';
import { Tiny } from '../fixtures/tiny-graph';

let n = 0;
/** timm's EcaModule on y (c channels), kernel k; `fixedWidth` writes the back-reshape as [1, c, 1, 1] instead of [1, -1, 1, 1]. */
function eca(t: Tiny, y: Value, name: string, k: number, c: number, fixedWidth = false): Value {
  const shape = (dims: number[]) => t.g.addInitializer(Tensor.int64(`${name}.shape${n++}`, [dims.length], dims));
  const mean = t.op('ReduceMean', `${name}.mean`, [y], { axes: [2, 3], keepdims: 0 });
  const row = t.op('Reshape', `${name}.row`, [mean, shape([1, 1, -1])]);
  const w = t.g.addInitializer(floatTensor(`${name}.conv.weight`, [1, 1, k], Float32Array.from({ length: k }, (_, i) => 0.3 + 0.2 * i)));
  const conv = t.g.addNode({ name: `${name}.conv`, opType: 'Conv', inputs: [row, w], outputs: [`${name}.conv_out`], attrs: { kernel_shape: [k], pads: [(k - 1) / 2, (k - 1) / 2] } }).outputs[0]!;
  const back = t.op('Reshape', `${name}.back`, [t.op('Sigmoid', `${name}.gate`, [conv]), shape(fixedWidth ? [1, c, 1, 1] : [1, -1, 1, 1])]);
  const expanded = t.op('Expand', `${name}.expand`, [back, t.op('Shape', `${name}.size`, [y])]);
  return t.op('Mul', `${name}.mul`, [y, expanded]);
}

function ecaResNet(fixedWidth = false): Model {
  const t = new Tiny(8, 16);
  t.seeded = true;
  const block = (x: Value, name: string, c: number, stride: number) => {
    const a = t.convBnAct(x, `${name}.conv1`, c, 3, { stride });
    const b = eca(t, t.bn(t.conv(a, `${name}.conv2.conv`, c, 3), `${name}.conv2.bn`), `${name}.eca`, 3, c, fixedWidth);
    const sc = stride === 1 ? x : t.bn(t.conv(x, `${name}.down.conv`, c, 1, { stride }), `${name}.down.bn`);
    return t.op('Relu', `${name}.out`, [t.op('Add', `${name}.add`, [b, sc])]);
  };
  let y = t.convBnAct(t.x, 'stem', 16, 3);
  y = block(block(y, 's0.b0', 16, 1), 's0.b1', 16, 1);
  y = block(block(y, 's1.b0', 32, 2), 's1.b1', 32, 1);
  t.head(y).declared = { elemType: 1, shape: [1, 10] };
  return t.model(13);
}

async function runs(m: Model): Promise<void> {
  const s = await createSession(m);
  const out = await runFloat(s, { x: { data: Float32Array.from({ length: 8 * 16 * 16 }, (_, i) => Math.sin(i)), dims: [1, 8, 16, 16] } });
  assert.equal([...out[s.outputNames[0]].dims], [1, 10]);
}

test('ECA as exported (Shape + Expand): the attention of each block, nothing unmatched', () => {
  const s = recognize(ecaResNet());
  assert.equal(s.unmatched, []);
  assert.equal(s.stages.map((st) => st.blocks.length), [2, 2]);
  for (const b of s.stages.flatMap((st) => st.blocks)) {
    const name = b.id.replace(/^s(\d)\.b(\d)$/, 's$1.b$2');
    assert.equal(b.roles.attention, ['mean', 'row', 'conv', 'gate', 'back', 'size', 'expand', 'mul'].map((p) => `${name}.eca.${p}`), b.id);
  }
});

test('ECA: PRN is exact against the masked-residual reference', async () => {
  const src = ecaResNet();
  const { model, report } = convert(src, { to: 'prn' });
  assert.is(report.converted.length, 4);
  const r = await verify(src, model);
  assert.ok(r.expectation === 'exact' && r.passed, JSON.stringify(r.outputs.map((o) => o.maxAbsDiff)));
  assert.ok(r.outputs[0].vsSource!.maxAbsDiff > 1e-4, 'the masking moves the output');
});

test('ECA: CSP narrows the blocks and keeps every ECA conv as trained (kernel 3, same taps); ELAN replaces the blocks; both run', async () => {
  const src = ecaResNet();
  const { model, report } = convert(src, { to: 'csp' });
  assert.is(report.incomplete ?? null, null);
  assert.equal(report.converted.filter((c) => /^s\d$/.test(c.block)).map((c) => c.block), ['s0', 's1']);
  // part 1 of each stage: the non-entry block's ECA reads the narrowed stream, its conv unchanged
  for (const name of ['s0.b1', 's1.b1']) {
    const conv = model.graph.nodes.find((x) => x.name === `${name}.eca.conv`)!;
    const w = model.graph.constantTensor(conv.inputs[1])!;
    assert.equal(w.dims, [1, 1, 3]);
    assert.equal([...floatValues(w, 'w')].map((v) => Math.round(v * 100) / 100), [0.3, 0.5, 0.7]);
    const narrowed = model.graph.nodes.find((x) => x.name === `${name}.conv2.conv`)!;
    assert.is(model.graph.constantTensor(narrowed.inputs[1])!.dims[0], name === 's0.b1' ? 8 : 16, 'the conv the ECA scales is narrowed to part 1');
  }
  await runs(model);
  const elan = convert(src, { to: 'elan' });
  assert.is(elan.report.converted.length, 2);
  await runs(elan.model);
});

test('ECA negative: a back-reshape that names the width ([1, C, 1, 1]) cannot follow a narrowed width: CSP refuses, naming the Expand of each stage', () => {
  const src = ecaResNet(true);
  assert.equal(recognize(src).unmatched, []);
  let message = '';
  try {
    const { report } = convert(src, { to: 'csp' });
    message = [report.incomplete ?? '', ...report.unconverted.map((s) => `${s.block}: ${s.reason}`)].join('\n');
  } catch (e) {
    message = String(e);
  }
  assert.match(message, /cannot narrow the output channels of 's\d\.b\d\.eca\.expand' \(Expand\)/);
});

test.run();
