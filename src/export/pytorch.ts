/**
 * `exportPytorch(model)`: a self-contained PyTorch module (model.py, torch and the standard library
 * only) and its weights (model.safetensors) that compute what the ONNX model computes.
 * The recognised structure is the module tree (module-tree.ts: stem, stages[i], neck, Detect / Head,
 * each a class, class-text.ts); inside them every node becomes one line of `forward` (torch-ops.ts
 * has the op table); weight layers become modules, constants buffers. `--bn unfold` (bn-unfold.ts)
 * puts folded BatchNorms back; structure-py.ts keeps a converted model's structure through
 * `Net.export_onnx`. PRN's parts form, an inference layout, is first written back as the network
 * it computes (prn-whole.ts), so the module trains as the architecture.
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
import type { EmitContext } from './context';
import { Names, pyIdent, pyStr, torchDtype } from './py';
import { PY_HEADER, PY_HELPERS, PY_LOADER } from './runtime-py';
import { PY_EXPORT_ONNX, PY_ONNX_RECORD, pyStructure, structureTemplate } from './structure-py';
import { planModuleTree, type Group } from './module-tree';
import { classLayerName, classText, roleNote } from './class-text';
import { STRUCTURE_KEY } from '../analysis/recorded-structure';
import { writeSafetensors, type NamedTensor } from './safetensors';
import { emitterFor } from './torch-ops';
import { prnPartsToWhole } from './prn-whole';

export interface ExportPytorchOptions {
  /** 'unfold' (default): BatchNorm2d back after each conv that had one; 'keep': as the ONNX has it. */
  bn?: BnMode;
  /** The class name in model.py (default 'Net'). */
  className?: string;
  /**
   * PRN's parts form (convert --emit parts): 'whole' (default) writes the architecture it computes,
   * one layer per layer on whole tensors (prn-whole.ts); 'keep' writes the partial convs as they are.
   */
  prnParts?: 'whole' | 'keep';
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
  /** Block classes written, with how many instances each. */
  blocks: Record<string, number>;
  /** What the export changed or could not (PRN's parts written whole...). */
  notes: string[];
}

interface Local {
  name: string;
}

/** One nn.Module being written: the Net, or one block class. */
interface Scope {
  attrNames: Names;
  localNames: Names;
  init: string[];
  body: string[];
  locals: Map<Value, Local>;
  constAttr: Map<Value, string>;
  /** State-dict prefix of its tensors ('' for the Net, 'stages.0.1.' for a block). */
  prefix: string;
  /** Node-name prefix dropped from its layer names. */
  namePrefix: string;
  device: string;
  /** Node name -> the attribute its module got. */
  moduleOf: Map<string, string>;
}

function newScope(prefix: string, namePrefix: string): Scope {
  return {
    attrNames: new Names(['load', 'forward', 'training', 'export_onnx', 'INPUTS', 'OUTPUTS', 'STRUCTURE', 'stem', 'stages', 'entry', 'blocks', 'neck', 'detect', 'head', 'residual']),
    localNames: new Names(['self', 'torch', 'nn', 'F', 'json', 'os']),
    init: [],
    body: [],
    locals: new Map(),
    constAttr: new Map(),
    prefix,
    namePrefix,
    device: 'x.device',
    moduleOf: new Map(),
  };
}

/** '/layer1/layer1.0/conv1/Conv' -> 'layer1_0_conv1'; in a block whose nodes share '/layer1/layer1.0/', 'conv1'. */
function layerName(scope: Scope, node: string): string {
  if (scope.prefix) return classLayerName(node);
  const s = node.startsWith(scope.namePrefix) ? node.slice(scope.namePrefix.length) : node;
  // drop op-type segments ('Conv', 'LeakyRelu_1') and a segment the next one repeats ('layer1/layer1.0')
  const parts = s.split('/').filter((p) => p && !/^[A-Z][A-Za-z]+(_\d+)?$/.test(p));
  const kept = parts.filter((p, i) => !(i + 1 < parts.length && parts[i + 1].startsWith(`${p}.`)));
  return pyIdent(kept.join('_') || s, 'layer');
}

