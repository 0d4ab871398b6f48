/**
 * gpt export --to pytorch on every model of ../shared/fixtures and its PRN / CSP / ELAN forms: eval outputs
 * equal onnxruntime's, one SGD step trains, torch.onnx.export reads back with the same params and MACs.
 * Needs a Python with torch (counted skip without one; a failure under CI=true).
 */
import { fixtureSuite } from './harness';

// ResNet-18's PRN also in the mask form (the default is the parts form there): one mask-form ResNet
fixtureSuite('fixtures', { prnMask: ['resnet18-w25'] });
