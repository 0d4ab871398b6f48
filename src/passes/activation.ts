/**
 * The activation a new layer copies: taken from the nodes the matcher matched as a block's activation
 * (the `act` unit of rules/units.json: a single op such as Relu, LeakyRelu with its alpha, Clip with
 * its bounds as inputs or attributes, PRelu with its slope, or a composition such as SiLU written as
 * Mul(x, Sigmoid(x))), and rebuilt on a new layer's output, op for op, attribute for attribute. One
 * mechanism for every pass: CSP's transitions and ELAN's new layers get the same activation as the
 * layers they join.
 *
 * Constant operands are copied; a per-channel one (PRelu's slope) is resized to the new layer's
 * width, every channel getting the template's mean value: a new layer's channels do not correspond
 * to the old ones (and a later split may reorder them).
 */
import { GptError } from '../errors';
import type { Graph, Node, Value } from '../ir/graph';
import type { Model } from '../ir/model';
import type { Tensor } from '../ir/tensor';
import { floatTensor, floatValues } from '../ir/float-data';
import { Tensor as TensorClass } from '../ir/tensor';
import type { AttributeProto } from '../onnx/schema';
import type { Block } from '../analysis/structure-types';
import { blockRefs } from '../analysis/structure-refs';
import { nodeOp } from '../ops/registry';

/** A step's input: the activation's input x, an earlier step's output, or a constant (a slope: one value per channel). */
type StepInput = { from: 'x' } | { from: 'step'; step: number } | { from: 'const'; tensor: Tensor; slope: boolean } | null;

interface ActivationStep {
  opType: string;
  domain: string;
  attributes: AttributeProto[];
  inputs: StepInput[];
}

export interface CapturedActivation {
  /** What it is: 'SiLU', 'HardSwish', 'HardSigmoid', 'Mish' (written out) or the op type of a single-op activation. */
  kind: string;
  steps: ActivationStep[];
  /** Width of the layer it was taken from (a per-channel constant has this many values). */
  channels: number | null;
}

/** The name of a written-out activation (the spellings of the `act` unit), else its op types. */
function kindOf(steps: ActivationStep[]): string {
  const ops = steps.map((s) => s.opType).join(',');
  if (ops === 'Sigmoid,Mul') return 'SiLU';
  if (ops === 'Softplus,Tanh,Mul') return 'Mish';
  // x * HardSigmoid(x); x * relu6(x + 3) / 6 and x * (relu6(x + 3) / 6), by Div or by Mul with 1/6
  if (ops === 'HardSigmoid,Mul' || /^Add,(Relu,)?Clip,(Mul|Div),(Mul|Div)$/.test(ops)) return 'HardSwish';
  if (/^Add,(Relu,)?Clip,(Mul|Div)$/.test(ops)) return 'HardSigmoid';
  return ops;
}

/**
 * The activation formed by `nodes` (one matched activation unit): its steps in order, reading one
 * data value x. E_PATTERN when they read another data value (they are not a pointwise activation).
 */
export function captureActivation(g: Graph, nodes: readonly Node[]): CapturedActivation {
  const inside = new Set(nodes);
  const ordered = g.nodes.filter((n) => inside.has(n));
  const index = new Map(ordered.map((n, i) => [n, i]));
  let x: Value | null = null;
  const steps = ordered.map((n): ActivationStep => ({
    opType: n.opType,
    domain: n.domain,
    attributes: n.attributes.map((a) => ({ ...a })),
    inputs: n.inputs.map((v, k): StepInput => {
      if (!v) return null;
      if (v.producer && inside.has(v.producer)) return { from: 'step', step: index.get(v.producer)! };
      const t = g.isConstant(v) ? g.constantTensor(v) : undefined;
      // the op registry says which input is a learned slope (PRelu's); Clip's bounds are plain constants
      if (t) return { from: 'const', tensor: t, slope: nodeOp(n)?.activation?.slope === k && t.size > 1 };
      if (x && x !== v) throw new GptError('E_PATTERN', `the activation '${n.name}' reads two data values ('${x.name}', '${v.name}')`, { subject: n.name });
      x = v;
      return { from: 'x' };
    }),
  }));
  if (!x || steps.length === 0) throw new GptError('E_PATTERN', 'an activation needs a data input', { subject: nodes[0]?.name ?? 'activation' });
  const c = (x as Value).shape?.[1];
  return { kind: kindOf(steps), steps, channels: typeof c === 'number' ? c : null };
}

/** The activation of the first layer of `blocks` whose rule matched one (element path '... .act ...'), or null. */
export function blockActivation(g: Graph, blocks: readonly Block[]): CapturedActivation | null {
  for (const b of blocks) {
    const groups = new Map<string, Node[]>();
    for (const [path, nodes] of blockRefs(b).parts) {
      const segs = path.split('.');
      const at = segs.indexOf('act');
      if (at < 0) continue;
      const key = segs.slice(0, at + 1).join('.');
      groups.set(key, [...(groups.get(key) ?? []), ...nodes]);
    }
    // the first activation in graph order (a block's parts are listed as the rule matched them)
    const order = new Map(g.nodes.map((n, i) => [n, i]));
    const first = [...groups.values()].sort((a, b) => Math.min(...a.map((n) => order.get(n) ?? Infinity)) - Math.min(...b.map((n) => order.get(n) ?? Infinity)))[0];
    if (first) return captureActivation(g, first);
  }
  return null;
}

/** A constant of the activation for a layer of `channels` channels (a per-channel one resized). */
function constantFor(spec: CapturedActivation, t: Tensor, slope: boolean, channels: number, name: string): Tensor {
  if (!slope) return TensorClass.create(name, t.dataType, t.dims, t.bytes().slice());
  const dims = t.dims;
  const axis = dims.findIndex((d) => d === t.size);
  if (axis < 0) throw new GptError('E_SHAPE', `the activation constant '${t.name}' (${dims.join('x')}) is not per-channel`, { subject: t.name, hint: `it has ${t.size} values for ${spec.channels ?? '?'} channels` });
  const values = floatValues(t, t.name);
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const out = dims.slice();
  out[axis] = channels;
  return floatTensor(name, out, new Float32Array(channels).fill(mean), t.dataType);
}

/**
 * The activation rebuilt on x (a layer of `channels` channels): nodes '<name>/<op>' inserted before
 * `before`; the last one writes `output` when given. Returns the activation's output and nodes.
 */
export function emitActivation(model: Model, spec: CapturedActivation, x: Value, channels: number, opts: { name: string; before?: Node; output?: Value }): { output: Value; nodes: Node[] } {
  const g = model.graph;
  const outs: Value[] = [];
  const nodes: Node[] = [];
  spec.steps.forEach((s, i) => {
    const last = i === spec.steps.length - 1;
    const out = last && opts.output ? opts.output : g.newValue(`${opts.name}/${s.opType}_output_0`);
    out.inferred = x.type ? { ...x.type } : undefined;
    const inputs = s.inputs.map((inp, k): Value | null => {
      if (!inp) return null;
      if (inp.from === 'x') return x;
      if (inp.from === 'step') return outs[inp.step];
      return g.addInitializer(constantFor(spec, inp.tensor, inp.slope, channels, g.uniqueName(`${opts.name}/${s.opType}.input${k}`)));
    });
    const node = g.addNode({ opType: s.opType, domain: s.domain || undefined, name: g.uniqueName(`${opts.name}/${s.opType}`), inputs, outputs: [out] }, opts.before);
    for (const a of s.attributes) node.copyAttr(a);
    outs.push(out);
    nodes.push(node);
  });
  g.touch();
  return { output: outs[outs.length - 1], nodes };
}
