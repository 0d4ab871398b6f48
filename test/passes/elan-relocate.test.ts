/**
 * ELAN's transition relocation on VoVNetV2 OSA modules (eSE attention, identity Add) and the
 * choice of what the next module's first conv reads: hand counts on a tiny stage, the real timm
 * export through the command line, and the cases that must be refused.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GptError } from '../../src/errors';
import type { Value } from '../../src/ir/graph';
import type { Model } from '../../src/ir/model';
import { loadModel, saveModelToBuffer } from '../../src/onnx/io';
import { convert, ConvertOptions } from '../../src/passes/convert';
import { createSession, runFloat } from '../../src/profile/ort';
import { Tiny } from '../fixtures/tiny-graph';
import { readNpy, realworldPath, repoRoot, tmpDir } from '../helpers';

/**
 * One stage of two VoVNetV2 modules, as timm's OsaStage builds them (eSE on the last module, the
 * identity Add on every module but the first). Input 8 channels at 16x16, layer width 8, output 16;
 * conv-BN-ReLU layers (BN as a node: 2 params per channel, no MACs).
 *
 *   x(8) ─ l0 3x3 ─ l1 3x3 ─ Concat[x, l0, l1] (24) ─ T0 1x1 -> 16 ─┬─ l0 3x3 ─ l1 3x3 ─ Concat[T0, l0, l1] (32) ─ T1 1x1 -> 16 ─ eSE ─ Add ─ head
 *                                                    module m0     │                                           module m1             │
 *                                                                  └───────────────────────────────────────────────────────────────────┘ (identity)
 */
function osaV2Stage(opts: { addIsOutput?: boolean } = {}): Model {
  const t = new Tiny(8);
  const module = (x: Value, p: string, last: boolean): Value => {
    const a = t.convBnAct(x, `${p}.l0`, 8, 3);
    const b = t.convBnAct(a, `${p}.l1`, 8, 3);
    let y = t.convBnAct(t.op('Concat', `${p}.concat`, [x, a, b], { axis: 1 }), `${p}.transition`, 16, 1);
    if (!last) return y;
    const pool = t.op('ReduceMean', `${p}.ese.pool`, [y], { axes: [2, 3], keepdims: 1 });
    y = t.op('Mul', `${p}.ese.mul`, [y, t.op('HardSigmoid', `${p}.ese.gate`, [t.conv(pool, `${p}.ese.fc`, 16, 1)])]);
    return t.op('Add', `${p}.add`, [y, x]);
  };
  const out = module(module(t.x, 'm0', false), 'm1', true);
  t.head(out);
  if (opts.addIsOutput) {
    out.declared = { elemType: 1, shape: [1, 16, 16, 16] };
    t.g.addOutput(out);
  }
  return t.model();
}

const elan = (m: Model, o: Partial<ConvertOptions> = {}) => convert(m, { to: 'elan', ...o });
const names = (m: Model, op: string) => m.graph.nodes.filter((n) => n.opType === op).map((n) => n.name);
const weightDims = (m: Model, conv: string) => m.graph.constantTensor(m.graph.nodes.find((n) => n.name === conv)!.inputs[1])!.dims;

