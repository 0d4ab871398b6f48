/**
 * The activation of new layers: CSP's transitions and ELAN's new layers copy the activation the
 * matcher matched in the blocks they join — op for op, attribute for attribute, constant for
 * constant (PRelu's slope resized to the new width) — and the converted model runs in onnxruntime;
 * PRN on the same network is exact against the masked-residual reference. Every spelling PyTorch's
 * exporter writes: SiLU, HardSwish and Mish as one op or written out, HardSigmoid, ReLU6 as Clip.
 * Also float16: new tensors take the element type of the model.
 */
import * as ort from 'onnxruntime-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { recognize } from '../../src/analysis/structure';
import type { Graph, Node, Value } from '../../src/ir/graph';
import { floatTensor, floatValues } from '../../src/ir/float-data';
import type { Model } from '../../src/ir/model';
import { loadModel, saveModelToBuffer } from '../../src/onnx/io';
import { DataType } from '../../src/onnx/schema';
import { convert } from '../../src/passes/convert';
import { verify } from '../../src/verify';
import { Tiny } from '../fixtures/tiny-graph';
import { fixturesDir } from '../helpers';
import * as path from 'node:path';
import * as fs from 'node:fs';

type Act = (t: Tiny, x: Value, name: string, channels: number) => Value;

function node(t: Tiny, opType: string, name: string, inputs: (Value | null)[], attrs: Parameters<Graph['addNode']>[0]['attrs'] = {}): Value {
  return t.g.addNode({ name, opType, inputs, outputs: [`${name}_out`], attrs }).outputs[0]!;
}
const scalar = (t: Tiny, name: string, v: number) => t.g.addInitializer(floatTensor(name, [], Float32Array.of(v), t.elemType));
const single = (opType: string, attrs: Parameters<Graph['addNode']>[0]['attrs'] = {}): Act => (t, x, n) => node(t, opType, n, [x], attrs);

/** ReLU6 as Clip(y, 0, 6): bounds as inputs (opset 11+) or attributes; F.relu6 as PyTorch 1.x exports it: Relu, then Clip with Constant-node bounds. */
function clip(t: Tiny, y: Value, n: string, bounds: 'inputs' | 'attributes' | 'relu-clip'): Value {
  if (bounds === 'relu-clip') {
    const c = (name: string, v: number) => node(t, 'Constant', `${n}.${name}`, [], { value: floatTensor(`${n}.${name}_t`, [], Float32Array.of(v)) });
    return node(t, 'Clip', n, [node(t, 'Relu', `${n}.relu`, [y]), c('min', 0), c('max', 6)]);
  }
  return bounds === 'inputs'
    ? node(t, 'Clip', n, [y, scalar(t, `${n}.min`, 0), scalar(t, `${n}.max`, 6)])
    : node(t, 'Clip', n, [y], { min: { float: 0 }, max: { float: 6 } });
}

/** HardSwish written out as PyTorch code spells it: x * relu6(x + 3) / 6, the product first or the gate first, by Div(6) or Mul(1/6). */
function hardSwish(t: Tiny, x: Value, n: string, o: { div: boolean; gateFirst: boolean; clip: 'inputs' | 'attributes' | 'relu-clip' }): Value {
  const r6 = clip(t, node(t, 'Add', `${n}.add`, [x, scalar(t, `${n}.three`, 3)]), `${n}.clip`, o.clip);
  const sixth = (y: Value) => (o.div ? node(t, 'Div', `${n}.div`, [y, scalar(t, `${n}.six`, 6)]) : node(t, 'Mul', `${n}.sixth`, [y, scalar(t, `${n}.sixth_c`, 1 / 6)]));
  return o.gateFirst ? node(t, 'Mul', `${n}.mul`, [x, sixth(r6)]) : sixth(node(t, 'Mul', `${n}.mul`, [x, r6]));
}

