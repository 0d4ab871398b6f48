/**
 * Reading an activation node's parameters through the registry, so that a pass can put the same
 * activation on a new layer: LeakyRelu's alpha, Clip's bounds (inputs from opset 11, attributes
 * before), Selu's alpha and gamma, HardSigmoid's alpha and beta, Gelu's approximate, PRelu's slope.
 */
import type { Graph, Node } from '../ir/graph';
import type { Tensor } from '../ir/tensor';
import { nodeOp } from './registry';
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