// Hand counts (weights; BN 2 x channels; MACs = conv weights x 256 pixels, the eSE fc at 1 pixel):
//   T0 removed:  24*16 + BN 32 = 416 params, 384*256 MACs
//   last kept transition T1: Concat[T0, m1.l0, m1.l1] = 32 -> Concat[x, m0.l0, m0.l1, m1.l0, m1.l1] = 40: +16*8 = +128
//   m1.l0 reading the concatenation (24): 8*9*(24 - 16) = +576;  reading m0.l1 (8): 8*9*(8 - 16) = -576
//   concat link: +576 + 128 - 416 = +288 params, (576 + 128 - 384)*256 = +81920 MACs: grows, so not the default
//   last link:   -576 + 128 - 416 = -864 params, (-576 + 128 - 384)*256 = -212992 MACs
test('VoVNetV2 stage by default: T0 goes with the identity Add; m1 reads m0\'s last layer; the stage eSE stays; params and MACs by hand', () => {
  const { model, report } = elan(osaV2Stage());
  assert.is(report.after.params - report.before.params, -864);
  assert.is(report.after.macs - report.before.macs, -212992);
  assert.ok(!names(model, 'Conv').includes('m0.transition.conv'));
  assert.equal(names(model, 'Add'), []);
  // the stage's eSE after the kept transition, unchanged (16 -> 16)
  assert.equal(weightDims(model, 'm1.ese.fc'), [16, 16, 1, 1]);
  assert.equal(names(model, 'Mul'), ['m1.ese.mul']);
  assert.equal(weightDims(model, 'm1.l0.conv'), [8, 8, 3, 3]);
  assert.equal(weightDims(model, 'm1.transition.conv'), [16, 40, 1, 1]);
  assert.ok(report.notes.includes('stage 0: each next OSA module\'s first conv reads the previous module\'s last layer (--osa-input last): reading the whole concatenation would add 288 params and 81920 MACs to the stage; --osa-input concat to have it anyway'));
  assert.ok(report.notes.some((n) => n.startsWith('stage 0: the identity Add of s0.b1 is removed')));
  assert.equal(report.unconverted, []);
  assert.is(report.growth, undefined);
});

test('VoVNetV2 stage with --osa-input concat: m1 reads the 24-channel concatenation; +288 params by hand, so the growth line', () => {
  const { model, report } = elan(osaV2Stage(), { osaInput: 'concat' });
  assert.is(report.after.params - report.before.params, 288);
  assert.is(report.after.macs - report.before.macs, 81920);
  assert.equal(weightDims(model, 'm1.l0.conv'), [8, 24, 3, 3]);
  assert.equal(report.options.osaInput, 'concat');
  assert.match(report.growth!, /larger than the source/);
});

// Shortest gradient path (weight layers on the fewest-layer way to the output, the layer and the fc
// counted): source m0.l0 -> T0 -> (identity Add) -> fc = 3, m1.l0 -> T1 -> fc = 3, every other 2 or 1:
// max 3. ELAN: m0.l0 -> (Concat) T1 -> fc = 3, m1.l0 the same: max 3, with one weight layer fewer.
test('VoVNetV2 stage: the longest shortest gradient path stays 3 (hand count), one weight layer fewer', () => {
  const { report } = elan(osaV2Stage());
  assert.is(report.gradientPaths.before.maxShortest, 3);
  assert.is(report.gradientPaths.after.maxShortest, 3);
  assert.is(report.gradientPaths.before.layers - report.gradientPaths.after.layers, 1);
});

