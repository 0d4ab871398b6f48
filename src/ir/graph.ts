/**
 * The graph IR: Graph / Node / Value with producer and consumer links that the IR keeps in sync
 * itself (as onnx-graphsurgeon does): a pass calls node.setInput / graph.replaceAllUses /
 * graph.removeNode and never rewires both sides by hand. A rewrite reads: detach, insert,
 * cleanup(), toposort().
 */
import { GptError } from '../errors';
import type { AttributeProto, NodeProto, TensorProto, ValueInfoProto } from '../onnx/schema';
import { AttributeType, DataType } from '../onnx/schema';
import type { Int64 } from '../onnx/wire';
import { Tensor, externalLocation, toNumber } from './tensor';

export type Dim = number | string | null; // number: known; string: a symbol ('batch'); null: unknown

export interface TensorType {
  elemType: number;
  shape: Dim[] | null; // null: rank unknown
}

export interface Use {
  node: Node;
  index: number;
}

export class Value {
  readonly consumers: Use[] = [];
  producer: Node | null = null;
  producerIndex = -1;
  /** Set for initializers. */
  tensor?: Tensor;
  /** Type from the model's value_info / input / output entries. */
  declared?: TensorType;
  /** Type from shape inference (never written back unless asked). */
  inferred?: TensorType;
  /** The ValueInfoProto as loaded, for graph inputs/outputs and value_info entries. */
  info?: ValueInfoProto;

  constructor(public name: string) {}

  get type(): TensorType | undefined {
    return this.inferred ?? this.declared;
  }
  get shape(): Dim[] | null {
    return this.type?.shape ?? null;
  }
  get isInitializer(): boolean {
    return this.tensor !== undefined;
  }
  toString(): string {
    return this.name;
  }
}

const utf8 = new TextDecoder();
const utf8e = new TextEncoder();

export class Node {
  readonly inputs: (Value | null)[] = [];
  readonly outputs: (Value | null)[] = [];
  /** The proto as loaded; input/output/name/opType/domain/attribute are taken from the node itself. */
  proto: NodeProto;
  graph: Graph | null = null;

  constructor(proto: NodeProto) {
    this.proto = proto;
  }

  get opType(): string {
    return this.proto.opType ?? '';
  }
  set opType(t: string) {
    this.proto.opType = t;
  }
  get domain(): string {
    return this.proto.domain ?? '';
  }
  /** The node's name, or a stable label when the model left it unnamed. */
  get name(): string {
    return this.proto.name || `${this.opType}(${this.outputs[0]?.name ?? '?'})`;
  }
  set name(n: string) {
    this.proto.name = n;
  }
  get attributes(): AttributeProto[] {
    return this.proto.attribute;
  }

  attr(name: string): AttributeProto | undefined {
    return this.proto.attribute.find((a) => a.name === name);
  }
  int(name: string, fallback: number): number {
    const a = this.attr(name);
    return a?.i !== undefined ? toNumber(a.i) : fallback;
  }
  ints(name: string, fallback: number[] = []): number[] {
    const a = this.attr(name);
    return a ? a.ints.map((v) => toNumber(v)) : fallback;
  }
  float(name: string, fallback: number): number {
    const a = this.attr(name);
    return a?.f !== undefined ? a.f : fallback;
  }
  floats(name: string, fallback: number[] = []): number[] {
    const a = this.attr(name);
    return a ? a.floats : fallback;
  }
  string(name: string, fallback: string): string {
    const a = this.attr(name);
    return a?.s !== undefined ? utf8.decode(a.s) : fallback;
  }
  tensorAttr(name: string): Tensor | undefined {
    const a = this.attr(name);
    return a?.t ? new Tensor(a.t, externalLocation(a.t, this.graph?.baseDir)) : undefined;
  }

