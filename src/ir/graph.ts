/**
 * The graph IR: Graph / Node / Value with producer and consumer links that the IR keeps in sync
 * itself (as onnx-graphsurgeon does): a pass calls node.setInput / graph.replaceAllUses /
 * graph.removeNode and never rewires both sides by hand. A rewrite reads: detach, insert,
 * cleanup(), toposort().
 *
 * Users of the IR see read-only views (`graph.nodes`, `node.inputs`, `value.consumers` ...); every
 * change goes through a mutator method, which keeps links, the name registry and the constant cache
 * consistent, so no caller has to patch an array or invalidate a cache by hand.
 */
import { GptError } from '../errors';
import type { AttributeProto, GraphProto, NodeProto, TensorProto, ValueInfoProto } from '../onnx/schema';
import { AttributeType, DataType } from '../onnx/schema';
import type { Int64 } from '../onnx/wire';
import { hasSubgraphs, innerNames, outerReads, renameOuterRead } from './subgraph';
import { Tensor, externalLocation, toNumber } from './tensor';

export type Dim = number | string | null; // number: known; string: a symbol ('batch'); null: unknown

export interface TensorType {
  elemType: number;
  shape: Dim[] | null; // null: rank unknown
}

export interface Use {
  readonly node: Node;
  readonly index: number;
}

/** The IR's own side of the links: reachable only from this module (not exported). */
const links = Symbol('ir.links');

export class Value {
  /** Links, written only by Node and Graph mutators. */
  readonly [links] = {
    consumers: [] as Use[],
    /** Nodes whose subgraphs read this value from the outer scope, one entry per node. */
    readers: [] as Node[],
    producer: null as Node | null,
    producerIndex: -1,
    tensor: undefined as Tensor | undefined,
  };
  /** Type from the model's value_info / input / output entries. */
  declared?: TensorType;
  /** Type from shape inference (never written back unless asked). */
  inferred?: TensorType;
  /** The ValueInfoProto as loaded, for graph inputs/outputs and value_info entries. */
  info?: ValueInfoProto;

  constructor(readonly name: string) {}

  /** The node input slots that read this value, in the order they were connected. */
  get consumers(): readonly Use[] {
    return this[links].consumers;
  }
  /** Nodes whose subgraphs (If branches, Loop / Scan bodies) read this value from the outer scope. */
  get subgraphReaders(): readonly Node[] {
    return this[links].readers;
  }
  /** Whether anything reads the value: a node input or a subgraph. (Graph outputs are not counted.) */
  get isRead(): boolean {
    return this[links].consumers.length > 0 || this[links].readers.length > 0;
  }
  get producer(): Node | null {
    return this[links].producer;
  }
  /** Which output slot of `producer` this value is (-1 without a producer). */
  get producerIndex(): number {
    return this[links].producerIndex;
  }
  /** Set for initializers (see Graph.addInitializer). */
  get tensor(): Tensor | undefined {
    return this[links].tensor;
  }
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

export type AttrValue = number | number[] | string | Tensor | { float: number } | { floats: number[] };

export class Node {
  readonly [links] = {
    inputs: [] as (Value | null)[],
    outputs: [] as (Value | null)[],
    /** Outer-scope values the node's subgraphs read (linked while the node is in a graph). */
    implicit: [] as Value[],
    graph: null as Graph | null,
  };
  /** The proto as loaded; input/output/name/opType/domain/attribute are taken from the node itself. */
  readonly proto: NodeProto;

  constructor(proto: NodeProto) {
    this.proto = proto;
  }

