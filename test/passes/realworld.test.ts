/**
 * Every pass on the real exports (../shared/fixtures-realworld): PRN exact against the PRN reference
 * outputs (the op17 dynamic-axes model at both of its samples), CSP and ELAN outputs run in
 * onnxruntime with the source's input / output names and shapes. An already-CSP model is refused by
 * --to csp and converted by --to elan from its CSP form.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../../src/onnx/io';
import { convert } from '../../src/passes/convert';
import { createSession, runFloat } from '../../src/profile/ort';
import { isGptError } from '../../src/errors';
import type { Model } from '../../src/ir/model';
import { SHIPPED_RULES_DIR, loadRules } from '../../src/analysis/rules';
import { maxAbsDiff, readNpy, realworld, realworldPath, repoRoot, tmpDir } from '../helpers';

async function run(model: Model, inputNpy: string): Promise<{ names: { in: string[]; out: string[] }; dims: number[]; data: Float32Array }> {
  const s = await createSession(model);
  const x = readNpy(realworldPath(inputNpy));
  const out = await runFloat(s, { [s.inputNames[0]]: { data: x.data, dims: x.shape } });
  const y = out[s.outputNames[0]];
  return { names: { in: [...s.inputNames], out: [...s.outputNames] }, dims: [...y.dims], data: y.data };
}

/** [input, prn-output] pairs: the main sample, and the extra one of a dynamic-axes model. */
function samples(fx: ReturnType<typeof realworld>[number]): { input: string; prn: string; dims: number[] }[] {
  const out = [{ input: fx.sampleInput, prn: fx.prnOutput, dims: readNpy(realworldPath(fx.sampleOutput)).shape }];
  if (fx.extraSamples) out.push({ input: fx.extraSamples[0], prn: fx.extraSamples[2], dims: readNpy(realworldPath(fx.extraSamples[2])).shape });
  return out;
}

for (const fx of realworld()) {
  test(`${fx.model}: --to prn masks all ${fx.residualAdds} residual adds and reproduces the PRN reference output`, async () => {
    const { model, report } = convert(loadModel(realworldPath(fx.model)), { to: 'prn', ratio: 0.5 });
    assert.is(report.converted.length, fx.residualAdds);
    // the residual Adds keep their names (the parts form's as <add>/part0, beside the split convs' <conv>/parts/Add)
    const residual = (n: { opType: string; name: string }) => n.opType === 'Add' && /\/Add(\/part0)?$/.test(n.name) && !/\/parts\/Add$/.test(n.name);
    assert.is(model.graph.nodes.filter(residual).length, fx.residualAdds);
    for (const s of samples(fx)) {
      const y = await run(model, s.input);
      const { diff, tol } = maxAbsDiff(y.data, readNpy(realworldPath(s.prn)).data);
      assert.ok(diff <= tol, `${s.input}: max abs diff ${diff} > ${tol}`);
      assert.equal(y.dims, s.dims);
      // negative: the source's own output is not the PRN output
      const src = await run(loadModel(realworldPath(fx.model)), s.input);
      assert.ok(maxAbsDiff(src.data, readNpy(realworldPath(s.prn)).data).diff > tol);
    }
  });

  for (const to of ['csp', 'elan'] as const) {
    if (fx.family === 'cspdarknet53' && to === 'csp') continue;
    test(`${fx.model}: --to ${to} runs in onnxruntime with the source's input / output names and shapes`, async () => {
      const source = loadModel(realworldPath(fx.model));
      const { model, report } = convert(source, { to });
      assert.ok(report.converted.length > 0);
      assert.equal(report.unconverted, []);
      assert.equal(model.graph.inputs.filter((v) => !v.tensor).map((v) => v.name), [fx.input.name]);
      assert.equal(model.graph.outputs.map((v) => v.name), [fx.output]);
      assert.equal(model.graph.outputs[0].shape, source.graph.outputs[0].shape);
      assert.equal(model.graph.inputs[0].shape, source.graph.inputs[0].shape);
      for (const s of samples(fx)) {
        const y = await run(model, s.input);
        assert.equal(y.names, { in: [fx.input.name], out: [fx.output] });
        assert.equal(y.dims, s.dims);
        assert.ok(y.data.every(Number.isFinite));
      }
    });
  }
}