test('negative: the last module\'s Add output is a graph output; removing the Add would rename it, so the stage stays (E_PATTERN, nothing else to convert)', () => {
  try {
    elan(osaV2Stage({ addIsOutput: true }));
    assert.unreachable();
  } catch (e) {
    assert.instance(e, GptError);
    assert.is((e as GptError).code, 'E_PATTERN');
    assert.match((e as GptError).message, /s0\.b1: its identity Add's output 'm1\.add_out' is a graph output/);
  }
});

test('negative: --osa-input other than concat / last is E_ARG', () => {
  assert.throws(() => elan(osaV2Stage(), { osaInput: 'dense' as 'concat' }), (e: GptError) => e.code === 'E_ARG' && /--osa-input dense/.test(e.message));
  assert.throws(() => convert(osaV2Stage(), { to: 'csp', osaInput: 'last' } as unknown as ConvertOptions), (e: GptError) => e.code === 'E_ARG');
});

// ---------------------------------------------------------------------------------------------
// timm ese_vovnet39b at 3/16 width (stages 2 and 3 hold two modules: plain, then eSE + identity Add)

test('ese-vovnet39b-w19 through gpt convert --to elan: runs in onnxruntime with the same I/O; no growth; gradient path not longer', async () => {
  const dir = tmpDir('gpt-elan-v2-');
  const out = path.join(dir, 'elan.onnx');
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'run.js'), 'convert', realworldPath('ese-vovnet39b-w19.onnx'), '--to', 'elan', '--json', '-o', out], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stderr, '', 'no incomplete / grows line: one-module stages already have one transition');
  const report = JSON.parse(r.stdout);
  assert.equal(report.converted.map((c: { block: string }) => c.block), ['s2.b0', 's2.b1', 's3.b0', 's3.b1']);
  assert.match(report.converted[0].change, /^transition relocated: its 144-channel transition is removed; the next module's first conv reads this module's last layer \(36 channels\)/);
  // stage 2 at 3/16 width: input 96, layers 36 (x5), output 144; the kept transition reads 96 + 10*36 = 456
  assert.match(report.converted[1].change, /324 -> 456 input channels/);
  assert.ok(report.after.params < report.before.params && report.after.macs < report.before.macs);
  assert.ok(report.gradientPaths.after.maxShortest <= report.gradientPaths.before.maxShortest);
  const src = loadModel(realworldPath('ese-vovnet39b-w19.onnx'));
  const m = loadModel(out);
  assert.is(m.graph.nodes.filter((n) => n.opType === 'Add').length, 0, 'both identity Adds removed');
  assert.is(m.graph.nodes.filter((n) => n.opType === 'HardSigmoid').length, 4, 'one eSE per stage, as in the source');
  const s = await createSession(saveModelToBuffer(m));
  assert.equal([...s.inputNames], src.graph.inputs.filter((v) => !v.tensor).map((v) => v.name));
  assert.equal([...s.outputNames], src.graph.outputs.map((v) => v.name));
  const x = readNpy(realworldPath('ese-vovnet39b-w19.input.npy'));
  const y = (await runFloat(s, { [s.inputNames[0]]: { data: x.data, dims: x.shape } }))[s.outputNames[0]];
  assert.equal([...y.dims], readNpy(realworldPath('ese-vovnet39b-w19.output.npy')).shape);
  assert.ok(y.data.every(Number.isFinite));
});

test('gpt convert --osa-input: last / concat are taken by --to elan; another value, or --to csp, is a one-line error', () => {
  const gpt = (...args: string[]) => spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'run.js'), 'convert', realworldPath('ese-vovnet39b-w19.onnx'), '--dry-run', '--json', ...args], { encoding: 'utf8' });
  const ok = gpt('--to', 'elan', '--osa-input', 'concat');
  assert.is(ok.status, 0, ok.stderr);
  assert.is(JSON.parse(ok.stdout).options.osaInput, 'concat');
  assert.match(ok.stderr, /^gpt: grows: .*--osa-input last/m);
  // without --json: one line on stderr, exit status 2
  for (const bad of [['--to', 'elan', '--osa-input', 'dense'], ['--to', 'csp', '--osa-input', 'last']]) {
    const r = gpt(...bad).status === 0 ? null : spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'run.js'), 'convert', realworldPath('ese-vovnet39b-w19.onnx'), '--dry-run', ...bad], { encoding: 'utf8' });
    assert.ok(r && r.status === 2, r?.stderr);
    assert.is(r!.stderr.trim().split('\n').length, 1, r!.stderr);
    assert.match(r!.stderr, /^gpt: .*--osa-input/);
  }
});

test('ese-vovnet39b-w19 --csp and --osa-input concat: both run; concat grows the model and says so', async () => {
  const src = loadModel(realworldPath('ese-vovnet39b-w19.onnx'));
  const x = readNpy(realworldPath('ese-vovnet39b-w19.input.npy'));
  for (const o of [{ csp: true }, { osaInput: 'concat' as const }]) {
    const { model, report } = elan(src, o);
    assert.ok(report.gradientPaths.after.maxShortest <= report.gradientPaths.before.maxShortest);
    if (o.csp) assert.ok(report.after.params < report.before.params);
    else assert.match(report.growth!, /--osa-input last/);
    const s = await createSession(saveModelToBuffer(model));
    const y = (await runFloat(s, { [s.inputNames[0]]: { data: x.data, dims: x.shape } }))[s.outputNames[0]];
    assert.equal([...y.dims], [1, 10]);
  }
});

test.run();
