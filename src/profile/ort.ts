/**
 * onnxruntime-node sessions: creation from a Model, a path or bytes, with errors mapped to E_ORT
 * naming the model.
 */
import * as ort from 'onnxruntime-node';
import { GptError } from '../errors';
import type { Model } from '../ir/model';
import { saveModelToBuffer } from '../onnx/io';

export type SessionSource = Model | string | Uint8Array;

export async function createSession(src: SessionSource, options: ort.InferenceSession.SessionOptions = {}, label?: string): Promise<ort.InferenceSession> {
  const what = label ?? (typeof src === 'string' ? src : src instanceof Uint8Array ? 'model bytes' : src.displayName);
  try {
    if (typeof src === 'string') return await ort.InferenceSession.create(src, options);
    const bytes = src instanceof Uint8Array ? src : saveModelToBuffer(src);
    return await ort.InferenceSession.create(bytes, options);
  } catch (e) {
    const msg = String((e as Error).message ?? e).split('\n')[0];
    throw new GptError('E_ORT', `onnxruntime rejected the model: ${msg}`, { subject: what, cause: e });
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
