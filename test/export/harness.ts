/**
 * Shared by the PyTorch export tests: for every fixture of one folder and each of its PRN / CSP /
 * ELAN conversions (where the conversion applies), export to PyTorch, compute the expected outputs
 * with onnxruntime-node on the ONNX model, and check all exported modules in ONE Python process
 * (test/export/torch_check.py): eval outputs, one SGD step, torch.onnx.export.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { convert } from '../../src/passes/convert';
import { exportPytorch, writePytorchExport, type ExportPytorchResult } from '../../src/export/pytorch';
import { prnPartsToWhole } from '../../src/export/prn-whole';
import { findTorchPython } from '../../src/export/python';
import type { Node } from '../../src/ir/graph';
import type { Model } from '../../src/ir/model';
import { loadModel, saveModelToBuffer } from '../../src/onnx/io';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { analyzeModel } from '../../src/analysis/analyze';
import { STRUCTURE_KEY } from '../../src/analysis/recorded-structure';
import { loadRules } from '../../src/analysis/rules';
import { readNpy, repoRoot, skipTest, tmpDir } from '../helpers';

export interface Form {
  id: string;
  fixture: string;
  to: 'plain' | 'prn' | 'csp' | 'elan';
  model: Model;
  dir: string;
  exported: ExportPytorchResult;
  /** Also exported by a torch.onnx.export call with the exporter's defaults (a subset: see exportForms). */
  defaults: boolean;
  /** The conversion's options as its report gives them (CSP's splitOp). */
  options?: Record<string, unknown>;
}

export interface CheckResult {
  id: string;
  error?: string;
  eval?: { diff: number; tol: number; shape: number[] }[];
  outputs?: number;
  train?: { before: number; after: number; withGrad: number; parameters: number };
  onnx?: string;
  plainOnnx?: string;
  defaultsOnnx?: string;
}

/** The Python with torch, or null after a counted skip (a failure under CI=true, where .ci/run installs it). */
export function torchPythonOrSkip(what: string): string | null {
  const { python, tried } = findTorchPython();
  if (python) return python;
  if (process.env.CI) throw new Error(`no Python with torch (tried ${tried.join(', ')}; apt-get install python3-torch): ${what} cannot run under CI`);
  skipTest(`no Python with torch (tried ${tried.join(', ')}): ${what}`);
  return null;
}

export function fixtureEntries(folder: string): { model: string; sampleInput: string; family?: string }[] {
  const dir = path.resolve(repoRoot, '..', 'shared', folder);
  return JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')).models.map((m: { model: string; sampleInput: string; family?: string }) => ({
    model: path.join(dir, m.model),
    sampleInput: path.join(dir, m.sampleInput),
    family: m.family,
  }));
}

/**
 * Every form of every fixture in `folder`, exported into `work`; conversions that refuse are listed.
 * `prnMask`: fixtures (base names) whose PRN conversion is also exported in the mask form (id
 * `<name>.prn-mask`): the default parts form leaves no ResNet exported in it otherwise.
 */
