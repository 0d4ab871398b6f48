/**
 * What a shape rule sees: the node, the opset, the shapes and small known values of its inputs.
 * Rules live in the files beside this one, by op family; the op registry (src/ops) says which
 * rule an op uses.
 */
import { GptError } from '../../errors';
import type { Dim, Graph, Node, Value } from '../../ir/graph';
import { DataType } from '../../onnx/schema';
import { broadcastDim, formatShape, known } from './dims';

/** Longest small tensor whose elements are tracked. */
export const MAX_TRACKED = 64;
/** Ends at or past this are "to the end" (PyTorch writes INT64_MAX). */
export const HUGE = 2 ** 31 - 1;

/** What a rule says about one output. */
export interface Out {
  shape: Dim[] | null;
  /** Defaults to the element type of input 0. */
  elemType?: number;
  /** Known elements of a small 0-D / 1-D tensor. */
  values?: Dim[];
}

/** A shape rule: the outputs of one node, in order. Throw through `c.fail` for shapes that cannot fit. */
export type ShapeRule = (c: ShapeContext) => Out[];

/** Thrown by ShapeContext.shape when an input's shape is not known: the outputs become unknown too. */
export const UNKNOWN = Symbol('unknown shape');

export const NUMERIC = new Set<number>([
  DataType.FLOAT, DataType.DOUBLE, DataType.INT64, DataType.INT32, DataType.INT16, DataType.INT8,
  DataType.UINT64, DataType.UINT32, DataType.UINT16, DataType.UINT8, DataType.BOOL,
]);

export class ShapeContext {
  constructor(
    readonly node: Node,
    readonly opset: number,
    readonly graph: Graph,
    private readonly tracked: Map<Value, Dim[]>,
  ) {}

  has(i: number): boolean {
    return this.node.inputs[i] !== null && this.node.inputs[i] !== undefined;
  }
  /** The input's shape, or abandon the node (outputs unknown) when it has none. */
  shape(i: number): Dim[] {
    const s = this.node.inputs[i]?.type?.shape;
    if (!s) throw UNKNOWN;
    return s;
  }
  elemType(i: number): number {
    return this.node.inputs[i]?.type?.elemType ?? DataType.UNDEFINED;
  }
  /** Known elements of a small input tensor (propagated, or a constant). */
  values(i: number): Dim[] | undefined {
    const v = this.node.inputs[i];
    if (!v) return undefined;
    const hit = this.tracked.get(v);
    if (hit) return hit;
    const t = this.graph.constantTensor(v);
    if (!t || t.size > MAX_TRACKED || !NUMERIC.has(t.dataType)) return undefined;
    return t.numbers();
  }
  /** Known elements that are all numbers. */
  numbers(i: number): number[] | undefined {
    const v = this.values(i);
    return v && v.every(known) ? (v as number[]) : undefined;
  }
  axis(a: number, rank: number): number {
    const r = a < 0 ? a + rank : a;
    if (r < 0 || r >= rank) this.fail(`axis ${a} is out of range for rank ${rank}`);
    return r;
  }
  fail(msg: string): never {
    throw new GptError('E_SHAPE', `${this.node.opType}: ${msg}`, { subject: this.node.name });
  }
}

/** numpy broadcasting of several shapes; E_SHAPE when two known sizes clash. */
export function broadcastAll(c: ShapeContext, shapes: Dim[][]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let r: Dim = 1;
    for (const s of shapes) {
      const j = s.length - rank + i;
      const d = j >= 0 ? s[j] : 1;
      const b = broadcastDim(r, d);
      if (b === 'clash') c.fail(`shapes ${shapes.map(formatShape).join(' and ')} do not broadcast (${r} vs ${d} on axis ${i})`);
      r = b;
    }
    out.push(r);
  }
  return out;
}
