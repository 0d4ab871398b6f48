/**
 * Differential test of shape inference against onnxruntime: a generated set of single-op models
 * (Conv pads / strides / dilations / auto_pad, pools with ceil_mode, Resize modes and policies,
 * Slice steps, Reshape 0 / -1, Split, Concat, Transpose, Gather, Flatten, Pad, Expand), each built
 * in the IR, run in onnxruntime-node, and the dims of every output onnxruntime returns compared
 * with what inferShapes gives. onnxruntime's output is the independent figure.
 *
 *   x [given shape] --> Op (attrs, constant inputs) --> y0, y1...
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { inferShapes } from '../../src/analysis/shapes';
import { Graph, Value } from '../../src/ir/graph';
import { Model } from '../../src/ir/model';
import { Tensor } from '../../src/ir/tensor';
import { DataType } from '../../src/onnx/schema';
import { createSession, runFloat } from '../../src/profile/ort';

type Attrs = Record<string, number | number[] | string | { float: number } | { floats: number[] }>;
/** A constant input: int64 (default) or float32 values with dims. */
type Const = { ints: number[]; dims?: number[] } | { floats: number[]; dims?: number[] } | null;

interface Case {
  name: string;
  op: string;
  opset?: number;
  /** Shapes of the float inputs fed at run time. */
  inputs: number[][];
  /** Constant inputs after the fed ones (null: an absent optional input). */
  consts?: Const[];
  attrs?: Attrs;
  outputs?: number;
}

const conv = (x: number[], w: number[], attrs: Attrs, name: string): Case => ({ name, op: 'Conv', inputs: [x], consts: [{ floats: new Array(w.reduce((a, b) => a * b, 1)).fill(0.5), dims: w }], attrs });
const pool = (op: string, x: number[], attrs: Attrs, name: string): Case => ({ name, op, inputs: [x], attrs });
const BIG = 2 ** 31 - 1;