export function exportForms(folder: string, work: string, prnMask: string[] = []): { forms: Form[]; refused: string[] } {
  const forms: Form[] = [];
  const refused: string[] = [];
  // the exporter's own defaults (opset, no names) for the CSP and ELAN forms of the first model of
  // each family in a classifier folder: one more export each (a detector's takes minutes here)
  const firstOfFamily = new Set<string>();
  for (const f of fixtureEntries(folder)) {
    if (folder !== 'fixtures-detectors' && f.family && ![...firstOfFamily].some((m) => fixtureEntries(folder).find((x) => x.model === m)?.family === f.family)) firstOfFamily.add(f.model);
  }
  for (const f of fixtureEntries(folder)) {
    const src = loadModel(f.model);
    const name = path.basename(f.model, '.onnx');
    const jobs: ['plain' | 'prn' | 'csp' | 'elan', string][] = [['plain', 'plain'], ['prn', 'prn'], ...(prnMask.includes(name) ? [['prn', 'prn-mask'] as ['prn', string]] : []), ['csp', 'csp'], ['elan', 'elan']];
    for (const [to, form] of jobs) {
      let model: Model;
      let options: Record<string, unknown> | undefined;
      if (to === 'plain') model = src;
      else if (form === 'prn-mask') model = convert(src, { to, emit: 'mask' }).model;
      else {
        try {
          // the default conversions, the forms users get: PRN in parts where that is the default
          // (ResNets; the exporter writes the architecture they compute, whole tensors), mask elsewhere
          const r = convert(src, { to });
          // CSP on a model that is all CSP already writes it unchanged: nothing new to export
          if (to === 'csp' && r.report.converted.length === 0) {
            refused.push(`${name} ${to}: unchanged (${r.report.warnings[0]?.slice(0, 80)})`);
            continue;
          }
          model = r.model;
          options = r.report.options;
        } catch (e) {
          refused.push(`${name} ${to}: ${(e as Error).message.slice(0, 100)}`);
          continue;
        }
      }
      const id = `${name}.${form}`;
      const dir = path.join(work, id);
      const exported = exportPytorch(model);
      writePytorchExport(exported, dir);
      forms.push({ id, fixture: f.sampleInput, to, model, dir, exported, defaults: firstOfFamily.has(f.model) && (to === 'csp' || to === 'elan'), options });
    }
  }
  return { forms, refused };
}

function writeF32(file: string, data: Float32Array): void {
  fs.writeFileSync(file, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
}

/** onnxruntime-node's outputs of each form on its fixture input, then the Python checks. */
export async function checkForms(python: string, forms: Form[], work: string, opts: { train?: boolean; onnx?: boolean } = {}): Promise<Map<string, CheckResult>> {
  for (const f of forms) await expectedOutputs(f);
  return runJobs(python, forms.map((f) => jobFor(f, work, opts.train ?? true, opts.onnx !== false)));
}

/** onnxruntime-node's outputs of the form's ONNX model on its fixture input, written beside its export. */
async function expectedOutputs(f: Form): Promise<void> {
  const x = readNpy(f.fixture);
  writeF32(path.join(f.dir, 'input.bin'), x.data);
  // optimisations off: ORT's PadFusion folds yolov3-tiny's computed Pad wrongly at its default level
  // (../shared/fixtures-detectors/README.md, ortCheck)
  const s = await ort.InferenceSession.create(saveModelToBuffer(f.model), { graphOptimizationLevel: 'disabled' });
  const out = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x.data, x.shape) });
  s.outputNames.forEach((o, i) => writeF32(path.join(f.dir, `expected${i}.bin`), out[o].data as Float32Array));
  fs.writeFileSync(path.join(f.dir, 'expected.json'), JSON.stringify(s.outputNames.map((o) => [...out[o].dims])));
  await s.release();
}

function jobFor(f: Form, work: string, train: boolean, onnx = false) {
  const x = readNpy(f.fixture);
  const shapes = JSON.parse(fs.readFileSync(path.join(f.dir, 'expected.json'), 'utf8')) as number[][];
  const batch = f.model.graph.inputs[0].shape?.[0];
  return {
    id: f.id,
    dir: f.dir,
    input: path.join(f.dir, 'input.bin'),
    inputShape: x.shape,
    expected: shapes.map((shape, i) => ({ path: path.join(f.dir, `expected${i}.bin`), shape })),
    train,
    trainShape: [typeof batch === 'number' ? batch : 2, ...x.shape.slice(1)],
    onnx: onnx ? path.join(work, `${f.id}.torch.onnx`) : undefined,
    plainOnnx: onnx ? path.join(work, `${f.id}.plain.onnx`) : undefined,
    defaultsOnnx: onnx && f.defaults ? path.join(work, `${f.id}.defaults.onnx`) : undefined,
  };
}

