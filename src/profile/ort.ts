/**
 * onnxruntime-node, loaded on first use: its native binding costs ~300 ms at start-up and is an
 * optional peer dependency (analysis and conversion need none), so nothing imports it at module
 * level. Sessions from a Model, a path or bytes, with errors mapped to E_ORT naming the model.
 */
import type * as Ort from 'onnxruntime-node';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GptError, isGptError } from '../errors';
import type { Model } from '../ir/model';
import { saveModel, saveModelToBuffer } from '../onnx/io';

export type SessionSource = Model | string | Uint8Array;

/** How to add the binding to a project that lacks it (the CPU provider ships inside the package). */
export const ORT_INSTALL = 'ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node (its CPU provider; the README says how to add CUDA)';

let loaded: typeof Ort | undefined;

/** The onnxruntime-node module; E_EP naming the fix when it is not installed. */
export function loadOrt(): typeof Ort {
  if (loaded) return loaded;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loaded = require('onnxruntime-node') as typeof Ort;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'MODULE_NOT_FOUND' && /'onnxruntime-node'/.test(err.message)) {
      throw new GptError('E_EP', 'onnxruntime-node is not installed: running or profiling a model needs it', { hint: ORT_INSTALL, cause: e });
    }
    throw new GptError('E_EP', `onnxruntime-node did not load: ${String(err.message).split('\n')[0]}`, { hint: 'reinstall it: npm rebuild onnxruntime-node', cause: e });
  }
  return loaded;
}

/** The installed onnxruntime-node's version. */
export function ortVersion(): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('onnxruntime-node/package.json') as { version: string }).version;
}

/**
 * A session for a path, bytes, or a Model as it is now in memory (serialized; never re-read from
 * its sourcePath). A Model over protobuf's 2 GiB goes through a temporary file with external data.
 */
export async function createSession(src: SessionSource, options: Ort.InferenceSession.SessionOptions = {}, label?: string): Promise<Ort.InferenceSession> {
  const ort = loadOrt();
  const what = label ?? (typeof src === 'string' ? src : src instanceof Uint8Array ? 'model bytes' : src.displayName);
  let tmp: string | undefined;
  // onnxruntime's own log (coloured, multi-line) must not reach stderr: its errors come back as E_ORT
  options = { logSeverityLevel: 3, ...options };
  try {
    ort.env.logLevel = 'error';
    if (typeof src === 'string') return await ort.InferenceSession.create(src, options);
    let bytes: Uint8Array;
    try {
      bytes = src instanceof Uint8Array ? src : saveModelToBuffer(src);
    } catch (e) {
      if (!(isGptError(e) && e.code === 'E_TOO_LARGE') || src instanceof Uint8Array) throw e;
      tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gpt-session-'));
      const file = saveModel(src, path.join(tmp, 'model.onnx'), { externalData: true }).path;
      return await ort.InferenceSession.create(file, options);
    }
    return await ort.InferenceSession.create(bytes, options);
  } catch (e) {
    if (isGptError(e)) throw e;
    const msg = String((e as Error).message ?? e).split('\n')[0];
    throw new GptError('E_ORT', `onnxruntime rejected the model: ${msg}`, { subject: what, cause: e });
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** Run once with float32 feeds; returns the outputs by name. */
export async function runFloat(session: Ort.InferenceSession, feeds: Record<string, { data: Float32Array; dims: number[] }>): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
  const { Tensor } = loadOrt();
  const input: Record<string, Ort.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) input[k] = new Tensor('float32', v.data, v.dims);
  const out = await session.run(input);
  const res: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
  for (const [k, v] of Object.entries(out)) res[k] = { data: v.data as Float32Array, dims: v.dims };
  return res;
}
