/**
 * Every fixture runs in onnxruntime-node and gives its recorded output for its recorded input, both
 * as loaded and after a round trip through the IR (load, toposort, cleanup, save).
 */
import * as fs from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadModel, saveModelToBuffer } from '../../src/onnx/io';
import { createSession, runFloat } from '../../src/profile/ort';
import { fixturePath, fixtures, maxAbsDiff, readNpy } from '../helpers';

for (const fx of fixtures()) {
  test(`${fx.model}: onnxruntime output matches the fixture, as loaded and after the IR`, async () => {
    const x = readNpy(fixturePath(fx.sampleInput));
    const expected = readNpy(fixturePath(fx.sampleOutput));
    const original = fs.readFileSync(fixturePath(fx.model));
    const m = loadModel(fixturePath(fx.model));
    m.graph.toposort().cleanup();
    const viaIr = saveModelToBuffer(m);
    for (const [label, bytes] of [['as loaded', original], ['after the IR', viaIr]] as const) {
      const s = await createSession(bytes);
      const out = await runFloat(s, { [fx.input.name]: { data: x.data, dims: x.shape } });
      const y = out[fx.output];
      assert.equal([...y.dims], expected.shape, `${label}: output shape`);
      const { diff, tol } = maxAbsDiff(y.data, expected.data);
      assert.ok(diff <= tol, `${label}: max abs diff ${diff} > ${tol}`);
    }
  });
}

test('onnxruntime rejecting a model is an E_ORT error naming it', async () => {
  const m = loadModel(fixturePath('resnet18-w25.onnx'));
  m.graph.nodes[0].opType = 'NoSuchOp';
  try {
    await createSession(m, {}, 'broken.onnx');
    assert.unreachable();
  } catch (e: any) {
    assert.is(e.code, 'E_ORT');
    assert.match(e.oneLine(), /^broken\.onnx: onnxruntime rejected the model/);
  }
});

test.run();
