/**
 * profile(model) of an in-memory Model runs that object (serialized), not the file it was loaded
 * from. No timing is asserted: only which nodes ran.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel } from '../../src/onnx/io';
import { profile } from '../../src/profile';
import { fixturePath } from '../helpers';

/** resnet18-w25 with one more node after the logits:  logits ─ Neg 'gpt_test_negate' ─ negated (the output). */
function changedInMemory() {
  const m = loadModel(fixturePath('resnet18-w25.onnx'));
  const g = m.graph;
  const logits = g.outputs[0];
  const neg = g.addNode({ opType: 'Neg', name: 'gpt_test_negate', inputs: [logits], outputs: ['negated'] });
  neg.outputs[0]!.declared = logits.declared;
  g.setOutput(0, neg.outputs[0]!);
  return m;
}

test('profile(model): the per-node profile shows the node added in memory', async () => {
  const m = changedInMemory();
  assert.ok(m.sourcePath, 'loaded from a file');
  const r = await profile([m], { iterations: 2, warmup: 1, perNode: true });
  const kernels = r.models[0].perNode[0].kernels;
  assert.ok(kernels.some((k) => k.node === 'gpt_test_negate'), `kernels: ${kernels.map((k) => k.node).join(', ')}`);
  assert.is(r.models[0].file, m.sourcePath, 'the report still says where the model came from');
  assert.ok(r.warnings.some((w) => w.includes('changed in memory')), r.warnings.join('\n'));
});

test('profile(model) of a model loaded and left as it was: no "changed" warning (negative)', async () => {
  const m = loadModel(fixturePath('resnet18-w25.onnx'));
  const r = await profile([m], { iterations: 1, warmup: 0 });
  assert.ok(!r.warnings.some((w) => w.includes('changed in memory')), r.warnings.join('\n'));
});

test('profile(path): the file as it is, without the in-memory change (negative)', async () => {
  const r = await profile([fixturePath('resnet18-w25.onnx')], { iterations: 2, warmup: 1, perNode: true });
  const kernels = r.models[0].perNode[0].kernels;
  assert.ok(kernels.length > 0);
  assert.ok(!kernels.some((k) => k.node === 'gpt_test_negate'));
});

test.run();
