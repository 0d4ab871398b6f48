/**
 * The exporter without Python: the safetensors bytes against the format written out by hand, which
 * convs get their BatchNorm back (against the architectures' own counts), typed errors, the CLI.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exportPytorch } from '../../src/export/pytorch';
import { readSafetensors, writeSafetensors } from '../../src/export/safetensors';
import { Graph } from '../../src/ir/graph';
import { loadModel, saveModel } from '../../src/onnx/io';
import { convert } from '../../src/passes/convert';
import { DataType } from '../../src/onnx/schema';
import { fixturePath, repoRoot, tmpDir } from '../helpers';
import { emptyModel } from '../synthetic';

const shared = (folder: string, name: string) => path.resolve(repoRoot, '..', 'shared', folder, name);

test('safetensors: 8-byte little-endian header length, JSON header padded to 8, raw tensors back to back', () => {
  const a = new Uint8Array(new Float32Array([1, 2]).buffer);
  const b = new Uint8Array(new BigInt64Array([3n]).buffer);
  const bytes = writeSafetensors([{ name: 'a', dataType: DataType.FLOAT, dims: [2], bytes: a }, { name: 'b', dataType: DataType.INT64, dims: [], bytes: b }]);
  const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"I64","shape":[],"data_offsets":[8,16]}}';
  const padded = json + ' '.repeat((8 - (json.length % 8)) % 8);
  assert.is(Number(Buffer.from(bytes).readBigUInt64LE(0)), padded.length);
  assert.is(Buffer.from(bytes.subarray(8, 8 + padded.length)).toString('utf8'), padded);
  assert.equal([...bytes.subarray(8 + padded.length)], [...a, ...b]);
  assert.is(bytes.length, 8 + padded.length + 16);
  assert.equal([...readSafetensors(bytes).data('b')], [...b]);
  // negative: an element type safetensors has no name for
  assert.throws(() => writeSafetensors([{ name: 's', dataType: DataType.STRING, dims: [1], bytes: new Uint8Array(1) }]), /element type/);
});

test('--bn unfold: a BatchNorm2d back after every conv that had one (ResNet-18: 20 as in torchvision; ResNet-50: 53 as the BN-kept export has; Darknet-53: 52; YOLOv3: 72 of 75, not the 3 heads)', () => {
  const r18 = exportPytorch(loadModel(fixturePath('resnet18-w25.onnx')));
  assert.is(r18.unfolded.length, 20);
  // ResNet-50: as many as the BN-kept export of the same network has BatchNormalization nodes (53)
  const kept = loadModel(fixturePath('resnet50-w25-bn.onnx')).graph.nodes.filter((n) => n.opType === 'BatchNormalization').length;
  assert.is(kept, 53);
  assert.is(exportPytorch(loadModel(fixturePath('resnet50-w25.onnx'))).unfolded.length, kept);
  assert.is(r18.modules.BatchNorm2d, 20);
  assert.is(exportPytorch(loadModel(fixturePath('darknet53-w25.onnx'))).unfolded.length, 52);
  const yolo = exportPytorch(loadModel(shared('fixtures-detectors', 'yolov3-w25-raw.onnx')));
  assert.is(yolo.modules.Conv2d, 75);
  assert.is(yolo.unfolded.length, 72);
  // the unfolded BN is initialised so the output is unchanged: gamma 1, mean 0, var 1 - eps, beta = the conv's bias
  const st = readSafetensors(r18.weights);
  const key = Object.keys(st.header).find((k) => k.endsWith('_bn.weight'))!.replace(/\.weight$/, '');
  const name = key.split('.').pop()!;
  assert.match(r18.code, new RegExp(`self\\.${name} = nn\\.BatchNorm2d`));
  assert.equal([...new Float32Array(Uint8Array.from(st.data(`${key}.weight`)).buffer)].slice(0, 2), [1, 1]);
  assert.equal([...new Float32Array(Uint8Array.from(st.data(`${key}.running_mean`)).buffer)].slice(0, 2), [0, 0]);
  assert.ok(Math.abs(new Float32Array(Uint8Array.from(st.data(`${key}.running_var`)).buffer)[0] - (1 - 1e-5)) < 1e-7);
  assert.not.ok(st.header[`${key.replace(/_bn$/, '')}.bias`], `${key}: the conv before it keeps no bias`);
});

test('--bn keep, and a model that kept its BNs: nothing unfolded', () => {
  assert.is(exportPytorch(loadModel(fixturePath('resnet18-w25.onnx')), { bn: 'keep' }).unfolded.length, 0);
  const withBn = exportPytorch(loadModel(fixturePath('resnet50-w25-bn.onnx')));
  assert.is(withBn.unfolded.length, 0);
  assert.ok(withBn.modules.BatchNorm2d > 0);
});

test('an op with no PyTorch mapping is a typed E_ARG naming the node', () => {
  const g = new Graph();
  const x = g.addInput('x', { elemType: DataType.FLOAT, shape: [1, 4] });
  const n = g.addNode({ opType: 'Einsum', name: 'mystery', inputs: [x, x], outputs: ['y'] });
  g.addOutput(n.outputs[0]!);
  try {
    exportPytorch(emptyModel(g));
    assert.unreachable('should throw');
  } catch (e) {
    assert.is((e as { code: string }).code, 'E_ARG');
    assert.match((e as Error).message, /Einsum node 'mystery'/);
  }
});

test('gpt export --to pytorch -o DIR writes model.py and model.safetensors; --to tf is refused with exit status 2', () => {
  const dir = tmpDir('gpt-export-cli-');
  const bin = path.join(repoRoot, 'bin', 'run.js');
  const r = spawnSync(process.execPath, [bin, 'export', fixturePath('resnet18-w25.onnx'), '--to', 'pytorch', '-o', dir], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, /20 BatchNorm layers unfolded/);
  assert.match(fs.readFileSync(path.join(dir, 'model.py'), 'utf8'), /^class Net\(nn\.Module\):/m);
  assert.ok(fs.statSync(path.join(dir, 'model.safetensors')).size > 100_000);
  const bad = spawnSync(process.execPath, [bin, 'export', fixturePath('resnet18-w25.onnx'), '--to', 'tf', '-o', dir], { encoding: 'utf8' });
  assert.is(bad.status, 2);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('gpt export of a PRN parts model: a `note:` line per note (the parts written whole: ResNet-18 20 convs, 8 masked residuals), the JSON `notes` field the same; --prn-parts keep: no such note, the partial convs in model.py; --prn-parts other: exit 2', () => {
  const dir = tmpDir('gpt-export-notes-');
  const bin = path.join(repoRoot, 'bin', 'run.js');
  const src = path.join(dir, 'r18-prn.onnx');
  saveModel(convert(loadModel(fixturePath('resnet18-w25.onnx')), { to: 'prn' }).model, src);
  const cli = (...a: string[]) => spawnSync(process.execPath, [bin, 'export', src, '-o', path.join(dir, 'out'), ...a], { encoding: 'utf8' });
  const r = cli();
  assert.is(r.status, 0, r.stderr);
  const notes = r.stdout.split('\n').filter((l) => l.startsWith('note: '));
  assert.ok(notes.some((l) => /^note: PRN parts form written as the architecture: 20 conv\(s\) written whole from their parts, 8 masked residual\(s\)/.test(l)), r.stdout);
  const j = cli('--json');
  assert.is(j.status, 0, j.stderr);
  assert.equal(JSON.parse(j.stdout).notes, notes.map((l) => l.slice('note: '.length)));
  const k = cli('--prn-parts', 'keep');
  assert.is(k.status, 0, k.stderr);
  assert.not.match(k.stdout, /PRN parts form/);
  assert.match(fs.readFileSync(path.join(dir, 'out', 'model.py'), 'utf8'), /self\.in1 = nn\.Conv2d/);
  // the plain model: no note at all
  const plain = spawnSync(process.execPath, [bin, 'export', fixturePath('resnet18-w25.onnx'), '-o', path.join(dir, 'plain')], { encoding: 'utf8' });
  assert.is(plain.status, 0, plain.stderr);
  assert.not.match(plain.stdout, /^note: /m);
  const bad = cli('--prn-parts', 'split');
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /prn-parts/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
