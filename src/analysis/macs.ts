/**
 * Multiply-accumulate formulas, per op family (the op registry says which op uses which):
 * Conv = output elements x Cin/groups x kernel; ConvTranspose = input elements x Cout/groups x
 * kernel; Gemm / MatMul = output elements x K (M x N x K, times the batch).
 */
import type { Dim } from '../ir/graph';
import type { MacRule } from '../ops/types';

function product(ds: Dim[] | null | undefined, dim: (d: Dim) => number | null): number | null {
  if (!ds) return null;
  let p = 1;
  for (const d of ds) {
    const x = dim(d);
    if (x === null) return null;
    p *= x;
  }
  return p;
}

function mul(a: number | null, b: number | null): number | null {
  return a === null || b === null ? null : a * b;
}

/** output elements x Cin/groups x kh x kw (weight dims 1..) */
export const convMacs: MacRule = (n, m) => {
  const w = n.inputs[1], y = n.outputs[0];
  return w && y ? mul(m.elements(y), product(w.type?.shape?.slice(1), m.dim)) : null;
};

/** input elements x Cout/groups x kh x kw (weight dims 1..) */
export const convTransposeMacs: MacRule = (n, m) => {
  const x = n.inputs[0], w = n.inputs[1];
  return x && w ? mul(m.elements(x), product(w.type?.shape?.slice(1), m.dim)) : null;
};

/** M x N x K = output elements x K */
export const gemmMacs: MacRule = (n, m) => {
  const a = n.inputs[0]?.type?.shape, y = n.outputs[0];
  if (!a || a.length !== 2 || !y) return null;
  return mul(m.elements(y), m.dim(n.int('transA', 0) === 1 ? a[0] : a[1]));
};

/** batch x M x N x K = output elements x K */
export const matmulMacs: MacRule = (n, m) => {
  const a = n.inputs[0]?.type?.shape, y = n.outputs[0];
  if (!a || a.length === 0 || !y) return null;
  return mul(m.elements(y), m.dim(a[a.length - 1]));
};
