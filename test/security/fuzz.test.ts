/**
 * Seeded fuzzing of the fixtures: a few hundred mutated models (bit flips, truncations, length-field
 * edits, byte insertions), each loaded, validated, inspected, analyzed and, for some, converted and
 * saved. For every case: a failure is a typed GptError (never a TypeError, RangeError or a stack
 * overflow), nothing is written outside the output folder, and the inputs are byte-identical after.
 *
 * The fixture is first saved with its weights in a sidecar, so mutations hit the structure (nodes,
 * attributes, shapes, external_data entries) rather than weight bytes; the tiny crafted models carry
 * inline raw_data for the size checks. Runs in-process; each case has a generous hang guard.
 * GPT_FUZZ_CASES sets the number of cases (default 300), GPT_FUZZ_SEED the seed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GptError, isGptError } from '../../src/errors';
import { loadModel, saveModel } from '../../src/onnx/io';
import { decodeModel, encodeModel } from '../../src/onnx/codec';
import type { ModelProto } from '../../src/onnx/schema';
import { assertValid } from '../../src/ir/validate';
import { inspect } from '../../src/analysis/inspect';
import { analyzeModel } from '../../src/analysis/analyze';
import { convert } from '../../src/passes/convert';
import { fixturePath, tmpDir } from '../helpers';
import { externalModel, floats, model, snapshot } from './craft';

const CASES = Number(process.env.GPT_FUZZ_CASES ?? 300);
const SEED = Number(process.env.GPT_FUZZ_SEED ?? 20261202);
/** Not a timing assertion: a case that runs this long is a hang. */
const HANG_GUARD_MS = 60_000;

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Mutation = { name: string; apply: (b: Buffer, r: () => number) => Buffer };
const int = (r: () => number, n: number) => Math.floor(r() * n);
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[int(r, xs.length)];

/** Edit the decoded model (structure-aware: sizes, external entries, names), then encode it again. */
function structural(name: string, edit: (m: ModelProto, r: () => number) => void): Mutation {
  return {
    name,
    apply: (b, r) => {
      const m = decodeModel(b);
      edit(m, r);
      return encodeModel(m);
    },
  };
}
const HOSTILE_DIMS = [-1, 0, 3, 2 ** 31, 2 ** 40, Number.MAX_SAFE_INTEGER];
const HOSTILE_LOCATIONS = ['../w.bin', '/etc/passwd', 'link.bin', 'dir-link/w.bin', 'w.bin\u0000', '', '.', 'sub/../../w.bin'];
const HOSTILE_NUMBERS = ['1.5', '0x10', '', ' 8', '-8', '1e3', '99999999', '18446744073709551616'];
const HOSTILE_NAMES = ['a\nb', '\u001b[2J\u001b[31mred', 'x\u202eevil', 'constructor', '__proto__', 'n'.repeat(300)];
const MUTATIONS: Mutation[] = [
  { name: 'bit flips', apply: (b, r) => {
    const c = Buffer.from(b);
    for (let k = 1 + int(r, 8); k > 0; k--) { const i = int(r, c.length); c[i] ^= 1 << int(r, 8); }
    return c;
  } },
  { name: 'truncation', apply: (b, r) => b.subarray(0, int(r, b.length)) },
  { name: 'length edit', apply: (b, r) => {
    // a byte that may be a length becomes another small value, or a huge varint (2^32 - 1, 2^32, 2^35)
    const i = int(r, b.length);
    const huge = [[0xff, 0xff, 0xff, 0xff, 0x0f], [0x80, 0x80, 0x80, 0x80, 0x10], [0xff, 0xff, 0xff, 0xff, 0xff, 0x01]][int(r, 3)];
    const choice = int(r, 4);
    if (choice === 0) return Buffer.concat([b.subarray(0, i), Buffer.from(huge), b.subarray(i + 1)]);
    const c = Buffer.from(b);
    c[i] = choice === 1 ? (c[i] + 1) & 0x7f : choice === 2 ? Math.max(0, c[i] - 1) : 0x7f;
    return c;
  } },
  { name: 'insert or delete bytes', apply: (b, r) => {
    const i = int(r, b.length);
    return int(r, 2) ? Buffer.concat([b.subarray(0, i), Buffer.from([int(r, 256), int(r, 256)]), b.subarray(i)]) : Buffer.concat([b.subarray(0, i), b.subarray(i + 1 + int(r, 4))]);
  } },
  structural('tensor dims', (m, r) => {
    const ts = m.graph!.initializer;
    if (!ts.length) return;
    const t = pick(r, ts);
    if (t.dims.length === 0) t.dims.push(pick(r, HOSTILE_DIMS));
    else t.dims[int(r, t.dims.length)] = pick(r, HOSTILE_DIMS);
  }),
  structural('raw_data length', (m, r) => {
    const ts = m.graph!.initializer.filter((t) => t.rawData && t.rawData.length > 0);
    if (!ts.length) return;
    const t = pick(r, ts);
    const d = 1 + int(r, 8);
    t.rawData = int(r, 2) ? t.rawData!.subarray(0, Math.max(0, t.rawData!.length - d)) : Buffer.concat([t.rawData!, Buffer.alloc(d)]);
  }),
  structural('external entry', (m, r) => {
    const ts = m.graph!.initializer.filter((t) => t.externalData.length > 0);
    if (!ts.length) return;
    const t = pick(r, ts);
    const key = pick(r, ['location', 'offset', 'length']);
    const value = key === 'location' ? pick(r, HOSTILE_LOCATIONS) : pick(r, HOSTILE_NUMBERS);
    const e = t.externalData.find((x) => x.key === key);
    if (e) e.value = value;
    else t.externalData.push({ key, value });
  }),
  structural('names', (m, r) => {
    const g = m.graph!;
    const name = pick(r, HOSTILE_NAMES);
    const where = int(r, 3);
    if (where === 0 && g.node.length) pick(r, g.node).name = name;
    else if (where === 1 && g.input.length) {
      const old = g.input[0].name;
      g.input[0].name = name;
      for (const n of g.node) n.input = n.input.map((i) => (i === old ? name : i));
    } else if (g.node.length) pick(r, g.node).input.push(name); // an input nobody produces
  }),
  { name: 'splice', apply: (b, r) => {
    // a chunk of the model copied elsewhere in it: repeated fields, nested messages in odd places
    const from = int(r, b.length), len = 1 + int(r, 64), to = int(r, b.length);
    return Buffer.concat([b.subarray(0, to), b.subarray(from, from + len), b.subarray(to)]);
  } },
];