/** Every activation kind, with the opset it needs. */
const KINDS: { kind: string; opset: number; act: Act }[] = [
  { kind: 'SiLU as Mul(x, Sigmoid(x))', opset: 13, act: (t, x, n) => t.silu(x, n) },
  { kind: 'HardSwish', opset: 14, act: single('HardSwish') },
  { kind: 'HardSwish as Mul(x, HardSigmoid(x))', opset: 13, act: (t, x, n) => node(t, 'Mul', `${n}.mul`, [x, node(t, 'HardSigmoid', `${n}.gate`, [x], { alpha: { float: 1 / 6 }, beta: { float: 0.5 } })]) },
  { kind: 'HardSwish as x * Clip(x + 3, 0, 6) / 6', opset: 13, act: (t, x, n) => hardSwish(t, x, n, { div: true, gateFirst: false, clip: 'inputs' }) },
  { kind: 'HardSwish as x * (Clip(x + 3, 0, 6) / 6)', opset: 13, act: (t, x, n) => hardSwish(t, x, n, { div: true, gateFirst: true, clip: 'inputs' }) },
  { kind: 'HardSwish as x * Clip(x + 3, 0, 6) * (1/6)', opset: 13, act: (t, x, n) => hardSwish(t, x, n, { div: false, gateFirst: false, clip: 'inputs' }) },
  { kind: 'HardSwish as x * (Clip(x + 3) * (1/6)), Clip bounds as attributes (opset 10)', opset: 10, act: (t, x, n) => hardSwish(t, x, n, { div: false, gateFirst: true, clip: 'attributes' }) },
  { kind: 'HardSwish as x * F.relu6(x + 3) / 6 (Relu, then Clip with Constant-node bounds)', opset: 13, act: (t, x, n) => hardSwish(t, x, n, { div: true, gateFirst: false, clip: 'relu-clip' }) },
  { kind: 'HardSigmoid', opset: 13, act: single('HardSigmoid', { alpha: { float: 1 / 6 }, beta: { float: 0.5 } }) },
  { kind: 'HardSigmoid as Clip(x + 3, 0, 6) / 6', opset: 13, act: (t, x, n) => node(t, 'Div', `${n}.div`, [clip(t, node(t, 'Add', `${n}.add`, [x, scalar(t, `${n}.three`, 3)]), `${n}.clip`, 'inputs'), scalar(t, `${n}.six`, 6)]) },
  { kind: 'Mish', opset: 18, act: single('Mish') },
  { kind: 'Mish as x * Tanh(Softplus(x))', opset: 13, act: (t, x, n) => node(t, 'Mul', `${n}.mul`, [x, node(t, 'Tanh', `${n}.tanh`, [node(t, 'Softplus', `${n}.softplus`, [x])])]) },
  { kind: 'Relu', opset: 13, act: single('Relu') },
  { kind: 'ReLU6 as Clip with input bounds', opset: 13, act: (t, x, n) => node(t, 'Clip', n, [x, scalar(t, `${n}.min`, 0), scalar(t, `${n}.max`, 6)]) },
  { kind: 'ReLU6 as Clip with attribute bounds (opset 10)', opset: 10, act: single('Clip', { min: { float: 0 }, max: { float: 6 } }) },
  { kind: 'LeakyRelu alpha 0.2', opset: 13, act: single('LeakyRelu', { alpha: { float: 0.2 } }) },
  {
    kind: 'PRelu with a per-channel slope', opset: 13,
    act: (t, x, n, c) => node(t, 'PRelu', n, [x, t.g.addInitializer(floatTensor(`${n}.slope`, [c, 1, 1], Float32Array.from({ length: c }, (_, i) => 0.1 + 0.01 * i), t.elemType))]),
  },
  { kind: 'Sigmoid', opset: 13, act: single('Sigmoid') },
  { kind: 'Tanh', opset: 13, act: single('Tanh') },
  { kind: 'Elu alpha 0.5', opset: 13, act: single('Elu', { alpha: { float: 0.5 } }) },
  { kind: 'Celu alpha 2', opset: 13, act: single('Celu', { alpha: { float: 2 } }) },
  { kind: 'Selu', opset: 13, act: single('Selu', { alpha: { float: 1.5 }, gamma: { float: 1.1 } }) },
  { kind: 'Gelu tanh', opset: 20, act: single('Gelu', { approximate: 'tanh' }) },
];

