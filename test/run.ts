/**
 * Runs every *.test.js under dist/test (each file is also runnable alone with node) and ends with the
 * line "N passed, N failed" so a run that executed no test is visible.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

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
let passed = 0;
let failed = 0;
let skipped = 0;
const failedFiles: string[] = [];
for (const file of files) {
  const rel = path.relative(__dirname, file);
  const started = Date.now();
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' }, maxBuffer: 64 << 20 });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  const total = Number(/Total:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const ok = Number(/Passed:\s+(\d+)/.exec(out)?.[1] ?? 0);
  const skip = Number(/Skipped:\s+(\d+)/.exec(out)?.[1] ?? 0);
  let bad = total - ok - skip;
  if (r.status !== 0 && bad === 0) bad = 1; // a crash before or after the suites counts as a failure
  passed += ok;
  failed += bad;
  skipped += skip;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`${bad ? 'FAIL' : 'ok  '} ${rel}  ${ok}/${total}  ${secs}s`);
  if (bad) {
    failedFiles.push(rel);
    console.log(out.split('\n').map((l) => '    ' + l).join('\n'));
  }
}
if (failedFiles.length) console.log(`\nfailed: ${failedFiles.join(', ')}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
