/**
 * Subgraphs (If branches, Loop and Scan bodies) as the IR sees them: the names a node's subgraphs
 * read from outer scopes (onnx-graphsurgeon's "foreign" tensors), the names they define, and renaming
 * an outer read. The subgraphs themselves stay the bytes they were loaded as (the codec carries them
 * through untouched); they are decoded only here, and re-encoded only when a read is renamed.
 */
import { GptError } from '../errors';
import { decodeGeneric, encodeGeneric } from '../onnx/codec';
import type { AttributeProto, GraphProto, NodeProto, TensorProto } from '../onnx/schema';
import { GraphSpec, MessageSpec, TensorSpec } from '../onnx/schema';

/** Enough of SparseTensorProto to read its name (field 1: values, a TensorProto). */
const SparseNameSpec: MessageSpec = { name: 'SparseTensorProto', fields: [{ no: 1, name: 'values', kind: 'message', message: () => TensorSpec }] };

export function hasSubgraphs(proto: NodeProto): boolean {
  return proto.attribute.some((a) => a.g !== undefined || a.graphs.length > 0);
}

function decodeGraph(bytes: Uint8Array): GraphProto {
  return decodeGeneric<GraphProto>(GraphSpec, bytes, 'subgraph');
}

/**
 * Deepest nesting of subgraphs gpt walks (real models nest If / Loop a few levels). Each level is
 * decoded from its parent's bytes, so a hostile file of a few hundred KB nesting thousands of levels
 * would overflow the stack and take quadratic time: refused at load instead.
 */
export const MAX_SUBGRAPH_DEPTH = 64;

function checkDepth(a: AttributeProto, depth: number): void {
  if (depth > MAX_SUBGRAPH_DEPTH && (a.g !== undefined || a.graphs.length > 0)) {
    throw new GptError('E_GRAPH', `subgraphs are nested more than ${MAX_SUBGRAPH_DEPTH} deep (attribute '${a.name ?? ''}')`, {
      hint: 'the file is damaged or hostile; no exporter nests If / Loop bodies that deep',
    });
  }
}

function subgraphsOfAttr(a: AttributeProto, depth = 1): GraphProto[] {
  checkDepth(a, depth);
  return [...(a.g ? [a.g] : []), ...a.graphs].map(decodeGraph);
}

/** Names a graph defines for itself: inputs, initializers (dense and sparse), node outputs. */
function localNames(g: GraphProto): Set<string> {
  const names = new Set<string>();
  for (const v of g.input) if (v.name) names.add(v.name);
  for (const t of g.initializer) if (t.name) names.add(t.name);
  for (const s of g.sparseInitializer) {
    const name = decodeGeneric<{ values?: TensorProto }>(SparseNameSpec, s, 'sparse initializer').values?.name;
    if (name) names.add(name);
  }
  for (const n of g.node) for (const o of n.output) if (o) names.add(o);
  return names;
}

/** Names read in g (its nodes, nested subgraphs and outputs) that g does not define. */
function graphReads(g: GraphProto, out: Set<string>, depth = 1): void {
  const local = localNames(g);
  const read = (name: string | undefined) => {
    if (name && !local.has(name)) out.add(name);
  };
  for (const n of g.node) {
    n.input.forEach(read);
    for (const a of n.attribute) {
      for (const sg of subgraphsOfAttr(a, depth + 1)) {
        const inner = new Set<string>();
        graphReads(sg, inner, depth + 1);
        inner.forEach(read);
      }
    }
  }
  for (const o of g.output) read(o.name);
}

/** Outer-scope names that a node's subgraphs read (recursively), in first-read order. */
export function outerReads(proto: NodeProto): string[] {
  const out = new Set<string>();
  for (const a of proto.attribute) for (const g of subgraphsOfAttr(a)) graphReads(g, out);
  return [...out];
}

/** Every name defined inside a node's subgraphs (values and node names, recursively). */
export function innerNames(proto: NodeProto): string[] {
  const out: string[] = [];
  const walk = (g: GraphProto, depth: number) => {
    out.push(...localNames(g));
    for (const n of g.node) {
      if (n.name) out.push(n.name);
      for (const a of n.attribute) for (const sg of subgraphsOfAttr(a, depth + 1)) walk(sg, depth + 1);
    }
  };
  for (const a of proto.attribute) for (const sg of subgraphsOfAttr(a)) walk(sg, 1);
  return out;
}

/** Rename reads of the outer name `from` in g; false when g does not read it. */
function renameInGraph(g: GraphProto, from: string, to: string, depth: number): boolean {
  if (localNames(g).has(from)) return false; // shadowed: inner scopes see g's own value
  let changed = false;
  for (const n of g.node) {
    n.input.forEach((name, i) => {
      if (name === from) {
        n.input[i] = to;
        changed = true;
      }
    });
    n.attribute.forEach((a, i) => {
      const renamed = renameInAttr(a, from, to, depth + 1);
      if (renamed) {
        n.attribute[i] = renamed;
        changed = true;
      }
    });
  }
  for (const o of g.output) {
    if (o.name === from) {
      o.name = to;
      changed = true;
    }
  }
  return changed;
}

/** The attribute with `from` renamed in its subgraphs, or null when they do not read it. */
function renameInAttr(a: AttributeProto, from: string, to: string, depth = 1): AttributeProto | null {
  if (a.g === undefined && a.graphs.length === 0) return null;
  checkDepth(a, depth);
  let changed = false;
  const redo = (bytes: Uint8Array): Uint8Array => {
    const g = decodeGraph(bytes);
    if (!renameInGraph(g, from, to, depth)) return bytes;
    changed = true;
    return encodeGeneric(GraphSpec, g);
  };
  const next: AttributeProto = { ...a, g: a.g ? redo(a.g) : undefined, graphs: a.graphs.map(redo) };
  return changed ? next : null;
}

/**
 * Make a node's subgraphs read outer name `to` where they read `from` (a name a subgraph defines
 * itself shadows the outer one and is left alone). Attributes are replaced, never edited in place:
 * a template node that shares them keeps its own.
 */
export function renameOuterRead(proto: NodeProto, from: string, to: string): boolean {
  let changed = false;
  proto.attribute.forEach((a, i) => {
    const renamed = renameInAttr(a, from, to);
    if (renamed) {
      proto.attribute[i] = renamed;
      changed = true;
    }
  });
  return changed;
}
