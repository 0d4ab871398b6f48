/**
 * `verify(source, converted)`: run both models on the same inputs (seeded, or given) and compare
 * their outputs by name.
 *
 *   PRN  — must be exact against the masked-residual reference built from the source
 *          (src/verify/reference.ts): every output within 1e-4 x max(1, max |expected|), or the
 *          report fails (`passed: false`; the CLI exits 1).
 *   CSP / ELAN (or no recorded conversion) — untrained new layers: the numbers say how far the
 *          converted model is from the source (information, never a failure).
 */
import * as path from 'node:path';
import { GptError, isGptError } from '../errors';
import type { Model } from '../ir/model';
import { loadModel } from '../onnx/io';
import { cloneModel } from '../passes/model-copy';
import type { NpyArray } from '../onnx/npy';
import { makeFeeds, resolveInputs } from '../profile/measure';
import { createSession, runFloat } from '../profile/ort';
import { envelope, ReportEnvelope } from '../report/envelope';
import { reportValidator } from '../report/schema';
import schema from '../schemas/verify.schema.json';
import { OutputDiff, compareOutputs } from './compare';
import { maskResidualsForReference } from './reference';

export type { OutputDiff } from './compare';

export interface VerifyOptions {
  /** Seed of the generated inputs (default 1). */
  seed?: number;
  /** Given inputs by input name (e.g. from .npy files); the others are generated. */
  inputs?: Record<string, NpyArray>;
  /** Labels for the report (default: file names). */
  labels?: [string, string];
  /** Progress of the whole job, 0..1, with what runs now. */
  onProgress?: (fraction: number, what: string) => void;
}

/**
 * Relative cost of verify's steps on full-size models (loading both, building the reference, then
 * one onnxruntime session and run per model, which dominate): the fraction done for onProgress.
 */
const STEP_WEIGHTS = { load: 2, reference: 1, run: 3 } as const;

export interface OutputVerification extends OutputDiff {
  name: string;
  dims: number[];
  /** PRN: the same output against the unmodified source (how much the masking moved it). */
  vsSource: { maxAbsDiff: number; cosine: number } | null;
}

export interface VerifyReport extends ReportEnvelope<'verify'> {
  source: string;
  converted: string;
  /** From the converted model's gpt.conversion metadata, or null. */
  conversion: { target: string; options: Record<string, unknown> } | null;
  /** What the converted outputs are compared with. */
  reference: 'masked-residual' | 'source';
  /** 'exact': must match within tolerance; 'information': shows the distance, never fails. */
  expectation: 'exact' | 'information';
  inputs: { name: string; dims: number[]; from: string }[];
  outputs: OutputVerification[];
  /** Outputs of one model the other lacks (matched by name). */
  unmatched: { source: string[]; converted: string[] };
  /** expectation 'exact': every output within tolerance; 'information': true. */
  passed: boolean;
  notes: string[];
}

export type VerifySource = string | Model;

function asModel(m: VerifySource): Model {
  return typeof m === 'string' ? loadModel(m) : m;
}

function conversionOf(m: Model): VerifyReport['conversion'] {
  const raw = m.metadata()['gpt.conversion'];
  if (!raw) return null;
  try {
    const c = JSON.parse(raw) as { target?: unknown; options?: unknown };
    if (typeof c.target !== 'string') return null;
    return { target: c.target, options: c.options && typeof c.options === 'object' ? (c.options as Record<string, unknown>) : {} };
  } catch {
    return null;
  }
}

async function runModel(m: Model | string, feeds: Record<string, { data: Float32Array; dims: number[] }>, label: string) {
  const s = await createSession(m, {}, label);
  try {
    const wanted = Object.fromEntries(Object.entries(feeds).filter(([k]) => s.inputNames.includes(k)));
    return await runFloat(s, wanted);
  } finally {
    await s.release();
  }
}

