/**
 * NonMaxSuppression inside an If branch (as torchvision's exports write their postprocess): the
 * branch reads the boxes and scores from the outer graph (implicit inputs). On a real detector
 * fixture (yolov3-w25-raw, its three raw head outputs kept as outputs) the conversions pass the If
 * through untouched, the model still runs in onnxruntime at both optimisation levels with its
 * output names, and under PRN the selected indices equal those of the masked-residual reference.
 *
 *   yolo_s16 ─ Reshape ─ boxes [1, 6375, 4] ┄┄┐ (read inside the then branch)
 *            └ Reshape ─ scores [1, 4, 6375] ┄┤
 *                          └ ReduceMax ─ Greater ─ If ─ selected [N, 3]
 *                                                   then: NonMaxSuppression(boxes, scores, ...)
 *                                                   else: no box (an empty [0, 3])
 */
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as ort from 'onnxruntime-node';
import { recognizeDetector } from '../../src/analysis/detector';
import { floatTensor } from '../../src/ir/float-data';
import type { Model } from '../../src/ir/model';
import { Tensor } from '../../src/ir/tensor';
import { encodeGeneric } from '../../src/onnx/codec';
import { loadModel, saveModelToBuffer } from '../../src/onnx/io';
import { AttributeProto, AttributeType, DataType, GraphProto, GraphSpec, NodeProto } from '../../src/onnx/schema';
import { convert } from '../../src/passes/convert';
import { outerReads } from '../../src/ir/subgraph';
import { maskResidualsForReference } from '../../src/verify/reference';
import { fixturesDir, readNpy } from '../helpers';

const D = path.join(fixturesDir, '..', 'fixtures-detectors');

const nodeProto = (opType: string, input: string[], output: string[], name: string): NodeProto => ({
  opType, input, output, name, attribute: [], metadataProps: [], deviceConfigurations: [],
});
function branch(name: string, nodes: NodeProto[], output: string): Uint8Array {
  const g: GraphProto = {
    name, node: nodes, initializer: [], sparseInitializer: [], input: [],
    output: [{ name: output, type: { tensorType: { elemType: DataType.INT64 } }, metadataProps: [] }],
    valueInfo: [], quantizationAnnotation: [], metadataProps: [],
  };
  return encodeGeneric(GraphSpec, g);
}
const graphAttr = (name: string, g: Uint8Array): AttributeProto => ({
  name, type: AttributeType.GRAPH, g, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [],
});

/** yolov3-w25-raw with the NMS-in-If postprocess on its stride-16 output; the raw outputs stay outputs. */
function withNmsInIf(): Model {
  const m = loadModel(path.join(D, 'yolov3-w25-raw.onnx'));
  const g = m.graph;
  const s16 = g.outputs.find((o) => o.name === 'yolo_s16')!;
  const shape = (name: string, dims: number[]) => g.addInitializer(Tensor.int64(name, [dims.length], dims));
  g.addNode({ opType: 'Reshape', name: 'post/boxes', inputs: [s16, shape('post/boxes_shape', [1, 6375, 4])], outputs: ['boxes'] });
  const scores = g.addNode({ opType: 'Reshape', name: 'post/scores', inputs: [s16, shape('post/scores_shape', [1, 4, 6375])], outputs: ['scores'] }).outputs[0]!;
  const top = g.addNode({ opType: 'ReduceMax', name: 'post/top', inputs: [scores], outputs: ['top'], attrs: { keepdims: 0 } }).outputs[0]!;
  const floor = g.addInitializer(floatTensor('post/floor', [], Float32Array.of(-1e30)));
  const any = g.addNode({ opType: 'Greater', name: 'post/any', inputs: [top, floor], outputs: ['any'] }).outputs[0]!;
  g.addInitializer(Tensor.int64('post/max_boxes', [1], [10]));
  g.addInitializer(floatTensor('post/iou', [1], Float32Array.of(0.5)));
  g.addInitializer(floatTensor('post/score', [1], Float32Array.of(-1e30)));
  g.addInitializer(Tensor.int64('post/none', [0, 3], []));
  const iff = g.addNode({ opType: 'If', name: 'post/if', inputs: [any], outputs: ['selected'] });
  iff.copyAttr(graphAttr('then_branch', branch('then', [nodeProto('NonMaxSuppression', ['boxes', 'scores', 'post/max_boxes', 'post/iou', 'post/score'], ['sel'], 'post/nms')], 'sel')));
  iff.copyAttr(graphAttr('else_branch', branch('else', [nodeProto('Identity', ['post/none'], ['empty'], 'post/empty')], 'empty')));
  g.addOutput(iff.outputs[0]!);
  return loadModel(saveModelToBuffer(m)); // as a file would give it: implicit inputs read from the branches
}