/** All jobs in one Python process. */
function runJobs(python: string, jobs: ReturnType<typeof jobFor>[]): Map<string, CheckResult> {
  const r = spawnSync(python, [path.join(repoRoot, 'test', 'export', 'torch_check.py')], {
    input: JSON.stringify(jobs),
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    timeout: 900_000,
  });
  if (r.status !== 0) throw new Error(`torch_check.py failed (${r.status}): ${r.stderr.slice(-3000)}`);
  const results = new Map<string, CheckResult>();
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const res = JSON.parse(line) as CheckResult;
    results.set(res.id, res);
  }
  return results;
}

/** The three checks over one fixture folder, as uvu tests (one Python process for all its models). */
/**
 * torch.onnx.export folds each eval-mode BN into the conv before it: its scale and shift (2C
 * parameters) become the conv's bias (C new ones, none when the conv had a bias).
 */
function foldedParams(model: Model, skip: Set<Node> = new Set()): number {
  let folded = 0;
  for (const n of model.graph.nodes) {
    const conv = n.inputs[0]?.producer;
    if (skip.has(n) || n.opType !== 'BatchNormalization' || n.outputs.filter(Boolean).length > 1 || n.int('training_mode', 0) === 1) continue;
    if (!conv || conv.opType !== 'Conv' || n.inputs[0]!.consumers.length !== 1) continue;
    const c = model.graph.constantTensor(n.inputs[1])?.dims[0] ?? 0;
    folded += conv.inputs[2] ? 2 * c : c;
  }
  return folded;
}

/**
 * PRN's parts form on a model with BatchNormalization nodes gives a conv split by input channels a
 * second BN after its second half (the BN after a conv named `<layer>/in1`: a copy with zero mean
 * and shift, so that each half folds into its conv). Where the exporter wrote that conv whole with
 * the first BN only (the copy is not in the joined model), the module has no such BN: it is neither
 * folded by torch.onnx.export (foldedParams leaves it out) nor read back, and the parts ONNX has its
 * parameters beyond the module's: the scale and shift analyze counted for it, i.e. those no other
 * node reads (analyze counts a shared initializer once, at its first reader: the parts form shares
 * the scale with the first BN and gives the copy its own zero shift, C values).
 */
function droppedBnCopies(model: Model): Set<Node> {
  const joined = prnPartsToWhole(model);
  if (!joined) return new Set();
  const kept = new Set(joined.model.graph.nodes.map((n) => n.name));
  return new Set(model.graph.nodes.filter((n) => {
    const conv = n.inputs[0]?.producer;
    return n.opType === 'BatchNormalization' && conv?.opType === 'Conv' && /\/in1$/.test(conv.name) && !kept.has(n.name);
  }));
}

function droppedBnParams(model: Model, dropped: Set<Node>): number {
  const g = model.graph;
  let extra = 0;
  for (const n of dropped) {
    for (const v of [n.inputs[1], n.inputs[2]]) if (v && v.consumers.every((u) => u.node === n)) extra += g.constantTensor(v)?.size ?? 0;
  }
  return extra;
}