  get inputs(): readonly (Value | null)[] {
    return this[links].inputs;
  }
  get outputs(): readonly (Value | null)[] {
    return this[links].outputs;
  }
  /**
   * Values of the enclosing graph that this node's subgraphs read (onnx-graphsurgeon's foreign
   * tensors): the node depends on them as on its inputs, though they sit in no input slot.
   */
  get implicitInputs(): readonly Value[] {
    return this[links].implicit;
  }
  /** Whether the node carries subgraphs (If, Loop, Scan ...). */
  get hasSubgraphs(): boolean {
    return hasSubgraphs(this.proto);
  }
  /** The graph this node is in (null once removed). */
  get graph(): Graph | null {
    return this[links].graph;
  }
  get opType(): string {
    return this.proto.opType ?? '';
  }
  set opType(t: string) {
    this.proto.opType = t;
    this.graph?.touch();
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
    this.graph?.[links].nodeNames?.add(n);
  }
  get attributes(): readonly AttributeProto[] {
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

  /** Set (or replace) an attribute. */
  setAttr(name: string, value: AttrValue): void {
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
    this.graph?.touch();
  }

  /** Set a copy of an attribute as it is (e.g. copied from a template node), subgraphs included. */
  copyAttr(a: AttributeProto): void {
    const i = this.proto.attribute.findIndex((x) => x.name === a.name);
    if (i >= 0) this.proto.attribute[i] = { ...a };
    else this.proto.attribute.push({ ...a });
    this.graph?.relinkSubgraphReads(this);
    this.graph?.touch();
  }

  /** Connect input slot i to v (null: an omitted optional input). Keeps consumer lists in sync. */
  setInput(i: number, v: Value | null): void {
    const ins = this[links].inputs;
    const old = ins[i];
    if (old) {
      const cs = old[links].consumers;
      const k = cs.findIndex((u) => u.node === this && u.index === i);
      if (k >= 0) cs.splice(k, 1);
    }
    while (ins.length <= i) ins.push(null);
    ins[i] = v;
    if (v) v[links].consumers.push({ node: this, index: i });
    this.graph?.touch();
  }

  /** Connect output slot i to v (null: an omitted optional output). v must have no other producer. */
  setOutput(i: number, v: Value | null): void {
    const outs = this[links].outputs;
    const old = outs[i];
    if (v && v.producer && v.producer !== this) {
      throw new GptError('E_GRAPH', `value '${v.name}' is already produced by node '${v.producer.name}'`, {
        hint: 'create a new value for this output, or remove the other producer first',
      });
    }
    if (old && old.producer === this) {
      old[links].producer = null;
      old[links].producerIndex = -1;
    }
    while (outs.length <= i) outs.push(null);
    if (v) {
      v[links].producer = this;
      v[links].producerIndex = i;
    }
    outs[i] = v;
    this.graph?.touch();
  }

  /** Disconnect from all inputs, outputs and subgraph reads (the slots stay, empty). */
  detach(): this {
    for (let i = 0; i < this.inputs.length; i++) this.setInput(i, null);
    for (let i = 0; i < this.outputs.length; i++) this.setOutput(i, null);
    unlinkReads(this);
    return this;
  }

  toString(): string {
    return `${this.name} (${this.opType})`;
  }
}

function unlinkReads(n: Node): void {
  for (const v of n[links].implicit) {
    const rs = v[links].readers;
    const k = rs.indexOf(n);
    if (k >= 0) rs.splice(k, 1);
  }
  n[links].implicit = [];
}

export interface NodeSpecInit {
  opType: string;
  inputs: readonly (Value | null)[];
  /** Values, or names for new values. */
  outputs: readonly (Value | string)[];
  name?: string;
  domain?: string;
  attrs?: Record<string, AttrValue>;
}

export interface InitializerOptions {
  /**
   * Allow the initializer to carry the name of an existing graph input: it becomes that input's
   * default value (what IR < 4 models do, and what ONNX still allows). Without it such a name is refused.
   */
  asInputDefault?: boolean;
}

export class Graph {
  readonly [links] = {
    nodeNames: undefined as Set<string> | undefined,
  };
  private readonly _nodes: Node[] = [];
  private readonly _inputs: Value[] = [];
  private readonly _outputs: Value[] = [];
  private readonly _initializers: Value[] = [];
  private readonly _valueInfo: Value[] = [];
  private readonly _values = new Map<string, Value>();
  /** Folder that external data locations are relative to (the model file's folder). */
  baseDir?: string;
  /** Fields of GraphProto the IR does not model (name, doc_string, sparse initializers, unknown fields…). */
  rest: Partial<GraphProto> = {};
  private counters = new Map<string, number>();

  /** Nodes in graph order. */
  get nodes(): readonly Node[] {
    return this._nodes;
  }
  /** Graph inputs, in model order (IR < 4 models also list initializers here). */
  get inputs(): readonly Value[] {
    return this._inputs;
  }
  get outputs(): readonly Value[] {
    return this._outputs;
  }
  /** Initializers in model order. */
  get initializers(): readonly Value[] {
    return this._initializers;
  }
  /** Values with a value_info entry, in model order. */
  get valueInfo(): readonly Value[] {
    return this._valueInfo;
  }
  /** Every value of the graph by name. */
  get values(): ReadonlyMap<string, Value> {
    return this._values;
  }

  /** The value of that name, created if new. */
  value(name: string): Value {
    let v = this._values.get(name);
    if (!v) {
      v = new Value(name);
      this._values.set(name, v);
    }
    return v;
  }

