/** Shape rules of matrix products: Gemm and MatMul (numpy batching, 1-D operands). */
import { formatShape, known } from './dims';
import { broadcastAll, Out, ShapeContext } from './context';

export function gemm(c: ShapeContext): Out[] {
  const a = c.shape(0), b = c.shape(1);
  if (a.length !== 2 || b.length !== 2) c.fail(`A ${formatShape(a)} and B ${formatShape(b)} must both be matrices`);
  const transA = c.node.int('transA', 0) === 1, transB = c.node.int('transB', 0) === 1;
  const [m, k] = transA ? [a[1], a[0]] : a;
  const [k2, n] = transB ? [b[1], b[0]] : b;
  if (known(k) && known(k2) && k !== k2) {
    c.fail(`A ${formatShape(a)}${transA ? ' (transposed)' : ''} has ${k} columns but B ${formatShape(b)}${transB ? ' (transposed)' : ''} has ${k2} rows`);
  }
  if (c.has(2)) broadcastAll(c, [[m, n], c.shape(2)]);
  return [{ shape: [m, n] }];
}

export function matmul(c: ShapeContext): Out[] {
  const a = c.shape(0), b = c.shape(1);
  if (a.length === 0 || b.length === 0) c.fail('inputs must not be scalars');
  const a2 = a.length === 1 ? [1, a[0]] : a;
  const b2 = b.length === 1 ? [b[0], 1] : b;
  const k = a2[a2.length - 1], k2 = b2[b2.length - 2];
  if (known(k) && known(k2) && k !== k2) c.fail(`${formatShape(a)} x ${formatShape(b)}: inner sizes ${k} and ${k2} differ`);
  const batch = broadcastAll(c, [a2.slice(0, -2), b2.slice(0, -2)]);
  const out = [...batch];
  if (a.length > 1) out.push(a2[a2.length - 2]);
  if (b.length > 1) out.push(b2[b2.length - 1]);
  return [{ shape: out }];
}
