/** `gpt verify` in the terminal: one row per output, then what was compared with what and why. */
import type { VerifyReport } from '../verify';
import { table } from './format';

const g = (x: number | null) => (x === null || !Number.isFinite(x) ? String(x) : x === 0 ? '0' : x.toExponential(2));

export function formatVerifyReport(r: VerifyReport): string {
  const out: string[] = [];
  const what = r.conversion ? `${r.conversion.target.toUpperCase()} conversion` : 'model (no recorded conversion)';
  out.push(`${r.converted} vs ${r.source}: ${what}, compared with ${r.reference === 'masked-residual' ? 'the masked-residual reference built from the source' : 'the source'}`);
  out.push(`inputs: ${r.inputs.map((i) => `${i.name} [${i.dims.join('x')}] (${i.from})`).join(', ')}`);
  out.push('');
  const prn = r.outputs.some((o) => o.vsSource);
  out.push(table(['output', 'shape', 'max abs diff', 'max rel diff', 'cosine', 'tolerance', r.expectation === 'exact' ? 'exact' : 'within tol.', ...(prn ? ['vs source: max abs', 'cosine'] : [])],
    r.outputs.map((o) => [o.name, o.dims.join('x'), g(o.maxAbsDiff), g(o.maxRelDiff), o.cosine.toFixed(6), g(o.tolerance), o.withinTolerance ? 'yes' : 'NO',
      ...(prn ? [g(o.vsSource?.maxAbsDiff ?? null), o.vsSource ? o.vsSource.cosine.toFixed(6) : '-'] : [])])));
  out.push('');
  for (const n of r.notes) out.push(`note: ${n}`);
  out.push(r.expectation === 'exact'
    ? (r.passed ? 'exact: every output within 1e-4 x max(1, max |expected|)' : 'NOT exact: the conversion does not compute what it should')
    : 'information only: untrained layers are expected to differ');
  return out.join('\n');
}
