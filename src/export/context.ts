/** What an op's emitter may ask of the exporter while it writes one node's Python. */
import type { Node, Value } from '../ir/graph';
import type { Tensor } from '../ir/tensor';

export interface ModuleState {
  /** State-dict suffix ('weight', 'bias', 'running_mean'...). */
  key: string;
  dataType: number;
  dims: number[];
  bytes: Uint8Array;
}

export interface EmitContext {
  readonly opset: number;
  /** The Python expression for a value (a local, or self.<buffer> for a constant). */
  v(value: Value | null | undefined): string;
  /** The tensor behind a constant value (initializer, Constant, through Identity chains), or null. */
  constTensor(value: Value | null | undefined): Tensor | null;
  /** Its numbers, when constant. */
  constNumbers(value: Value | null | undefined): number[] | null;
  /** Register a submodule; returns 'self.<name>'. */
  addModule(base: string, ctor: string, state: ModuleState[]): string;
  /** Register a learned tensor (nn.Parameter) from a constant value; returns 'self.<name>'. */
  addParameter(value: Value): string;
  /** Use a helper from runtime-py.ts (emitted once). */
  helper(name: string): string;
  /** Element type of a value, when known. */
  elemType(value: Value | null | undefined): number | undefined;
  /** Rank of a value, when known. */
  rank(value: Value | null | undefined): number | undefined;
  shape(value: Value | null | undefined): (number | string | null)[] | null;
  /** Whether the conv `n` gets its BatchNorm back (--bn unfold). */
  unfoldBn(n: Node): boolean;
  /** The device of the first graph input, for tensors made inside forward. */
  readonly device: string;
}

/**
 * One node's Python: an expression for output 0, or for several outputs an expression that yields a
 * tuple (`outputs: n`). `null` output entries of the node are skipped by the driver.
 */
export interface Emitted {
  expr: string;
  /** The expression returns a tuple of this many values. */
  tuple?: number;
}
export type Emitter = (n: Node, c: EmitContext) => Emitted | string;
