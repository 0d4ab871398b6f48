/** The progress bar (src/cli/progress.ts): ETA by hand, nothing before 2 s, nothing when disabled (piped / --json). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatEta, progressBar, progressLine } from '../../src/cli/progress';

test('progressLine: a quarter done after 10 s leaves 30 s; an upper bound says "at most"', () => {
  assert.is(progressLine(0.25, 'timing', 10_000, false, 8), '[##......]  25%, 30 s left timing');
  assert.is(progressLine(0.5, 'x', 90_000, true, 4), '[##..]  50%, at most 1 min 30 s left x');
  assert.is(progressLine(1, 'done', 5_000, false, 4), '[####] 100% done'); // no ETA at the end
  assert.is(formatEta(7260), '2 h 1 min');
  assert.is(formatEta(NaN), '?');
});

function fakeStream() {
  const writes: string[] = [];
  return { writes, stream: { columns: 80, write: (s: string) => void writes.push(s) } as unknown as NodeJS.WriteStream };
}

test('progressBar: silent in the first 2 s, then draws; wiped when done', () => {
  let t = 0;
  const { writes, stream } = fakeStream();
  const bar = progressBar(true, stream, () => t);
  bar.update(0.1, 'a');
  assert.is(writes.length, 0);
  t = 3000;
  bar.update(0.5, 'b');
  assert.is(writes.length, 1);
  assert.match(writes[0], /^\r\[#+\.+\]  50%, 3 s left b/);
  bar.done();
  assert.match(writes[1], /^\r +\r$/);
});

test('negative: a disabled bar (stderr piped, --json, -q) writes nothing', () => {
  let t = 0;
  const { writes, stream } = fakeStream();
  const bar = progressBar(false, stream, () => t);
  t = 10_000;
  bar.update(0.5, 'b');
  bar.done();
  assert.equal(writes, []);
});

test.run();
