/**
 * gpt export --to pytorch on every model of ../shared/fixtures-realworld and its PRN / CSP / ELAN forms: eval outputs
 * equal onnxruntime's, one SGD step trains, torch.onnx.export reads back with the same params and MACs.
 * Needs a Python with torch (counted skip without one; a failure under CI=true).
 */
import { fixtureSuite } from './harness';

fixtureSuite('fixtures-realworld');
