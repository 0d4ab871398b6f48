/**
 * CSPResNet-50 (timm `cspresnet50`, test/fixtures/cspresnet50: a PyTorch export at 1/8 of timm's widths
 * with its input, output and PRN output, made by generate.py there): every stage read as cross-stage
 * partial (1x1 expand conv, Split in halves, bottleneck blocks on the second half, 1x1 transition,
 * Concat, 1x1 transition), `--to csp` writes it unchanged with a warning (refused under --strict), `--to prn` exact against the fixture's PRN output,
 * `--to elan` converting from the CSP form; each result runs in onnxruntime with the source's input
 * and output names and shapes.
 *
 *   x ─ [3x3/2 down] ─ 1x1 expand (linear) ─ Split ─┬──────────────────────────────────┐
 *                                                   └─ [1x1 ─ 3x3 ─ 1x1 ─ Add] x n ─ 1x1 ─ Concat ─ 1x1
 */
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../../src/onnx/io';
import { recognize } from '../../src/analysis/structure';
import { convert } from '../../src/passes/convert';
import { createSession, runFloat } from '../../src/profile/ort';
import { isGptError } from '../../src/errors';
import type { Model } from '../../src/ir/model';
import { maxAbsDiff, readNpy, realworldPath, repoRoot } from '../helpers';
import * as fs from 'node:fs';

const dir = path.join(repoRoot, 'test', 'fixtures', 'cspresnet50');
const file = (ext: string) => path.join(dir, `cspresnet50-w12${ext}`);
const load = () => loadModel(file('.onnx'));

async function run(model: Model): Promise<{ inputs: string[]; outputs: string[]; dims: number[]; data: Float32Array }> {
  const s = await createSession(model);
  const x = readNpy(file('.input.npy'));
  const y = (await runFloat(s, { [s.inputNames[0]]: { data: x.data, dims: x.shape } }))[s.outputNames[0]];
  return { inputs: [...s.inputNames], outputs: [...s.outputNames], dims: [...y.dims], data: y.data };
}

// timm cspresnet50 at 1/8: stage outputs 16/32/64/128, expand_ratio 2 -> halves of 16/32/64/128, depths 3/3/5/2
const OUTS = [16, 32, 64, 128];
const DEPTHS = [3, 3, 5, 2];

test('cspresnet50: a ResNet whose every stage is cross-stage partial (Split in halves, fusion both), every bottleneck recognised', () => {
  const s = recognize(load());
  assert.is(s.family, 'resnet');
  assert.equal(s.unmatched, []);
  assert.equal(s.errors ?? [], []);
  assert.equal(s.stages.map((st) => st.blocks.length), DEPTHS);
  assert.ok(s.stages.every((st) => st.blocks.every((b) => b.rule === 'resnet-bottleneck' && b.residual?.shortcut === 'identity')));
  assert.is(s.coverage!.blocks, 13);
  assert.is(s.coverage!.candidates, 13);
  s.stages.forEach((st, i) => {
    assert.ok(st.csp, `stage ${i} not CSP`);
    assert.is(st.channels, OUTS[i]);
    assert.is(st.csp!.splitOp, 'split');
    assert.equal(st.csp!.parts, [OUTS[i], OUTS[i]]);
    assert.is(st.csp!.fusion, 'both');
    assert.equal(st.csp!.expand, [`/stages/stages.${i}/conv_exp/conv_exp.0/Conv`]);
    assert.is(st.csp!.concat, `/stages/stages.${i}/Concat`);
  });
  // negative: a plain ResNet-50-D has no CSP stage
  const plain = realworldPath('resnet50d-w25.onnx');
  if (fs.existsSync(plain)) assert.ok(recognize(loadModel(plain)).stages.every((st) => !st.csp));
});

test('cspresnet50: the export gives its recorded output in onnxruntime', async () => {
  const y = await run(load());
  const { diff, tol } = maxAbsDiff(y.data, readNpy(file('.output.npy')).data);
  assert.ok(diff <= tol, `${diff} > ${tol}`);
});

test('cspresnet50: --to csp writes the model unchanged with a warning naming the CSP form and --to elan / --to prn; --strict refuses it', () => {
  const src = load();
  const { model, report } = convert(src, { to: 'csp' });
  assert.is(report.converted.length, 0);
  assert.ok(report.warnings.some((w) => /already cross-stage partial \(4 of 4 stages; stage 0: split into 16 \+ 16 channels, fusion both\), so CSP has nothing to convert; the model is written unchanged \(convert --to elan/.test(w)), report.warnings.join('\n'));
  assert.equal(model.graph.nodes.map((n) => n.opType), load().graph.nodes.map((n) => n.opType));
  try {
    convert(load(), { to: 'csp', strict: true });
    assert.unreachable('CSP on top of CSP was not refused under --strict');
  } catch (e) {
    assert.ok(isGptError(e) && e.code === 'E_PATTERN', String(e));
    assert.match((e as Error).message, /already cross-stage partial \(4 of 4 stages/);
    assert.match((e as { hint?: string }).hint ?? '', /--to elan/);
  }
});

test('cspresnet50: --to prn masks all 13 residual adds inside the CSP stages and reproduces the PRN output exactly', async () => {
  const { model, report } = convert(load(), { to: 'prn', ratio: 0.5 });
  assert.is(report.converted.length, 13);
  assert.is(report.incomplete ?? null, null);
  const y = await run(model);
  assert.equal([y.inputs, y.outputs, y.dims], [['input'], ['logits'], [1, 10]]);
  const prn = readNpy(file('.prn-output.npy')).data;
  const { diff, tol } = maxAbsDiff(y.data, prn);
  assert.ok(diff <= tol, `max abs diff ${diff} > ${tol}`);
  // negative: the unconverted model does not give the PRN output
  assert.ok(maxAbsDiff(readNpy(file('.output.npy')).data, prn).diff > tol);
});

test('cspresnet50: --to elan converts from the CSP form (Split, Concat and transitions kept, the blocks of part 2 stacked) and makes it smaller', async () => {
  const src = load();
  const { model, report } = convert(src, { to: 'elan' });
  assert.is(report.converted.length, 4);
  assert.is(report.incomplete ?? null, null);
  const names = new Set(model.graph.nodes.map((n) => n.name));
  for (let i = 0; i < 4; i++) {
    for (const kept of ['Split', 'Concat', 'conv_exp/conv_exp.0/Conv', 'conv_transition/conv_transition.0/Conv']) assert.ok(names.has(`/stages/stages.${i}/${kept}`), `stage ${i} lost ${kept}`);
  }
  // no residual Add of the bottlenecks is left
  assert.not.ok(model.graph.nodes.some((n) => n.opType === 'Add' && n.name.includes('/blocks/')));
  assert.ok(report.after.params < report.before.params, `${report.after.params} >= ${report.before.params}`);
  const y = await run(model);
  assert.equal([y.inputs, y.outputs, y.dims], [['input'], ['logits'], [1, 10]]);
  assert.ok(y.data.every(Number.isFinite));
});

test.run();
