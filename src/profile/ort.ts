/**
 * onnxruntime-node sessions: creation from a Model, a path or bytes, with errors mapped to E_ORT
 * naming the model.
 */
import * as ort from 'onnxruntime-node';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GptError, isGptError } from '../errors';
import type { Model } from '../ir/model';
import { saveModel, saveModelToBuffer } from '../onnx/io';

export type SessionSource = Model | string | Uint8Array;

/**
 * A session for a path, bytes, or a Model as it is now in memory (serialized; never re-read from
 * its sourcePath). A Model over protobuf's 2 GiB goes through a temporary file with external data.
 */
export async function createSession(src: SessionSource, options: ort.InferenceSession.SessionOptions = {}, label?: string): Promise<ort.InferenceSession> {
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
export async function runFloat(session: ort.InferenceSession, feeds: Record<string, { data: Float32Array; dims: number[] }>): Promise<Record<string, { data: Float32Array; dims: readonly number[] }>> {
  const input: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) input[k] = new ort.Tensor('float32', v.data, v.dims);
  const out = await session.run(input);
  const res: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
  for (const [k, v] of Object.entries(out)) res[k] = { data: v.data as Float32Array, dims: v.dims };
  return res;
}
