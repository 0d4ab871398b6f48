/**
 * TensorRT through NVIDIA's trtexec, for --ep tensorrt when the onnxruntime-node binding cannot run
 * TensorRT itself. trtexec builds an engine from the ONNX file, times it, and exports its per-run
 * times (--exportTimes) and per-layer profile (--exportProfile) as JSON; both are mapped into the same
 * report as ONNX Runtime's measurements.
 *
 * Warm-up: trtexec's --warmUp is in milliseconds, so it is set to 0 and the first N exported runs are
 * dropped instead, as for ONNX Runtime. --duration=0 makes --iterations the exact run count.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GptError } from '../errors';
import type { Graph } from '../ir/graph';
import type { ParsedProfile } from './node-profile';
import type { InputSpec } from './measure';

/** trtexec on PATH (or at $TRTEXEC), or null. */
export function findTrtexec(envPath = process.env.PATH ?? '', override = process.env.TRTEXEC): string | null {
  if (override) return fs.existsSync(override) ? override : null;
  for (const dir of envPath.split(path.delimiter).filter(Boolean)) {
    const p = path.join(dir, process.platform === 'win32' ? 'trtexec.exe' : 'trtexec');
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

export interface TrtexecOptions {
  onnx: string;
  inputs: InputSpec[];
  /** Pass --shapes (only for models with symbolic dims: trtexec refuses shapes for a static model). */
  dynamic: boolean;
  fp16: boolean;
  warmup: number;
  iterations?: number;
  durationS?: number;
  /** Folder for the exported JSON files. */
  workDir: string;
}

export function trtexecArgs(o: TrtexecOptions): { args: string[]; timesFile: string; profileFile: string } {
  const timesFile = path.join(o.workDir, 'times.json');
  const profileFile = path.join(o.workDir, 'profile.json');
  const args = [`--onnx=${o.onnx}`];
  if (o.dynamic) args.push(`--shapes=${o.inputs.map((i) => `${i.name}:${i.dims.join('x')}`).join(',')}`);
  if (o.fp16) args.push('--fp16');
  args.push('--warmUp=0');
  if (o.durationS !== undefined) args.push(`--duration=${o.durationS}`, `--iterations=${o.warmup + 3}`);
  else args.push('--duration=0', `--iterations=${o.warmup + (o.iterations ?? 1)}`);
  args.push(`--exportTimes=${timesFile}`, `--exportProfile=${profileFile}`, '--separateProfileRun');
  return { args, timesFile, profileFile };
}

/** Per-run latency (ms) from --exportTimes: each entry's latencyMs (else computeMs). */
export function parseTrtexecTimes(json: unknown): number[] {
  if (!Array.isArray(json)) throw new GptError('E_ORT', 'trtexec times export is not a JSON array');
  return json.map((e: Record<string, unknown>) => Number(e.latencyMs ?? e.computeMs)).filter(Number.isFinite);
}

export interface TrtLayer {
  name: string;
  averageMs: number;
}

/** Per-layer mean time (ms) from --exportProfile: [{count}, {name, timeMs, averageMs, ...}, ...]. */
export function parseTrtexecProfile(json: unknown): { count: number; layers: TrtLayer[] } {
  if (!Array.isArray(json)) throw new GptError('E_ORT', 'trtexec profile export is not a JSON array');
  let count = 1;
  const layers: TrtLayer[] = [];
  for (const e of json as Record<string, unknown>[]) {
    if (typeof e.count === 'number' && e.name === undefined) count = e.count;
    else if (typeof e.name === 'string') {
      const avg = e.averageMs !== undefined ? Number(e.averageMs) : Number(e.timeMs) / count;
      if (Number.isFinite(avg)) layers.push({ name: e.name, averageMs: avg });
    }
  }
  return { count, layers };
}

/**
 * TensorRT layers as model nodes. A layer's name joins the ONNX nodes it fused with " + "
 * ("/conv1/Conv + /relu/Relu"), sometimes wrapped ("PWN(/act/Sigmoid, /act/Mul)"); its time is split
 * evenly over the nodes found. Layers with no model node (reformatting copies) keep their own name.
 */
export function trtLayersAsProfile(layers: TrtLayer[], graph: Graph): ParsedProfile {
  const byName = new Map(graph.nodes.map((n) => [n.name, n]));
  const kernels: ParsedProfile['kernels'] = [];
  let totalUs = 0;
  for (const l of layers) {
    // a reformatting copy names the layer it feeds; it is TensorRT's own work, not that layer's
    const parts = /^Reformatting /.test(l.name) ? [] : l.name.split(/\s*\+\s*|[(),]\s*/).map((s) => s.trim()).filter((s) => byName.has(s));
    const us = l.averageMs * 1000;
    totalUs += us;
    if (parts.length === 0) {
      kernels.push({ name: l.name, opType: /reformat/i.test(l.name) ? 'Reformat' : 'TensorRT', provider: 'TensorrtExecutionProvider', durUs: us, run: 0, layoutFor: null });
      continue;
    }
    for (const p of parts) kernels.push({ name: p, opType: byName.get(p)!.opType, provider: 'TensorrtExecutionProvider', durUs: us / parts.length, run: 0, layoutFor: null });
  }
  // one synthetic run holding the per-run means
  return { runsUs: [totalUs], kernels };
}

export interface TrtexecResult {
  /** Per-run latency after the warm-up runs, ms. */
  samplesMs: number[];
  layers: TrtLayer[];
  stdout: string;
}

export async function runTrtexec(bin: string, o: TrtexecOptions, label: string): Promise<TrtexecResult> {
  const { args, timesFile, profileFile } = trtexecArgs(o);
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(bin, args, { maxBuffer: 64 << 20 }, (err, so, se) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout: String(so), stderr: String(se) }));
  });
  if (code !== 0) {
    const lines = (stderr + '\n' + stdout).split('\n').map((l) => l.trim()).filter(Boolean);
    lines.reverse();
    const last = lines.find((l) => /\[E\]|error/i.test(l)) ?? lines.find((l) => /fail/i.test(l)) ?? lines[0] ?? `exit status ${code}`;
    throw new GptError('E_ORT', `trtexec failed: ${last}`, { subject: label, hint: `rerun by hand: ${bin} ${args.join(' ')}` });
  }
  const read = (f: string) => {
    try {
      return JSON.parse(fs.readFileSync(f, 'utf8'));
    } catch (e) {
      throw new GptError('E_ORT', `trtexec wrote no readable ${path.basename(f)} (${(e as Error).message.split('\n')[0]})`, { subject: label, hint: 'needs a trtexec with --exportTimes / --exportProfile (TensorRT 7 or newer)' });
    }
  };
  const times = parseTrtexecTimes(read(timesFile));
  const samplesMs = times.slice(Math.min(o.warmup, Math.max(0, times.length - 1)));
  const { layers } = parseTrtexecProfile(read(profileFile));
  return { samplesMs, layers, stdout };
}
