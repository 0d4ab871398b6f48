/**
 * Model: the ModelProto's top-level fields plus the Graph IR. fromProto / toProto convert between the
 * wire-level proto (src/onnx) and the IR without losing a field: everything the IR does not model
 * is kept on `rest` objects and written back as it was.
 */
import { createHash } from 'node:crypto';
import { GptError } from '../errors';
import type { DimensionProto, GraphProto, ModelProto, TypeProto, ValueInfoProto } from '../onnx/schema';
import { Dim, Graph, Node, TensorType, Value } from './graph';
import { hasSubgraphs, innerNames } from './subgraph';
import { Tensor, externalLocation, toNumber } from './tensor';

export { externalLocation };

export class Model {
  /** ModelProto fields other than the graph. */
  proto: ModelProto;
  graph: Graph;
  /** Absolute path the model was loaded from, if any. */
  sourcePath?: string;
  /** Folder external data locations are resolved against. */
  baseDir?: string;
  /** The bytes the model was decoded from (tensors are views of them anyway), for sourceSha256. */
  private loadedBytes?: Uint8Array;
  private digest?: string;

  constructor(proto: ModelProto, graph: Graph) {
    this.proto = proto;
    this.graph = graph;
  }

  get irVersion(): number {
    return toNumber(this.proto.irVersion);
  }
  /** Opset of a domain ('' is the default ONNX domain; 'ai.onnx' is the same). */
  opset(domain = ''): number | undefined {
    const e = this.proto.opsetImport.find((o) => (o.domain ?? '') === domain || (domain === '' && o.domain === 'ai.onnx'));
    return e ? toNumber(e.version) : undefined;
  }
  setOpset(version: number, domain = ''): void {
    const e = this.proto.opsetImport.find((o) => (o.domain ?? '') === domain);
    if (e) e.version = version;
    else this.proto.opsetImport.push({ domain, version });
  }
  /** metadata_props as a map (read). */
  metadata(): Record<string, string> {
    return Object.fromEntries(this.proto.metadataProps.map((e) => [e.key ?? '', e.value ?? '']));
  }
  setMetadata(key: string, value: string): void {
    const e = this.proto.metadataProps.find((m) => m.key === key);
    if (e) e.value = value;
    else this.proto.metadataProps.push({ key, value });
  }
  /** Remember the bytes this model was decoded from (loadModel does it). */
  setSourceBytes(bytes: Uint8Array): void {
    this.loadedBytes = bytes;
    this.digest = undefined;
  }

  /**
   * SHA-256 (hex) of the bytes the model was loaded from: what was loaded, even after the model is
   * changed in memory or the file is rewritten. Undefined for a model built in memory.
   */
  get sourceSha256(): string | undefined {
    if (this.digest === undefined && this.loadedBytes) this.digest = createHash('sha256').update(this.loadedBytes).digest('hex');
    return this.digest;
  }

  get displayName(): string {
    return this.sourcePath ?? this.graph.rest.name ?? 'model';
  }
}

export function typeFromProto(t: TypeProto | undefined): TensorType | undefined {
  const tt = t?.tensorType;
  if (!tt) return undefined;
  const shape: Dim[] | null = tt.shape
    ? tt.shape.dim.map((d: DimensionProto) => (d.dimValue !== undefined ? toNumber(d.dimValue) : d.dimParam ? d.dimParam : null))
    : null;
  return { elemType: tt.elemType ?? 0, shape };
}

export function typeToProto(t: TensorType): TypeProto {
  return {
    tensorType: {
      elemType: t.elemType,
      shape: t.shape
        ? { dim: t.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : typeof d === 'string' ? { dimParam: d } : {})) }
        : undefined,
    },
  };
}


