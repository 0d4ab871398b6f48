/**
 * The cost model: parameters, multiply-accumulates, activation memory (total and peak live) and
 * memory access cost, per node and in total. Definitions:
 * - params: elements of the constant tensors behind the parameter inputs the op registry names
 *   (weights and biases of Conv / ConvTranspose / Gemm / MatMul, scale and bias of the
 *   normalizations, PRelu's slope; BN's running mean / variance are statistics, not parameters).
 *   A weight may be computed from constants (Identity, Cast of fp16 weights, DequantizeLinear of
 *   int8 ones, Reshape...): the walk goes back through such producers to the initializers and
 *   Constant nodes, along every input but the registry's `metaInputs` (a quantization scale is not
 *   a parameter). Each tensor counts once, at its first user.
 * - MACs: the registry's formula per op (src/analysis/macs.ts): Conv = output elements x
 *   Cin/groups x kernel; ConvTranspose = input elements x Cout/groups x kernel; Gemm / MatMul =
 *   M x N x K (x batch). Everything else (bias adds, BN, pooling) is 0.
 * - activation bytes: bytes of every non-constant node output.
 * - peak activation: nodes run in graph order; a value lives from its producer until its last
 *   consumer has run; graph inputs live from the start, graph outputs are never freed.
 * - memory access: bytes read (all inputs, weights included) + bytes written, per node. Nodes that
 *   only compute constants (Identity of a weight, Constant) are folded before run time: 0.
 * Symbolic dims take their value from opts.dims, else 1 (listed in `assumedSymbols`). When
 * opts.dims names a symbol of a graph input, shapes are inferred again with it substituted, so
 * sizes computed from it at run time (Resize, Reshape targets) are known too; the model's own
 * (symbolic) inferred shapes are put back afterwards.
 */