/** The generated set: each axis of each op's options, a few sizes each. */
function cases(): Case[] {
  const out: Case[] = [];
  // Conv: pads, strides, dilations, groups, auto_pad, odd sizes
  for (const [h, w] of [[7, 9], [10, 11]]) {
    out.push(conv([1, 2, h, w], [4, 2, 3, 3], { pads: [1, 1, 1, 1] }, `Conv 3x3 p1 on ${h}x${w}`));
    out.push(conv([1, 2, h, w], [4, 2, 3, 3], { strides: [2, 2] }, `Conv 3x3 s2 p0 on ${h}x${w}`));
    out.push(conv([1, 2, h, w], [4, 2, 3, 3], { strides: [2, 3], pads: [0, 1, 1, 0] }, `Conv 3x3 s2,3 asymmetric pads on ${h}x${w}`));
    out.push(conv([1, 2, h, w], [4, 2, 3, 3], { dilations: [2, 2], pads: [1, 0, 1, 0] }, `Conv dilation 2 on ${h}x${w}`));
    for (const ap of ['SAME_UPPER', 'SAME_LOWER', 'VALID']) out.push(conv([1, 2, h, w], [4, 2, 3, 3], { auto_pad: ap, strides: [2, 2] }, `Conv auto_pad ${ap} s2 on ${h}x${w}`));
    out.push(conv([1, 4, h, w], [6, 2, 1, 3], { group: 2, strides: [2, 1] }, `Conv group 2, 1x3 kernel on ${h}x${w}`));
  }
  out.push({ name: 'ConvTranspose s2 p1 output_padding 1', op: 'ConvTranspose', inputs: [[1, 2, 5, 6]], consts: [{ floats: new Array(2 * 3 * 9).fill(0.5), dims: [2, 3, 3, 3] }], attrs: { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] } });
  // pools with ceil_mode
  for (const s of [5, 6, 7, 8]) {
    out.push(pool('MaxPool', [1, 2, s, s + 1], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }, `MaxPool 3x3/2 ceil on ${s}x${s + 1}`));
    out.push(pool('MaxPool', [1, 2, s, s + 1], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 }, `MaxPool 3x3/2 p1 ceil on ${s}x${s + 1}`));
    out.push(pool('AveragePool', [1, 2, s, s + 1], { kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1, count_include_pad: 0 }, `AveragePool 2x2/2 ceil on ${s}x${s + 1}`));
    out.push(pool('AveragePool', [1, 2, s, s + 1], { kernel_shape: [3, 3], strides: [2, 2], pads: [0, 0, 1, 1] }, `AveragePool 3x3/2 end pads on ${s}x${s + 1}`));
  }
  out.push(pool('MaxPool', [1, 2, 9, 9], { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' }, 'MaxPool auto_pad SAME_UPPER'));
  // Resize: scales (float32 products), sizes, policies, Upsample
  const sc = (s: number[]): Const => ({ floats: s });
  out.push({ name: 'Resize nearest scales 0.7 x 1.5 on 10x7', op: 'Resize', opset: 13, inputs: [[1, 1, 10, 7]], consts: [null, sc([1, 1, 0.7, 1.5])], attrs: { mode: 'nearest' } });
  out.push({ name: 'Resize linear scales 0.3 x 2.6 on 10x9', op: 'Resize', opset: 13, inputs: [[1, 1, 10, 9]], consts: [null, sc([1, 1, 0.3, 2.6])], attrs: { mode: 'linear' } });
  out.push({ name: 'Resize nearest scales 1/3 on 9x10', op: 'Resize', opset: 13, inputs: [[1, 1, 9, 10]], consts: [null, sc([1, 1, 1 / 3, 1 / 3])], attrs: { mode: 'nearest' } });
  out.push({ name: 'Resize cubic sizes', op: 'Resize', opset: 13, inputs: [[1, 1, 6, 5]], consts: [null, null, { ints: [1, 1, 9, 4] }], attrs: { mode: 'cubic' } });
  for (const policy of ['stretch', 'not_larger', 'not_smaller']) {
    out.push({ name: `Resize opset 18 sizes, axes, keep_aspect_ratio_policy ${policy}`, op: 'Resize', opset: 18, inputs: [[1, 1, 10, 7]], consts: [null, null, { ints: [5, 5] }], attrs: { mode: 'nearest', axes: [2, 3], keep_aspect_ratio_policy: policy } });
    out.push({ name: `Resize opset 18 sizes 13x4, ${policy}`, op: 'Resize', opset: 18, inputs: [[1, 1, 6, 9]], consts: [null, null, { ints: [13, 4] }], attrs: { mode: 'linear', axes: [2, 3], keep_aspect_ratio_policy: policy } });
    out.push({ name: `Resize opset 18 sizes 7x7 on 3x11, ${policy}`, op: 'Resize', opset: 18, inputs: [[1, 1, 3, 11]], consts: [null, null, { ints: [1, 1, 7, 7] }], attrs: { mode: 'nearest', keep_aspect_ratio_policy: policy } });
  }
  out.push({ name: 'Upsample opset 9 scales 2 x 1.5', op: 'Upsample', opset: 9, inputs: [[1, 1, 4, 5]], consts: [sc([1, 1, 2, 1.5])], attrs: { mode: 'nearest' } });
  // Slice with steps
  const slice = (name: string, x: number[], starts: number[], ends: number[], axes: number[], steps: number[]): Case =>
    ({ name, op: 'Slice', inputs: [x], consts: [{ ints: starts }, { ints: ends }, { ints: axes }, { ints: steps }] });
  out.push(slice('Slice step 2', [2, 9, 5], [1], [BIG], [1], [2]));
  out.push(slice('Slice step -1 (reverse)', [2, 9, 5], [-1], [-BIG], [1], [-1]));
  out.push(slice('Slice step -3 clamped', [2, 9, 5], [20], [0], [1], [-3]));
  out.push(slice('Slice two axes, negative starts', [2, 9, 5], [-4, 1], [-1, 4], [1, 2], [1, 2]));
  // Reshape 0 / -1
  out.push({ name: 'Reshape [0, -1]', op: 'Reshape', inputs: [[2, 3, 4]], consts: [{ ints: [0, -1] }] });
  out.push({ name: 'Reshape [-1, 6, 0]', op: 'Reshape', inputs: [[2, 3, 4]], consts: [{ ints: [-1, 6, 0] }] });
  // Split
  out.push({ name: 'Split sizes input (opset 13)', op: 'Split', opset: 13, inputs: [[2, 5, 3]], consts: [{ ints: [2, 3] }], attrs: { axis: 1 }, outputs: 2 });
  out.push({ name: 'Split num_outputs 3 of 7 (opset 18)', op: 'Split', opset: 18, inputs: [[2, 7, 3]], attrs: { axis: 1, num_outputs: 3 }, outputs: 3 });
  out.push({ name: 'Split equal parts (opset 13)', op: 'Split', opset: 13, inputs: [[2, 6, 3]], attrs: { axis: -1 }, outputs: 3 });
  // Concat, Transpose, Gather, Flatten, Pad, Expand
  out.push({ name: 'Concat axis 1', op: 'Concat', inputs: [[1, 2, 3], [1, 5, 3]], attrs: { axis: 1 } });
  out.push({ name: 'Concat axis -1', op: 'Concat', inputs: [[1, 2, 3], [1, 2, 4], [1, 2, 1]], attrs: { axis: -1 } });
  out.push({ name: 'Transpose perm', op: 'Transpose', inputs: [[2, 3, 4, 5]], attrs: { perm: [0, 3, 1, 2] } });
  out.push({ name: 'Transpose default', op: 'Transpose', inputs: [[2, 3, 4]] });
  out.push({ name: 'Gather 2-D indices axis 1', op: 'Gather', inputs: [[2, 5, 3]], consts: [{ ints: [0, 2, 4, 1], dims: [2, 2] }], attrs: { axis: 1 } });
  out.push({ name: 'Gather scalar index axis 0', op: 'Gather', inputs: [[4, 3]], consts: [{ ints: [-1], dims: [] }] });
  for (const axis of [0, 2, -1]) out.push({ name: `Flatten axis ${axis}`, op: 'Flatten', inputs: [[2, 3, 4, 5]], attrs: { axis } });
  out.push({ name: 'Pad pads input (opset 13)', op: 'Pad', opset: 13, inputs: [[1, 2, 3, 4]], consts: [{ ints: [0, 0, 1, 2, 0, 0, 3, 0] }] });
  out.push({ name: 'Pad with axes (opset 18)', op: 'Pad', opset: 18, inputs: [[1, 2, 3, 4]], consts: [{ ints: [1, 2, 0, 3] }, null, { ints: [-1, 2] }] });
  out.push({ name: 'Pad negative (crop)', op: 'Pad', opset: 13, inputs: [[1, 2, 5, 4]], consts: [{ ints: [0, 0, -1, 0, 0, 0, -2, 1] }] });
  out.push({ name: 'Expand broadcast', op: 'Expand', inputs: [[3, 1]], consts: [{ ints: [2, 1, 4] }] });
  out.push({ name: 'Tile', op: 'Tile', inputs: [[2, 3, 1]], consts: [{ ints: [2, 1, 4] }] });
  out.push({ name: 'ScatterND', op: 'ScatterND', inputs: [[4, 3], [2, 3]], consts: [{ ints: [0, 2], dims: [2, 1] }] });
  out.push({ name: 'Range of constants', op: 'Range', inputs: [], consts: [{ floats: [1], dims: [] }, { floats: [8.5], dims: [] }, { floats: [2], dims: [] }] });
  return out;
}

/** The model of one case: fed inputs x0.., constants c0.., outputs y0... */
function build(c: Case): { model: Model; outputs: Value[] } {
  const g = new Graph();
  const opset = c.opset ?? 17;
  const model = new Model({ irVersion: 8, opsetImport: [{ domain: '', version: opset }], metadataProps: [], trainingInfo: [], functions: [], configuration: [] }, g);
  const inputs: (Value | null)[] = c.inputs.map((s, i) => g.addInput(`x${i}`, { elemType: DataType.FLOAT, shape: s }));
  // ScatterND: data, indices, updates (the fed updates go last)
  if (c.op === 'ScatterND') inputs.splice(1, 0, null);
  (c.consts ?? []).forEach((k, i) => {
    const v = !k ? null : 'ints' in k ? g.addInitializer(Tensor.int64(`c${i}`, k.dims ?? [k.ints.length], k.ints)) : g.addInitializer(Tensor.float32(`c${i}`, k.dims ?? [k.floats.length], Float32Array.from(k.floats)));
    const hole = inputs.indexOf(null);
    if (c.op === 'ScatterND' && hole >= 0) inputs[hole] = v;
    else inputs.push(v);
  });
  const node = g.addNode({ opType: c.op, name: 'op', inputs, outputs: Array.from({ length: c.outputs ?? 1 }, (_, i) => `y${i}`), attrs: c.attrs ?? {} });
  const outputs = node.outputs.map((v) => v!);
  for (const v of outputs) {
    v.declared = { elemType: DataType.FLOAT, shape: null };
    g.addOutput(v);
  }
  return { model, outputs };
}

const all = cases();
/** onnxruntime's own static inference warns where its runtime disagrees with it (Resize): errors only. */
const QUIET = { logSeverityLevel: 3 as const };

test(`the generated set: ${all.length} single-op models, every output's dims as onnxruntime gives them`, async () => {
  const mismatches: string[] = [];
  for (const c of all) {
    const { model, outputs } = build(c);
    inferShapes(model);
    const s = await createSession(model, QUIET, c.name);
    const feeds = Object.fromEntries(c.inputs.map((shape, i) => [`x${i}`, { data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(1), dims: shape }]));
    const got = await runFloat(s, feeds);
    for (const v of outputs) {
      const ort = [...got[v.name].dims];
      const ours = v.inferred?.shape;
      if (JSON.stringify(ours) !== JSON.stringify(ort)) mismatches.push(`${c.name}, ${v.name}: gpt ${JSON.stringify(ours)}, onnxruntime ${JSON.stringify(ort)}`);
    }
  }
  assert.equal(mismatches, [], mismatches.join('\n'));
});

test('the set covers every op family the issue names', () => {
  const ops = new Set(all.map((c) => c.op));
  for (const op of ['Conv', 'MaxPool', 'AveragePool', 'Resize', 'Upsample', 'Slice', 'Reshape', 'Split', 'Concat', 'Transpose', 'Gather', 'Flatten', 'Pad', 'Expand']) assert.ok(ops.has(op), op);
  assert.ok(all.some((c) => c.attrs?.ceil_mode === 1));
  assert.ok(all.some((c) => typeof c.attrs?.auto_pad === 'string'));
  assert.ok(all.some((c) => typeof c.attrs?.keep_aspect_ratio_policy === 'string'));
});

test('negative: a shape inference that multiplied in float64 would be caught (10 x float32(0.7) floors to 6 in float64, onnxruntime gives 7)', async () => {
  assert.is(Math.floor(10 * Math.fround(0.7)), 6);
  const c = all.find((k) => k.name.startsWith('Resize nearest scales 0.7'))!;
  const { model, outputs } = build(c);
  const s = await createSession(model, QUIET);
  const got = await runFloat(s, { x0: { data: new Float32Array(70).fill(1), dims: [1, 1, 10, 7] } });
  assert.equal([...got[outputs[0].name].dims], [1, 1, 7, 10]);
});

test.run();