  setAttr(name: string, value: number | number[] | string | Tensor | { float: number } | { floats: number[] }): void {
    const a: AttributeProto = { name, floats: [], ints: [], strings: [], tensors: [], graphs: [], sparseTensors: [], typeProtos: [] };
    if (typeof value === 'number') { a.type = AttributeType.INT; a.i = value; }
    else if (Array.isArray(value)) { a.type = AttributeType.INTS; a.ints = value as Int64[]; }
    else if (typeof value === 'string') { a.type = AttributeType.STRING; a.s = utf8e.encode(value); }
    else if (value instanceof Tensor) { a.type = AttributeType.TENSOR; a.t = value.proto; }
    else if ('float' in value) { a.type = AttributeType.FLOAT; a.f = value.float; }
    else { a.type = AttributeType.FLOATS; a.floats = value.floats; }
    const i = this.proto.attribute.findIndex((x) => x.name === name);
    if (i >= 0) this.proto.attribute[i] = a;
    else this.proto.attribute.push(a);
  }

  /** Connect input slot i to v (null: an omitted optional input). Keeps consumer lists in sync. */
  setInput(i: number, v: Value | null): void {
    const old = this.inputs[i];
    if (old) {
      const k = old.consumers.findIndex((u) => u.node === this && u.index === i);
      if (k >= 0) old.consumers.splice(k, 1);
    }
    while (this.inputs.length <= i) this.inputs.push(null);
    this.inputs[i] = v;
    if (v) v.consumers.push({ node: this, index: i });
  }

  setOutput(i: number, v: Value | null): void {
    const old = this.outputs[i];
    if (old && old.producer === this) {
      old.producer = null;
      old.producerIndex = -1;
    }
    while (this.outputs.length <= i) this.outputs.push(null);
    if (v) {
      if (v.producer && v.producer !== this) {
        throw new GptError('E_GRAPH', `value '${v.name}' is already produced by node '${v.producer.name}'`, {
          hint: 'create a new value for this output, or remove the other producer first',
        });
      }
      v.producer = this;
      v.producerIndex = i;
    }
    this.outputs[i] = v;
  }

  /** Disconnect from all inputs and outputs. */
  detach(): this {
    for (let i = 0; i < this.inputs.length; i++) this.setInput(i, null);
    for (let i = 0; i < this.outputs.length; i++) this.setOutput(i, null);
    return this;
  }

  toString(): string {
    return `${this.name} (${this.opType})`;
  }
}

export interface NodeSpecInit {
  opType: string;
  inputs: (Value | null)[];
  /** Values, or names for new values. */
  outputs: (Value | string)[];
  name?: string;
  domain?: string;
  attrs?: Record<string, number | number[] | string | Tensor | { float: number } | { floats: number[] }>;
}

export class Graph {
  nodes: Node[] = [];
  inputs: Value[] = [];
  outputs: Value[] = [];
  /** Initializers in model order. */
  initializers: Value[] = [];
  /** Names of value_info entries, in model order. */
  valueInfo: Value[] = [];
  readonly values = new Map<string, Value>();
  /** Folder that external data locations are relative to (the model file's folder). */
  baseDir?: string;
  /** Fields of GraphProto the IR does not model (name, doc_string, sparse initializers, unknown fields…). */
  rest: Partial<import('../onnx/schema').GraphProto> = {};
  private counters = new Map<string, number>();
  private usedNodeNames?: Set<string>;

  /** The value of that name, created if new. */
  value(name: string): Value {
    let v = this.values.get(name);
    if (!v) {
      v = new Value(name);
      this.values.set(name, v);
    }
    return v;
  }

  /** A name not used by any value or node yet: base, base_1, base_2 ... */
  uniqueName(base: string): string {
    if (!this.usedNodeNames) this.usedNodeNames = new Set(this.nodes.map((n) => n.proto.name ?? '').filter(Boolean));
    let n = this.counters.get(base) ?? 0;
    let name = n === 0 ? base : `${base}_${n}`;
    while (this.values.has(name) || this.usedNodeNames.has(name)) name = `${base}_${++n}`;
    this.counters.set(base, n + 1);
    this.usedNodeNames.add(name);
    return name;
  }

  /** A new value with a fresh unique name. */
  newValue(base: string, type?: TensorType): Value {
    const v = this.value(this.uniqueName(base));
    if (type) v.inferred = type;
    return v;
  }

  addInitializer(tensor: Tensor): Value {
    if (this.values.get(tensor.name)?.producer || this.values.get(tensor.name)?.tensor) {
      tensor.name = this.uniqueName(tensor.name);
    }
    const v = this.value(tensor.name);
    v.tensor = tensor;
    v.declared = { elemType: tensor.dataType, shape: tensor.dims };
    this.initializers.push(v);
    return v;
  }

