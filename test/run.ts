/**
 * Runs every *.test.js under dist/test (each file is also runnable alone with node) and ends with the
 * line "N passed, N failed, N skipped" (test/summary.ts) so a run that executed no test is visible.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { summaryLine, tally, Tally } from './summary';

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...findTests(p));
    else if (e.name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

const only = process.argv.slice(2);
const files = findTests(__dirname).filter((f) => only.length === 0 || only.some((o) => f.includes(o)));
const sum: Tally = { passed: 0, failed: 0, skipped: 0 };
const failedFiles: string[] = [];
for (const file of files) {
  const rel = path.relative(__dirname, file);
  const started = Date.now();
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' }, maxBuffer: 64 << 20 });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  const t = tally(out, r.status);
  sum.passed += t.passed;
  sum.failed += t.failed;
  sum.skipped += t.skipped;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`${t.failed ? 'FAIL' : 'ok  '} ${rel}  ${t.passed} passed${t.skipped ? `, ${t.skipped} skipped` : ''}  ${secs}s`);
  if (t.failed) {
    failedFiles.push(rel);
    console.log(out.split('\n').map((l) => '    ' + l).join('\n'));
  }
}
if (failedFiles.length) console.log(`\nfailed: ${failedFiles.join(', ')}`);
console.log(summaryLine(sum));
process.exit(sum.failed > 0 || sum.passed === 0 ? 1 : 0);