interface Seed {
  name: string;
  dir: string;
  file: string;
  bytes: Buffer;
}

function seeds(root: string): Seed[] {
  const out: Seed[] = [];
  // the ResNet-18 fixture with its weights in a sidecar: a ~30 KB structure to mutate
  const fx = path.join(root, 'fixture');
  fs.mkdirSync(fx);
  saveModel(loadModel(fixturePath('resnet18-w25.onnx')), path.join(fx, 'm.onnx'), { externalData: true });
  out.push({ name: 'resnet18 (external)', dir: fx, file: path.join(fx, 'm.onnx'), bytes: fs.readFileSync(path.join(fx, 'm.onnx')) });
  // tiny crafted models: inline raw_data, and external data with offset / length entries
  const tiny = path.join(root, 'tiny');
  fs.mkdirSync(tiny);
  fs.writeFileSync(path.join(tiny, 'w.bin'), floats([1, 2, 3, 4]));
  // a link to a file outside and a link to a folder outside: a mutant that names them must be refused
  const outside = path.join(root, 'outside');
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(outside, 'w.bin'), floats([9, 9, 9, 9]));
  for (const d of [tiny, fx]) {
    fs.symlinkSync(path.join(outside, 'w.bin'), path.join(d, 'link.bin'));
    fs.symlinkSync(outside, path.join(d, 'dir-link'));
  }
  out.push({ name: 'tiny inline', dir: tiny, file: path.join(tiny, 'inline.onnx'), bytes: encodeModel(model()) });
  out.push({ name: 'tiny external', dir: tiny, file: path.join(tiny, 'external.onnx'), bytes: encodeModel(externalModel('w.bin', { offset: '8', length: '8' })) });
  for (const s of out) fs.writeFileSync(s.file, s.bytes);
  return out;
}

const files = (dir: string) => [...snapshot(dir)].sort((a, b) => a[0].localeCompare(b[0]));

test(`${CASES} seeded mutations: typed errors only, inputs untouched, nothing written outside the output`, () => {
  const root = tmpDir('gpt-fuzz-');
  const all = seeds(root);
  const outsideHash = files(path.join(root, 'outside'))[0][1];
  const outDir = path.join(root, 'out');
  fs.mkdirSync(outDir);
  const r = rng(SEED);
  const stats = { loaded: 0, typed: 0, converted: 0 };
  const before = new Map(all.map((s) => [s.dir, files(s.dir)]));
  for (let k = 0; k < CASES; k++) {
    const s = all[k % all.length];
    const m = MUTATIONS[int(r, MUTATIONS.length)];
    const bytes = m.apply(s.bytes, r);
    const caseName = `case ${k} (${s.name}, ${m.name}, seed ${SEED})`;
    fs.writeFileSync(s.file, bytes);
    const inputs = files(s.dir);
    const started = Date.now();
    try {
      const model = loadModel(s.file);
      stats.loaded++;
      assertValid(model.graph, s.file);
      // read every weight, as a pass does (external data included)
      for (const v of model.graph.initializers) v.tensor!.data();
      inspect(model);
      analyzeModel(model, {});
      if (k % 3 === 0) {
        const { model: out } = convert(model, { to: 'prn', ratio: 0.5, inPlace: true });
        saveModel(out, path.join(outDir, 'out.onnx'), { externalData: true });
        stats.converted++;
      }
    } catch (e) {
      if (!isGptError(e)) {
        fs.writeFileSync(path.join(root, `failing-${k}.onnx`), bytes);
        assert.unreachable(`${caseName}: untyped ${(e as Error)?.name}: ${(e as Error)?.message}\n${(e as Error)?.stack?.split('\n').slice(0, 6).join('\n')}`);
      }
      const line = (e as GptError).oneLine();
      // one line, no control character or escape from a name
      assert.ok(line.length > 0 && !/[\u0000-\u001f\u007f-\u009f\u202e]/.test(line), `${caseName}: one clean line, got ${JSON.stringify(line)}`);
      stats.typed++;
    }
    assert.ok(Date.now() - started < HANG_GUARD_MS, `${caseName}: ran past the hang guard`);
    assert.equal(files(s.dir), inputs, `${caseName}: an input changed or a file appeared beside it`);
    // restore the seed's own bytes
    fs.writeFileSync(s.file, s.bytes);
  }
  for (const s of all) assert.equal(files(s.dir), before.get(s.dir), `${s.name}: inputs changed`);
  assert.equal(fs.readdirSync(root).sort(), ['fixture', 'out', 'outside', 'tiny'], 'nothing written beside the folders');
  assert.equal(files(path.join(root, 'outside')), [['w.bin', outsideHash]], 'the file outside is untouched');
  if (process.env.GPT_FUZZ_CASES) console.log(JSON.stringify(stats));
  // the mix is meaningful: some mutants load, some fail
  assert.ok(stats.loaded > CASES / 20 && stats.typed > CASES / 5, JSON.stringify(stats));
});

test.run();
