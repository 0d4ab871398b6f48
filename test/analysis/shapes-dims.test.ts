/**
 * Dimension arithmetic (symbols, sums, products, floor quotients) and what it buys: a model
 * exported with dynamic height and width gets its MACs, symbolically or with --dim values
 * substituted before inference. Figures: hand computation, the fixture manifest, onnxruntime.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { costModel } from '../../src/analysis/cost';
import { inspect } from '../../src/analysis/inspect';
import { inferShapes } from '../../src/analysis/shapes';
import { addDim, ceilDivDim, divDim, evalDim, floorDivDim, mulDim, substituteDim, subDim, symbolDim, symbolsOf } from '../../src/analysis/shapes/dims';
import { loadModel } from '../../src/onnx/io';
import { createSession, runFloat } from '../../src/profile/ort';
import { fixturesDir } from '../helpers';
import * as path from 'node:path';
import * as fs from 'node:fs';

test('products keep the old spelling: symbols sorted, the number last', () => {
  assert.is(mulDim('batch', 64), 'batch*64');
  assert.is(mulDim(mulDim('w', 2), mulDim('batch', 3)), 'batch*w*6');
  assert.is(divDim('batch*64', 8), 'batch*8');
  assert.is(divDim('batch*64', 'batch'), 64);
  assert.is(mulDim('batch', 0), 0);
  assert.is(mulDim('batch', null), null);
});

test('sums: canonical, constants last, cancellation', () => {
  assert.is(addDim('height', 2), 'height+2');
  assert.is(addDim(2, 'height'), 'height+2');
  assert.is(subDim('height', 3), 'height-3');
  assert.is(addDim(subDim('height', 3), 3), 'height');
  assert.is(subDim('height', 'height'), 0);
  assert.is(addDim('w', 'h'), 'h+w');
  assert.is(mulDim(addDim('h', 1), 2), 'h*2+2');
});

test('floor quotients: exact parts come out, the rest stays in one atom', () => {
  // Conv 3x3, stride 2, pads 1: floor((h + 2 - 3) / 2) + 1 = floor((h + 1) / 2)
  assert.is(addDim(floorDivDim(addDim('h', -1), 2), 1), 'floor((h+1)/2)');
  assert.is(floorDivDim(mulDim('h', 4), 2), 'h*2');
  assert.is(floorDivDim('h', 2), 'floor(h/2)');
  assert.is(floorDivDim(addDim(mulDim('h', 4), 3), 2), 'h*2+1'); // floor((4h+3)/2) = 2h + 1
  assert.is(ceilDivDim('h', 2), 'floor((h+1)/2)');
  assert.is(floorDivDim(7, 2), 3);
  assert.is(floorDivDim('h', 0), null);
  // evaluation agrees with integer arithmetic for every h
  const e = floorDivDim(addDim(floorDivDim(addDim('h', 1), 2), 1), 2);
  for (let h = 1; h < 40; h++) assert.is(evalDim(e, () => h), Math.floor((Math.floor((h + 1) / 2) + 1) / 2), `h = ${h}`);
});

test('negative: a division that is not exact is null, an unknown symbol evaluates to null', () => {
  assert.is(divDim('batch*64', 'w'), null);
  assert.is(divDim('h+1', 2), null);
  assert.is(divDim(7, 2), null);
  assert.is(evalDim('floor((h+1)/2)', () => undefined), null);
});

test('substitution: given symbols become numbers, the rest stays symbolic; names that read as expressions are bracketed', () => {
  assert.is(substituteDim('floor((floor((height+1)/2)+1)/2)', { height: 224 }), 56);
  assert.is(substituteDim('batch*floor((h+1)/2)', { h: 9 }), 'batch*5');
  assert.is(substituteDim('batch*floor((h+1)/2)', { batch: 2 }), 'floor((h+1)/2)*2');
  assert.is(symbolDim('batch size'), '[batch size]');
  assert.is(symbolDim('height'), 'height');
  assert.equal(symbolsOf(mulDim(symbolDim('batch size'), floorDivDim(addDim('h', 1), 2))).sort(), ['batch size', 'h']);
  assert.is(evalDim(mulDim(symbolDim('batch size'), 3), (s) => (s === 'batch size' ? 4 : undefined)), 12);
});

// ---------------------------------------------------------------------------------------------
// resnet50d-w25-op17dyn: input ["batch", 3, "height", "width"]

const realworld = path.join(fixturesDir, '..', 'fixtures-realworld');
const manifest = JSON.parse(fs.readFileSync(path.join(realworld, 'manifest.json'), 'utf8')).models as { model: string; macs: number; onnxParams?: number; params: number }[];
const dyn = () => loadModel(path.join(realworld, 'resnet50d-w25-op17dyn.onnx'));
const entry = manifest.find((m) => m.model === 'resnet50d-w25-op17dyn.onnx')!;

test('dynamic height and width: every activation keeps a symbolic size, the output is [batch, 10]', () => {
  const m = dyn();
  assert.equal(inferShapes(m).warnings, []);
  for (const n of m.graph.nodes) for (const o of n.outputs) assert.ok(o?.inferred?.shape?.every((d) => d !== null), `${o?.name}: ${JSON.stringify(o?.inferred?.shape)}`);
  assert.equal(m.graph.outputs[0].inferred!.shape, ['batch', 10]);
  // the stem's first conv (3x3 stride 2 pad 1)
  assert.equal(m.graph.nodes.find((n) => n.opType === 'Conv')!.outputs[0]!.inferred!.shape, ['batch', 8, 'floor((height+1)/2)', 'floor((width+1)/2)']);
});

test(`dynamic height and width with --dim height=64 --dim width=64: the manifest's ${entry.macs} MACs and ${entry.onnxParams} params`, () => {
  const m = dyn();
  inferShapes(m); // symbolic first, as analyze does; cost substitutes and infers again
  const c = costModel(m, { dims: { height: 64, width: 64 } });
  assert.is(c.totals.macs, entry.macs);
  assert.is(c.totals.params, entry.onnxParams);
  assert.equal(c.dims, { batch: 1, height: 64, width: 64 });
  assert.equal(c.assumedSymbols, ['batch']);
  // the model keeps its symbolic shapes
  assert.equal(m.graph.outputs[0].inferred!.shape, ['batch', 10]);
});

test('inspect --dim height=224 --dim width=224: the 64x64 figure scaled by area, by hand', () => {
  // every feature map is 3.5x larger per side (112..7 against 32..2), so conv MACs grow by 12.25;
  // the classifier (Gemm 512 -> 10: 5120 MACs) does not grow
  const gemm = 512 * 10;
  const r = inspect(dyn(), { dims: { height: 224, width: 224 } });
  assert.is(r.macs, (entry.macs - gemm) * 12.25 + gemm);
  assert.equal(r.inputs[0].shape, ['batch', 3, 'height', 'width']);
});

test('negative: without --dim the sizes are taken as 1 and said so', () => {
  const c = costModel(dyn());
  assert.equal(c.assumedSymbols, ['batch', 'height', 'width']);
  assert.ok(c.totals.macs < entry.macs / 10);
});

test('dynamic height and width at batch 2, 96x80: MACs equal those from the conv output sizes onnxruntime reports', async () => {
  // independent figure: expose every Conv / Gemm output, run onnxruntime at [2, 3, 96, 80], and
  // sum output elements x (weight elements / output channels)
  const m = dyn();
  const weighted = m.graph.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'Gemm');
  for (const n of weighted) if (!m.graph.isGraphOutput(n.outputs[0]!)) m.graph.addOutput(n.outputs[0]!);
  const s = await createSession(m, { logSeverityLevel: 3 });
  const out = await runFloat(s, { input: { data: new Float32Array(2 * 3 * 96 * 80).fill(0.5), dims: [2, 3, 96, 80] } });
  let expected = 0;
  for (const n of weighted) {
    const dims = out[n.outputs[0]!.name].dims;
    const w = m.graph.constantTensor(n.inputs[1])!;
    const perOutput = n.opType === 'Conv' ? w.size / w.dims[0] : w.dims[1]; // Gemm transB: [N, K]
    expected += dims.reduce((a, b) => a * b, 1) * perOutput;
  }
  const fresh = dyn();
  const c = costModel(fresh, { dims: { batch: 2, height: 96, width: 80 } });
  assert.is(c.totals.macs, expected);
  assert.equal(c.assumedSymbols, []);
  // the symbolic shapes, evaluated at the same sizes, are onnxruntime's
  inferShapes(fresh);
  const env: Record<string, number> = { batch: 2, height: 96, width: 80 };
  for (const n of fresh.graph.nodes.filter((k) => k.opType === 'Conv' || k.opType === 'Gemm')) {
    const sym = n.outputs[0]!.inferred!.shape!;
    assert.equal(sym.map((d) => evalDim(d, (k) => env[k])), [...out[n.outputs[0]!.name].dims], `${n.name}: ${JSON.stringify(sym)}`);
  }
});

test.run();
