/** The passes convert() can run, by target: adding a target is one entry here and its pass file. */
import { cspPass } from './csp-pass';
import { elanPass } from './elan';
import type { ConvertTarget } from './options';
import type { AnyPass } from './pass';
import { withNeck } from './neck';
import { prnPass } from './prn';

// CSP and ELAN convert a detector's neck too (neck.ts); PRN reaches every residual Add already
export const PASSES: Record<ConvertTarget, AnyPass> = {
  prn: prnPass,
  csp: withNeck(cspPass, (o) => ({ to: 'csp', split: o.split as number, fusion: o.fusion as 'both' })),
  elan: withNeck(elanPass, (o) => ({ to: 'elan', stack: o.stack as number, width: o.width as number })),
};