export function exportPytorch(source: Model, options: ExportPytorchOptions = {}): ExportPytorchResult {
  const notes: string[] = [];
  let model = source;
  const whole = options.prnParts === 'keep' ? null : prnPartsToWhole(source);
  if (whole) {
    model = whole.model;
    const o = whole.outcome;
    notes.push(`PRN parts form written as the architecture: ${o.layers} conv(s) written whole from their parts, ${o.residuals} masked residual(s) on whole tensors`, ...o.notes);
  }
  const g = model.graph;
  const opset = model.opset() ?? 13;
  inferShapes(model);
  const className = options.className ?? 'Net';
  if (!/^[A-Za-z_]\w*$/.test(className)) throw new GptError('E_ARG', `class name '${className}' is not a Python identifier`);
  const unfold = convsToUnfold(model, options.bn ?? 'unfold');
  const tensors: NamedTensor[] = [];
  const helpers = new Set<string>();
  const modules: Record<string, number> = {};
  const ops: Record<string, number> = {};

  const inputs = g.inputs.filter((v) => !v.tensor);
  if (inputs.length === 0) throw new GptError('E_GRAPH', 'the model has no input to feed', { subject: model.displayName });
  const net = newScope('', '');
  for (const v of inputs) net.locals.set(v, { name: net.localNames.take(pyIdent(v.name, 'x')) });
  net.device = `${net.locals.get(inputs[0])?.name}.device`;

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
  const tensorDecl = (t: Tensor) => {
    const dtype = torchDtype(t.dataType);
    if (!dtype) throw new GptError('E_ARG', `tensor '${t.name}' has an element type PyTorch cannot hold here (${t.dataType})`, { subject: t.name });
    return `torch.empty((${t.dims.join(', ')}${t.dims.length === 1 ? ',' : ''}), dtype=${dtype})`;
  };

  const contextFor = (scope: Scope): EmitContext => {
    const addConstant = (v: Value, learned: boolean): string => {
      const have = scope.constAttr.get(v);
      if (have) return `self.${have}`;
      const t = constTensor(v) as Tensor;
      const name = scope.attrNames.take(layerName(scope, v.name));
      if (learned) scope.init.push(`        self.${name} = nn.Parameter(${tensorDecl(t)})`);
      else scope.init.push(`        self.register_buffer(${pyStr(name)}, ${tensorDecl(t)})`);
      tensors.push({ name: scope.prefix + name, dataType: t.dataType, dims: t.dims, bytes: t.bytes() });
      scope.constAttr.set(v, name);
      return `self.${name}`;
    };
    return {
      opset,
      device: scope.device,
      v(value) {
        if (!value) return 'None';
        const l = scope.locals.get(value);
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
        const op = /^nn\.(\w+)/.exec(ctor)?.[1] ?? ctor;
        // a conv's unfolded BN is named after the conv ('m_1' -> 'm_1_bn')
        const conv = base.endsWith('/bn') ? scope.moduleOf.get(base.slice(0, -3)) : undefined;
        const name = scope.attrNames.take(conv ? `${conv}_bn` : layerName(scope, base));
        scope.moduleOf.set(base, name);
        scope.init.push(`        self.${name} = ${ctor}`);
        modules[op] = (modules[op] ?? 0) + 1;
        for (const st of state) tensors.push({ name: `${scope.prefix}${name}.${st.key}`, dataType: st.dataType, dims: st.dims, bytes: st.bytes });
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
  };
  const isConstantNode = (n: Node) => n.outputs.every((o) => !o || constTensor(o));

  /** One node as one line of `scope`'s forward. */
  const emitNode = (scope: Scope, ctx: EmitContext, n: Node, readOutside: (v: Value) => boolean) => {
    if (n.hasSubgraphs) throw new GptError('E_ARG', `${n.opType} node '${n.name}' has subgraphs, which the PyTorch exporter does not write`, { subject: n.name });
    const emit = emitterFor(n);
    if (!emit) {
      throw new GptError('E_ARG', `${n.domain ? `${n.domain}::` : ''}${n.opType} node '${n.name}' has no PyTorch mapping in the exporter`, {
        subject: n.name,
        hint: 'src/export/torch-ops.ts lists the ops it writes',
      });
    }
    const outs = n.outputs;
    const e = emit(n, ctx);
    const { expr, tuple } = typeof e === 'string' ? { expr: e, tuple: undefined } : e;
    ops[n.opType] = (ops[n.opType] ?? 0) + 1;
    if (n.opType === 'Identity' && outs[0]) {
      const src = n.inputs[0] ? scope.locals.get(n.inputs[0]) : undefined;
      if (src) {
        scope.locals.set(outs[0], src); // an alias, not a line
        return;
      }
    }
    const names = outs.map((o, i) => {
      if (!o || (!o.isRead && !readOutside(o)) || (tuple === undefined && i > 0)) return '_';
      const l = { name: scope.localNames.take(`t${scope.locals.size}`) };
      scope.locals.set(o, l);
      return l.name;
    });
    const lhs = tuple === undefined ? names[0] : names.slice(0, tuple).join(', ') + (tuple > outs.length ? ', _'.repeat(tuple - outs.length) : '');
    scope.body.push(`        ${lhs} = ${expr}  # ${n.opType} ${oneLine(n.name)}`);
  };

  // the readable layer: the recognised structure as the module tree (module-tree.ts), each part a small class
  const { root, structure } = planModuleTree(model, (n) => !isConstantNode(n), (v) => !!constTensor(v));
  const order = new Map(g.nodes.map((n, i) => [n, i]));
  const classes = new Map<string, { name: string; text: string }>();
  const classNames = new Names([className, 'Net']);
  const instances: Record<string, number> = {};
  const paths = new Map<Group, string>();

  /** A group's nodes into `scope`: its own nodes op by op, each child module as one call. */
  const emitBody = (grp: Group, scope: Scope, ctx: EmitContext, readOutside: (v: Value) => boolean, path: string, literal: boolean) => {
    const childOf = new Map<Node, Group>();
    for (const c of grp.children) for (const n of c.nodes) childOf.set(n, c);
    // children's classes first (their lines go to the top of __init__)
    const lists = new Map<string, { c: Group; name: string; args: number[] }[]>();
    const ctorLines: string[] = [];
    const built = new Map<Group, { name: string; args: number[] }>();
    // a group that could not be one call leaves its children to its parent: two 'entry' there are entry, entry_1
    const attrNames = new Names();
    const attrOf = new Map<string, string>();
    for (const c of grp.children) {
      if (!c.list) c.attr = attrNames.take(c.attr);
      else if (!attrOf.has(c.attr)) attrOf.set(c.attr, attrNames.take(c.attr));
      const items = lists.get(c.attr);
      const index = items?.length ?? 0;
      const childPath = `${path ? `${path}.` : ''}${c.attr}${c.list ? `.${index}` : ''}`;
      paths.set(c, childPath);
      const b = buildClass(c, `${childPath}.`, childPath);
      built.set(c, b);
      instances[b.name] = (instances[b.name] ?? 0) + 1;
      if (!c.list) ctorLines.push(`        self.${c.attr} = ${b.name}(${b.args.join(', ')})`);
      else if (items) items.push({ c, ...b });
      else {
        lists.set(c.attr, [{ c, ...b }]);
        ctorLines.push(`\u0000${c.attr}`);
      }
    }
    const sequential = new Set<string>();
    for (const [attr, items] of lists) {
      const same = items.every((x) => x.name === items[0].name && x.args.join() === items[0].args.join());
      const chain = items.every((x, j) => x.c.inputs.length === 1 && x.c.outputs.length === 1 &&
        (j === items.length - 1 || (items[j + 1].c.inputs[0] === x.c.outputs[0] && x.c.outputs[0].consumers.every((u) => items[j + 1].c.nodes.includes(u.node)) && !g.outputs.includes(x.c.outputs[0]))));
      const line = same && chain && items.length > 1
        ? `nn.Sequential(*(${items[0].name}(${items[0].args.join(', ')}) for _ in range(${items.length})))`
        : `nn.ModuleList([${items.map((x) => `${x.name}(${x.args.join(', ')})`).join(', ')}])`;
      if (same && chain && items.length > 1) sequential.add(attr);
      const i = ctorLines.indexOf(`\u0000${attr}`);
      ctorLines[i] = `        self.${attr} = ${line}`;
    }
    scope.init.unshift(...ctorLines);
    const call = (c: Group, target: string, inputs: Value[], outputs: Value[], note: string) => {
      const outNames = outputs.map((o) => {
        const l = { name: scope.localNames.take(`t${scope.locals.size}`) };
        scope.locals.set(o, l);
        return l.name;
      });
      scope.body.push(`        ${outNames.join(', ')} = self.${target}(${inputs.map((v) => ctx.v(v)).join(', ')})${literal ? `  # ${note}` : ''}`);
    };
    const done = new Set<Group>();
    const emitCall = (c: Group) => {
      if (done.has(c)) return;
      done.add(c);
      const items = lists.get(c.attr);
      if (c.list && sequential.has(c.attr) && items) {
        items.forEach((x) => done.add(x.c));
        call(c, c.attr, c.inputs, items[items.length - 1].c.outputs, `${items.length} x ${items[0].name}`);
      } else {
        const index = c.list && items ? items.findIndex((x) => x.c === c) : -1;
        call(c, `${c.attr}${index >= 0 ? `[${index}]` : ''}`, c.inputs, c.outputs, roleNote(c));
      }
    };
    // calls in the order of their places (module-tree.ts), each before the first own node after it
    const pending = [...grp.children].sort((x, y) => (x.emitAt ?? 0) - (y.emitAt ?? 0));
    for (const n of grp.nodes) {
      if (childOf.has(n) || isConstantNode(n)) continue;
      const here = order.get(n) as number;
      while (pending.length && (pending[0].emitAt ?? 0) < here) emitCall(pending.shift() as Group);
      emitNode(scope, ctx, n, readOutside);
    }
    pending.forEach(emitCall);
  };

  /** One group as a class: its widths as constructor arguments; classes with the same text are one class. */
  const buildClass = (grp: Group, prefix: string, path: string): { name: string; args: number[] } => {
    const scope = newScope(prefix, grp.namePrefix);
    const args = grp.inputs.map((_v, i) => scope.localNames.take(grp.inputs.length === 1 ? 'x' : `x${i}`));
    grp.inputs.forEach((v, i) => scope.locals.set(v, { name: args[i] }));
    scope.device = `${args[0]}.device`;
    const ctx = contextFor(scope);
    emitBody(grp, scope, ctx, (v) => grp.outputs.includes(v), path, false);
    const { ctorArgs, text } = classText(scope, args, grp.outputs.map((o) => ctx.v(o)));
    const key = `${grp.className}\n${text}`;
    let cls = classes.get(key);
    if (!cls) {
      cls = { name: classNames.take(grp.className), text };
      classes.set(key, cls);
    }
    return { name: cls.name, args: ctorArgs };
  };

  const netCtx = contextFor(net);
  emitBody(root, net, netCtx, (v) => g.outputs.includes(v), '', true);
  const ret = g.outputs.map((o) => netCtx.v(o));
  const record = model.metadata()[STRUCTURE_KEY] ? structureTemplate(root, structure, paths) : null;

  const inputSpec = inputs.map((v) => `(${pyStr(v.name)}, [${(v.shape ?? []).map((d) => (typeof d === 'number' ? String(d) : d === null ? 'None' : pyStr(d))).join(', ')}], ${pyStr(dtypeName(v.type?.elemType))})`);
  const code = [
    `"""${className}: exported by gpt ${TOOL_VERSION} from ${oneLine(model.displayName)} (opset ${opset}).`,
    '',
    'net = Net.load(directory)  # model.safetensors beside this file',
    `"""`,
    PY_HEADER,
    PY_LOADER,
    PY_ONNX_RECORD,
    ...[...helpers].sort((a, b) => (a === '_ints' ? -1 : b === '_ints' ? 1 : a.localeCompare(b))).map((h) => PY_HELPERS[h]),
    ...[...classes.values()].map((c) => `\nclass ${c.name}(nn.Module):\n${c.text}`),
    '',
    `class ${className}(nn.Module):`,
    `    # (name, shape, dtype) of each input; None or a name: a free dim`,
    `    INPUTS = [${inputSpec.join(', ')}]`,
    `    OUTPUTS = [${g.outputs.map((o) => pyStr(o.name)).join(', ')}]`,
    `    # what export_onnx records for gpt analyze: the module of each stage and block (None: nothing recorded)`,
    pyStructure(record),
    '',
    '    def __init__(self):',
    '        super().__init__()',
    ...net.init,
    '',
    `    def forward(self, ${inputs.map((v) => net.locals.get(v)?.name).join(', ')}):`,
    ...net.body,
    `        return ${ret.join(', ')}`,
    '',
    '    @classmethod',
    '    def load(cls, directory=".", map_location="cpu"):',
    '        """The module with the weights of model.safetensors in `directory`."""',
    '        net = cls()',
    '        state = read_safetensors(os.path.join(directory, "model.safetensors"))',
    '        net.load_state_dict(state)',
    '        return net.to(map_location)',
    PY_EXPORT_ONNX,
  ].join('\n');
  const weights = writeSafetensors(tensors, { format: 'pt', producer: `gpt ${TOOL_VERSION}` });
  return {
    code, weights, files: { 'model.py': code, 'model.safetensors': weights }, unfolded: [...unfold].map((n) => n.name), modules, ops,
    blocks: instances, notes,
  };
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
