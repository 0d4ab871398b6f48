/**
 * `inspect`: what a model is (IR, opsets, producer, inputs / outputs, op histogram) and what it
 * costs (params, MACs, activation memory, memory access), as a typed report, a terminal text, and
 * JSON validated against src/schemas/inspect.schema.json.
 */
import { aggregateWarnings } from '../report/warnings';
import type { Dim, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { DataTypeName } from '../onnx/schema';
import schema from '../schemas/inspect.schema.json';
import { bytes, human } from '../report/format';
import { reportValidator } from '../report/schema';
import { costModel, CostOptions, CostTotals } from './cost';
import { inferShapes } from './shapes';
import { envelope, ReportEnvelope } from '../report/envelope';

export interface TensorSummary {
  name: string;
  /** DataType name, e.g. 'FLOAT'. */
  elemType: string;
  /** null: rank unknown. */
  shape: Dim[] | null;
}

/** The model's header, signature and op histogram, with the cost model's totals. */
export interface InspectReport extends ReportEnvelope<'inspect'>, CostTotals {
  /** Path the model was loaded from; null for a model built or loaded from bytes. */
  file: string | null;
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producer: { name: string; version: string };
  inputs: TensorSummary[];
  outputs: TensorSummary[];
  /** Op histogram, most frequent first; ops of other domains as 'domain::Op'. */
  ops: { opType: string; count: number }[];
  nodeCount: number;
  initializerCount: number;
  /** Symbolic dims the cost figures used; assumed: not given, taken as 1. */
  dims: { name: string; value: number; assumed: boolean }[];
  warnings: string[];
}

export function inspect(model: Model, opts: CostOptions = {}): InspectReport {
  const g = model.graph;
  const warnings = inferShapes(model).warnings;
  const cost = costModel(model, opts);
  warnings.push(...cost.warnings);

  const summary = (v: Value): TensorSummary => ({
    name: v.name,
    elemType: DataTypeName[v.type?.elemType ?? 0] ?? 'UNDEFINED',
    shape: v.type?.shape ?? null,
  });
  const hist = new Map<string, number>();
  for (const n of g.nodes) {
    const op = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}::${n.opType}` : n.opType;
    hist.set(op, (hist.get(op) ?? 0) + 1);
  }
  return {
    ...envelope('inspect'),
    file: model.sourcePath ?? null,
    irVersion: model.irVersion,
    opsets: model.proto.opsetImport.map((o) => ({ domain: o.domain ?? '', version: Number(o.version ?? 0) })),
    producer: { name: model.proto.producerName ?? '', version: model.proto.producerVersion ?? '' },
    // before IR 4 initializers were also listed as inputs; they are not what a caller feeds
    inputs: g.inputs.filter((v) => !v.isInitializer).map(summary),
    outputs: g.outputs.map(summary),
    ops: [...hist].map(([opType, count]) => ({ opType, count })).sort((a, b) => b.count - a.count || a.opType.localeCompare(b.opType)),
    nodeCount: g.nodes.length,
    initializerCount: g.initializers.length,
    params: cost.totals.params,
    macs: cost.totals.macs,
    activationBytes: cost.totals.activationBytes,
    peakActivationBytes: cost.totals.peakActivationBytes,
    peakActivationNode: cost.totals.peakActivationNode,
    memoryAccessBytes: cost.totals.memoryAccessBytes,
    dims: Object.entries(cost.dims).map(([name, value]) => ({ name, value, assumed: cost.assumedSymbols.includes(name) })),
    warnings: aggregateWarnings(warnings),
  };
}

const shapeText = (s: Dim[] | null) => (s ? `[${s.map((d) => (d === null ? '?' : d)).join(', ')}]` : '[?]');

/** The report as aligned terminal text. */
export function formatInspect(r: InspectReport): string {
  const lines: string[] = [];
  const row = (label: string, text: string) => lines.push(`${label.padEnd(14)}${text}`);
  // inputs and outputs share their columns
  const io = [...r.inputs, ...r.outputs];
  const w = Math.max(0, ...io.map((t) => t.name.length));
  const e = Math.max(0, ...io.map((t) => t.elemType.length));
  const tensors = (label: string, ts: TensorSummary[]) => {
    ts.forEach((t, i) => row(i === 0 ? label : '', `${t.name.padEnd(w)}  ${t.elemType.padEnd(e)}  ${shapeText(t.shape)}`));
    if (ts.length === 0) row(label, '(none)');
  };
  const assumed = r.dims.filter((d) => d.assumed).map((d) => `${d.name} = ${d.value}`);
  const given = r.dims.filter((d) => !d.assumed).map((d) => `${d.name} = ${d.value}`);

  row('file', r.file ?? '(in memory)');
  row('ir version', String(r.irVersion));
  row('opsets', r.opsets.map((o) => `${o.domain || 'ai.onnx'} ${o.version}`).join(', '));
  row('producer', `${r.producer.name} ${r.producer.version}`.trim() || '(unknown)');
  tensors('inputs', r.inputs);
  tensors('outputs', r.outputs);
  row('nodes', `${r.nodeCount}  (initializers ${r.initializerCount})`);
  row('params', human(r.params));
  row('MACs', human(r.macs));
  row('activations', `${bytes(r.activationBytes)} in all, peak ${bytes(r.peakActivationBytes)}${r.peakActivationNode ? ` at ${r.peakActivationNode}` : ''}`);
  row('memory access', bytes(r.memoryAccessBytes));
  if (given.length) row('dims', given.join(', '));
  if (assumed.length) row('assumed dims', `${assumed.join(', ')} (not given; pass --dim NAME=N)`);
  const ow = Math.max(0, ...r.ops.map((o) => o.opType.length));
  const cw = Math.max(0, ...r.ops.map((o) => String(o.count).length));
  r.ops.forEach((o, i) => row(i === 0 ? 'ops' : '', `${o.opType.padEnd(ow)}  ${String(o.count).padStart(cw)}`));
  r.warnings.forEach((m, i) => row(i === 0 ? 'warnings' : '', m));
  return lines.join('\n');
}

/** Check a report against the shipped schema; throws E_SCHEMA listing what does not match. */
export const validateInspectReport: (obj: unknown) => asserts obj is InspectReport = reportValidator<InspectReport>(schema, 'inspect');
