/**
 * `exportPytorch(model)`: a self-contained PyTorch module (model.py, torch and the standard library
 * only) and its weights (model.safetensors) that compute what the ONNX model computes.
 * Every node becomes one line of `forward` (torch-ops.ts has the op table); weight layers become
 * modules, constants buffers. `--bn unfold` (bn-unfold.ts) puts folded BatchNorms back.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inferShapes } from '../analysis/shapes';
import { GptError } from '../errors';
import type { Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import { Tensor } from '../ir/tensor';
import { DataType } from '../onnx/schema';
import { TOOL_VERSION } from '../version';
import { convsToUnfold, type BnMode } from './bn-unfold';
import type { EmitContext, ModuleState } from './context';
import { Names, pyIdent, pyStr, torchDtype } from './py';
import { PY_HEADER, PY_HELPERS, PY_LOADER } from './runtime-py';
import { writeSafetensors, type NamedTensor } from './safetensors';
import { emitterFor } from './torch-ops';

export interface ExportPytorchOptions {
  /** 'unfold' (default): BatchNorm2d back after each conv that had one; 'keep': as the ONNX has it. */
  bn?: BnMode;
  /** The class name in model.py (default 'Net'). */
  className?: string;
}

export interface ExportPytorchResult {
  /** model.py's text. */
  code: string;
  /** model.safetensors' bytes. */
  weights: Uint8Array;
  /** The file names and contents, for writing. */
  files: Record<string, string | Uint8Array>;
  /** Convs that got their BatchNorm back (node names). */
  unfolded: string[];
  /** Modules by kind (Conv2d: 52, BatchNorm2d: 52...). */
  modules: Record<string, number>;
  /** Ops written op by op, by type. */
  ops: Record<string, number>;
}

interface Local {
  name: string;
}

