/**
 * Shape inference. Walks graph.nodes in order (topological for loaded models) and sets
 * `value.inferred = { elemType, shape }` on every value. The rule for each op comes from the op
 * registry (src/ops); the rules themselves are in this folder by op family, the dimension
 * arithmetic (symbols, sums, products, floor quotients) in dims.ts.
 *
 * Symbols given in `dims` (`--dim height=224`) are substituted into the graph inputs before the
 * walk, so everything computed from them (Resize sizes, Reshape targets) is a number too; symbols
 * not given stay symbolic.
 *
 * PyTorch computes Reshape targets at run time (Shape -> Gather -> Unsqueeze -> Concat), so small
 * integer tensors are also evaluated element by element (`values`, symbols allowed) until they
 * reach the Reshape.
 */
import { GptError } from '../../errors';
import type { Dim, Graph, Node, TensorType, Value } from '../../ir/graph';
import type { Model } from '../../ir/model';
import { DataType } from '../../onnx/schema';
import { nodeOp } from '../../ops/registry';
import { MAX_TRACKED, Out, ShapeContext, UNKNOWN } from './context';
import { formatShape, known, substituteDim, symbolDim } from './dims';

export { divDim, formatShape, mulDim, productDims } from './dims';

export interface InferShapesOptions {
  /** Called with each warning as it arises (they are also returned). */
  warn?: (msg: string) => void;
  /** Values of symbolic dims of the graph inputs, substituted before inference ({ height: 224 }). */
  dims?: Readonly<Record<string, number>>;
}

export interface InferShapesResult {
  warnings: string[];
}

/** The opset assumed when a model declares none for the default domain. */
const LATEST_OPSET = 21;

/**
 * Infer the type and shape of every value. Unknown ops leave their outputs unknown (or as the
 * model's value_info declares them) and add a warning naming the node; shapes that cannot fit
 * throw GptError('E_SHAPE') naming the node.
 */
export function inferShapes(model: Model, opts: InferShapesOptions = {}): InferShapesResult {
  const g = model.graph;
  const opset = model.opset() ?? LATEST_OPSET;
  const warnings: string[] = [];
  const warn = (msg: string) => {
    warnings.push(msg);
    opts.warn?.(msg);
  };
  const tracked = new Map<Value, Dim[]>();
  const given = opts.dims && Object.keys(opts.dims).length > 0 ? opts.dims : undefined;

  for (const v of g.inputs) {
    if (v.tensor) v.inferred = tensorType(v);
    else if (v.declared) v.inferred = { elemType: v.declared.elemType, shape: inputShape(v.declared.shape, given) };
    else v.inferred = { elemType: DataType.UNDEFINED, shape: null };
  }
  for (const v of g.initializers) v.inferred = tensorType(v);

  for (const node of g.nodes) {
    const outs = inferNode(node, opset, g, tracked, warn);
    node.outputs.forEach((v, i) => {
      if (!v) return;
      const o = outs?.[i];
      if (!o) {
        v.inferred = v.declared ? { ...v.declared } : { elemType: DataType.UNDEFINED, shape: null };
        return;
      }
      const elemType = o.elemType ?? node.inputs[0]?.type?.elemType ?? v.declared?.elemType ?? DataType.UNDEFINED;
      // what the model's value_info says beats nothing
      v.inferred = { elemType, shape: o.shape ?? v.declared?.shape ?? null };
      // small tensors of a known shape, their elements row-major
      if (o.values && o.values.length <= MAX_TRACKED && o.shape && o.shape.every(known) && (o.shape as number[]).reduce((a, b) => a * b, 1) === o.values.length) {
        tracked.set(v, o.values);
      }
      else tracked.delete(v);
      const d = v.declared?.shape;
      if (d && o.shape && (d.length !== o.shape.length || d.some((x, k) => known(x) && known(o.shape![k]) && x !== o.shape![k]))) {
        warn(`value '${v.name}': the model declares ${formatShape(d)} but inference gives ${formatShape(o.shape)}`);
      }
    });
  }
  return { warnings };
}

/** A graph input's declared shape with its symbols made safe for the arithmetic, given ones substituted. */
function inputShape(shape: Dim[] | null, given: Readonly<Record<string, number>> | undefined): Dim[] | null {
  if (!shape) return null;
  return shape.map((d) => {
    if (typeof d !== 'string') return d;
    if (given && given[d] !== undefined) return given[d];
    const s = symbolDim(d);
    return given ? substituteDim(s, given) : s;
  });
}

function tensorType(v: Value): TensorType {
  return { elemType: v.tensor!.dataType, shape: v.tensor!.dims };
}

function inferNode(node: Node, opset: number, g: Graph, tracked: Map<Value, Dim[]>, warn: (m: string) => void): Out[] | undefined {
  const rule = nodeOp(node)?.shape;
  if (!rule) {
    const domain = node.domain === 'ai.onnx' ? '' : node.domain;
    const op = domain ? `${domain}::${node.opType}` : node.opType;
    warn(`node '${node.name}': shape inference does not know op ${op}; the shapes of its outputs are unknown`);
    return undefined;
  }
  try {
    return rule(new ShapeContext(node, opset, g, tracked));
  } catch (e) {
    if (e === UNKNOWN) return node.outputs.map(() => ({ shape: null }));
    if (e instanceof GptError) throw e;
    // a malformed attribute must not crash an analysis: report it and go on
    warn(`node '${node.name}' (${node.opType}): shape inference failed (${e instanceof Error ? e.message : String(e)}); its outputs are unknown`);
    return undefined;
  }
}
