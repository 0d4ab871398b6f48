/**
 * `exportPytorch(model)`: a self-contained PyTorch module (model.py, torch and the standard library
 * only) and its weights (model.safetensors) that compute what the ONNX model computes.
 * Every node becomes one line of `forward` (torch-ops.ts has the op table); weight layers become
 * modules, constants buffers. `--bn unfold` (bn-unfold.ts) puts folded BatchNorms back.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inferShapes } from '../analysis/shapes';
import { recognize } from '../analysis/structure';
import { blockRefs, hasBlockRefs } from '../analysis/structure-refs';
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
  /** Block classes written, with how many instances each. */
  blocks: Record<string, number>;
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
}

function newScope(prefix: string, namePrefix: string): Scope {
  return {
    attrNames: new Names(['load', 'forward', 'training', 'INPUTS', 'OUTPUTS', 'stages']),
    localNames: new Names(['self', 'torch', 'nn', 'F', 'json', 'os']),
    init: [],
    body: [],
    locals: new Map(),
    constAttr: new Map(),
    prefix,
    namePrefix,
    device: 'x.device',
  };
}

/** '/layer1/layer1.0/conv1/Conv' -> 'layer1_0_conv1'; in a block whose nodes share '/layer1/layer1.0/', 'conv1'. */
function layerName(scope: Scope, node: string): string {
  const s = node.startsWith(scope.namePrefix) ? node.slice(scope.namePrefix.length) : node;
  // drop op-type segments ('Conv', 'LeakyRelu_1') and a segment the next one repeats ('layer1/layer1.0')
  const parts = s.split('/').filter((p) => p && !/^[A-Z][A-Za-z]+(_\d+)?$/.test(p));
  const kept = parts.filter((p, i) => !(i + 1 < parts.length && parts[i + 1].startsWith(`${p}.`)));
  return pyIdent(kept.join('_') || s, 'layer');
}

export function exportPytorch(model: Model, options: ExportPytorchOptions = {}): ExportPytorchResult {
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
        const name = scope.attrNames.take(layerName(scope, base));
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

  // the readable layer: each recognised block becomes a small class named for its rule
  const plans = planBlocks(model, isConstantNode, constTensor);
  const classes = new Map<string, { name: string; text: string }>();
  const classNames = new Names([className, 'Net']);
  const blockAt = new Map<Node, BlockPlan>();
  const inBlock = new Set<Node>();
  for (const p of plans) {
    blockAt.set(p.nodes[0], p);
    for (const n of p.nodes) inBlock.add(n);
  }
  const stageLists: string[][] = [];
  const netCtx = contextFor(net);
  for (const n of g.nodes) {
    const p = blockAt.get(n);
    if (p) {
      const scope = newScope(`stages.${p.stage}.${p.index}.`, p.namePrefix);
      const args = p.inputs.map((v, i) => scope.localNames.take(p.inputs.length === 1 ? 'x' : `x${i}`));
      p.inputs.forEach((v, i) => scope.locals.set(v, { name: args[i] }));
      scope.device = `${args[0]}.device`;
      const ctx = contextFor(scope);
      const inside = new Set(p.nodes);
      for (const bn of p.nodes) if (!isConstantNode(bn)) emitNode(scope, ctx, bn, (v) => p.outputs.includes(v) && !inside.has(v.producer as Node));
      const { ctorArgs, text } = blockClass(scope, args, p.outputs.map((o) => ctx.v(o)));
      const key = `${p.className}\n${text}`;
      let cls = classes.get(key);
      if (!cls) {
        cls = { name: classNames.take(p.className), text };
        classes.set(key, cls);
      }
      (stageLists[p.stage] ??= [])[p.index] = `${cls.name}(${ctorArgs.join(', ')})`;
      const outNames = p.outputs.map((o) => {
        const l = { name: net.localNames.take(`t${net.locals.size}`) };
        net.locals.set(o, l);
        return l.name;
      });
      net.body.push(`        ${outNames.join(', ')} = self.stages[${p.stage}][${p.index}](${p.inputs.map((v) => netCtx.v(v)).join(', ')})  # ${p.rule} ${p.id}`);
      continue;
    }
    if (inBlock.has(n) || isConstantNode(n)) continue;
    emitNode(net, netCtx, n, (v) => g.outputs.includes(v));
  }
  const ret = g.outputs.map((o) => netCtx.v(o));
  if (stageLists.length) {
    const stagesInit = stageLists.map((l) => `            nn.ModuleList([\n${(l ?? []).map((b) => `                ${b},`).join('\n')}\n            ]),`).join('\n');
    net.init.unshift(`        self.stages = nn.ModuleList([\n${stagesInit}\n        ])`);
  }

  const inputSpec = inputs.map((v) => `(${pyStr(v.name)}, [${(v.shape ?? []).map((d) => (typeof d === 'number' ? String(d) : d === null ? 'None' : pyStr(d))).join(', ')}], ${pyStr(dtypeName(v.type?.elemType))})`);
  const code = [
    `"""${className}: exported by gpt ${TOOL_VERSION} from ${oneLine(model.displayName)} (opset ${opset}).`,
    '',
    'net = Net.load(directory)  # model.safetensors beside this file',
    `"""`,
    PY_HEADER,
    PY_LOADER,
    ...[...helpers].sort((a, b) => (a === '_ints' ? -1 : b === '_ints' ? 1 : a.localeCompare(b))).map((h) => PY_HELPERS[h]),
    ...[...classes.values()].map((c) => `\nclass ${c.name}(nn.Module):\n${c.text}`),
    '',
    `class ${className}(nn.Module):`,
    `    # (name, shape, dtype) of each input; None or a name: a free dim`,
    `    INPUTS = [${inputSpec.join(', ')}]`,
    `    OUTPUTS = [${g.outputs.map((o) => pyStr(o.name)).join(', ')}]`,
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
    '',
  ].join('\n');
  const weights = writeSafetensors(tensors, { format: 'pt', producer: `gpt ${TOOL_VERSION}` });
  return {
    code, weights, files: { 'model.py': code, 'model.safetensors': weights }, unfolded: [...unfold].map((n) => n.name), modules, ops,
    blocks: Object.fromEntries([...classes.values()].map((c) => [c.name, plans.filter((p) => stageLists[p.stage]?.[p.index]?.startsWith(`${c.name}(`)).length])),
  };
}