async function run(model: Model, level: 'disabled' | 'all'): Promise<Record<string, ort.Tensor>> {
  const s = await ort.InferenceSession.create(saveModelToBuffer(model), { graphOptimizationLevel: level });
  const x = readNpy(path.join(D, 'yolov3-w25-raw.input.npy'));
  return s.run({ [s.inputNames[0]]: new ort.Tensor('float32', x.data, x.shape) });
}

const ifProto = (m: Model) => {
  const n = m.graph.nodes.find((x) => x.opType === 'If')!;
  return { outer: outerReads(n.proto), attrs: n.proto.attribute.map((a) => Buffer.from(a.g ?? []).toString('hex')) };
};

test('the NMS-in-If model: a detector whose heads hold the If; its branch reads boxes and scores from outside', async () => {
  const m = withNmsInIf();
  const d = recognizeDetector(m);
  assert.ok(d.detector);
  assert.ok(d.heads.nodes.includes('post/if'), 'the If is part of the heads');
  assert.equal(ifProto(m).outer.sort(), ['boxes', 'post/iou', 'post/max_boxes', 'post/none', 'post/score', 'scores']);
  const out = await run(m, 'disabled');
  // 4 classes x at most 10 boxes each, every score kept (score threshold -1e30)
  assert.equal(out.selected.dims, [40, 3]);
});

for (const to of ['prn', 'csp', 'elan'] as const) {
  test(`--to ${to}: the If (and the NMS in it) passes through untouched; every output keeps its name and runs at ORT's both levels`, async () => {
    const src = withNmsInIf();
    const before = ifProto(src);
    const { model, report } = convert(src, { to });
    assert.ok(report.converted.length > 0);
    assert.equal(ifProto(model), before, 'same outer reads, same branch bytes');
    assert.equal(model.graph.outputs.map((o) => o.name), src.graph.outputs.map((o) => o.name));
    for (const level of ['disabled', 'all'] as const) {
      const out = await run(model, level);
      assert.equal(out.selected.dims[1], 3, `${level}: selected is N x 3`);
      assert.ok(out.selected.dims[0] > 0 && out.selected.dims[0] <= 40);
      assert.equal([...out.yolo_s16.dims], [1, 255, 10, 10]);
    }
    if (to === 'prn') {
      // the masked-residual reference built from the source (src/verify) selects the same boxes
      const ref = withNmsInIf();
      assert.ok('masked' in maskResidualsForReference(ref, 0.5));
      const [a, b] = [await run(model, 'disabled'), await run(ref, 'disabled')];
      assert.equal([...(a.selected.data as BigInt64Array)], [...(b.selected.data as BigInt64Array)]);
    }
  });
}

test('negative: the reference selects other boxes than the plain model (the check above can fail)', async () => {
  const ref = withNmsInIf();
  maskResidualsForReference(ref, 0.5);
  const [a, b] = [await run(withNmsInIf(), 'disabled'), await run(ref, 'disabled')];
  assert.not.equal([...(a.selected.data as BigInt64Array)], [...(b.selected.data as BigInt64Array)]);
});

test.run();