export async function verify(source: VerifySource, converted: VerifySource, o: VerifyOptions = {}): Promise<VerifyReport> {
  const total = STEP_WEIGHTS.load + STEP_WEIGHTS.reference + 3 * STEP_WEIGHTS.run;
  let done = 0;
  const step = (what: string, weight: number) => {
    o.onProgress?.(done / total, what);
    done += weight;
  };
  step('loading the models', STEP_WEIGHTS.load);
  const src = asModel(source);
  const conv = asModel(converted);
  const labels = o.labels ?? [typeof source === 'string' ? path.basename(source) : src.displayName, typeof converted === 'string' ? path.basename(converted) : conv.displayName];
  const conversion = conversionOf(conv);
  const notes: string[] = [];

  // inputs: the source's signature; given arrays first, seeded data for the rest
  const shapes: Record<string, number[]> = {};
  for (const [k, v] of Object.entries(o.inputs ?? {})) shapes[k] = v.shape;
  const spec = resolveInputs(src, { shapes }, labels[0]).inputs;
  const generated = makeFeeds(spec.filter((i) => !o.inputs?.[i.name]), o.seed ?? 1);
  const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
  const inputs: VerifyReport['inputs'] = [];
  for (const i of spec) {
    const given = o.inputs?.[i.name];
    if (given) {
      if (i.type !== 'float32') throw new GptError('E_ARG', `input '${i.name}' is ${i.type}: --inputs feeds float32 inputs only`, { subject: labels[0] });
      feeds[i.name] = { data: given.data, dims: given.shape };
      inputs.push({ name: i.name, dims: given.shape, from: 'file' });
    } else {
      if (i.type !== 'float32') throw new GptError('E_ARG', `input '${i.name}' is ${i.type}: verify runs float32 models`, { subject: labels[0] });
      feeds[i.name] = { data: generated[i.name].data as Float32Array, dims: i.dims };
      inputs.push({ name: i.name, dims: i.dims, from: `seed ${o.seed ?? 1}` });
    }
  }
  for (const k of Object.keys(o.inputs ?? {})) {
    if (!spec.some((i) => i.name === k)) throw new GptError('E_ARG', `--inputs ${k}: the source has no input of that name`, { subject: labels[0], hint: `inputs: ${spec.map((i) => i.name).join(', ')}` });
  }

  // the converted model must take what the source takes; checked before either runs, so a pair of
  // unrelated models gets one line naming both instead of onnxruntime's message about an index
  const fed = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, v.dims]));
  for (const v of conv.graph.inputs) {
    if (!v.tensor && !Object.hasOwn(fed, v.name)) {
      throw new GptError('E_ARG', `input '${v.name}' of ${labels[1]} is not an input of ${labels[0]} (${Object.keys(fed).join(', ')}): the two models do not take the same inputs`, { subject: labels[1] });
    }
  }
  try {
    resolveInputs(conv, { shapes: fed }, labels[1]);
  } catch (e) {
    if (!isGptError(e) || e.code !== 'E_ARG') throw e;
    throw new GptError('E_ARG', `it does not take ${labels[0]}'s inputs: ${e.message}`, { subject: labels[1] });
  }

  // what the converted model must reproduce
  let reference: VerifyReport['reference'] = 'source';
  let expectation: VerifyReport['expectation'] = 'information';
  let refModel: Model | null = null;
  if (conversion?.target === 'prn') {
    const ratio = typeof conversion.options.ratio === 'number' ? conversion.options.ratio : 0.5;
    if (conversion.options.asymmetric) {
      notes.push('PRN with --asymmetric may drop a projection shortcut, which changes what the block computes: shown as information against the source');
    } else {
      step('building the masked-residual reference', STEP_WEIGHTS.reference);
      const copy = cloneModel(src);
      const r = maskResidualsForReference(copy, ratio);
      if ('unavailable' in r) notes.push(`no masked-residual reference: ${r.unavailable}; shown as information against the source`);
      else {
        refModel = copy;
        reference = 'masked-residual';
        expectation = 'exact';
        notes.push(`PRN keeps every weight: the converted model must compute exactly what the source computes with each of its ${r.masked} residual shortcuts masked to the first round(C x ${ratio}) channels`);
      }
    }
  } else if (conversion) {
    notes.push(`${conversion.target.toUpperCase()} adds untrained layers: the numbers show how far the untrained conversion is from the source (information, not a check)`);
  } else {
    notes.push('the converted model carries no gpt.conversion metadata: compared with the source as information');
  }

  // no reference to build or run: its share counts as done, so the ETA follows the work left
  done = STEP_WEIGHTS.load + STEP_WEIGHTS.reference + (refModel ? 0 : STEP_WEIGHTS.run);
  step(`running ${labels[0]}`, STEP_WEIGHTS.run);
  const outSrc = await runModel(src, feeds, labels[0]);
  step(`running ${labels[1]}`, STEP_WEIGHTS.run);
  const outConv = await runModel(conv, feeds, labels[1]);
  if (refModel) step('running the masked-residual reference', STEP_WEIGHTS.run);
  const outRef = refModel ? await runModel(refModel, feeds, `${labels[0]} (masked-residual reference)`) : null;
  o.onProgress?.(1, 'comparing outputs');
  const names = Object.keys(outSrc);
  const unmatched = { source: names.filter((n) => !(n in outConv)), converted: Object.keys(outConv).filter((n) => !(n in outSrc)) };
  const matched = names.filter((n) => n in outConv);
  if (matched.length === 0) {
    throw new GptError('E_ARG', 'no output of the converted model has the name of a source output', { subject: labels[1], hint: `source outputs: ${names.join(', ')}; converted: ${unmatched.converted.join(', ')}` });
  }
  const outputs: OutputVerification[] = [];
  for (const n of matched) {
    const a = outConv[n];
    const e = (outRef ?? outSrc)[n];
    if (a.dims.join('x') !== e.dims.join('x')) {
      throw new GptError('E_ARG', `output '${n}' has shape [${a.dims.join(', ')}] in the converted model and [${e.dims.join(', ')}] in the source`, { subject: labels[1] });
    }
    const d = compareOutputs(a.data, e.data);
    const vs = outRef ? compareOutputs(a.data, outSrc[n].data) : null;
    outputs.push({ name: n, dims: [...a.dims], ...d, vsSource: vs ? { maxAbsDiff: vs.maxAbsDiff, cosine: vs.cosine } : null });
  }
  if (unmatched.source.length || unmatched.converted.length) {
    notes.push(`outputs matched by name; unmatched: ${[...unmatched.source.map((n) => `${n} (source only)`), ...unmatched.converted.map((n) => `${n} (converted only)`)].join(', ')}`);
  }
  const passed = expectation === 'information' || (outputs.every((x) => x.withinTolerance) && unmatched.source.length === 0);
  return {
    ...envelope('verify'),
    source: typeof source === 'string' ? source : src.sourcePath ?? labels[0],
    converted: typeof converted === 'string' ? converted : conv.sourcePath ?? labels[1],
    conversion, reference, expectation, inputs, outputs, unmatched, passed, notes,
  };
}

/** Check a report against src/schemas/verify.schema.json; E_SCHEMA when not. */
export const validateVerifyReport: (report: unknown) => asserts report is VerifyReport = reportValidator<VerifyReport>(schema, 'verify');