export function exportPytorch(model: Model, options: ExportPytorchOptions = {}): ExportPytorchResult {
  const g = model.graph;
  const opset = model.opset() ?? 13;
  inferShapes(model);
  const className = options.className ?? 'Net';
  if (!/^[A-Za-z_]\w*$/.test(className)) throw new GptError('E_ARG', `class name '${className}' is not a Python identifier`);
  const unfold = convsToUnfold(model, options.bn ?? 'unfold');

  const attrNames = new Names(['load', 'forward', 'training', 'INPUTS', 'OUTPUTS']);
  const localNames = new Names(['self', 'torch', 'nn', 'F', 'json', 'os']);
  const init: string[] = [];
  const tensors: NamedTensor[] = [];
  const helpers = new Set<string>();
  const constAttr = new Map<Value, string>();
  const locals = new Map<Value, Local>();
  const modules: Record<string, number> = {};
  const ops: Record<string, number> = {};

  const inputs = g.inputs.filter((v) => !v.tensor);
  if (inputs.length === 0) throw new GptError('E_GRAPH', 'the model has no input to feed', { subject: model.displayName });
  for (const v of inputs) locals.set(v, { name: localNames.take(pyIdent(v.name, 'x')) });
  const device = `${locals.get(inputs[0])?.name}.device`;

  const constTensor = (v: Value | null | undefined): Tensor | null => {
    for (let depth = 0; v && depth < 64; depth++) {
      if (v.tensor) return v.tensor;
      const p = v.producer;
      if (!p) return null;
      if (p.opType === 'Constant') return constantValue(p);
      if (p.opType !== 'Identity') return null;
      v = p.inputs[0];
    }
    return null;
  };
  const addState = (prefix: string, st: ModuleState) => tensors.push({ name: `${prefix}.${st.key}`, dataType: st.dataType, dims: st.dims, bytes: st.bytes });
  const tensorDecl = (t: Tensor) => {
    const dtype = torchDtype(t.dataType);
    if (!dtype) throw new GptError('E_ARG', `tensor '${t.name}' has an element type PyTorch cannot hold here (${t.dataType})`, { subject: t.name });
    return `torch.empty((${t.dims.join(', ')}${t.dims.length === 1 ? ',' : ''}), dtype=${dtype})`;
  };
  const addConstant = (v: Value, learned: boolean): string => {
    const have = constAttr.get(v);
    if (have) return `self.${have}`;
    const t = constTensor(v) as Tensor;
    const name = attrNames.take(pyIdent(v.name, 'c'));
    if (learned) init.push(`        self.${name} = nn.Parameter(${tensorDecl(t)})`);
    else init.push(`        self.register_buffer(${pyStr(name)}, ${tensorDecl(t)})`);
    tensors.push({ name, dataType: t.dataType, dims: t.dims, bytes: t.bytes() });
    constAttr.set(v, name);
    return `self.${name}`;
  };

  const ctx: EmitContext = {
    opset,
    device,
    v(value) {
      if (!value) return 'None';
      const l = locals.get(value);
      if (l) return l.name;
      if (constTensor(value)) return addConstant(value, false);
      throw new GptError('E_GRAPH', `value '${value.name}' is read before it is computed`, { subject: value.name, hint: 'the graph is not in topological order or reads a missing value' });
    },
    constTensor,
    constNumbers(value) {
      const t = constTensor(value);
      if (!t || t.size > 4096) return null;
      try {
        return t.numbers();
      } catch {
        return null;
      }
    },
    addModule(base, ctor, state) {
      const name = attrNames.take(pyIdent(base, 'layer'));
      init.push(`        self.${name} = ${ctor}`);
      const kind = /^nn\.(\w+)/.exec(ctor)?.[1] ?? ctor;
      modules[kind] = (modules[kind] ?? 0) + 1;
      for (const st of state) addState(name, st);
      return `self.${name}`;
    },
    addParameter(value) {
      return addConstant(value, true);
    },
    helper(name) {
      if (!PY_HELPERS[name]) throw new Error(`no helper ${name}`);
      helpers.add(name);
      if (name !== '_ints' && PY_HELPERS[name].includes('_ints(')) helpers.add('_ints');
      return name;
    },
    elemType: (value) => value?.type?.elemType ?? constTensor(value)?.dataType,
    rank: (value) => value?.shape?.length ?? constTensor(value)?.dims.length,
    shape: (value) => value?.shape ?? constTensor(value)?.dims ?? null,
    unfoldBn: (n) => unfold.has(n),
  };

  const body: string[] = [];
  for (const n of g.nodes) {
    const outs = n.outputs;
    if (outs.every((o) => !o || constTensor(o))) continue; // constants and Identity over them: read where used
    if (n.hasSubgraphs) throw new GptError('E_ARG', `${n.opType} node '${n.name}' has subgraphs, which the PyTorch exporter does not write`, { subject: n.name });
    const emit = emitterFor(n);
    if (!emit) {
      throw new GptError('E_ARG', `${n.domain ? `${n.domain}::` : ''}${n.opType} node '${n.name}' has no PyTorch mapping in the exporter`, {
        subject: n.name,
        hint: 'src/export/torch-ops.ts lists the ops it writes',
      });
    }
    const e = emit(n, ctx);
    const { expr, tuple } = typeof e === 'string' ? { expr: e, tuple: undefined } : e;
    ops[n.opType] = (ops[n.opType] ?? 0) + 1;
    if (n.opType === 'Identity' && outs[0]) {
      // an alias, not a line
      const src = n.inputs[0] ? locals.get(n.inputs[0]) : undefined;
      if (src) {
        locals.set(outs[0], src);
        continue;
      }
    }
    const names = outs.map((o, i) => {
      if (!o || (!o.isRead && !g.outputs.includes(o)) || (tuple === undefined && i > 0)) return '_';
      const l = { name: localNames.take(`t${locals.size}`) };
      locals.set(o, l);
      return l.name;
    });
    const lhs = tuple === undefined ? names[0] : names.slice(0, tuple).join(', ') + (tuple > outs.length ? ', _'.repeat(tuple - outs.length) : '');
    body.push(`        ${lhs} = ${expr}  # ${n.opType} ${oneLine(n.name)}`);
  }
  const ret = g.outputs.map((o) => ctx.v(o));

  const inputSpec = inputs.map((v) => `(${pyStr(v.name)}, [${(v.shape ?? []).map((d) => (typeof d === 'number' ? String(d) : d === null ? 'None' : pyStr(d))).join(', ')}], ${pyStr(dtypeName(v.type?.elemType))})`);
  const code = [
    `"""${className}: exported by gpt ${TOOL_VERSION} from ${oneLine(model.displayName)} (opset ${opset}).`,
    '',
    'net = Net.load(directory)  # model.safetensors beside this file',
    `"""`,
    PY_HEADER,
    PY_LOADER,
    ...[...helpers].sort((a, b) => (a === '_ints' ? -1 : b === '_ints' ? 1 : a.localeCompare(b))).map((h) => PY_HELPERS[h]),
    '',
    `class ${className}(nn.Module):`,
    `    # (name, shape, dtype) of each input; None or a name: a free dim`,
    `    INPUTS = [${inputSpec.join(', ')}]`,
    `    OUTPUTS = [${g.outputs.map((o) => pyStr(o.name)).join(', ')}]`,
    '',
    '    def __init__(self):',
    '        super().__init__()',
    ...init,
    '',
    `    def forward(self, ${inputs.map((v) => locals.get(v)?.name).join(', ')}):`,
    ...body,
    `        return ${ret.join(', ')}`,
    '',
    '    @classmethod',
    '    def load(cls, directory=".", map_location="cpu"):',
    '        """The module with the weights of model.safetensors in `directory`."""',
    '        net = cls()',
    '        state = read_safetensors(os.path.join(directory, "model.safetensors"))',
    '        net.load_state_dict(state)',
    '        return net.to(map_location)',
    '',
  ].join('\n');
  const weights = writeSafetensors(tensors, { format: 'pt', producer: `gpt ${TOOL_VERSION}` });
  return { code, weights, files: { 'model.py': code, 'model.safetensors': weights }, unfolded: [...unfold].map((n) => n.name), modules, ops };
}

