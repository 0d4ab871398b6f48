/**
 * Model and sidecar change as one unit, and temp files never outlive a run:
 *
 *   save 1:  out.onnx -> out.onnx.data
 *   save 2:  out.onnx.<random>.data written and in place first, then out.onnx renamed over,
 *            only then out.onnx.data removed; a failure in between leaves the old pair valid.
 *
 * Temp files are `.NAME.gpt-tmp-PID-RAND`: removed on failure, on SIGTERM / SIGINT, and (after a
 * SIGKILL) by the next write into the folder once their process is gone.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GptError } from '../../src/errors';
import { loadModel, saveModel, writeFileAtomic } from '../../src/onnx/io';
import { encodeModel } from '../../src/onnx/codec';
import { Model } from '../../src/ir/model';
import { repoRoot, tmpDir } from '../helpers';
import { floats, model, tensor } from '../security/craft';

/** The Add model with a 2 KiB weight (above the sidecar threshold) filled with `v`. */
function weights(v: number): Model {
  const n = 512;
  return loadModel(encodeModel(model({ initializers: [tensor('w', [1, n], { rawData: floats(new Array(n).fill(v)) })] })));
}
const valueOf = (file: string) => (loadModel(file).graph.initializers[0].tensor!.data() as Float32Array)[0];

test('save over an earlier output: new sidecar name, old pair valid until the new model is in place', () => {
  const dir = tmpDir();
  const out = path.join(dir, 'out.onnx');
  const r1 = saveModel(weights(1), out, { externalData: true });
  assert.is(path.basename(r1.externalPath!), 'out.onnx.data');
  // the second save fails just before its model is renamed: the old model and its sidecar still agree
  try {
    saveModel(weights(2), out, { externalData: true, beforeModelRename: () => { throw new GptError('E_IO', 'injected'); } });
    assert.unreachable('saved');
  } catch (e) {
    assert.instance(e, GptError);
  }
  assert.is(valueOf(out), 1);
  assert.equal(fs.readdirSync(dir).sort(), ['out.onnx', 'out.onnx.data'], 'no new sidecar, no temp file left');
  // the second save succeeds: a fresh sidecar, the old one removed after the rename
  const r2 = saveModel(weights(2), out, { externalData: true });
  assert.match(path.basename(r2.externalPath!), /^out\.onnx\.[0-9a-f]{8}\.data$/);
  assert.is(valueOf(out), 2);
  assert.equal(fs.readdirSync(dir).sort(), ['out.onnx', path.basename(r2.externalPath!)].sort());
  // and the third goes back to the plain name
  const r3 = saveModel(weights(3), out, { externalData: true });
  assert.is(path.basename(r3.externalPath!), 'out.onnx.data');
  assert.is(valueOf(out), 3);
  assert.equal(fs.readdirSync(dir).sort(), ['out.onnx', 'out.onnx.data']);
});

test("the input's own sidecar is never removed, even when its name follows gpt's pattern", () => {
  const dir = tmpDir();
  const a = path.join(dir, 'a.onnx');
  saveModel(weights(1), a, { externalData: true });
  const m = loadModel(a);
  // writing a.onnx again is refused; writing beside it keeps a.onnx.data
  assert.throws(() => saveModel(m, a, { externalData: true }), /the output path is the input file/);
  saveModel(m, path.join(dir, 'b.onnx'), { externalData: true });
  assert.is(valueOf(a), 1);
  assert.is(valueOf(path.join(dir, 'b.onnx')), 1);
});

test('a 250-character output name: the temp name stays within 255 bytes', () => {
  const dir = tmpDir();
  const name = `${'n'.repeat(245)}.onnx`;
  saveModel(weights(1), path.join(dir, name));
  writeFileAtomic(path.join(dir, `${'é'.repeat(125)}.svg`), '<svg/>');
  assert.equal(fs.readdirSync(dir).sort(), [name, `${'é'.repeat(125)}.svg`].sort());
});

function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

test('stale temp files of a dead process are removed by the next write; a live one is kept', () => {
  const dir = tmpDir();
  const stale = path.join(dir, `.out.onnx.gpt-tmp-${deadPid()}-0123abcd`);
  const live = path.join(dir, `.other.onnx.gpt-tmp-${process.pid}-0123abcd`);
  const foreign = path.join(dir, '.out.onnx.tmp-1-abc'); // not ours: never touched
  for (const f of [stale, live, foreign]) fs.writeFileSync(f, 'x');
  saveModel(weights(1), path.join(dir, 'out.onnx'));
  assert.not.ok(fs.existsSync(stale));
  assert.ok(fs.existsSync(live));
  assert.ok(fs.existsSync(foreign));
});

test('SIGTERM and SIGINT remove the temp files of a write in progress', () => {
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    const dir = tmpDir();
    // a child that starts a temp file, then gets the signal before it could rename it
    const script = `
      const fs = require('fs');
      const { tempPathFor } = require(${JSON.stringify(path.join(repoRoot, 'dist', 'src', 'onnx', 'temp.js'))});
      const t = tempPathFor(${JSON.stringify(path.join(dir, 'big.onnx'))});
      fs.writeFileSync(t, Buffer.alloc(1 << 20));
      process.stdout.write(t);
      process.kill(process.pid, '${sig}');
      setTimeout(() => {}, 10000);`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    assert.is(r.signal, sig, r.stderr);
    assert.match(r.stdout, /\.big\.onnx\.gpt-tmp-\d+-[0-9a-f]{8}$/);
    assert.equal(fs.readdirSync(dir), [], `${sig}: temp file left`);
  }
});

test.run();
