/**
 * The torch runner's BLAS report: which library torch's native convolution path (im2col + GEMM)
 * multiplies with, from the build's BLAS_INFO and the libraries the process maps, and the warning a
 * CPU timing on netlib's reference BLAS gets. The cases are the real layouts: Debian's
 * alternatives (blas/ for netlib, openblas-pthread/ and blis-openmp/ for the tuned ones), a pip wheel
 * (MKL linked statically, nothing mapped), a build against OpenBLAS, Fedora's FlexiBLAS.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { classifyTorchBlas, runnerEnv, torchBlasWarning } from '../../src/profile/torch';

const NETLIB = '/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0';
const DEBIAN_OPENBLAS = ['/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3', '/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so'];

test('classifyTorchBlas: a generic build is what its libblas.so.3 resolves to', () => {
  assert.is(classifyTorchBlas('generic', [NETLIB]).kind, 'reference');
  assert.is(classifyTorchBlas('generic', DEBIAN_OPENBLAS).kind, 'optimized');
  assert.is(classifyTorchBlas('generic', ['/usr/lib/x86_64-linux-gnu/blis-openmp/libblas.so.3', '/usr/lib/x86_64-linux-gnu/libblis.so.4']).kind, 'optimized');
  assert.is(classifyTorchBlas('generic', ['/usr/lib64/libflexiblas.so.3']).kind, 'optimized');
  // a reference libblas next to a tuned library that provides the symbols: the tuned one is named
  assert.is(classifyTorchBlas('generic', [NETLIB, '/opt/OpenBLAS/lib/libopenblas.so.0']).kind, 'optimized');
});

test('classifyTorchBlas: a build that names its BLAS is that BLAS; nothing to go on is unknown, not reference', () => {
  assert.is(classifyTorchBlas('mkl', []).kind, 'optimized');
  assert.is(classifyTorchBlas('open', ['/usr/lib/libopenblas.so.0']).kind, 'optimized');
  assert.is(classifyTorchBlas('blis', []).kind, 'optimized');
  assert.is(classifyTorchBlas('generic', []).kind, 'unknown');
  assert.is(classifyTorchBlas(null, []).kind, 'unknown');
  // a CBLAS wrapper alone says nothing about the GEMM behind it
  assert.is(classifyTorchBlas('generic', ['/usr/lib64/libcblas.so.3']).kind, 'unknown');
  const c = classifyTorchBlas('generic', [NETLIB]);
  assert.equal([c.blasInfo, c.libraries], ['generic', [NETLIB]]);
});

test('torchBlasWarning: only a CPU timing on the reference BLAS is warned, naming the library and the fix', () => {
  const w = torchBlasWarning(classifyTorchBlas('generic', [NETLIB]), 'cpu');
  assert.ok(w);
  assert.ok(w!.includes(NETLIB));
  assert.match(w!, /libopenblas0-pthread/);
  assert.is(torchBlasWarning(classifyTorchBlas('generic', [NETLIB]), 'cuda'), null);
  assert.is(torchBlasWarning(classifyTorchBlas('generic', DEBIAN_OPENBLAS), 'cpu'), null);
  assert.is(torchBlasWarning(classifyTorchBlas('generic', []), 'cpu'), null);
});

test('runnerEnv: --threads N reaches the BLAS thread pools the user left unset; without --threads nothing changes', () => {
  const base = { PATH: '/usr/bin', OPENBLAS_NUM_THREADS: '4' };
  const e = runnerEnv(1, base);
  assert.is(e.OPENBLAS_NUM_THREADS, '4');
  assert.is(e.BLIS_NUM_THREADS, '1');
  assert.is(e.MKL_NUM_THREADS, '1');
  assert.is(e.PATH, '/usr/bin');
  assert.equal(runnerEnv(undefined, base), base);
  assert.is(base.OPENBLAS_NUM_THREADS, '4'); // the caller's object is not changed
  assert.is((base as Record<string, string>).MKL_NUM_THREADS, undefined);
});

test.run();
