/**
 * PRN's masked residual in its mask form multiplies the shortcut by a constant 0/1 tensor with one
 * value per channel. The matcher (rules' `constant: 'binaryMask'`) and the gradient-path analysis
 * (zeroed channels pass no gradient) both read it through this one definition.
 */
import type { Tensor } from '../ir/tensor';

/** Masks this large are not a channel mask (and are not decoded). */
const MAX_MASK_ELEMENTS = 1 << 16;

/** The tensor as a per-channel 0/1 mask (true = kept), or null: at most one dimension above 1, only 0s and 1s. */
export function channelMaskValues(t: Tensor): boolean[] | null {
  if (t.size > MAX_MASK_ELEMENTS || t.dims.filter((d) => d > 1).length > 1) return null;
  const xs = t.numbers();
  return xs.every((x) => x === 0 || x === 1) ? xs.map((x) => x === 1) : null;
}
