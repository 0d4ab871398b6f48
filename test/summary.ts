/**
 * How test/run.ts counts one test file's run: uvu's own totals, with the tests that called skipTest()
 * (test/helpers.ts) moved from passed to skipped, and a crash outside the suites counted as a failure.
 */
import { SKIP_MARKER } from './helpers';

export interface Tally {
  passed: number;
  failed: number;
  skipped: number;
}

export function tally(output: string, exitStatus: number | null): Tally {
  const num = (re: RegExp) => Number(re.exec(output)?.[1] ?? 0);
  const total = num(/Total:\s+(\d+)/);
  const ok = num(/Passed:\s+(\d+)/);
  const uvuSkipped = num(/Skipped:\s+(\d+)/);
  // a skipped test returned early and so passed in uvu's count: at most every passed test is a skip
  const marked = Math.min(ok, output.split('\n').filter((l) => l.startsWith(SKIP_MARKER)).length);
  let failed = total - ok - uvuSkipped;
  if (exitStatus !== 0 && failed === 0) failed = 1;
  return { passed: ok - marked, failed, skipped: uvuSkipped + marked };
}

/** The closing line CI reads; the skipped count is always printed. */
export function summaryLine(t: Tally): string {
  return `${t.passed} passed, ${t.failed} failed, ${t.skipped} skipped`;
}
