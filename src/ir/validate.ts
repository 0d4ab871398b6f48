/**
 * Structural validator: acyclic, every input (subgraph reads included) produced by a node or an
 * initializer / graph input, graph inputs a caller can feed, unique value and node names. Returns the
 * problems; `assertValid` throws the first as E_GRAPH.
 */
import { GptError } from '../errors';
import type { Graph, Node, Value } from './graph';

export interface Problem {
  kind: 'cycle' | 'dangling-input' | 'duplicate-name' | 'missing-output' | 'bad-input' | 'missing-op';
  message: string;
  node?: string;
}

export function validateGraph(g: Graph): Problem[] {
  const problems: Problem[] = [];
  const graphInputs = new Set(g.inputs);
  const fed = (v: Value) => v.producer !== null || v.tensor !== undefined || graphInputs.has(v);
  const nodeNames = new Map<string, number>();
  let index = 0;
  for (const n of g.nodes) {
    if (!n.opType) problems.push({ kind: 'missing-op', node: n.name, message: `node ${index}${n.name ? ` '${n.name}'` : ''} has no op_type` });
    index++;
    if (n.proto.name) nodeNames.set(n.proto.name, (nodeNames.get(n.proto.name) ?? 0) + 1);
    n.inputs.forEach((v, i) => {
      if (v && !fed(v)) {
        problems.push({ kind: 'dangling-input', node: n.name, message: `input ${i} '${v.name}' of node '${n.name}' is produced by no node, initializer or graph input` });
      }
    });
    for (const v of n.implicitInputs) {
      if (!fed(v)) {
        problems.push({ kind: 'dangling-input', node: n.name, message: `a subgraph of node '${n.name}' reads '${v.name}', which no node, initializer or graph input produces` });
      }
    }
  }
  for (const [name, count] of nodeNames) if (count > 1) problems.push({ kind: 'duplicate-name', node: name, message: `node name '${name}' is used ${count} times` });
  problems.push(...inputProblems(g));
  const inits = new Set<string>();
  for (const v of g.initializers) {
    if (inits.has(v.name)) problems.push({ kind: 'duplicate-name', message: `initializer '${v.name}' is defined twice` });
    inits.add(v.name);
    if (v.producer) problems.push({ kind: 'duplicate-name', node: v.producer.name, message: `'${v.name}' is both an initializer and the output of node '${v.producer.name}'` });
  }
  for (const v of g.outputs) {
    if (!fed(v)) problems.push({ kind: 'missing-output', message: `graph output '${v.name}' is produced by nothing` });
  }
  const cycle = findCycle(g);
  if (cycle) problems.push({ kind: 'cycle', node: cycle.name, message: `the graph has a cycle through node '${cycle.name}'` });
  return problems;
}

/**
 * Graph inputs a caller cannot feed: unnamed, listed twice, or also a node's output. An input that
 * is also an initializer is the input's default (allowed in every IR version) when the two agree on
 * element type and shape.
 */
function inputProblems(g: Graph): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<Value>();
  for (const v of g.inputs) {
    if (!v.name) problems.push({ kind: 'bad-input', message: 'a graph input has no name, so nothing can feed it' });
    if (seen.has(v)) problems.push({ kind: 'duplicate-name', message: `graph input '${v.name}' is listed twice` });
    seen.add(v);
    if (v.producer) {
      problems.push({ kind: 'bad-input', node: v.producer.name, message: `graph input '${v.name}' is also the output of node '${v.producer.name}': the caller's value and the node's would both feed it` });
    }
    const t = v.tensor;
    const d = v.declared;
    if (t && d) {
      const shapeAgrees = !d.shape || (d.shape.length === t.dims.length && d.shape.every((x, i) => typeof x !== 'number' || x === t.dims[i]));
      if ((d.elemType && d.elemType !== t.dataType) || !shapeAgrees) {
        problems.push({ kind: 'bad-input', message: `graph input '${v.name}' is declared ${d.elemType}[${(d.shape ?? []).join(',')}] but its initializer (default) is ${t.dataType}[${t.dims.join(',')}]` });
      }
    }
  }
  return problems;
}

/** A node on a cycle (through inputs or subgraph reads), without reordering the graph; null when acyclic. */
function findCycle(g: Graph): Node | null {
  const state = new Map<Node, number>(); // 1 visiting, 2 done
  const deps = (n: Node): (Value | null)[] => [...n.inputs, ...n.implicitInputs];
  for (const start of g.nodes) {
    if (state.get(start) === 2) continue;
    const stack: { node: Node; deps: (Value | null)[]; i: number }[] = [{ node: start, deps: deps(start), i: 0 }];
    state.set(start, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      if (top.i < top.deps.length) {
        const p = top.deps[top.i++]?.producer;
        if (!p) continue;
        const s = state.get(p);
        if (s === 1) return p;
        if (s !== 2) {
          state.set(p, 1);
          stack.push({ node: p, deps: deps(p), i: 0 });
        }
      } else {
        state.set(top.node, 2);
        stack.pop();
      }
    }
  }
  return null;
}

export function assertValid(g: Graph, subject?: string): void {
  const p = validateGraph(g);
  if (p.length) {
    throw new GptError('E_GRAPH', p[0].message + (p.length > 1 ? ` (and ${p.length - 1} more problem${p.length > 2 ? 's' : ''})` : ''), {
      subject,
      hint: p[0].kind === 'dangling-input' ? 'add the missing initializer or graph input, or remove the node'
        : p[0].kind === 'bad-input' ? 'feed the value through a new graph input, or drop the input entry' : undefined,
    });
  }
}