/**
 * A two-stage Darknet-like network whose every conv is conv-BN-act with `act`:
 *
 *   x ─ stem ─┬ down(s2) ─ [1x1 ─ 3x3 ─ Add] x2 ─┬ down(s2) ─ [1x1 ─ 3x3 ─ Add] x2 ─ GAP ─ fc
 *   stage 0: 16 channels                           stage 1: 32 channels
 */
function darknet(act: Act, elemType: number = DataType.FLOAT, opset = 13): Model {
  const t = new Tiny(8, 16, elemType);
  t.seeded = true; // non-zero weights: PRN's exactness is checked on real numbers
  const cba = (x: Value, name: string, cout: number, k: number, stride = 1) => act(t, t.bn(t.conv(x, `${name}.conv`, cout, k, { stride }), `${name}.bn`), `${name}.act`, cout);
  let y = cba(t.x, 'stem', 8, 3);
  for (const [s, c] of [[0, 16], [1, 32]]) {
    y = cba(y, `s${s}.down`, c, 3, 2);
    for (const b of [0, 1]) y = t.op('Add', `s${s}.b${b}.add`, [y, cba(cba(y, `s${s}.b${b}.c1`, c / 2, 1), `s${s}.b${b}.c2`, c, 3)]);
  }
  const out = t.head(y);
  out.declared = { elemType, shape: [1, 10] };
  return t.model(opset);
}

const NEW_LAYER_PARTS = new Set(['Conv', 'BatchNormalization', 'Concat', 'Split', 'Slice']);

/** An activation's nodes as comparable data: op types, attributes, constant operands (a per-channel one as its size and mean). */
function signature(g: Graph, nodes: Node[]): unknown[] {
  return nodes.map((n) => ({
    op: n.opType,
    attrs: n.attributes.map((a) => ({ name: a.name, f: a.f === undefined ? undefined : Math.round(a.f * 1e6) / 1e6, i: a.i, s: a.s ? new TextDecoder().decode(a.s) : undefined })),
    constants: n.inputs.slice(1).map((v) => {
      const c = v ? g.constantTensor(v) : undefined;
      if (!c) return v ? 'data' : null;
      const vals = floatValues(c, c.name);
      return { type: c.dataType, values: vals.length > 1 ? 'per-channel' : vals[0] };
    }),
  }));
}

/** The nodes a conversion added that are not conv / BN / concat / split, grouped by layer scope ('<scope>/<op>'). */
function newActivations(src: Model, out: Model): Map<string, Node[]> {
  const had = new Set(src.graph.nodes.map((n) => n.name));
  const groups = new Map<string, Node[]>();
  for (const n of out.graph.nodes) {
    if (had.has(n.name) || NEW_LAYER_PARTS.has(n.opType)) continue;
    const scope = n.name.slice(0, n.name.lastIndexOf('/'));
    groups.set(scope, [...(groups.get(scope) ?? []), n]);
  }
  return groups;
}

/** The width of the conv whose output (through BN) an activation group reads. */
function widthBefore(g: Graph, first: Node): number {
  let p = first.inputs[0]!.producer!;
  if (p.opType === 'BatchNormalization') p = p.inputs[0]!.producer!;
  return g.constantTensor(p.inputs[1])!.dims[0];
}

async function runs(m: Model, elemType: number): Promise<void> {
  const s = await ort.InferenceSession.create(saveModelToBuffer(m));
  const n = 8 * 16 * 16;
  const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i));
  const input = elemType === DataType.FLOAT16
    ? new ort.Tensor('float16', floatTensor('x', [n], x, DataType.FLOAT16).data() as Uint16Array, [1, 8, 16, 16])
    : new ort.Tensor('float32', x, [1, 8, 16, 16]);
  const out = await s.run({ [s.inputNames[0]]: input });
  assert.equal([...out[s.outputNames[0]].dims], [1, 10]);
}

