/**
 * The cost model: parameters, multiply-accumulates, activation memory (total and peak live) and
 * memory access cost, per node and in total. Definitions:
 * - params: elements of float constant tensors (also behind Identity) feeding the weights and biases
 *   of Conv / ConvTranspose / Gemm / MatMul and the scale and bias of BatchNormalization. Running
 *   mean / variance are statistics, not parameters. A shared tensor counts once, at its first user.
 * - MACs: Conv = output elements x Cin/groups x kernel; ConvTranspose = input elements x Cout/groups x
 *   kernel; Gemm / MatMul = M x N x K (x batch). Everything else (bias adds, BN, pooling) is 0.
 * - activation bytes: bytes of every non-constant node output.
 * - peak activation: nodes run in graph order; a value lives from its producer until its last
 *   consumer has run; graph inputs live from the start, graph outputs are never freed.
 * - memory access: bytes read (all inputs, weights included) + bytes written, per node. Nodes that
 *   only compute constants (Identity of a weight, Constant) are folded before run time: 0.
 * Symbolic dims take their value from opts.dims, else 1 (listed in `assumedSymbols`).
 */
import type { Dim, Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { dataTypeBits } from '../onnx/schema';
import { inferShapes } from './shapes';

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

/** Ops whose weight / bias inputs are parameters, by input index. */
const PARAM_INPUTS: Record<string, number[]> = {
  Conv: [1, 2],
  ConvTranspose: [1, 2],
  Gemm: [0, 1, 2],
  MatMul: [0, 1],
  BatchNormalization: [1, 2], // scale, bias; 3 and 4 are the running statistics
};

export function costModel(model: Model, opts: CostOptions = {}): CostReport {
  const g = model.graph;
  const warnings: string[] = [];
  if (g.nodes.some((n) => n.outputs.some((o) => o && !o.inferred))) warnings.push(...inferShapes(model).warnings);

  const given = opts.dims ?? {};
  const dims: Record<string, number> = {};
  const assumed = new Set<string>();
  const unknownWarned = new Set<Value>();

  /** A dim as a number: 'batch*64' -> dims.batch x 64; null stays null. */
  const evalDim = (d: Dim): number | null => {
    if (d === null) return null;
    if (typeof d === 'number') return d;
    let n = 1;
    for (const part of d.split('*')) {
      if (/^\d+$/.test(part)) n *= Number(part);
      else {
        if (given[part] === undefined) assumed.add(part);
        n *= dims[part] = given[part] ?? 1;
      }
    }
    return n;
  };
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
  /** The tensor a weight really is: follow Identity back to the initializer or Constant. */
  const root = (v: Value): Value => {
    let cur = v;
    while (cur.producer?.opType === 'Identity' && cur.producer.inputs[0]) cur = cur.producer.inputs[0];
    return cur;
  };

  const counted = new Set<Value>();
  const nodes: NodeCost[] = g.nodes.map((n) => {
    let params = 0;
    for (const i of PARAM_INPUTS[n.opType] ?? []) {
      const v = n.inputs[i];
      const t = v ? g.constantTensor(v) : undefined;
      if (!v || !t || !t.isFloat || counted.has(root(v))) continue;
      counted.add(root(v));
      params += t.size;
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
      macs: macsOf(n, elements, evalDim),
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
    dims,
    assumedSymbols: [...assumed].sort(),
    warnings,
  };
}

function macsOf(n: Node, elements: (v: Value) => number | null, evalDim: (d: Dim) => number | null): number {
  const x = n.inputs[0], w = n.inputs[1], y = n.outputs[0];
  if (!x || !w || !y) return 0;
  const ws = w.type?.shape;
  const prod = (ds: Dim[] | undefined | null) => (ds ? ds.reduce<number | null>((p, d) => (p === null ? null : (evalDim(d) ?? NaN) * p), 1) : null);
  let m: number | null = null;
  switch (n.opType) {
    case 'Conv': // output elements x Cin/groups x kh x kw
      m = mul(elements(y), prod(ws?.slice(1)));
      break;
    case 'ConvTranspose': // input elements x Cout/groups x kh x kw
      m = mul(elements(x), prod(ws?.slice(1)));
      break;
    case 'Gemm': { // M x N x K = output elements x K
      const a = x.type?.shape;
      const k = a?.length === 2 ? evalDim(n.int('transA', 0) === 1 ? a[0] : a[1]) : null;
      m = mul(elements(y), k);
      break;
    }
    case 'MatMul': { // batch x M x N x K = output elements x K
      const a = x.type?.shape;
      m = mul(elements(y), a && a.length > 0 ? evalDim(a[a.length - 1]) : null);
      break;
    }
    default:
      return 0;
  }
  return m !== null && Number.isFinite(m) ? m : 0;
}

function mul(a: number | null, b: number | null): number | null {
  return a === null || b === null ? null : a * b;
}
