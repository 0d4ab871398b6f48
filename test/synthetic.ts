/**
 * Synthetic plain ResNets built with the IR, for tests and benchmarks:
 *
 *   input -> Conv(stem) -> Relu -> x0
 *   block k (k = 1..N):  x(k-1) -> Conv -> Relu -> Conv -> Add(., x(k-1)) -> Relu -> xk
 *   xN -> GlobalAveragePool -> Flatten -> Gemm -> logits
 *
 * Every value carries an inferred type (NCHW, `channels` wide, 8x8), so channel-level analyses
 * need no shape inference.
 */
import { Graph, Value, floatType } from '../src/ir/graph';
import { Model } from '../src/ir/model';
import { Tensor } from '../src/ir/tensor';
import type { ModelProto } from '../src/onnx/schema';

export function emptyModel(graph: Graph, opset = 13): Model {
  const proto = {
    irVersion: 7,
    opsetImport: [{ domain: '', version: opset }],
    metadataProps: [],
    trainingInfo: [],
    functions: [],
    configuration: [],
    producerName: 'gpt-test',
  } satisfies ModelProto;
  return new Model(proto, graph);
}

export function syntheticResNet(blocks: number, channels = 8): Model {
  const g = new Graph();
  const hw = 8;
  const act = (name: string, c = channels): Value => {
    const v = g.value(name);
    v.inferred = floatType([1, c, hw, hw]);
    return v;
  };
  const weight = (name: string, cout: number, cin: number, k: number): Value =>
    g.addInitializer(Tensor.float32(name, [cout, cin, k, k], new Float32Array(cout * cin * k * k).fill(0.01)));
  const conv = (name: string, x: Value, cin: number, out: Value): void => {
    g.addNode({ opType: 'Conv', name, inputs: [x, weight(`${name}.weight`, channels, cin, 3)], outputs: [out], attrs: { pads: [1, 1, 1, 1] } });
  };

  const input = g.value('input');
  input.declared = floatType([1, 3, hw, hw]);
  g.addInput(input);

  conv('stem', input, 3, act('stem_out'));
  g.addNode({ opType: 'Relu', name: 'stem_relu', inputs: [g.value('stem_out')], outputs: [act('x0')] });
  let x = g.value('x0');
  for (let k = 1; k <= blocks; k++) {
    const p = `b${k}`;
    conv(`${p}.conv1`, x, channels, act(`${p}.c1`));
    g.addNode({ opType: 'Relu', name: `${p}.relu1`, inputs: [g.value(`${p}.c1`)], outputs: [act(`${p}.r1`)] });
    conv(`${p}.conv2`, g.value(`${p}.r1`), channels, act(`${p}.c2`));
    g.addNode({ opType: 'Add', name: `${p}.add`, inputs: [g.value(`${p}.c2`), x], outputs: [act(`${p}.sum`)] });
    g.addNode({ opType: 'Relu', name: `${p}.relu2`, inputs: [g.value(`${p}.sum`)], outputs: [act(`x${k}`)] });
    x = g.value(`x${k}`);
  }
  const pooled = g.value('pooled');
  pooled.inferred = floatType([1, channels, 1, 1]);
  g.addNode({ opType: 'GlobalAveragePool', name: 'gap', inputs: [x], outputs: [pooled] });
  const flat = g.value('flat');
  flat.inferred = floatType([1, channels]);
  g.addNode({ opType: 'Flatten', name: 'flatten', inputs: [pooled], outputs: [flat], attrs: { axis: 1 } });
  const logits = g.value('logits');
  logits.inferred = floatType([1, 10]);
  g.addNode({
    opType: 'Gemm',
    name: 'fc',
    inputs: [flat, g.addInitializer(Tensor.float32('fc.weight', [10, channels], new Float32Array(10 * channels).fill(0.01))),
      g.addInitializer(Tensor.float32('fc.bias', [10], new Float32Array(10)))],
    outputs: [logits],
    attrs: { transB: 1 },
  });
  logits.declared = floatType([1, 10]);
  g.addOutput(logits);
  return emptyModel(g);
}
