/** Deep copies of a model, for convert()'s copy and for a pass's dry run. */
import type { Model } from '../ir/model';
import { loadModel, saveModelToBuffer } from '../onnx/io';

/** A deep copy (through the wire format: lossless, and tensors stay views of one buffer). */
export function cloneModel(model: Model): Model {
  const copy = loadModel(saveModelToBuffer(model), { baseDir: model.baseDir });
  copy.sourcePath = undefined;
  return copy;
}
