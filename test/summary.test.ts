/** test/summary.ts: the runner's counts from uvu's output, skips counted as skips. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SKIP_MARKER } from './helpers';
import { summaryLine, tally } from './summary';

const uvu = (total: number, passed: number, skipped: number) => `\n  Total:     ${total}\n  Passed:    ${passed}\n  Skipped:   ${skipped}\n  Duration:  3.2ms\n`;

test('a test that called skipTest() is a skip, not a pass', () => {
  const out = `• •\n${SKIP_MARKER} chromium is not installed\n${uvu(3, 3, 0)}`;
  assert.equal(tally(out, 0), { passed: 2, failed: 0, skipped: 1 });
});

test('negative: no marker, every passed test is a pass; a marker in the middle of a line is not a skip', () => {
  assert.equal(tally(`• • •\n  note ${SKIP_MARKER} x\n${uvu(3, 3, 0)}`, 0), { passed: 3, failed: 0, skipped: 0 });
});

test("uvu's own test.skip counts, failures are total - passed - skipped", () => {
  assert.equal(tally(uvu(5, 2, 1), 1), { passed: 2, failed: 2, skipped: 1 });
});

test('a crash outside the suites (no totals, non-zero exit) is one failure', () => {
  assert.equal(tally('TypeError: boom', 1), { passed: 0, failed: 1, skipped: 0 });
});

test('the summary line always names the skipped count, even zero', () => {
  assert.is(summaryLine({ passed: 4, failed: 0, skipped: 0 }), '4 passed, 0 failed, 0 skipped');
  assert.match(summaryLine({ passed: 4, failed: 1, skipped: 2 }), /^\d+ passed, \d+ failed, \d+ skipped$/);
});

test.run();
