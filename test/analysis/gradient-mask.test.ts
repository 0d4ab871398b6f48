/**
 * A constant 0/1 channel mask (PRN's masked residual written as `Add(B, S x m)`, convert's default
 * --emit mask) splits the gradient by channel as the Split / Concat form does: channels multiplied by
 * 0 send nothing back. By hand, on
 *
 *   x ── A (conv 8) ──┬── B (conv 8) ──── Add ── C (conv) ── head
 *                     └── Mul(m) ─────────┘        m = [1,1,1,1,0,0,0,0] (shape [8,1,1])
 *
 * A's channels 0-3 reach the head through B (A, B, C, fc: 4) and around it (A, C, fc: 3); channels
 * 4-7 only through B (4). Two groups of channels with different sets of lengths: channelGroups 2.
 * Negative: a mask that is not 0/1 (0.5) or not per channel is a plain Mul (1 group).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gradientPaths } from '../../src/analysis/gradient-path';
import { Tensor } from '../../src/ir/tensor';
import { Tiny } from '../fixtures/tiny-graph';

function net(values: number[], dims: number[]) {
  const t = new Tiny(8, 8);
  const a = t.conv(t.x, 'A', 8, 3);
  const b = t.conv(a, 'B', 8, 3);
  const m = t.g.addInitializer(Tensor.float32('m', dims, Float32Array.from(values)));
  const masked = t.op('Mul', 'mask', [a, m]);
  const c = t.conv(t.op('Add', 'add', [b, masked]), 'C', 8, 3);
  t.head(c);
  return gradientPaths(t.model()).layers.find((l) => l.name === 'A')!;
}

test('a 0/1 channel mask: the masked channels lose the shortcut path (2 groups, lengths 3 and 4)', () => {
  for (const dims of [[8, 1, 1], [1, 8, 1, 1]]) {
    const a = net([1, 1, 1, 1, 0, 0, 0, 0], dims);
    assert.equal([a.channelGroups, a.shortest, a.longest], [2, 3, 4], dims.join('x'));
  }
  // all ones: every channel has both paths, one group
  assert.is(net([1, 1, 1, 1, 1, 1, 1, 1], [8, 1, 1]).channelGroups, 1);
});

test('negative: a mask that is not 0/1, or broadcast over the width axis, is an ordinary Mul', () => {
  assert.is(net([1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5], [8, 1, 1]).channelGroups, 1);
  assert.is(net([1, 1, 1, 1, 0, 0, 0, 0], [8]).channelGroups, 1); // [8] lands on W, not on channels
});

test.run();
