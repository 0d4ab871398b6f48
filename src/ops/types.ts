/**
 * The facts gpt knows about one operator, kept in one entry of the op registry (registry.ts).
 * Every analysis reads them from there: shape inference (`shape`), the cost model (`params`,
 * `macs`, `metaInputs`), gradient paths (`weightLayer`, `channels`), the matcher (`channels`,
 * `commutative`, `activation`) and the passes (`activation`, `channels`).
 */
import type { Dim, Node, Value } from '../ir/graph';
import type { ShapeRule } from '../analysis/shapes/context';

export type { ShapeRule };

/**
 * How the channel axis (axis 1 of NCHW) flows from the data inputs to the outputs.
 * - preserve: output channel c is computed from channel c of each data input only (activations,
 *   element-wise arithmetic, BatchNormalization, pooling, Pad, Resize, Cast, Identity...);
 *   the output has the channel count of its first data input.
 * - concat: along its `axis`; on axis 1 the inputs' channels are laid side by side (their counts
 *   add up), on another axis each channel stays where it is.
 * - split, slice: on axis 1 each output takes a range of the input's channels (a strided range
 *   for Slice); on another axis channels stay where they are.
 * - conv: output channels = weight dim 0; each mixes the input channels of its group.
 * - convTranspose: output channels = weight dim 1 x group.
 * - across: the output has input 0's channel count, but each channel may depend on every input
 *   channel (Softmax, LRN, Group / LayerNormalization).
 * - mix: anything else (Gemm, MatMul, Reshape, Flatten, Transpose...): every output may depend on
 *   every input channel, and the output's channel count does not follow from the inputs'.
 */
export type ChannelFlow = 'preserve' | 'concat' | 'split' | 'slice' | 'conv' | 'convTranspose' | 'across' | 'mix';

/** Parameters of a pointwise activation, as ONNX spells them, with ONNX's defaults. */
export interface ActivationSpec {
  /** Float attributes and their defaults: LeakyRelu alpha 0.01, Selu alpha and gamma... */
  readonly floats?: Readonly<Record<string, number>>;
  /** String attributes and their defaults: Gelu approximate 'none'. */
  readonly strings?: Readonly<Record<string, string>>;
  /**
   * Scalar bounds (Clip min / max): optional inputs 1, 2... from opset `inputsSince`, attributes of
   * the same names before; absent bounds take `defaults`.
   */
  readonly bounds?: { readonly names: readonly string[]; readonly inputsSince: number; readonly defaults: readonly number[] };
  /** The input that holds a learned slope (PRelu: 1), per channel or shared. */
  readonly slope?: number;
  /**
   * Most often a gate (x * Sigmoid(x), squeeze-excitation) rather than the activation of a
   * conv: rules' `@activation` does not accept it alone.
   */
  readonly gate?: boolean;
}

/** What the MAC formulas can ask for: element counts and dim values with the symbols resolved. */
export interface MacContext {
  elements(v: Value): number | null;
  dim(d: Dim): number | null;
}
/** Multiply-accumulates of one node; null when a size is unknown. */
export type MacRule = (n: Node, m: MacContext) => number | null;

/** One registry entry. Everything but `channels` is optional. */
export interface OpSpec {
  /** Output shapes and element types (src/analysis/shapes). Absent: the outputs stay unknown, with a warning. */
  readonly shape?: ShapeRule;
  readonly channels: ChannelFlow;
  /** A pointwise activation: its parameters. */
  readonly activation?: ActivationSpec;
  /** Inputs that are learned parameters when constant (weights, biases, BN scale and bias, slopes). */
  readonly params?: readonly number[];
  /**
   * Inputs that configure the op rather than carry data: a Reshape target, Clip bounds, Resize
   * scales, a DequantizeLinear scale and zero point. Never parameters; the cost model's walk from a
   * weight back to its initializers does not follow them.
   */
  readonly metaInputs?: readonly number[];
  /**
   * A weight layer of the gradient-path analysis when its weight (input 1) is constant; every
   * other op is transparent (the gradient passes it without counting a layer).
   */
  readonly weightLayer?: boolean;
  /** Multiply-accumulates; absent: 0. */
  readonly macs?: MacRule;
  /** Data inputs may come in any order (Add(branch, shortcut) = Add(shortcut, branch)). */
  readonly commutative?: boolean;
}

/** A registry entry with its name. */
export interface OpInfo extends OpSpec {
  readonly opType: string;
  /** '' for the default ONNX domain. */
  readonly domain: string;
}
