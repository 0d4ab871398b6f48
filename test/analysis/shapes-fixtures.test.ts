/**
 * Shape inference on every fixture model (the plain, real-world timm and detector sets) against
 * onnxruntime: every node output is made a graph output, the model runs on its sample input, and
 * each output's dims must be what inferShapes gives (symbols substituted with the sample's sizes).
 * MACs follow from the Conv / Gemm output sizes onnxruntime reports, and for the timm models the
 * manifest gives them (and the params) too.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { costModel } from '../../src/analysis/cost';
import { inferShapes } from '../../src/analysis/shapes';
import type { Model } from '../../src/ir/model';
import { loadModel } from '../../src/onnx/io';
import { createSession, runFloat } from '../../src/profile/ort';
import { fixturesDir, readNpy } from '../helpers';

interface Entry {
  model: string;
  input: { name: string; shape: (number | string)[] };
  sampleInput: string;
  macs?: number;
  onnxParams?: number;
}

const sets = ['fixtures', 'fixtures-realworld', 'fixtures-detectors'].map((name) => {
  const dir = path.join(fixturesDir, '..', name);
  return { dir, models: JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')).models as Entry[] };
});

/** Every node output as a graph output (an intermediate value's dims come back from onnxruntime). */
function exposeAll(m: Model): void {
  for (const n of m.graph.nodes) for (const o of n.outputs) if (o && !m.graph.isGraphOutput(o)) m.graph.addOutput(o);
}

for (const { dir, models } of sets) {
  for (const e of models) {
    test(`${path.basename(dir)}/${e.model}: every value's shape as onnxruntime runs it; MACs from its conv sizes`, async () => {
      const x = readNpy(path.join(dir, e.sampleInput));
      const dims: Record<string, number> = {};
      e.input.shape.forEach((d, i) => typeof d === 'string' && (dims[d] = x.shape[i]));
      const m = loadModel(path.join(dir, e.model));
      assert.equal(inferShapes(m, { dims }).warnings, []);
      const inferred = new Map(m.graph.nodes.flatMap((n) => n.outputs.filter((o) => o).map((o) => [o!.name, o!.inferred?.shape] as const)));
      const weighted = m.graph.nodes.filter((n) => (n.opType === 'Conv' || n.opType === 'Gemm') && m.graph.constantTensor(n.inputs[1]));
      exposeAll(m);
      const s = await createSession(m, { logSeverityLevel: 3 });
      const out = await runFloat(s, { [e.input.name]: { data: x.data, dims: x.shape } });
      const wrong: string[] = [];
      for (const [name, shape] of inferred) {
        const got = out[name]?.dims;
        if (!got) wrong.push(`${name}: onnxruntime returned nothing`);
        else if (JSON.stringify([...got]) !== JSON.stringify(shape)) wrong.push(`${name}: gpt ${JSON.stringify(shape)}, onnxruntime ${JSON.stringify([...got])}`);
      }
      assert.equal(wrong, [], wrong.slice(0, 5).join('\n'));

      // MACs: output elements x (weight elements / output channels); Gemm (transB as exported): x K
      let macs = 0;
      for (const n of weighted) {
        const w = m.graph.constantTensor(n.inputs[1])!;
        const per = n.opType === 'Conv' ? w.size / w.dims[0] : n.int('transB', 0) === 1 ? w.dims[1] : w.dims[0];
        macs += out[n.outputs[0]!.name].dims.reduce((a, b) => a * b, 1) * per;
      }
      const c = costModel(loadModel(path.join(dir, e.model)), { dims });
      assert.is(c.totals.macs, macs);
      if (e.macs !== undefined) assert.is(c.totals.macs, e.macs);
      if (e.onnxParams !== undefined) assert.is(c.totals.params, e.onnxParams);
    });
  }
}

test('negative: a wrong inferred size would be caught (the sizes are compared, not just present)', async () => {
  const { dir, models } = sets[1];
  const e = models.find((k) => k.model === 'resnet50d-w25-op17dyn.onnx')!;
  const m = loadModel(path.join(dir, e.model));
  // inferred at 64 x 64, run at 96 x 80: the sizes must differ
  inferShapes(m, { dims: { batch: 2, height: 64, width: 64 } });
  const conv = m.graph.nodes.find((n) => n.opType === 'Conv')!.outputs[0]!;
  m.graph.addOutput(conv);
  const x = readNpy(path.join(dir, 'resnet50d-w25-op17dyn.b2-96x80.input.npy'));
  const s = await createSession(m, { logSeverityLevel: 3 });
  const out = await runFloat(s, { input: { data: x.data, dims: x.shape } });
  assert.equal([...out[conv.name].dims], [2, 8, 48, 40]);
  assert.equal(conv.inferred!.shape, [2, 8, 32, 32]);
});

test.run();
