/** The progress bar (src/cli/progress.ts): ETA by hand, nothing before 2 s, nothing when disabled (piped / --json). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatEta, progressBar, progressLine, steps } from '../../src/cli/progress';

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

test('a terminal that reports 0 columns (a pty without a window size) gets a 99-column line, not a crash', () => {
  let t = 0;
  const writes: string[] = [];
  const bar = progressBar(true, { columns: 0, write: (x: string) => void writes.push(x) } as unknown as NodeJS.WriteStream, () => t);
  t = 3000;
  bar.update(0.5, 'x');
  bar.done();
  assert.is(writes[0].length, 1 + 99);
  assert.is(writes[1], `\r${' '.repeat(99)}\r`);
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

test('steps: the fraction is the weight done; the ETA follows the work left, not the steps left', () => {
  let t = 0;
  const { writes, stream } = fakeStream();
  const s = steps(progressBar(true, stream, () => t), [1, 3]);
  s.next('loading');
  assert.is(writes.length, 0); // under 2 s: nothing
  t = 3000;
  s.next('converting');
  // 1 of 4 done after 3 s: 3 x (3/4) / (1/4) = 9 s left
  assert.match(writes[0], /^\r\[#+\.+\]  25%, 9 s left converting \(2\/2\)/);
  t = 5000;
  s.within(0.5);
  // 1 + 1.5 of 4 after 5 s: 5 x 0.375 / 0.625 = 3 s left; the step's label stays
  assert.match(writes[1], /  63%, 3 s left converting \(2\/2\)/);
  s.done();
  assert.match(writes[2], /^\r +\r$/);
});

test('steps: one step carries no "(1/1)"; within() is clamped to the step', () => {
  let t = 0;
  const { writes, stream } = fakeStream();
  const s = steps(progressBar(true, stream, () => t), [2]);
  s.next('verify');
  t = 4000;
  s.within(0.5, 'running a.onnx');
  assert.match(writes[0], /  50%, 4 s left running a\.onnx\s*$/);
  t = 4200;
  s.within(7, 'comparing');
  assert.match(writes[1], /\[#+\] 100% comparing\s*$/);
});

test('negative: steps over a disabled bar write nothing', () => {
  let t = 0;
  const { writes, stream } = fakeStream();
  const s = steps(progressBar(false, stream, () => t), [1, 1]);
  s.next('a');
  t = 5000;
  s.next('b');
  s.within(0.5);
  s.done();
  assert.equal(writes, []);
});

test.run();
