/**
 * Bad input gets a one-line typed error naming the file, no partial output, the input untouched.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GptError } from '../../src/errors';
import { loadModel, saveModel } from '../../src/onnx/io';
import { validateGraph, assertValid } from '../../src/ir/validate';
import { fixturePath, tmpDir } from '../helpers';

const dir = tmpDir();
const good = fixturePath('resnet18-w25.onnx');
const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

function expectError(fn: () => unknown, code: string | string[], mention: string | RegExp): GptError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, GptError);
    const g = e as GptError;
    assert.ok([code].flat().includes(g.code), `${g.code}: ${g.oneLine()}`);
    assert.match(g.oneLine(), mention);
    assert.not.match(g.oneLine(), /\n/, 'one line');
    return g;
  }
  assert.unreachable(`expected ${code}`);
  throw new Error('unreachable');
}

test('empty file', () => {
  const f = path.join(dir, 'empty.onnx');
  fs.writeFileSync(f, '');
  expectError(() => loadModel(f), 'E_EMPTY', 'empty.onnx');
});

test('random bytes', () => {
  const f = path.join(dir, 'random.onnx');
  // seeded bytes that start with an invalid wire type, then more random bytes
  const rng = crypto.createHash('sha512').update('seed').digest();
  fs.writeFileSync(f, Buffer.concat([Buffer.from([0x07]), rng, rng]));
  expectError(() => loadModel(f), 'E_NOT_ONNX', 'random.onnx');
  // random bytes that happen to start with a plausible tag still fail somewhere in decoding
  fs.writeFileSync(f, Buffer.concat([Buffer.from([0x3a, 0x7f]), rng]));
  expectError(() => loadModel(f), ['E_TRUNCATED', 'E_NOT_ONNX'], 'random.onnx');
});

test('a text file', () => {
  const f = path.join(dir, 'notes.onnx');
  fs.writeFileSync(f, 'this is not a model, just some notes\n'.repeat(10));
  expectError(() => loadModel(f), 'E_NOT_ONNX', /notes\.onnx.*text file/);
});

test('a truncated model', () => {
  const f = path.join(dir, 'cut.onnx');
  const bytes = fs.readFileSync(good);
  for (const frac of [0.01, 0.5, 0.99]) {
    fs.writeFileSync(f, bytes.subarray(0, Math.floor(bytes.length * frac)));
    expectError(() => loadModel(f), 'E_TRUNCATED', 'cut.onnx');
  }
});

test('a missing file and a folder', () => {
  expectError(() => loadModel(path.join(dir, 'nope.onnx')), 'E_IO', /nope\.onnx: no such file/);
  expectError(() => loadModel(dir), 'E_IO', 'directory');
});

test('a cyclic graph and a dangling input are reported by the validator, naming the node', () => {
  const m = loadModel(good);
  const g = m.graph;
  assert.equal(validateGraph(g), []);
  // feed the last Relu's output back into the first conv: a cycle
  const first = g.nodes[0];
  const relu = g.nodes.find((n) => n.opType === 'Relu' && n.name.includes('layer1.0/relu_1'))!;
  first.setInput(0, relu.outputs[0]);
  const problems = validateGraph(g);
  assert.is(problems[0].kind, 'cycle');
  assert.throws(() => assertValid(g, 'model.onnx'), /cycle through node/);
  assert.throws(() => g.toposort(), (e: GptError) => e.code === 'E_GRAPH' && /cycle/.test(e.message));

  const m2 = loadModel(good);
  m2.graph.nodes[3].setInput(0, m2.graph.value('ghost'));
  const p2 = validateGraph(m2.graph);
  assert.is(p2[0].kind, 'dangling-input');
  assert.match(p2[0].message, /'ghost'.*layer1\.0\/conv1/);
});

test('unwritable output paths: missing folder, read-only location, output = input; nothing left behind', () => {
  const m = loadModel(good);
  const before = sha(good);
  expectError(() => saveModel(m, path.join(dir, 'no-such-folder', 'out.onnx')), 'E_IO', /out\.onnx.*does not exist/);
  expectError(() => saveModel(m, '/proc/gpt-out.onnx'), 'E_IO', 'gpt-out.onnx');
  expectError(() => saveModel(m, good), 'E_IO', /is the input file/);
  expectError(() => saveModel(m, dir), 'E_IO', /folder/);
  assert.is(sha(good), before, 'input untouched');
  assert.equal(fs.readdirSync(path.dirname(good)).filter((f) => f.includes('.tmp-')), []);
});

test('a failed write leaves no partial output (temp file + rename)', () => {
  const m = loadModel(good);
  // make the model unserializable mid-way: a tensor whose external file vanished
  const out = path.join(dir, 'partial.onnx');
  const v = m.graph.initializers[0];
  (v.tensor as any).proto = { ...v.tensor!.proto, dataLocation: 1, externalData: [{ key: 'location', value: 'gone.bin' }] };
  (v.tensor as any).external = { path: path.join(dir, 'gone.bin'), location: 'gone.bin', offset: 0, length: 10 };
  expectError(() => saveModel(m, out, { externalData: false }), 'E_EXTERNAL_DATA', 'gone.bin');
  assert.not.ok(fs.existsSync(out));
  assert.equal(fs.readdirSync(dir).filter((f) => f.includes('partial')), []);
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
