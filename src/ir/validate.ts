/**
 * Structural validator: acyclic, every input produced by a node or an initializer / graph input,
 * unique value and node names. Returns the problems; `assertValid` throws the first as E_GRAPH.
 */
import { GptError } from '../errors';
import type { Graph } from './graph';

export interface Problem {
  kind: 'cycle' | 'dangling-input' | 'duplicate-name' | 'missing-output';
  message: string;
  node?: string;
}

export function validateGraph(g: Graph): Problem[] {
  const problems: Problem[] = [];
  const graphInputs = new Set(g.inputs);
  const nodeNames = new Map<string, number>();
  for (const n of g.nodes) {
    if (n.proto.name) nodeNames.set(n.proto.name, (nodeNames.get(n.proto.name) ?? 0) + 1);
    n.inputs.forEach((v, i) => {
      if (!v) return;
      if (!v.producer && !v.tensor && !graphInputs.has(v)) {
        problems.push({ kind: 'dangling-input', node: n.name, message: `input ${i} '${v.name}' of node '${n.name}' is produced by no node, initializer or graph input` });
      }
    });
  }
  for (const [name, count] of nodeNames) if (count > 1) problems.push({ kind: 'duplicate-name', node: name, message: `node name '${name}' is used ${count} times` });
  const inits = new Set<string>();
  for (const v of g.initializers) {
    if (inits.has(v.name)) problems.push({ kind: 'duplicate-name', message: `initializer '${v.name}' is defined twice` });
    inits.add(v.name);
    if (v.producer) problems.push({ kind: 'duplicate-name', node: v.producer.name, message: `'${v.name}' is both an initializer and the output of node '${v.producer.name}'` });
  }
  for (const v of g.outputs) {
    if (!v.producer && !v.tensor && !graphInputs.has(v)) problems.push({ kind: 'missing-output', message: `graph output '${v.name}' is produced by nothing` });
  }
  // cycle check without reordering the graph
  const state = new Map<object, number>(); // 1 visiting, 2 done
  for (const start of g.nodes) {
    if (state.get(start) === 2) continue;
    const stack: { node: typeof start; i: number }[] = [{ node: start, i: 0 }];
    state.set(start, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const inputs = top.node.inputs;
      if (top.i < inputs.length) {
        const p = inputs[top.i++]?.producer;
        if (!p) continue;
        const s = state.get(p);
        if (s === 1) {
          problems.push({ kind: 'cycle', node: p.name, message: `the graph has a cycle through node '${p.name}'` });
          return problems;
        }
        if (s !== 2) {
          state.set(p, 1);
          stack.push({ node: p, i: 0 });
        }
      } else {
        state.set(top.node, 2);
        stack.pop();
      }
    }
  }
  return problems;
}

export function assertValid(g: Graph, subject?: string): void {
  const p = validateGraph(g);
  if (p.length) {
    throw new GptError('E_GRAPH', p[0].message + (p.length > 1 ? ` (and ${p.length - 1} more problem${p.length > 2 ? 's' : ''})` : ''), {
      subject,
      hint: p[0].kind === 'dangling-input' ? 'add the missing initializer or graph input, or remove the node' : undefined,
    });
  }
}
