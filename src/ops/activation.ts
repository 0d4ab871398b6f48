/**
 * Reading an activation node's parameters through the registry, so that a pass can put the same
 * activation on a new layer: LeakyRelu's alpha, Clip's bounds (inputs from opset 11, attributes
 * before), Selu's alpha and gamma, HardSigmoid's alpha and beta, Gelu's approximate, PRelu's slope.
 */
import { GptError } from '../errors';
import type { Graph, Node } from '../ir/graph';
import type { Tensor } from '../ir/tensor';
import { nodeOp, opInfo } from './registry';
import type { ActivationSpec } from './types';

export interface ActivationParams {
  opType: string;
  /** '' for the default domain. */
  domain: string;
  /** Every float attribute the op has, ONNX defaults filled in. */
  floats: Record<string, number>;
  /** Every string attribute the op has, defaults filled in. */
  strings: Record<string, string>;
  /** Bounds by name (Clip: min, max), defaults filled in; null where a bound is given but not constant. */
  bounds: Record<string, number | null>;
  /** The learned slope (PRelu), when constant. */
  slope?: Tensor;
}

/** The registry's activation facts for a node, or undefined when its op is not an activation. */
export function activationSpec(node: Node): ActivationSpec | undefined {
  return nodeOp(node)?.activation;
}

/**
 * The parameters of an activation node, read from its attributes and constant inputs, or null
 * when the node's op is not an activation. `opset` decides whether Clip's bounds are inputs.
 */
export function readActivation(node: Node, graph: Graph, opset: number): ActivationParams | null {
  const spec = activationSpec(node);
  if (!spec) return null;
  const floats: Record<string, number> = {};
  for (const [name, def] of Object.entries(spec.floats ?? {})) floats[name] = node.float(name, def);
  const strings: Record<string, string> = {};
  for (const [name, def] of Object.entries(spec.strings ?? {})) strings[name] = node.string(name, def);
  const bounds: Record<string, number | null> = {};
  if (spec.bounds) {
    const { names, inputsSince, defaults } = spec.bounds;
    names.forEach((name, i) => {
      if (opset < inputsSince) {
        bounds[name] = node.float(name, defaults[i]);
        return;
      }
      const v = node.inputs[i + 1];
      if (!v) {
        bounds[name] = defaults[i];
        return;
      }
      const t = graph.constantTensor(v);
      bounds[name] = t && t.size === 1 ? t.numbers()[0] : null;
    });
  }
  const slopeInput = spec.slope !== undefined ? node.inputs[spec.slope] : undefined;
  const slope = slopeInput ? graph.constantTensor(slopeInput) : undefined;
  return { opType: node.opType, domain: node.domain === 'ai.onnx' ? '' : node.domain, floats, strings, bounds, slope };
}

/**
 * How to write the same activation on a new node at `opset`: its attributes (floats as
 * `{ float }`, strings as they are; Clip's bounds too before opset 11) and, from the op's
 * `bounds.inputsSince`, the bound values to pass as scalar inputs 1, 2... (to be made initializers
 * by the caller, in the element type of the data). PRelu's slope is not included: its size
 * follows the new layer's channels, which only the caller knows.
 */
export function activationNodeSpec(p: ActivationParams, opset: number): { opType: string; domain: string; attrs: Record<string, { float: number } | string>; boundInputs: number[] } {
  const attrs: Record<string, { float: number } | string> = {};
  for (const [k, v] of Object.entries(p.floats)) attrs[k] = { float: v };
  for (const [k, v] of Object.entries(p.strings)) attrs[k] = v;
  const spec = opInfo(p.opType, p.domain)?.activation;
  const boundInputs: number[] = [];
  if (spec?.bounds) {
    const values = spec.bounds.names.map((n) => {
      const b = p.bounds[n];
      if (b === null || b === undefined) {
        throw new GptError('E_PATTERN', `${p.opType}: its ${n} is computed at run time, so the activation cannot be copied onto a new layer`, {
          subject: p.opType, hint: 'give the bound as a constant',
        });
      }
      return b;
    });
    if (opset < spec.bounds.inputsSince) spec.bounds.names.forEach((n, i) => (attrs[n] = { float: values[i] }));
    else boundInputs.push(...values);
  }
  return { opType: p.opType, domain: p.domain, attrs, boundInputs };
}