  /** Create a node and insert it before `before` (or at the end). Returns the node. */
  addNode(spec: NodeSpecInit, before?: Node): Node {
    const node = new Node({
      input: [], output: [], attribute: [], metadataProps: [], deviceConfigurations: [],
      name: spec.name ?? this.uniqueName(`${spec.opType}`),
      opType: spec.opType,
      domain: spec.domain,
    });
    if (spec.name) this.usedNodeNames?.add(spec.name);
    for (const [k, v] of Object.entries(spec.attrs ?? {})) node.setAttr(k, v);
    spec.inputs.forEach((v, i) => node.setInput(i, v));
    spec.outputs.forEach((o, i) => node.setOutput(i, typeof o === 'string' ? this.newValue(o) : o));
    node.graph = this;
    const at = before ? this.nodes.indexOf(before) : -1;
    if (at >= 0) this.nodes.splice(at, 0, node);
    else this.nodes.push(node);
    return node;
  }

  /** Remove a node, disconnecting it. Its outputs keep existing (with no producer) until cleanup(). */
  removeNode(node: Node): void {
    const i = this.nodes.indexOf(node);
    if (i >= 0) this.nodes.splice(i, 1);
    node.detach();
    node.graph = null;
  }

  /** Make every consumer of `from` (and the graph outputs) use `to` instead. */
  replaceAllUses(from: Value, to: Value, except?: Node): void {
    for (const use of [...from.consumers]) if (use.node !== except) use.node.setInput(use.index, to);
    this.outputs = this.outputs.map((o) => (o === from ? to : o));
  }

  isGraphOutput(v: Value): boolean {
    return this.outputs.includes(v);
  }

  /** Constant: an initializer, a Constant node's output, or computed from constants only. */
  isConstant(v: Value | null, memo = this.constMemo()): boolean {
    if (!v) return true;
    const hit = memo.get(v);
    if (hit !== undefined) return hit;
    // iterative post-order walk over producers: deep graphs must not overflow the stack
    const stack: Value[] = [v];
    while (stack.length) {
      const cur = stack[stack.length - 1];
      if (memo.has(cur)) {
        stack.pop();
        continue;
      }
      const p = cur.producer;
      if (cur.tensor) memo.set(cur, true);
      else if (this.inputs.includes(cur) || !p) memo.set(cur, false);
      else if (p.opType === 'Constant') memo.set(cur, true);
      else if (p.inputs.length === 0) memo.set(cur, false);
      else {
        const pending = p.inputs.filter((i): i is Value => i !== null && !memo.has(i));
        if (pending.length === 0) {
          memo.set(cur, p.inputs.every((i) => !i || memo.get(i) === true));
          stack.pop();
          continue;
        }
        if (pending.some((i) => stack.includes(i))) {
          memo.set(cur, false); // a cycle: not constant (the validator reports the cycle)
          continue;
        }
        stack.push(...pending);
        continue;
      }
      stack.pop();
    }
    return memo.get(v)!;
  }
  private memo?: WeakMap<Value, boolean>;
  private memoVersion = -1;
  private version = 0;
  /** Call after structural edits so constant-ness is recomputed. */
  touch(): void {
    this.version++;
  }
  private constMemo(): WeakMap<Value, boolean> {
    if (!this.memo || this.memoVersion !== this.version) {
      this.memo = new WeakMap();
      this.memoVersion = this.version;
    }
    return this.memo as unknown as WeakMap<Value, boolean>;
  }

  /**
   * The constant tensor behind a value: an initializer, a Constant node's `value`, or either seen
   * through Identity nodes (PyTorch without constant folding puts weights behind Identity).
   */
  constantTensor(v: Value | null): Tensor | undefined {
    let cur = v;
    for (let hops = 0; cur && hops < 64; hops++) {
      if (cur.tensor) return cur.tensor;
      const p = cur.producer;
      if (!p) return undefined;
      if (p.opType === 'Constant') {
        const t = p.tensorAttr('value');
        if (t) return t;
        const vf = p.attr('value_float'), vfs = p.attr('value_floats'), vi = p.attr('value_int'), vis = p.attr('value_ints');
        if (vf?.f !== undefined) return Tensor.float32(cur.name, [], Float32Array.of(vf.f));
        if (vfs) return Tensor.float32(cur.name, [vfs.floats.length], Float32Array.from(vfs.floats));
        if (vi?.i !== undefined) return Tensor.int64(cur.name, [], [toNumber(vi.i)]);
        if (vis) return Tensor.int64(cur.name, [vis.ints.length], vis.ints.map((x) => toNumber(x)));
        return undefined;
      }
      if (p.opType === 'Identity') cur = p.inputs[0];
      else return undefined;
    }
    return undefined;
  }

