/**
 * Small hand-made models for the hostile-input tests: plain ModelProto objects encoded with the codec,
 * so each test states exactly the bytes it feeds gpt.
 *
 *   x [1,2] --Add(x, w)--> y        w: a float32 initializer [1,2]
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeModel } from '../../src/onnx/codec';
import type { AttributeProto, ModelProto, NodeProto, TensorProto, ValueInfoProto } from '../../src/onnx/schema';
import { DataType } from '../../src/onnx/schema';

export function valueInfo(name: string, shape: (number | string)[], elemType: number = DataType.FLOAT): ValueInfoProto {
  return {
    name, metadataProps: [],
    type: { tensorType: { elemType, shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

export function tensor(name: string, dims: number[], fields: Partial<TensorProto> = {}): TensorProto {
  return {
    name, dims, dataType: DataType.FLOAT, floatData: [], int32Data: [], stringData: [], int64Data: [], externalData: [],
    doubleData: [], uint64Data: [], metadataProps: [], ...fields,
  };
}

export function floats(values: number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

export function node(opType: string, inputs: string[], outputs: string[], name = opType, attribute: AttributeProto[] = []): NodeProto {
  return { input: inputs, output: outputs, name, opType, attribute, metadataProps: [], deviceConfigurations: [] };
}

export function model(parts: { nodes?: NodeProto[]; initializers?: TensorProto[]; inputs?: ValueInfoProto[]; outputs?: ValueInfoProto[] } = {}): ModelProto {
  return {
    irVersion: 8, opsetImport: [{ domain: '', version: 13 }], metadataProps: [], trainingInfo: [], functions: [], configuration: [],
    producerName: 'gpt-test',
    graph: {
      node: parts.nodes ?? [node('Add', ['x', 'w'], ['y'])],
      initializer: parts.initializers ?? [tensor('w', [1, 2], { rawData: floats([1, 2]) })],
      sparseInitializer: [],
      input: parts.inputs ?? [valueInfo('x', [1, 2])],
      output: parts.outputs ?? [valueInfo('y', [1, 2])],
      valueInfo: [], quantizationAnnotation: [], metadataProps: [],
    },
  };
}

/** The Add model with `w` in external data at `location` (offset / length entries as given). */
export function externalModel(location: string, entries: Record<string, string> = {}): ModelProto {
  const w = tensor('w', [1, 2], {
    dataLocation: 1,
    externalData: [{ key: 'location', value: location }, ...Object.entries(entries).map(([key, value]) => ({ key, value }))],
  });
  return model({ initializers: [w] });
}

export function write(dir: string, name: string, m: ModelProto | Uint8Array | string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, typeof m === 'string' || m instanceof Uint8Array ? m : encodeModel(m));
  return p;
}

/** sha256 of every file under `dir` (names relative), to show inputs are byte-identical afterwards. */
export function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const stack = [dir];
  while (stack.length) {
    const d = stack.pop()!;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) out.set(path.relative(dir, p), crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex'));
      else out.set(path.relative(dir, p), e.isSymbolicLink() ? `link:${fs.readlinkSync(p)}` : 'special');
    }
  }
  return out;
}
