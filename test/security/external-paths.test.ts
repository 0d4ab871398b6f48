/**
 * External data is read only from regular files inside the model's real folder: no symlink (to a
 * file or through a folder link), no `..`, no absolute path, no FIFO or device; offset and length
 * are decimal whole numbers. Model and rule files must be regular files too (a FIFO would block,
 * /dev/zero would never end).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GptError } from '../../src/errors';
import { loadModel, saveModel } from '../../src/onnx/io';
import { validateRuleFile } from '../../src/analysis/rules';
import { tmpDir } from '../helpers';
import { externalModel, floats, model, node, tensor, write } from './craft';

function expectError(fn: () => unknown, code: string, re: RegExp): GptError {
  try {
    fn();
  } catch (e) {
    assert.instance(e, GptError, String(e));
    const g = e as GptError;
    assert.is(g.code, code, g.oneLine());
    assert.match(g.oneLine(), re);
    return g;
  }
  assert.unreachable('no error');
  throw new Error('unreachable');
}

const mkfifo = (p: string) => execFileSync('mkfifo', [p]);

test('a regular sidecar in the folder or below it loads (the positive case)', () => {
  const dir = tmpDir();
  fs.mkdirSync(path.join(dir, 'weights'));
  fs.writeFileSync(path.join(dir, 'weights', 'w.bin'), floats([3, 4]));
  const m = loadModel(write(dir, 'm.onnx', externalModel('weights/w.bin')));
  assert.equal(Array.from(m.graph.initializers[0].tensor!.data() as Float32Array), [3, 4]);
});

test('a symlink to a file, and a link to a folder, are refused (never read)', () => {
  const dir = tmpDir();
  const secret = path.join(tmpDir(), 'secret');
  fs.writeFileSync(secret, floats([7, 7]));
  fs.symlinkSync(secret, path.join(dir, 'w.bin'));
  const m1 = write(dir, 'm1.onnx', externalModel('w.bin'));
  expectError(() => loadModel(m1), 'E_EXTERNAL_DATA', /m1\.onnx: .*symbolic link/);
  fs.symlinkSync(path.dirname(secret), path.join(dir, 'etc-link'));
  const m2 = write(dir, 'm2.onnx', externalModel('etc-link/secret'));
  expectError(() => loadModel(m2), 'E_EXTERNAL_DATA', /m2\.onnx: .*symbolic link \(etc-link\)/);
  expectError(() => loadModel(m1, { checkExternalData: false }), 'E_EXTERNAL_DATA', /symbolic link/);
});

test("a Constant's external value through a link is refused at load (it would be inlined into the output)", () => {
  const dir = tmpDir();
  const secret = path.join(tmpDir(), 'secret');
  fs.writeFileSync(secret, floats([7, 7]));
  fs.symlinkSync(secret, path.join(dir, 'v.bin'));
  const value = tensor('v', [1, 2], { dataLocation: 1, externalData: [{ key: 'location', value: 'v.bin' }] });
  const m = model({
    nodes: [node('Constant', [], ['w'], 'const', [{ name: 'value', type: 4, t: value, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] }]), node('Add', ['x', 'w'], ['y'])],
    initializers: [],
  });
  expectError(() => loadModel(write(dir, 'c.onnx', m)), 'E_EXTERNAL_DATA', /c\.onnx: .*'v\.bin' through a symbolic link/);
  // negative beside positive: a regular file there loads, and its values are read
  fs.rmSync(path.join(dir, 'v.bin'));
  fs.writeFileSync(path.join(dir, 'v.bin'), floats([7, 7]));
  assert.ok(loadModel(write(dir, 'c.onnx', m)));
});

test("'..', absolute paths and a NUL byte are refused", () => {
  const dir = tmpDir();
  for (const loc of ['../w.bin', '/etc/passwd', 'a/../../w.bin', 'w.bin\0x']) {
    expectError(() => loadModel(write(dir, 'm.onnx', externalModel(loc))), 'E_EXTERNAL_DATA', /outside the model's folder|NUL/);
  }
});

test('a FIFO or a device as external data, model or rule file: refused at once, never blocks', () => {
  const dir = tmpDir();
  mkfifo(path.join(dir, 'w.bin'));
  expectError(() => loadModel(write(dir, 'm.onnx', externalModel('w.bin'))), 'E_EXTERNAL_DATA', /FIFO/);
  mkfifo(path.join(dir, 'fifo.onnx'));
  expectError(() => loadModel(path.join(dir, 'fifo.onnx')), 'E_IO', /fifo\.onnx: is a FIFO/);
  expectError(() => loadModel('/dev/zero'), 'E_IO', /\/dev\/zero: is a device/);
  expectError(() => loadModel(dir), 'E_IO', /is a directory/);
  expectError(() => validateRuleFile('/dev/zero'), 'E_RULE', /is a device/);
  mkfifo(path.join(dir, 'rule.json'));
  expectError(() => validateRuleFile(path.join(dir, 'rule.json')), 'E_RULE', /FIFO/);
});

test('external offset and length: decimal whole numbers only; length must match the tensor', () => {
  const dir = tmpDir();
  fs.writeFileSync(path.join(dir, 'w.bin'), Buffer.alloc(64));
  for (const offset of ['1.5', '0x10', '', ' 8', '-8', '1e3']) {
    expectError(() => loadModel(write(dir, 'm.onnx', externalModel('w.bin', { offset }))), 'E_EXTERNAL_DATA', /bad external offset/);
  }
  expectError(() => loadModel(write(dir, 'm.onnx', externalModel('w.bin', { length: '64' }))), 'E_EXTERNAL_DATA', /external length of 64 bytes, but its type and dims make 8/);
  // negative beside positive
  const ok = loadModel(write(dir, 'm.onnx', externalModel('w.bin', { offset: '16', length: '8' })));
  assert.is(ok.graph.initializers[0].tensor!.bytes().length, 8);
});

test('a sidecar swapped for a link after loading is refused when read: convert cannot copy it into its output', () => {
  const dir = tmpDir();
  const secret = path.join(tmpDir(), 'passwd');
  fs.writeFileSync(secret, 'root:x:0:0\n');
  fs.writeFileSync(path.join(dir, 'w.bin'), floats([1, 2]));
  const m = loadModel(write(dir, 'm.onnx', externalModel('w.bin')));
  fs.rmSync(path.join(dir, 'w.bin'));
  fs.symlinkSync(secret, path.join(dir, 'w.bin'));
  expectError(() => saveModel(m, path.join(dir, 'out.onnx'), { externalData: true }), 'E_EXTERNAL_DATA', /symbolic link/);
  assert.not.ok(fs.existsSync(path.join(dir, 'out.onnx')));
  assert.equal(fs.readdirSync(dir).sort(), ['m.onnx', 'w.bin']);
});

test.run();