  /** Names new names must avoid besides value names: node names, names defined inside subgraphs, reserved names. */
  private nodeNames(): Set<string> {
    const l = this[links];
    if (!l.nodeNames) {
      l.nodeNames = new Set(this._nodes.map((n) => n.proto.name ?? '').filter(Boolean));
      for (const n of this._nodes) if (n.hasSubgraphs) for (const name of innerNames(n.proto)) l.nodeNames.add(name);
    }
    return l.nodeNames;
  }

  /** Keep uniqueName() from handing out these names (e.g. node names of a model still being loaded). */
  reserveNames(names: Iterable<string>): void {
    const used = this.nodeNames();
    for (const n of names) if (n) used.add(n);
  }

  /** A name not used by any value or node yet: base, base_1, base_2 ... */
  uniqueName(base: string): string {
    const used = this.nodeNames();
    let n = this.counters.get(base) ?? 0;
    let name = n === 0 ? base : `${base}_${n}`;
    while (this._values.has(name) || used.has(name)) name = `${base}_${++n}`;
    this.counters.set(base, n + 1);
    used.add(name);
    return name;
  }

  /** A new value with a fresh unique name. */
  newValue(base: string, type?: TensorType): Value {
    const v = this.value(this.uniqueName(base));
    if (type) v.inferred = type;
    return v;
  }

  // ---- graph inputs, outputs, value_info ----------------------------------------------------

  /** Append a graph input (a value, or the name of a new or existing one). */
  addInput(v: Value | string, type?: TensorType): Value {
    const value = typeof v === 'string' ? this.value(v) : this.adopt(v);
    if (value.producer) {
      throw new GptError('E_GRAPH', `'${value.name}' cannot be a graph input: node '${value.producer.name}' produces it`, {
        hint: 'a graph input is fed by the caller; use a new value',
      });
    }
    if (type) value.declared = type;
    this._inputs.push(value);
    this.touch();
    return value;
  }

  /** Remove a graph input (its consumers keep reading the value, which then dangles until fed). */
  removeInput(v: Value): void {
    const i = this._inputs.indexOf(v);
    if (i < 0) throw new GptError('E_GRAPH', `'${v.name}' is not a graph input`);
    this._inputs.splice(i, 1);
    this.touch();
  }

  /** Append a graph output. */
  addOutput(v: Value): Value {
    this._outputs.push(this.adopt(v));
    return v;
  }

  /** Make graph output i be v instead. */
  setOutput(i: number, v: Value): void {
    if (i < 0 || i >= this._outputs.length) throw new GptError('E_GRAPH', `the graph has no output ${i} (it has ${this._outputs.length})`);
    this._outputs[i] = this.adopt(v);
  }

  /** Replace every graph output entry `from` by `to`; returns how many were replaced. */
  replaceOutput(from: Value, to: Value): number {
    let n = 0;
    this._outputs.forEach((o, i) => {
      if (o === from) {
        this._outputs[i] = this.adopt(to);
        n++;
      }
    });
    return n;
  }

  /** Remove every graph output entry of v. */
  removeOutput(v: Value): void {
    if (!this._outputs.includes(v)) throw new GptError('E_GRAPH', `'${v.name}' is not a graph output`);
    for (let i = this._outputs.length - 1; i >= 0; i--) if (this._outputs[i] === v) this._outputs.splice(i, 1);
  }

  /** Give v a value_info entry (written on save). */
  addValueInfo(v: Value): void {
    this._valueInfo.push(this.adopt(v));
  }

  /** Drop v's value_info entries (e.g. a rewrite changed its shape); false when it had none. */
  removeValueInfo(v: Value): boolean {
    const before = this._valueInfo.length;
    for (let i = before - 1; i >= 0; i--) if (this._valueInfo[i] === v) this._valueInfo.splice(i, 1);
    return this._valueInfo.length !== before;
  }

  isGraphOutput(v: Value): boolean {
    return this._outputs.includes(v);
  }

  isGraphInput(v: Value): boolean {
    return this._inputs.includes(v);
  }

  /** v must be this graph's value of its name. */
  private adopt(v: Value): Value {
    const mine = this._values.get(v.name);
    if (mine === v) return v;
    if (mine) throw new GptError('E_GRAPH', `another value named '${v.name}' already exists in this graph`, { hint: 'use graph.value(name) or graph.newValue(base)' });
    this._values.set(v.name, v);
    return v;
  }

  // ---- initializers -------------------------------------------------------------------------

