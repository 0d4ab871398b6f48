/**
 * inspect: the report carries the manifest's facts and the hand-computed cost figures, validates
 * against the shipped schema, and a broken report does not; the text uses human units.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GptError } from '../../src/errors';
import { loadModel } from '../../src/onnx/io';
import { formatInspect, inspect, InspectReport, validateInspectReport } from '../../src/analysis/inspect';
import { bytes as humanBytes, human as humanCount } from '../../src/report/format';
import { fixturePath, fixtures } from '../helpers';

const entry = (name: string) => fixtures().find((f) => f.model === name)!;

test('resnet50-w25: manifest facts, op histogram from the architecture, schema-valid', () => {
  const f = entry('resnet50-w25.onnx');
  const r = inspect(loadModel(fixturePath(f.model)));
  validateInspectReport(r);
  assert.is(r.irVersion, f.irVersion);
  assert.equal(r.opsets, [{ domain: '', version: f.opset }]);
  assert.is(r.producer.name, 'pytorch');
  assert.equal(r.inputs, [{ name: f.input.name, elemType: 'FLOAT', shape: f.input.shape }]);
  assert.equal(r.outputs, [{ name: f.output, elemType: 'FLOAT', shape: ['batch', 10] }]);
  const ops = Object.fromEntries(r.ops.map((o) => [o.opType, o.count]));
  // ResNet-50: 3+4+6+3 = 16 bottlenecks of 3 convs, 4 projection shortcuts, 1 stem conv: 53 convs;
  // one Add per block; Relu after the stem and after each of the 3 stages of a block: 1 + 48 = 49
  assert.is(ops.Conv, 53);
  assert.is(ops.Add, 16);
  assert.is(ops.Relu, 49);
  assert.is(r.nodeCount, r.ops.reduce((s, o) => s + o.count, 0));
  assert.equal(r.dims, [{ name: 'batch', value: 1, assumed: true }]);
  assert.equal(r.warnings, []);
});

test('resnet18-w25: params and MACs match the hand figures (see cost.test.ts)', () => {
  const r = inspect(loadModel(fixturePath('resnet18-w25.onnx')));
  validateInspectReport(r);
  assert.is(r.params, 702186);
  assert.is(r.macs, 11060480);
  assert.ok(r.peakActivationBytes > 0 && r.peakActivationBytes <= r.activationBytes + 3 * 64 * 64 * 4);
  assert.equal(r.dims, []);
});

test('every fixture gives a schema-valid report', () => {
  for (const f of fixtures()) validateInspectReport(inspect(loadModel(fixturePath(f.model))));
});

test('a broken report does not validate, and the message says where', () => {
  const good = inspect(loadModel(fixturePath('resnet18-w25.onnx')));
  const broken: [string, (r: InspectReport) => unknown, RegExp][] = [
    ['extra property', (r) => ({ ...r, colour: 'blue' }), /additional properties 'colour'/],
    ['missing field', (r) => { const { macs: _m, ...rest } = r; return rest; }, /must have required property 'macs'/],
    ['unknown element type', (r) => ({ ...r, inputs: [{ ...r.inputs[0], elemType: 'FLOAT32' }] }), /\/inputs\/0\/elemType must be equal to one of the allowed values/],
    ['params as a string', (r) => ({ ...r, params: '11.69 M' }), /\/params must be integer/],
    ['negative count', (r) => ({ ...r, ops: [{ opType: 'Conv', count: -1 }] }), /\/ops\/0\/count must be >= 1/],
    ['extra property deep inside', (r) => ({ ...r, producer: { ...r.producer, build: 'x' } }), /\/producer must NOT have additional properties 'build'/],
  ];
  for (const [what, breakIt, mention] of broken) {
    try {
      validateInspectReport(breakIt(structuredClone(good)));
      assert.unreachable(what);
    } catch (e) {
      assert.instance(e, GptError, what);
      assert.is((e as GptError).code, 'E_SCHEMA', what);
      assert.match((e as GptError).message, mention, what);
    }
  }
});

test('human units', () => {
  assert.is(humanCount(11690000), '11.69 M');
  assert.is(humanCount(1.81e9), '1.81 G');
  assert.is(humanCount(950), '950');
  assert.is(humanBytes(1.25 * 1024 * 1024), '1.25 MiB');
  assert.is(humanBytes(512), '512 B');
});

test('formatInspect: aligned rows with human units', () => {
  const r = inspect(loadModel(fixturePath('resnet50-w25.onnx')), { dims: { batch: 4 } });
  const text = formatInspect(r);
  const lines = text.split('\n');
  // every row is a 14-column label (or blank) then the value
  for (const l of lines) assert.match(l, /^(\S[\w .]{0,13}|\s{14})\S/);
  assert.match(text, /^params {8}\d+\.\d\d M$/m);
  assert.match(text, /^MACs {10}\d+\.\d\d M$/m);
  assert.match(text, /peak \d+\.\d\d (KiB|MiB) at \S+/);
  assert.match(text, /^dims {10}batch = 4$/m);
  assert.match(text, /^inputs {8}input {3}FLOAT {2}\[batch, 3, 64, 64\]$/m);
  assert.match(text, /^outputs {7}logits {2}FLOAT {2}\[batch, 10\]$/m);
  assert.match(text, /^ops {11}Conv {15}53$/m);
});

test.run();
