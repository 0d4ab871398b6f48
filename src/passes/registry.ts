/** The passes convert() can run, by target: adding a target is one entry here and its pass file. */
import { cspPass } from './csp-pass';
import { elanPass } from './elan';
import type { ConvertTarget } from './options';
import type { AnyPass } from './pass';
import { prnPass } from './prn';

export const PASSES: Record<ConvertTarget, AnyPass> = { prn: prnPass, csp: cspPass, elan: elanPass };