import type { Dim, Graph, Node, TensorType, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { DataType, dataTypeBits } from '../onnx/schema';
import type { MacContext, MacRule } from '../ops/types';
import { nodeOp } from '../ops/registry';
import { inferShapes } from './shapes';
import { evalDim as evalSymbolic, symbolsOf } from './shapes/dims';

export interface CostOptions {
  /** Values of symbolic dims, e.g. { batch: 8 }. Symbols not given are taken as 1. */
  dims?: Record<string, number>;
}

export interface NodeCost {
  name: string;
  opType: string;
  params: number;
  macs: number;
  /** Bytes of the node's non-constant outputs. */
  outputBytes: number;
  /** Bytes read (inputs incl. weights) + bytes written (outputs). */
  memoryAccessBytes: number;
  /** Activation bytes live while the node runs (its inputs and outputs included). */
  liveBytes: number;
}

export interface CostTotals {
  params: number;
  macs: number;
  activationBytes: number;
  peakActivationBytes: number;
  /** The node during which the peak is reached; null when the graph inputs alone are the peak. */
  peakActivationNode: string | null;
  memoryAccessBytes: number;
}

export interface CostReport {
  nodes: NodeCost[];
  totals: CostTotals;
  /** Every symbol met, with the value used. */
  dims: Record<string, number>;
  /** Symbols that opts.dims did not give and were taken as 1. */
  assumedSymbols: string[];
  /** Values whose size is unknown (counted as 0 bytes), shape-inference warnings. */
  warnings: string[];
}

export function costModel(model: Model, opts: CostOptions = {}): CostReport {
  const g = model.graph;
  const given = opts.dims ?? {};
  // symbols of the graph inputs that opts.dims gives are substituted before inference
  const inputSymbols = new Set(g.inputs.flatMap((v) => (v.tensor ? [] : (v.declared?.shape ?? []).flatMap(symbolsOf))));
  const substituted = [...inputSymbols].filter((s) => Object.hasOwn(given, s));
  if (substituted.length === 0) {
    const warnings = g.nodes.some((n) => n.outputs.some((o) => o && !o.inferred)) ? inferShapes(model).warnings : [];
    return measure(model, given, {}, warnings);
  }
  // with substitution the shapes are numbers only for this computation: the model keeps its symbolic ones
  const saved = new Map<Value, TensorType | undefined>();
  for (const v of g.values.values()) saved.set(v, v.inferred);
  try {
    const warnings = inferShapes(model, { dims: given }).warnings;
    return measure(model, given, Object.fromEntries(substituted.map((s) => [s, given[s]])), warnings);
  } finally {
    saved.forEach((t, v) => (v.inferred = t));
  }
}

/** The figures from the shapes the values have now; `dims` starts with the symbols substituted before inference. */
function measure(model: Model, given: Readonly<Record<string, number>>, substituted: Record<string, number>, warnings: string[]): CostReport {
  const g = model.graph;
  // null-prototype and own-property reads: a dim named 'constructor' or '__proto__' is just a name
  const dims: Record<string, number> = Object.assign(Object.create(null), substituted);
  const assumed = new Set<string>();
  const unknownWarned = new Set<Value>();

  const lookup = (s: string): number => {
    const value = Object.hasOwn(given, s) ? given[s] : undefined;
    if (value === undefined) assumed.add(s);
    return (dims[s] = value ?? 1);
  };
  /** A dim as a number: 'batch*64' -> dims.batch x 64, floor((height+1)/2) likewise; null stays null. */
  const evalDim = (d: Dim): number | null => evalSymbolic(d, lookup);
  const elements = (v: Value): number | null => {
    const s = v.type?.shape;
    if (!s) return null;
    let n = 1;
    for (const d of s) {
      const x = evalDim(d);
      if (x === null) return null;
      n *= x;
    }
    return n;
  };
  const bytes = (v: Value): number => {
    const n = elements(v);
    if (n === null) {
      if (!unknownWarned.has(v)) warnings.push(`the shape of '${v.name}' is unknown; it counts as 0 bytes`);
      unknownWarned.add(v);
      return 0;
    }
    return Math.ceil((n * dataTypeBits(v.type?.elemType ?? 0)) / 8);
  };
  const isConst = (v: Value) => g.isConstant(v);
  const counted = new Set<Value>();
  const macCtx = { elements, dim: evalDim };

  const nodes: NodeCost[] = g.nodes.map((n) => {
    const op = nodeOp(n);
    let params = 0;
    for (const i of op?.params ?? []) {
      const v = n.inputs[i];
      if (v && isConst(v)) params += parameterElements(g, v, counted);
    }
    const outs = n.outputs.filter((o): o is Value => o !== null);
    const folded = outs.every(isConst);
    const outputBytes = outs.filter((o) => !isConst(o)).reduce((s, o) => s + bytes(o), 0);
    const reads = [...new Set(n.inputs.filter((v): v is Value => v !== null))].reduce((s, v) => s + bytes(v), 0);
    const writes = outs.reduce((s, o) => s + bytes(o), 0);
    return {
      name: n.name,
      opType: n.opType,
      params,
      macs: macsOf(n, op?.macs, macCtx),
      outputBytes,
      memoryAccessBytes: folded ? 0 : reads + writes,
      liveBytes: 0,
    };
  });

  // peak live activation memory
  const lastUse = new Map<Value, number>();
  g.nodes.forEach((n, i) => n.inputs.forEach((v) => v && lastUse.set(v, i)));
  const outputs = new Set(g.outputs);
  let live = g.inputs.filter((v) => !isConst(v)).reduce((s, v) => s + bytes(v), 0);
  let peak = live;
  let peakNode: string | null = null;
  g.nodes.forEach((n, i) => {
    const made = n.outputs.filter((o): o is Value => o !== null && !isConst(o));
    live += made.reduce((s, o) => s + bytes(o), 0);
    // inputs and outputs coexist while the node runs, so the peak is taken before freeing
    nodes[i].liveBytes = live;
    if (live > peak) {
      peak = live;
      peakNode = n.name;
    }
    for (const v of new Set(n.inputs)) if (v && !isConst(v) && lastUse.get(v) === i && !outputs.has(v)) live -= bytes(v);
    for (const o of made) if (!lastUse.has(o) && !outputs.has(o)) live -= bytes(o);
  });

  const sum = (k: 'params' | 'macs' | 'outputBytes' | 'memoryAccessBytes') => nodes.reduce((s, n) => s + n[k], 0);
  return {
    nodes,
    totals: {
      params: sum('params'),
      macs: sum('macs'),
      activationBytes: sum('outputBytes'),
      peakActivationBytes: peak,
      peakActivationNode: peakNode,
      memoryAccessBytes: sum('memoryAccessBytes'),
    },
    dims: { ...dims }, // a plain object again (spread copies a "__proto__" key as an own property)
    assumedSymbols: [...assumed].sort(),
    warnings,
  };
}

function macsOf(n: Node, rule: MacRule | undefined, m: MacContext): number {
  if (!rule) return 0;
  const x = rule(n, m);
  return x !== null && Number.isFinite(x) ? x : 0;
}

/**
 * Elements of the constant tensors a parameter is computed from, not counted before: back from
 * `v` through constant-only producers (Identity, Cast, DequantizeLinear, Reshape...) along their
 * non-meta inputs, to initializers and Constant nodes. Each tensor is counted once (`counted`).
 */
function parameterElements(g: Graph, v: Value, counted: Set<Value>): number {
  if (v.tensor) {
    // the common case: the weight is an initializer
    if (counted.has(v) || !isNumeric(v.tensor.dataType)) return 0;
    counted.add(v);
    return v.tensor.size;
  }
  let total = 0;
  const stack = [v];
  const seen = new Set<Value>();
  while (stack.length) {
    const cur = stack.pop()!;
    if (seen.has(cur)) continue;
    seen.add(cur);
    const p = cur.producer;
    if (cur.tensor || p?.opType === 'Constant') {
      const t = g.constantTensor(cur);
      if (t && !counted.has(cur) && isNumeric(t.dataType)) {
        counted.add(cur);
        total += t.size;
      }
      continue;
    }
    if (!p) continue;
    const meta = nodeOp(p)?.metaInputs ?? [];
    p.inputs.forEach((u, i) => {
      if (u && !meta.includes(i)) stack.push(u);
    });
  }
  return total;
}

/** Float and integer tensors (a quantized weight is int8); not bool or string. */
function isNumeric(dataType: number): boolean {
  return dataType !== DataType.BOOL && dataType !== DataType.STRING && dataType !== DataType.UNDEFINED;
}
