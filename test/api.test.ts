/** The package's entry point exposes the documented API (README "API" section) and it works end to end. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as gpt from '../src';
import { fixturePath } from './helpers';

test('the README example runs: load, inspect, analyze, convert', () => {
  const model = gpt.loadModel(fixturePath('resnet18-w25.onnx'));
  assert.is(gpt.inspect(model).params, 702186);
  assert.is(gpt.analyze(model).gradientPaths.maxShortest, 6);
  const { model: prn, report } = gpt.convert(model, { to: 'prn', ratio: 0.5 });
  assert.is(report.converted.length, 8);
  assert.instance(prn, gpt.Model);
  assert.ok(gpt.saveModelToBuffer(prn).length > 0);
  for (const name of ['saveModel', 'profile', 'buildSample', 'recognize', 'gradientPaths', 'costModel', 'inferShapes', 'loadRules']) {
    assert.type((gpt as Record<string, unknown>)[name], 'function', name);
  }
});

test('errors are typed', () => {
  try {
    gpt.loadModel(Buffer.alloc(0));
    assert.unreachable();
  } catch (e) {
    assert.ok(gpt.isGptError(e));
    assert.is((e as gpt.GptError).code, 'E_EMPTY');
  }
});

test.run();