/** Write the export's files into `dir` (created if missing). */
export function writePytorchExport(result: ExportPytorchResult, dir: string): string[] {
  try {
    fs.mkdirSync(dir, { recursive: true });
    return Object.entries(result.files).map(([name, content]) => {
      const p = path.join(dir, name);
      fs.writeFileSync(p, content);
      return p;
    });
  } catch (e) {
    throw new GptError('E_IO', `cannot write the export: ${(e as Error).message}`, { subject: dir, cause: e });
  }
}

function oneLine(s: string): string {
  return s.replace(/[\r\n\\"]/g, '_');
}

function dtypeName(t: number | undefined): string {
  return (torchDtype(t ?? DataType.FLOAT) ?? 'torch.float32').replace('torch.', '');
}

/** A Constant node's tensor (value, or the value_float / value_int(s) forms). */
function constantValue(p: Node): Tensor | null {
  const t = p.tensorAttr('value');
  if (t) return t;
  const name = p.outputs[0]?.name ?? p.name;
  if (p.attr('value_float')) return Tensor.float32(name, [], Float32Array.of(p.float('value_float', 0)));
  if (p.attr('value_floats')) return Tensor.float32(name, [p.floats('value_floats').length], Float32Array.from(p.floats('value_floats')));
  if (p.attr('value_int')) return Tensor.int64(name, [], [p.int('value_int', 0)]);
  if (p.attr('value_ints')) return Tensor.int64(name, [p.ints('value_ints').length], p.ints('value_ints'));
  return null;
}
