/** The demo's progress weights (samples/demo-cost.ts), by hand: prep ~ params x models, profile ~ MACs x models x runs. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { demoWeights, PREP_S_PER_MPARAM, RUN_S_PER_GMAC, runsPerModel } from '../../samples/demo-cost';
import { assertNear } from '../helpers';

test('runs per model: warm-up, timed, the per-node profile\'s warm-up and runs', () => {
  assert.is(runsPerModel(20), 3 + 20 + 3 + 20);
  assert.is(runsPerModel(5), 3 + 5 + 3 + 5);
  assert.is(runsPerModel(1), 1 + 1 + 1 + 1);
  assert.is(runsPerModel(50), 3 + 50 + 3 + 20); // the per-node profile stops at 20
});

test('weights: two per family, prep then profile', () => {
  // Darknet-53 at 256: 41.6 M params, 9.29 GMACs, 4 models, 20 runs
  const w = demoWeights([{ params: 41.6e6, macs: 9.29e9, models: 4, runs: 20 }, { params: 1e6, macs: 1e9, models: 3, runs: 5 }]);
  assert.is(w.length, 4);
  assertNear(w[0], 41.6 * 4 * PREP_S_PER_MPARAM, 1e-9);
  assertNear(w[1], 9.29 * 4 * 46 * RUN_S_PER_GMAC, 1e-9);
  assertNear(w[3], 1 * 3 * 16 * RUN_S_PER_GMAC, 1e-9);
});

test('negative: no family, no weight', () => {
  assert.equal(demoWeights([]), []);
});

test.run();