  /**
   * Add a constant tensor. A name already taken by an initializer or a node's output is made
   * unique (the tensor is renamed); the name of a graph input is refused (E_GRAPH) unless
   * `asInputDefault` says the tensor is that input's default.
   */
  addInitializer(tensor: Tensor, opts: InitializerOptions = {}): Value {
    const existing = this._values.get(tensor.name);
    if (existing?.producer || existing?.tensor) tensor.name = this.uniqueName(tensor.name);
    else if (existing && this._inputs.includes(existing) && !opts.asInputDefault) {
      throw new GptError('E_GRAPH', `'${tensor.name}' is a graph input: an initializer of that name would silently replace what the caller feeds`, {
        subject: tensor.name,
        hint: 'give the initializer another name, or removeInput() first if the input should become a constant',
      });
    }
    const v = this.value(tensor.name);
    v[links].tensor = tensor;
    if (!v.declared || !this._inputs.includes(v)) v.declared = { elemType: tensor.dataType, shape: tensor.dims };
    this._initializers.push(v);
    this.touch();
    return v;
  }

  /** Remove an initializer; its value stays (dangling if something still reads it). */
  removeInitializer(v: Value): void {
    const i = this._initializers.indexOf(v);
    if (i < 0) throw new GptError('E_GRAPH', `'${v.name}' is not an initializer`);
    this._initializers.splice(i, 1);
    v[links].tensor = undefined;
    this.touch();
  }

  // ---- nodes ----------------------------------------------------------------------------------

  /** Create a node and insert it before `before` (or at the end). Returns the node. */
  addNode(spec: NodeSpecInit, before?: Node): Node {
    const node = new Node({
      input: [], output: [], attribute: [], metadataProps: [], deviceConfigurations: [],
      name: spec.name ?? this.uniqueName(`${spec.opType}`),
      opType: spec.opType,
      domain: spec.domain,
    });
    for (const [k, v] of Object.entries(spec.attrs ?? {})) node.setAttr(k, v);
    spec.inputs.forEach((v, i) => node.setInput(i, v === null ? null : this.adopt(v)));
    spec.outputs.forEach((o, i) => node.setOutput(i, typeof o === 'string' ? this.newValue(o) : this.adopt(o)));
    return this.insertNode(node, before);
  }

  /**
   * Insert a node that is in no graph (already wired, e.g. from a NodeProto) before `before` or at
   * the end. An unnamed node gets its name here, once (uniqueName(opType)): a name that stays when
   * the graph is rewired, and is written on save.
   */
  insertNode(node: Node, before?: Node): Node {
    if (node.graph) {
      throw new GptError('E_GRAPH', `node '${node.name}' is already in a graph`, { subject: node.name, hint: 'removeNode() it first' });
    }
    const at = before ? this._nodes.indexOf(before) : -1;
    if (before && at < 0) throw new GptError('E_GRAPH', `node '${before.name}' is not in this graph`, { subject: node.name });
    for (const v of [...node.inputs, ...node.outputs]) if (v) this.adopt(v);
    if (!node.proto.name) node.proto.name = this.uniqueName(node.opType || 'node');
    else this[links].nodeNames?.add(node.proto.name);
    node[links].graph = this;
    if (at >= 0) this._nodes.splice(at, 0, node);
    else this._nodes.push(node);
    this.relinkSubgraphReads(node);
    this.touch();
    return node;
  }

  /** Link a node's subgraph reads to this graph's values (after insertion or an attribute change). */
  relinkSubgraphReads(node: Node): void {
    unlinkReads(node);
    if (node.graph !== this || !node.hasSubgraphs) return;
    const used = this[links].nodeNames; // (built lazily: it then collects every node's inner names itself)
    if (used) for (const name of innerNames(node.proto)) used.add(name);
    for (const name of outerReads(node.proto)) {
      const v = this.value(name);
      node[links].implicit.push(v);
      v[links].readers.push(node);
    }
  }

  /** Remove a node, disconnecting it. Its outputs keep existing (with no producer) until cleanup(). */
  removeNode(node: Node): void {
    const i = this._nodes.indexOf(node);
    if (i >= 0) this._nodes.splice(i, 1);
    node.detach();
    node[links].graph = null;
    this.touch();
  }

  /** Put the nodes in this order (a permutation of `nodes`). */
  reorderNodes(order: readonly Node[]): void {
    const mine = new Set(this._nodes);
    if (order.length !== this._nodes.length || new Set(order).size !== order.length || order.some((n) => !mine.has(n))) {
      throw new GptError('E_GRAPH', 'a node order must list every node of the graph exactly once');
    }
    this._nodes.splice(0, this._nodes.length, ...order);
  }

  /** Make every consumer of `from` (subgraph reads and graph outputs included) use `to` instead. */
  replaceAllUses(from: Value, to: Value, except?: Node): void {
    for (const use of [...from.consumers]) if (use.node !== except) use.node.setInput(use.index, to);
    for (const reader of [...from.subgraphReaders]) {
      if (reader === except) continue;
      renameOuterRead(reader.proto, from.name, this.adopt(to).name);
      this.relinkSubgraphReads(reader);
    }
    this.replaceOutput(from, to);
    this.touch();
  }