export function modelFromProto(proto: ModelProto, baseDir?: string): Model {
  const gp: GraphProto = proto.graph ?? {
    node: [], initializer: [], sparseInitializer: [], input: [], output: [], valueInfo: [], quantizationAnnotation: [], metadataProps: [],
  };
  const g = new Graph();
  g.baseDir = baseDir;
  const { node, initializer, input, output, valueInfo, ...rest } = gp;
  g.rest = rest;
  for (const vi of input) g.addInput(vi.name ?? '', typeFromProto(vi.type)).info = vi;
  for (const t of initializer) {
    const v = g.values.get(t.name ?? '');
    if (v?.tensor) throw new GptError('E_GRAPH', `initializer '${t.name}' is defined twice`);
    // IR < 4 lists initializers among the inputs too: there the tensor is the input's default
    g.addInitializer(new Tensor(t, externalLocation(t, baseDir)), { asInputDefault: true });
  }
  // unnamed nodes are named as they are inserted: their names must not take a later node's name
  g.reserveNames(node.flatMap((np) => [np.name ?? '', ...(hasSubgraphs(np) ? innerNames(np) : [])]));
  for (const np of node) {
    const n = new Node(np);
    np.input.forEach((name, i) => n.setInput(i, name === '' ? null : g.value(name)));
    np.output.forEach((name, i) => {
      if (name === '') return n.setOutput(i, null);
      const v = g.value(name);
      if (v.producer) {
        throw new GptError('E_GRAPH', `value '${name}' is produced twice: by '${v.producer.name}' and by '${n.name}'`, {
          hint: 'every value in an ONNX graph must have one producer',
        });
      }
      n.setOutput(i, v);
    });
    g.insertNode(n);
  }
  for (const vi of valueInfo) {
    const v = g.value(vi.name ?? '');
    v.info = v.info ?? vi;
    v.declared = typeFromProto(vi.type) ?? v.declared;
    g.addValueInfo(v);
  }
  for (const vi of output) {
    const v = g.value(vi.name ?? '');
    if (!v.info) v.info = vi;
    v.declared = typeFromProto(vi.type) ?? v.declared;
    g.addOutput(v);
  }
  // keep the ValueInfoProtos as loaded for inputs/outputs/value_info
  // every entry as loaded, in order (a name may appear more than once: each entry is kept)
  const graphInfo = new Map<Value, KeptInfo>();
  const keep = (v: Value, role: keyof KeptInfo, vi: ValueInfoProto) => {
    const k = graphInfo.get(v) ?? { input: [], output: [], valueInfo: [] };
    k[role].push(vi);
    graphInfo.set(v, k);
  };
  input.forEach((vi, i) => keep(g.inputs[i], 'input', vi));
  output.forEach((vi, i) => keep(g.outputs[i], 'output', vi));
  valueInfo.forEach((vi, i) => keep(g.valueInfo[i], 'valueInfo', vi));
  infoMaps.set(g, graphInfo);

  const { graph: _graph, ...modelRest } = proto;
  const m = new Model({ ...modelRest } as ModelProto, g);
  m.baseDir = baseDir;
  return m;
}

interface KeptInfo {
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
}

const infoMaps = new WeakMap<Graph, Map<Value, KeptInfo>>();

/** The n-th loaded entry of that role for the value (when it still has the value's name), else a fresh one. */
function valueInfoFor(g: Graph, v: Value, role: keyof KeptInfo, n: number): ValueInfoProto {
  const list = infoMaps.get(g)?.get(v)?.[role] ?? [];
  const kept = list[Math.min(n, list.length - 1)];
  if (kept && kept.name === v.name) return kept;
  const t = v.declared ?? v.inferred;
  return { name: v.name, type: t ? typeToProto(t) : undefined, metadataProps: [] };
}

function entries(g: Graph, values: readonly Value[], role: keyof KeptInfo): ValueInfoProto[] {
  const seen = new Map<Value, number>();
  return values.map((v) => {
    const n = seen.get(v) ?? 0;
    seen.set(v, n + 1);
    return valueInfoFor(g, v, role, n);
  });
}

/** The graph as a GraphProto; tensors come from `tensorProto` (the save path decides inline vs external). */
export function graphToProto(g: Graph, tensorProto: (t: Tensor) => Tensor['proto'] = (t) => t.proto): GraphProto {
  return {
    ...g.rest,
    node: g.nodes.map((n) => ({
      ...n.proto,
      input: n.inputs.map((v) => v?.name ?? ''),
      output: n.outputs.map((v) => v?.name ?? ''),
    })),
    initializer: g.initializers.map((v) => {
      const t = tensorProto(v.tensor!);
      return t.name === v.name ? t : { ...t, name: v.name };
    }),
    input: entries(g, g.inputs, 'input'),
    output: entries(g, g.outputs, 'output'),
    valueInfo: entries(g, g.valueInfo, 'valueInfo'),
    sparseInitializer: g.rest.sparseInitializer ?? [],
    quantizationAnnotation: g.rest.quantizationAnnotation ?? [],
    metadataProps: g.rest.metadataProps ?? [],
  };
}

export function modelToProto(m: Model, tensorProto?: (t: Tensor) => Tensor['proto']): ModelProto {
  return { ...m.proto, graph: graphToProto(m.graph, tensorProto) };
}