  /** Stable topological sort (Kahn); throws E_GRAPH naming a node on a cycle. */
  toposort(): this {
    const index = new Map<Node, number>();
    this.nodes.forEach((n, i) => index.set(n, i));
    const indeg = new Map<Node, number>();
    for (const n of this.nodes) {
      let d = 0;
      for (const v of n.inputs) if (v?.producer && index.has(v.producer)) d++;
      indeg.set(n, d);
    }
    // min-heap by original index keeps the original order wherever it is already valid
    const heap: Node[] = [];
    const push = (n: Node) => {
      heap.push(n);
      let i = heap.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (index.get(heap[p])! <= index.get(heap[i])!) break;
        [heap[p], heap[i]] = [heap[i], heap[p]];
        i = p;
      }
    };
    const pop = (): Node => {
      const top = heap[0];
      const last = heap.pop()!;
      if (heap.length > 0) {
        heap[0] = last;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1, r = l + 1;
          let m = i;
          if (l < heap.length && index.get(heap[l])! < index.get(heap[m])!) m = l;
          if (r < heap.length && index.get(heap[r])! < index.get(heap[m])!) m = r;
          if (m === i) break;
          [heap[m], heap[i]] = [heap[i], heap[m]];
          i = m;
        }
      }
      return top;
    };
    for (const n of this.nodes) if (indeg.get(n) === 0) push(n);
    const out: Node[] = [];
    while (heap.length) {
      const n = pop();
      out.push(n);
      for (const o of n.outputs) {
        if (!o) continue;
        for (const u of o.consumers) {
          if (!index.has(u.node)) continue;
          const d = indeg.get(u.node)! - 1;
          indeg.set(u.node, d);
          if (d === 0) push(u.node);
        }
      }
    }
    if (out.length !== this.nodes.length) {
      const stuck = this.nodes.find((n) => indeg.get(n)! > 0)!;
      throw new GptError('E_GRAPH', `the graph has a cycle through node '${stuck.name}'`, {
        hint: 'a node consumes a value that depends on its own output',
      });
    }
    this.nodes = out;
    return this;
  }

  /** Remove nodes whose outputs reach no graph output, and initializers nothing uses. */
  cleanup(): this {
    const live = new Set<Node>();
    const stack: Value[] = [...this.outputs];
    const seen = new Set<Value>();
    while (stack.length) {
      const v = stack.pop()!;
      if (seen.has(v)) continue;
      seen.add(v);
      const p = v.producer;
      if (p && !live.has(p)) {
        live.add(p);
        for (const i of p.inputs) if (i) stack.push(i);
      }
    }
    for (const n of [...this.nodes]) if (!live.has(n)) this.removeNode(n);
    this.initializers = this.initializers.filter((v) => v.consumers.length > 0 || this.outputs.includes(v) || this.inputs.includes(v));
    const keep = new Set<Value>([...this.inputs, ...this.outputs, ...this.initializers]);
    for (const n of this.nodes) for (const v of [...n.inputs, ...n.outputs]) if (v) keep.add(v);
    for (const [name, v] of this.values) if (!keep.has(v)) this.values.delete(name);
    this.valueInfo = this.valueInfo.filter((v) => keep.has(v));
    this.touch();
    return this;
  }

  /** Nodes that consume a value, in graph order. */
  consumersOf(v: Value): Node[] {
    return v.consumers.map((u) => u.node);
  }

  /** Data (non-constant) inputs of a node. */
  dataInputs(n: Node): Value[] {
    return n.inputs.filter((v): v is Value => v !== null && !this.isConstant(v));
  }
}

/** A tensor type for a float32 tensor of a shape. */
export function floatType(shape: Dim[] | null): TensorType {
  return { elemType: DataType.FLOAT, shape };
}

export type { TensorProto };