export function fixtureSuite(folder: string, opts: { prnMask?: string[] } = {}): void {
  const work = tmpDir('gpt-export-');
  let state: { forms: Form[]; refused: string[]; results: Map<string, CheckResult> } | null | undefined;
  const prepare = async (): Promise<typeof state> => {
    if (state !== undefined) {
      // each test of the suite is a counted skip, not only the first
      if (state === null) skipTest(`no Python with torch: PyTorch export of ${folder}`);
      return state;
    }
    const python = torchPythonOrSkip(`PyTorch export of ${folder}`);
    if (!python) return (state = null);
    const { forms, refused } = exportForms(folder, work, opts.prnMask);
    state = { forms, refused, results: await checkForms(python, forms, work) };
    return state;
  };
  const each = (s: NonNullable<typeof state>, fn: (f: Form, r: CheckResult) => void) => {
    for (const f of s.forms) {
      const r = s.results.get(f.id);
      assert.ok(r, `${f.id}: no result from torch_check.py`);
      assert.not.ok(r!.error, `${f.id}: ${r!.error}`);
      fn(f, r!);
    }
  };

  test(`${folder}: every fixture and each of its PRN / CSP / ELAN forms exports, and in eval mode gives onnxruntime's outputs (1e-4 x max(1, max |expected|))`, async () => {
    const s = await prepare();
    if (!s) return;
    assert.ok(s.forms.length >= 6, `${s.forms.length} forms`);
    // the only conversion left out is CSP on a model that is all CSP already (written unchanged);
    // a conversion that throws would otherwise drop out of every check below
    for (const r of s.refused) assert.match(r, / csp: unchanged /, `left out: ${r}`);
    console.log(`  ${folder}: ${s.forms.length} forms exported${s.refused.length ? `; left out: ${s.refused.map((r) => r.split(':')[0]).join(', ')}` : ''}`);
    for (const n of opts.prnMask ?? []) {
      const f = s.forms.find((x) => x.id === `${n}.prn-mask`);
      assert.ok(f, `${n}.prn-mask: not exported`);
      assert.ok(!f!.model.graph.nodes.some((x) => /\/in1$/.test(x.name)) && f!.model.graph.nodes.some((x) => x.opType === 'Mul'), `${n}.prn-mask: not the mask form`);
    }
    each(s, (f, r) => {
      assert.is(r.outputs, f.model.graph.outputs.length, `${f.id}: output count`);
      r.eval!.forEach((e, i) => assert.ok(e.diff <= e.tol, `${f.id} output ${i}: max abs diff ${e.diff} > ${e.tol}`));
    });
    // the negative case: the PRN module of a fixture against the plain model's outputs differs
    const plain = s.forms.find((x) => x.to === 'plain' && s.forms.some((y) => y.to === 'prn' && y.fixture === x.fixture && s.results.get(y.id)!.eval![0].diff > 0));
    const prn = s.forms.find((y) => y.to === 'prn' && y.fixture === plain?.fixture);
    if (plain && prn) {
      const job = { ...jobFor(prn, work, false), expected: jobFor(plain, work, false).expected };
      const r = runJobs(findTorchPython().python as string, [job]).get(prn.id)!;
      assert.ok(r.eval![0].diff > r.eval![0].tol, `${prn.id} against ${plain.id}'s outputs: ${r.eval![0].diff} should exceed ${r.eval![0].tol}`);
    }
  });

  test(`${folder}: in train mode one SGD step on a random batch runs, reaches every parameter and changes the loss`, async () => {
    const s = await prepare();
    if (!s) return;
    each(s, (f, r) => {
      const t = r.train!;
      assert.ok(Number.isFinite(t.before) && Number.isFinite(t.after), `${f.id}: loss ${t.before} -> ${t.after}`);
      assert.is.not(t.after, t.before, `${f.id}: the loss did not change`);
      assert.ok(t.withGrad >= t.parameters - 2, `${f.id}: ${t.withGrad} of ${t.parameters} parameters got a gradient`);
    });
  });

  test(`${folder}: a plain torch.onnx.export of each module (BN folded by the exporter, no record), read back by analyze, gives the exported model's family, stages, blocks, params and MACs (the call with the exporter's defaults too, on the CSP / ELAN forms of one model per family); Net.export_onnx (with gpt's record) the same`, async () => {
    const s = await prepare();
    if (!s) return;
    if (folder !== 'fixtures-detectors') assert.ok(s.forms.some((f) => f.defaults), 'no form exported with the defaults');
    // the blocks a rule reads: the record's per-stage 'gpt <pass>' entries (the nodes a pass added,
    // kept together) have no rule; without the record those nodes are read inside the blocks, CSP
    // splits and transitions they form
    const own = (st: { blockRules: Record<string, number> }) => Object.entries(st.blockRules).filter(([rule]) => !rule.startsWith('gpt '));
    const count = (st: { blockRules: Record<string, number> }) => own(st).reduce((n, [, k]) => n + k, 0);
    each(s, (f, r) => {
      assert.ok(r.onnx && fs.existsSync(r.onnx), `${f.id}: no export_onnx file written`);
      assert.ok(r.plainOnnx && fs.existsSync(r.plainOnnx), `${f.id}: no torch.onnx.export file written`);
      const dims: Record<string, number> = {};
      const x = readNpy(f.fixture);
      (f.model.graph.inputs[0].shape ?? []).forEach((d, i) => { if (typeof d === 'string') dims[d] = x.shape[i]; });
      const a = analyzeModel(f.model, { dims }).report;
      const dropped = f.to === 'prn' ? droppedBnCopies(f.model) : new Set<Node>();
      const folded = foldedParams(f.model, dropped) + droppedBnParams(f.model, dropped);
      const files: [string, string][] = [['export_onnx', r.onnx!], ['torch.onnx.export', r.plainOnnx!]];
      if (f.defaults) {
        assert.ok(r.defaultsOnnx && fs.existsSync(r.defaultsOnnx), `${f.id}: no torch.onnx.export (defaults) file written`);
        files.push(['torch.onnx.export (defaults)', r.defaultsOnnx!]);
      }
      for (const [how, file] of files) {
        const m = loadModel(file);
        assert.is(!!m.metadata()[STRUCTURE_KEY], how === 'export_onnx' && /STRUCTURE = \{/.test(f.exported.code), `${f.id} ${how}: gpt's record ${how === 'export_onnx' ? 'missing' : 'present'}`);
        const b = analyzeModel(m).report;
        assert.is(b.params, a.params - folded, `${f.id} ${how}: params (${a.params} less ${folded} folded into the convs or in a parts-form BN copy)`);
        assert.is(b.macs, a.macs, `${f.id} ${how}: MACs`);
        assert.is(b.family, a.family, `${f.id} ${how}: family`);
        if (how === 'export_onnx') {
          assert.equal(b.stages.map((st) => st.blockRules), a.stages.map((st) => st.blockRules), `${f.id} ${how}: stages and blocks`);
          assert.equal(b.stages.map((st) => st.blocks), a.stages.map((st) => st.blocks), `${f.id} ${how}: block counts`);
        } else {
          assert.equal(b.stages.map(own), a.stages.map(own), `${f.id} ${how}: stages and blocks`);
          assert.equal(b.stages.map(count), a.stages.map(count), `${f.id} ${how}: block counts`);
          // each stage the conversion made cross-stage partial (the record's 'gpt csp' entry) reads
          // as split, whichever split the conversion wrote (Split, or the producer written per part)
          const split = (st: { blockRules: Record<string, number> }) => !!st.blockRules['gpt csp'];
          assert.equal(b.stages.map((st, i) => !!st.csp || !split(a.stages[i])), b.stages.map(() => true), `${f.id} ${how}: the CSP stages read as split (${b.stages.map((st) => st.csp?.splitOp ?? '-').join(', ')})`);
        }
      }
    });
  });

  test(`${folder}: the negative case: without the elan rule, the ELAN form's plain torch.onnx.export does not read back (the rule, not a record, carries its structure)`, async () => {
    const s = await prepare();
    if (!s) return;
    const f = s.forms.find((x) => x.to === 'elan' && s.results.get(x.id)?.plainOnnx);
    if (!f) return;
    const m = loadModel(s.results.get(f.id)!.plainOnnx!);
    const withRule = analyzeModel(m).report;
    const without = analyzeModel(loadModel(s.results.get(f.id)!.plainOnnx!), { rules: loadRules().filter((r) => r.kind !== 'elan') }).report;
    assert.ok(withRule.stages.some((st) => st.blockRules.elan), `${f.id}: no ELAN block read with the shipped rules`);
    assert.not.ok(without.stages.some((st) => st.blockRules.elan), `${f.id}: ELAN blocks read without the elan rule`);
    assert.is.not(JSON.stringify(without.stages.map((st) => st.blockRules)), JSON.stringify(withRule.stages.map((st) => st.blockRules)), `${f.id}: the same stages without the elan rule`);
  });

  test.after(() => fs.rmSync(work, { recursive: true, force: true }));
  test.run();
}
