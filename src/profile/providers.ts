/**
 * Execution providers: what the installed onnxruntime-node binding can actually run, decided
 * without creating a session (a session for a missing EP makes ORT's native logger print to stderr
 * before it throws).
 *
 * onnxruntime-node's prebuilt Linux x64 binding is compiled with the CUDA and TensorRT hooks
 * (`listSupportedBackends()` reports them with `bundled: false`), but only the CPU provider ships in
 * the package: CUDA's provider libraries come from its install script
 * (`ONNXRUNTIME_NODE_INSTALL=cuda12`), and the TensorRT provider needs TensorRT itself (libnvinfer),
 * which no npm package brings. So a provider is available when the binding knows it AND its shared
 * libraries sit beside the binding (and, for TensorRT, libnvinfer can be found).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GptError } from '../errors';
import { loadOrt } from './ort';

export type EpName = 'cpu' | 'cuda' | 'tensorrt';
export const EP_NAMES: readonly EpName[] = ['cpu', 'cuda', 'tensorrt'];

export interface ProviderStatus {
  name: EpName;
  /** The binding was compiled with this provider. */
  compiled: boolean;
  /** Its libraries are where the binding loads them from: a session can be asked for it. */
  available: boolean;
  /** Files or libraries that are missing (empty when available). */
  missing: string[];
  /** How to get it, when it is not available. */
  hint?: string;
}

/** Everything detection looks at, injectable so tests can describe a machine without a GPU. */
export interface ProviderEnvironment {
  /** The binding's `listSupportedBackends()`. */
  backends: { name: string; bundled: boolean }[];
  /** Folder holding onnxruntime_binding.node and the provider libraries. */
  binDir: string;
  /** Folders searched for TensorRT's libnvinfer. */
  libDirs: string[];
  platform: string;
  arch: string;
}

export const CUDA_INSTALL = 'ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install';
export const TENSORRT_HINT = 'TensorRT needs an ONNX Runtime build with the TensorRT provider and TensorRT (libnvinfer) installed, or `trtexec` on PATH';

/** The environment of this process: the installed binding. */
export function currentProviderEnvironment(): ProviderEnvironment {
  const ort = loadOrt() as { listSupportedBackends?: () => { name: string; bundled: boolean }[] };
  const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
  const libDirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/local/lib', '/usr/lib', '/usr/local/tensorrt/lib',
  ];
  return {
    backends: ort.listSupportedBackends ? ort.listSupportedBackends() : [{ name: 'cpu', bundled: true }],
    binDir: path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch),
    libDirs,
    platform: process.platform,
    arch: process.arch,
  };
}

function hasLib(dirs: string[], prefix: string): boolean {
  for (const d of dirs) {
    try {
      if (fs.readdirSync(d).some((f) => f.startsWith(prefix))) return true;
    } catch {
      // an unreadable or missing folder holds nothing
    }
  }
  return false;
}

export function detectProviders(env: ProviderEnvironment = currentProviderEnvironment()): ProviderStatus[] {
  const compiled = new Set(env.backends.map((b) => b.name));
  const so = (n: string) => (env.platform === 'win32' ? `${n}.dll` : `lib${n}.so`);
  const missingFiles = (names: string[]) => names.map(so).filter((f) => !fs.existsSync(path.join(env.binDir, f)));
  const out: ProviderStatus[] = [{ name: 'cpu', compiled: true, available: true, missing: [] }];

  {
    const missing = compiled.has('cuda') ? missingFiles(['onnxruntime_providers_shared', 'onnxruntime_providers_cuda']) : ['a binding built with CUDA'];
    out.push({
      name: 'cuda',
      compiled: compiled.has('cuda'),
      available: compiled.has('cuda') && missing.length === 0,
      missing,
      hint: !compiled.has('cuda')
        ? `the ${env.platform}/${env.arch} binding has no CUDA provider; CUDA needs Linux x64 or Windows x64`
        : missing.length
          ? `install the CUDA provider: ${CUDA_INSTALL} (needs CUDA 12 and network access)`
          : undefined,
    });
  }
  {
    let missing = compiled.has('tensorrt') ? missingFiles(['onnxruntime_providers_shared', 'onnxruntime_providers_tensorrt']) : ['a binding built with TensorRT'];
    if (compiled.has('tensorrt') && env.platform !== 'win32' && !hasLib(env.libDirs, 'libnvinfer.so')) missing = [...missing, 'libnvinfer.so (TensorRT)'];
    out.push({
      name: 'tensorrt',
      compiled: compiled.has('tensorrt'),
      available: compiled.has('tensorrt') && missing.length === 0,
      missing,
      hint: missing.length ? TENSORRT_HINT : undefined,
    });
  }
  return out;
}

/** The one-line error for an EP the binding cannot run (E_EP), naming what is missing and the fix. */
export function unavailableEpError(ep: EpName, status: ProviderStatus): GptError {
  if (ep === 'tensorrt') {
    return new GptError('E_EP', `execution provider 'tensorrt' is not available in the installed onnxruntime-node (missing: ${status.missing.join(', ')}) and trtexec is not on PATH`, {
      hint: 'either use an ONNX Runtime build with the TensorRT provider and TensorRT installed, or put TensorRT\'s trtexec on PATH; --ep cuda or --ep cpu work without TensorRT',
    });
  }
  return new GptError('E_EP', `execution provider '${ep}' is not available in the installed onnxruntime-node (missing: ${status.missing.join(', ')})`, {
    hint: status.hint,
  });
}

/** ORT's provider name in profiles ("CUDAExecutionProvider") as our short name. */
export function shortProviderName(p: string): string {
  const m = /^(\w+?)ExecutionProvider$/.exec(p);
  if (!m) return p.toLowerCase();
  const n = m[1].toLowerCase();
  return n === 'tensorrt' ? 'tensorrt' : n;
}