  // ---- constants ------------------------------------------------------------------------------

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
      else if (this._inputs.includes(cur) || !p) memo.set(cur, false);
      else if (p.opType === 'Constant') memo.set(cur, true);
      else if (p.inputs.length === 0 || p.implicitInputs.length > 0) memo.set(cur, false);
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
  /**
   * Forget cached facts (constant-ness). Every mutator calls it; callers never need to, except
   * after editing a node's proto by hand.
   */
  touch(): void {
    this.memo = undefined;
  }
  private constMemo(): WeakMap<Value, boolean> {
    if (!this.memo) this.memo = new WeakMap();
    return this.memo;
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

  // ---- whole-graph walks ----------------------------------------------------------------------

  /** Stable topological sort (Kahn); throws E_GRAPH naming a node on a cycle. */
  toposort(): this {
    const index = new Map<Node, number>();
    this._nodes.forEach((n, i) => index.set(n, i));
    const indeg = new Map<Node, number>();
    for (const n of this._nodes) {
      let d = 0;
      for (const v of n.inputs) if (v?.producer && index.has(v.producer)) d++;
      for (const v of n.implicitInputs) if (v.producer && index.has(v.producer)) d++;
      indeg.set(n, d);
    }
    // min-heap by original index keeps the original order wherever it is already valid
    const heap = new MinHeap<Node>((a, b) => index.get(a)! - index.get(b)!);
    for (const n of this._nodes) if (indeg.get(n) === 0) heap.push(n);
    const out: Node[] = [];
    const release = (m: Node) => {
      if (!index.has(m)) return;
      const d = indeg.get(m)! - 1;
      indeg.set(m, d);
      if (d === 0) heap.push(m);
    };
    while (heap.size) {
      const n = heap.pop();
      out.push(n);
      for (const o of n.outputs) {
        if (!o) continue;
        for (const u of o.consumers) release(u.node);
        for (const r of o.subgraphReaders) release(r);
      }
    }
    if (out.length !== this._nodes.length) {
      const stuck = this._nodes.find((n) => indeg.get(n)! > 0)!;
      throw new GptError('E_GRAPH', `the graph has a cycle through node '${stuck.name}'`, {
        hint: 'a node consumes a value that depends on its own output',
      });
    }
    this.reorderNodes(out);
    return this;
  }

  /** Remove nodes whose outputs reach no graph output, and initializers nothing uses. */
  cleanup(): this {
    const live = new Set<Node>();
    const stack: Value[] = [...this._outputs];
    const seen = new Set<Value>();
    while (stack.length) {
      const v = stack.pop()!;
      if (seen.has(v)) continue;
      seen.add(v);
      const p = v.producer;
      if (p && !live.has(p)) {
        live.add(p);
        for (const i of p.inputs) if (i) stack.push(i);
        stack.push(...p.implicitInputs); // what its subgraphs read stays alive with it
      }
    }
    for (const n of [...this._nodes]) if (!live.has(n)) this.removeNode(n);
    for (const v of [...this._initializers]) {
      if (!v.isRead && !this._outputs.includes(v) && !this._inputs.includes(v)) this.removeInitializer(v);
    }
    const keep = new Set<Value>([...this._inputs, ...this._outputs, ...this._initializers]);
    for (const n of this._nodes) for (const v of [...n.inputs, ...n.outputs, ...n.implicitInputs]) if (v) keep.add(v);
    for (const [name, v] of this._values) if (!keep.has(v)) this._values.delete(name);
    for (let i = this._valueInfo.length - 1; i >= 0; i--) if (!keep.has(this._valueInfo[i])) this._valueInfo.splice(i, 1);
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

/** A binary min-heap (toposort's ready list). */
class MinHeap<T> {
  private readonly a: T[] = [];
  constructor(private readonly less: (x: T, y: T) => number) {}
  get size(): number {
    return this.a.length;
  }
  push(x: T): void {
    const a = this.a;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(a[p], a[i]) <= 0) break;
      [a[p], a[i]] = [a[i], a[p]];
      i = p;
    }
  }
  pop(): T {
    const a = this.a;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l], a[m]) < 0) m = l;
        if (r < a.length && this.less(a[r], a[m]) < 0) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }
}

/** A tensor type for a float32 tensor of a shape. */
export function floatType(shape: Dim[] | null): TensorType {
  return { elemType: DataType.FLOAT, shape };
}

export type { TensorProto };