test('cspdarknet53: --to csp writes it unchanged with a clear warning (already cross-stage partial), --strict refuses; --to elan converts from the CSP form', async () => {
  const m = loadModel(realworldPath('cspdarknet53-w19.onnx'));
  const same = convert(m, { to: 'csp' });
  assert.is(same.report.converted.length, 0);
  assert.ok(same.report.warnings.some((w) => /already cross-stage partial \(5 of 5 stages.*written unchanged \(convert --to elan/.test(w)), same.report.warnings.join('\n'));
  assert.is(same.model.graph.nodes.length, loadModel(realworldPath('cspdarknet53-w19.onnx')).graph.nodes.length);
  try {
    convert(m, { to: 'csp', strict: true });
    assert.unreachable('CSP on top of CSP was not refused under --strict');
  } catch (e) {
    assert.ok(isGptError(e) && e.code === 'E_PATTERN', String(e));
    assert.match((e as Error).message, /already cross-stage partial \(5 of 5 stages/);
    assert.match((e as { hint?: string }).hint ?? '', /--to elan/);
  }
  // negative: the plain Darknet-53 is converted
  assert.ok(convert(loadModel(realworldPath('darknet53-silu-w19.onnx')), { to: 'csp' }).report.converted.length > 0);
  // ELAN keeps each stage's split, Concat and transitions, and stacks the blocks of part 1
  const { model, report } = convert(m, { to: 'elan' });
  assert.is(report.converted.length, 5);
  const names = new Set(model.graph.nodes.map((n) => n.name));
  for (let i = 0; i < 5; i++) {
    assert.ok(names.has(`/stages/stages.${i}/Split`) && names.has(`/stages/stages.${i}/Concat`), `stage ${i} lost its CSP form`);
  }
  assert.ok(!names.has('/stages/stages.2/blocks/blocks.0/Add'));
  const y = await run(model, 'cspdarknet53-w19.input.npy');
  assert.equal(y.dims, [1, 10]);
});

/** The shipped bottleneck rule with ResNet-B's strided 1x1 shortcut only (no AvgPool): ResNet-D's first blocks escape it. */
function withoutAvgDown() {
  const dir = tmpDir();
  const spec = JSON.parse(fs.readFileSync(path.join(SHIPPED_RULES_DIR, 'resnet-bottleneck.json'), 'utf8'));
  spec.name = 'bottleneck-b';
  spec.pattern.find((e: { id: string }) => e.id === 'proj').op = 'convBn';
  spec.pattern.find((e: { id: string }) => e.id === 'proj').attrs = { kernel: 1, stride: [1, 2] };
  delete spec.$schema;
  fs.writeFileSync(path.join(dir, 'b.json'), JSON.stringify(spec));
  return loadRules([dir]).filter((r) => r.name !== 'resnet-bottleneck');
}

test('resnet50d with a rule set that misses the AvgPool shortcut: coverage 13 / 16, one incomplete line naming the 3 Adds, an error under --strict', () => {
  const rules = withoutAvgDown();
  const { report } = convert(loadModel(realworldPath('resnet50d-w25.onnx')), { to: 'prn', rules });
  assert.is(report.coverage.blocks, 13);
  assert.is(report.coverage.candidates, 16);
  assert.is(report.converted.length, 13);
  assert.equal(report.coverage.left, ['/layer2/layer2.0/Add', '/layer3/layer3.0/Add', '/layer4/layer4.0/Add']);
  assert.match(report.incomplete!, /^prn: 3 residual add\(s\) \/ block\(s\) left unconverted \(3 residual Add\(s\) no rule explains\)/);
  assert.is(report.incomplete!.split('\n').length, 1);
  try {
    convert(loadModel(realworldPath('resnet50d-w25.onnx')), { to: 'prn', rules, strict: true });
    assert.unreachable();
  } catch (e) {
    assert.ok(isGptError(e) && e.code === 'E_PATTERN');
    assert.match((e as Error).message, /node\(s\) match no rule|block-like node\(s\) no rule explains/);
  }
  // negative: with the shipped rules nothing is left and there is no line
  const full = convert(loadModel(realworldPath('resnet50d-w25.onnx')), { to: 'prn' }).report;
  assert.equal(full.coverage.left, []);
  assert.is(full.incomplete, undefined);
});

test('resnet50d: CSP with CSPNet\'s fusion (both) grows the model and says so with the option that avoids it; the default picks fusion last and does not grow it', () => {
  const both = convert(loadModel(realworldPath('resnet50d-w25.onnx')), { to: 'csp', fusion: 'both' }).report;
  assert.ok(both.after.params > both.before.params);
  assert.match(both.growth!, /^the CSP model is larger than the source \(params 1\.\d{3}x, MACs 1\.\d{3}x\); --fusion last/);
  const auto = convert(loadModel(realworldPath('resnet50d-w25.onnx')), { to: 'csp' }).report;
  assert.is(auto.options.fusion, 'last');
  assert.ok(auto.after.params <= auto.before.params && auto.after.macs <= auto.before.macs);
  assert.is(auto.growth, undefined);
  assert.match(auto.notes[0], /^fusion last: CSPNet's own fusion \(both\) would make this model larger/);
  // negative: Darknet-53 keeps CSPNet's own fusion by default (it does not grow)
  assert.is(convert(loadModel(realworldPath('darknet53-silu-w19.onnx')), { to: 'csp' }).report.options.fusion, 'both');
  // the CLI prints the growth as one stderr line
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'run.js'), 'convert', realworldPath('resnet50d-w25.onnx'), '--to', 'csp', '--fusion', 'both', '--dry-run'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stderr.split('\n').filter((l) => l.startsWith('gpt: grows: the CSP model is larger')).length, 1);
});

test('ELAN --width is relative to the bottleneck width: ELAN shrinks resnet50d and seresnet50; a wider --width that grows it says so', () => {
  for (const f of ['resnet50d-w25.onnx', 'seresnet50-w25.onnx', 'resnext50-w25.onnx']) {
    const r = convert(loadModel(realworldPath(f)), { to: 'elan' }).report;
    assert.ok(r.after.params < r.before.params && r.after.macs < r.before.macs, `${f}: ${r.after.params} / ${r.before.params}`);
    // by hand, resnet50d stage 1: bottleneck width 32 (x1/4 of 128) -> c = 16
    if (f === 'resnet50d-w25.onnx') assert.match(r.converted.find((c) => c.stage === 1)!.change, /2 x 1x1 -> 16, 4 x 3x3 16,/);
    if (f === 'resnext50-w25.onnx') assert.match(r.converted.find((c) => c.stage === 1)!.change, /4 x 3x3 32 \(group 16\)/);
  }
  const wide = convert(loadModel(realworldPath('resnet50d-w25.onnx')), { to: 'elan', width: 1 }).report;
  assert.ok(wide.after.params > wide.before.params);
  assert.match(wide.growth!, /a smaller --width/);
});

test('seresnet50: CSP keeps each SE inside its block with the squeeze width scaled with the stream (8 of 128 -> 4 of 64)', async () => {
  const { model } = convert(loadModel(realworldPath('seresnet50-w25.onnx')), { to: 'csp' });
  const dims = (name: string) => {
    const n = model.graph.nodes.find((x) => x.name === name);
    assert.ok(n, name);
    return model.graph.constantTensor(n!.inputs[1])!.dims;
  };
  // layer2 at a quarter width: block output 128, SE reduction 8 (timm: C/16 rounded to 8, at least 8); part 1 = 64
  for (const b of ['layer2.1', 'layer2.2', 'layer2.3']) {
    assert.equal(dims(`/layer2/${b}/se/fc1/Conv`), [4, 64, 1, 1]);
    assert.equal(dims(`/layer2/${b}/se/fc2/Conv`), [64, 4, 1, 1]);
  }
  // negative: the stage's projecting first block stays in front of the split, its SE untouched
  assert.equal(dims('/layer2/layer2.0/se/fc1/Conv'), [8, 128, 1, 1]);
  const y = await run(model, 'seresnet50-w25.input.npy');
  assert.equal(y.dims, [1, 10]);
});

// ELAN on VoVNetV2 (eSE, identity Add): test/passes/elan-relocate.test.ts

test.run();