/**
 * A block class's text: its layers' channel widths become constructor arguments (c1, c2... in order
 * of first appearance), so blocks that differ only in width share one class.
 */
function blockClass(scope: Scope, args: string[], returns: string[]): { ctorArgs: number[]; text: string } {
  const widths: number[] = [];
  const param = (w: string) => {
    const n = Number(w);
    let i = widths.indexOf(n);
    if (i < 0) i = widths.push(n) - 1;
    return `c${i + 1}`;
  };
  const init = scope.init.map((l) => l
    .replace(/nn\.(Conv\dd|ConvTranspose\dd|Linear)\((\d+), (\d+)/, (_m, cls: string, a: string, b: string) => `nn.${cls}(${param(a)}, ${param(b)}`)
    .replace(/nn\.(BatchNorm\dd)\((\d+)/, (_m, cls: string, a: string) => `nn.${cls}(${param(a)}`));
  const text = [
    `    def __init__(self${widths.map((_, i) => `, c${i + 1}`).join('')}):`,
    '        super().__init__()',
    ...init,
    '',
    `    def forward(self, ${args.join(', ')}):`,
    ...scope.body.map((l) => l.replace(/  # .*$/, '')),
    `        return ${returns.join(', ')}`,
    '',
  ].join('\n');
  return { ctorArgs: widths, text };
}

interface BlockPlan {
  id: string;
  rule: string;
  className: string;
  stage: number;
  index: number;
  nodes: Node[];
  inputs: Value[];
  outputs: Value[];
  namePrefix: string;
}

/**
 * The recognised blocks that can be written as one call: every value they read from outside is
 * computed before their first node. Blocks that cannot stay op by op in the Net.
 */
function planBlocks(model: Model, isConstantNode: (n: Node) => boolean, constTensor: (v: Value) => Tensor | null): BlockPlan[] {
  let structure;
  try {
    structure = recognize(model);
  } catch {
    return [];
  }
  const g = model.graph;
  const order = new Map(g.nodes.map((n, i) => [n, i]));
  const plans: BlockPlan[] = [];
  structure.stages.forEach((stage, si) => {
    let index = 0;
    for (const b of stage.blocks) {
      if (!hasBlockRefs(b)) continue;
      const nodes = [...blockRefs(b).nodes].sort((x, y) => (order.get(x) ?? 0) - (order.get(y) ?? 0));
      const set = new Set(nodes);
      const data = nodes.filter((n) => !isConstantNode(n));
      if (data.length === 0 || nodes.some((n) => n.hasSubgraphs || !order.has(n))) continue;
      const first = order.get(nodes[0]) as number;
      const inputs: Value[] = [];
      const outputs: Value[] = [];
      let ok = true;
      for (const n of data) {
        for (const v of n.inputs) {
          if (!v || constTensor(v) || (v.producer && set.has(v.producer)) || inputs.includes(v)) continue;
          if (v.producer && (order.get(v.producer) ?? Infinity) >= first) ok = false;
          inputs.push(v);
        }
        for (const o of n.outputs) {
          if (o && (o.consumers.some((u) => !set.has(u.node)) || g.outputs.includes(o)) && !outputs.includes(o)) outputs.push(o);
        }
      }
      if (!ok || inputs.length === 0 || outputs.length === 0) continue;
      const names = data.map((n) => n.name);
      let prefix = names[0].slice(0, names[0].lastIndexOf('/') + 1);
      while (prefix && !names.every((nm) => nm.startsWith(prefix))) prefix = prefix.slice(0, prefix.slice(0, -1).lastIndexOf('/') + 1);
      plans.push({ id: b.id, rule: b.rule, className: pascal(b.rule), stage: plans.filter((p) => p.stage === si).length === 0 && index === 0 ? si : si, index: index++, nodes, inputs, outputs, namePrefix: prefix });
    }
  });
  // stage numbers without gaps (a stage with no written block has no ModuleList)
  const used = [...new Set(plans.map((p) => p.stage))].sort((a, b) => a - b);
  for (const p of plans) p.stage = used.indexOf(p.stage);
  return plans;
}

/** 'darknet-residual' -> 'DarknetResidual'. */
function pascal(rule: string): string {
  const s = rule.split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w[0].toUpperCase() + w.slice(1)).join('');
  return /^[A-Za-z]/.test(s) ? s : `Block${s}`;
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