for (const { kind, opset, act } of KINDS) {
  test(`${kind}: CSP transitions and ELAN layers copy it, and both models run`, async () => {
    const src = darknet(act, DataType.FLOAT, opset);
    const structure = recognize(src);
    assert.is(structure.stages.length, 2, 'two stages recognised');
    assert.equal(structure.unmatched, [], 'every node of every activation belongs to a block or layer');
    // PRN: every residual Add masked, the output exactly the masked-residual reference's (built from the source alone)
    const prn = convert(src, { to: 'prn' });
    assert.is(prn.report.incomplete ?? null, null);
    const checked = await verify(src, prn.model);
    assert.ok(checked.expectation === 'exact' && checked.passed, `prn: ${JSON.stringify(checked.outputs.map((o) => o.maxAbsDiff))}`);
    assert.ok(checked.outputs[0].vsSource!.maxAbsDiff > 1e-4, 'the masking moves the output: the check discriminates');
    const template = src.graph.nodes.filter((n) => n.name.startsWith('s0.b0.c1.act') && n.opType !== 'Constant'); // Constant-node bounds are copied as initializers
    const expected = signature(src.graph, template);
    for (const [to, layers] of [['csp', 4], ['elan', 14]] as const) {
      const { model } = convert(src, { to });
      // CSP's producer split copies the layers before the split with their own activation (scope
      // .../part2, where the activation is written with one data input): the source's, not a new layer's
      const all = newActivations(src, model);
      const groups = new Map([...all].filter(([scope]) => !scope.endsWith('/part2')));
      for (const [scope, nodes] of all) if (scope.endsWith('/part2')) assert.equal(signature(model.graph, nodes.filter((n) => n.opType !== 'BatchNormalization')), expected, `${to} ${scope}: the copied layer's activation`);
      assert.is(groups.size, layers, `${to}: one activation per new layer`);
      for (const [scope, nodes] of groups) {
        assert.equal(signature(model.graph, nodes), expected, `${to} ${scope}`);
        // a per-channel constant has the new layer's width, every channel the mean of the stage's
        // first activation (s<i>.b0.c1: 0.1 + 0.01 i over 8 or 16 channels, by hand 0.135 and 0.175)
        for (const n of nodes.filter((x) => x.opType === 'PRelu')) {
          const slope = floatValues(model.graph.constantTensor(n.inputs[1])!, 'slope');
          assert.is(slope.length, widthBefore(model.graph, nodes[0]));
          const mean = /csp\.s0|stage0/.test(scope) ? 0.135 : 0.175;
          assert.ok(slope.every((v) => Math.abs(v - mean) < 1e-6), `${to} ${scope}: slope ${slope[0]} is the mean ${mean}`);
        }
      }
      await runs(model, DataType.FLOAT);
    }
  });
}

test('negative beside positive: a Relu network gets Relu, a SiLU network no bare Sigmoid', () => {
  const relu = darknet(single('Relu'));
  for (const to of ['csp', 'elan'] as const) {
    const groups = [...newActivations(relu, convert(relu, { to }).model).values()];
    assert.ok(groups.every((g) => g.length === 1 && g[0].opType === 'Relu'), to);
  }
  const silu = darknet((t, x, n) => t.silu(x, n));
  for (const to of ['csp', 'elan'] as const) {
    const groups = [...newActivations(silu, convert(silu, { to }).model).values()];
    assert.ok(groups.every((g) => g.map((n) => n.opType).join() === 'Sigmoid,Mul'), to);
    // the Mul multiplies the layer's own output by its Sigmoid
    for (const [sig, mul] of groups) assert.ok(mul.inputs.includes(sig.outputs[0]!) && mul.inputs.includes(sig.inputs[0]!), to);
  }
});

