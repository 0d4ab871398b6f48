/**
 * withFile: an error from a step on one model file names that file first, once, in the user's
 * spelling, whether the library named it by the resolved path (model.sourcePath) or not at all.
 */
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withFile } from '../../src/cli/base';
import { GptError } from '../../src/errors';

function subjectOf(file: string, subject: string | undefined): string | undefined {
  try {
    withFile(file, () => {
      throw new GptError('E_PATTERN', 'nothing to convert', { subject });
    });
  } catch (e) {
    return (e as GptError).subject;
  }
  throw new Error('withFile did not rethrow');
}

test('the resolved path of the same file is replaced by the file as typed, with what follows it', () => {
  assert.is(subjectOf('m.onnx', path.resolve('m.onnx')), 'm.onnx');
  assert.is(subjectOf('../x/m.onnx', `${path.resolve('../x/m.onnx')}: node 'c1'`), "../x/m.onnx: node 'c1'");
  assert.is(subjectOf('m.onnx', 'm.onnx'), 'm.onnx');
  assert.is(subjectOf('m.onnx', undefined), 'm.onnx');
  assert.is(subjectOf('m.onnx', "node 'c1'"), "m.onnx: node 'c1'");
});

test('negative: another file, or a name that only starts like the file, is kept after the file', () => {
  assert.is(subjectOf('m.onnx', path.resolve('other.onnx')), `m.onnx: ${path.resolve('other.onnx')}`);
  assert.is(subjectOf('m.onnx', `${path.resolve('m.onnx')}.data`), `m.onnx: ${path.resolve('m.onnx')}.data`);
});

test.run();