test('the report names the activation the new layers got', () => {
  const src = darknet((t, x, n) => t.silu(x, n));
  const { report } = convert(src, { to: 'elan' });
  assert.ok(report.converted.every((c) => /SiLU$/.test(c.change)), report.converted.map((c) => c.change).join('\n'));
  const csp = convert(src, { to: 'csp' }).report;
  assert.ok(csp.converted.filter((c) => c.block.match(/^s\d$/)).every((c) => /transitions with SiLU/.test(c.change)));
});

test('the report names a written-out activation by what it computes (HardSwish, HardSigmoid, Mish), a single op by its op', () => {
  const byKind = (kind: string) => KINDS.find((k) => k.kind === kind)!;
  for (const [kind, name] of [
    ['HardSwish as x * Clip(x + 3, 0, 6) / 6', 'HardSwish'], ['HardSwish as x * (Clip(x + 3) * (1/6)), Clip bounds as attributes (opset 10)', 'HardSwish'],
    ['HardSigmoid as Clip(x + 3, 0, 6) / 6', 'HardSigmoid'], ['Mish as x * Tanh(Softplus(x))', 'Mish'], ['Relu', 'Relu'],
  ] as const) {
    const k = byKind(kind);
    const { report } = convert(darknet(k.act, DataType.FLOAT, k.opset), { to: 'elan' });
    assert.ok(report.converted.every((c) => c.change.endsWith(`, ${name}`)), `${kind}: ${report.converted.map((c) => c.change).join('; ')}`);
  }
});

// ---------------------------------------------------------------------------------------------
// A real export: timm's Darknet-53 with SiLU, exported by PyTorch as Mul(x, Sigmoid(x))

const silu53 = path.join(fixturesDir, '..', 'fixtures-realworld', 'darknet53-silu-w19.onnx');
test('darknet53-silu-w19: ELAN and CSP layers get SiLU (Sigmoid + Mul), and run', async () => {
  if (!fs.existsSync(silu53)) return assert.unreachable(`fixture missing: ${silu53}`);
  const src = loadModel(silu53);
  for (const to of ['elan', 'csp'] as const) {
    const { model, report } = convert(src, { to });
    assert.ok(report.converted.length > 0, to);
    const groups = [...newActivations(src, model).values()];
    assert.ok(groups.length >= (to === 'elan' ? 35 : 10), `${to}: ${groups.length} activation groups`);
    assert.ok(groups.every((g) => g.map((n) => n.opType).join() === 'Sigmoid,Mul'), to);
    assert.not.ok(model.graph.nodes.some((n) => n.opType === 'LeakyRelu' || n.opType === 'Relu'), to);
    const s = await ort.InferenceSession.create(saveModelToBuffer(model));
    const x = new ort.Tensor('float32', new Float32Array(3 * 128 * 128).map((_, i) => Math.cos(i)), [1, 3, 128, 128]);
    const out = await s.run({ [s.inputNames[0]]: x });
    assert.ok((out[s.outputNames[0]].data as Float32Array).every(Number.isFinite), to);
  }
});

// ---------------------------------------------------------------------------------------------
// float16: new tensors take the element type of the tensors they join

const floatTypes = (m: Model) => new Set(m.graph.initializers.map((v) => v.tensor!.dataType).filter((d) => d !== DataType.INT64));

for (const to of ['csp', 'elan'] as const) {
  test(`an all-float16 model stays all-float16 through --to ${to} (and runs); a float32 one stays float32`, async () => {
    for (const act of [(t: Tiny, x: Value, n: string) => t.silu(x, n), single('LeakyRelu', { alpha: { float: 0.1 } })] as Act[]) {
      const half = darknet(act, DataType.FLOAT16);
      const { model } = convert(half, { to, ...(to === 'elan' ? { csp: true } : {}) });
      assert.equal([...floatTypes(model)], [DataType.FLOAT16]);
      await runs(model, DataType.FLOAT16);
      const full = convert(darknet(act), { to }).model;
      assert.equal([...floatTypes(full)], [DataType.FLOAT]);
    }
  });
}

test.run();
