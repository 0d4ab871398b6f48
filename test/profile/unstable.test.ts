/**
 * An unstable run (recorded samples, see test/fixtures/recorded-samples.ts) is reported in all three
 * outputs: one line per finding on stderr, the JSON `warnings`, and a banner in the HTML; a steady
 * recorded run has none of them. The ratio in every table is p50 / p50 of the columns beside it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatProfileReport } from '../../src/commands/profile';
import { Measured, setSampleSource } from '../../src/profile/measure';
import { profile, validateProfileReport } from '../../src/profile';
import { profileHtml } from '../../src/report/html';
import { RECORDED_BASELINE, RECORDED_MODEL, recorded } from '../fixtures/recorded-samples';
import { fixturePath, repoRoot, tmpDir, assertNear } from '../helpers';

const r18 = fixturePath('resnet18-w25.onnx');
const preload = path.join(__dirname, '..', 'fixtures', 'recorded-samples.js');
setSampleSource(null); // the import above installed the recorded source; each test sets its own

test('library: the budget, the cv and the wide interval are in warnings; the ratio is p50 / p50', async () => {
  setSampleSource(recorded);
  const r = await profile([r18, r18], { labels: ['plain', 'conv'], maxTimeS: 5 });
  setSampleSource(null);
  validateProfileReport(JSON.parse(JSON.stringify(r)));
  const conv = r.models[1].runs[0];
  assert.is(conv.stoppedBy, 'budget');
  // p50 of the recorded model: sorted 8 9 9 10 11 12 13 22 25 27 28 30 -> (12 + 13) / 2 = 12.5; baseline 10
  assertNear(conv.latencyMs.p50, 12.5, 1e-12);
  assertNear(r.models[0].runs[0].latencyMs.p50, 10, 1e-12);
  assertNear(conv.vsBaseline!.latencyRatio, 1.25, 1e-12);
  const unstable = r.warnings.filter((w) => w.startsWith('unstable: conv, batch 1'));
  assert.ok(unstable.some((w) => /budget ran out.*try --max-time 10/.test(w)), r.warnings.join('\n'));
  assert.ok(unstable.some((w) => /cv \d+\.\d% over 10\.0%/.test(w)), r.warnings.join('\n'));
  assert.ok(r.warnings.some((w) => /^inconclusive: conv, batch 1: .*contains 1\.0/.test(w)), r.warnings.join('\n'));
  assert.not.ok(r.warnings.some((w) => w.startsWith('unstable: plain')), 'the steady baseline is not unstable');
  assert.is(r.environment.loadavg.start.length, 3);
  assert.is(r.settings.ratioMethod, 'ratio of medians, 95% bootstrap CI');

  const html = profileHtml(r);
  assert.match(html, /<div class="banner" data-banner="unstable"><p>unstable: conv, batch 1: the 5 s budget/);
  const text = formatProfileReport(r);
  assert.match(text, /conv .* 12\.50 .* 1\.250x \[/);
});

test('library: a steady recorded run has no warning and no banner', async () => {
  const steady = async (t: { run: () => Promise<unknown> }[]): Promise<Measured> => {
    for (const x of t) await x.run();
    return { samples: [RECORDED_BASELINE, RECORDED_BASELINE.map((v) => v * 0.8)], stoppedBy: 'precision', halfWidth: 0.001 };
  };
  setSampleSource(steady);
  const r = await profile([r18, r18], { labels: ['plain', 'conv'] });
  setSampleSource(null);
  assert.equal(r.warnings, []);
  assertNear(r.models[1].runs[0].vsBaseline!.latencyRatio, 0.8, 1e-12);
  assert.not.match(profileHtml(r), /data-banner/);
});

test('CLI: one stderr line per finding, the same in --json warnings and the --html banner', () => {
  const dir = tmpDir('gpt-unstable-');
  const html = path.join(dir, 'r.html');
  const run = (...extra: string[]) => spawnSync(process.execPath, ['-r', preload, path.join(repoRoot, 'bin', 'run.js'), 'profile', r18, r18, '--max-time', '5', ...extra], { encoding: 'utf8', timeout: 120_000 });
  const plain = run('--html', html);
  assert.is(plain.status, 0, plain.stderr);
  const lines = plain.stderr.trim().split('\n');
  assert.ok(lines.some((l) => /^gpt: warning: unstable: resnet18-w25\.onnx, batch 1: the 5 s budget ran out .*; try --max-time 10/.test(l)), plain.stderr);
  assert.ok(lines.some((l) => /^gpt: warning: unstable: .*cv .* over 10\.0%/.test(l)), plain.stderr);
  assert.ok(lines.some((l) => /^gpt: warning: inconclusive: .*contains 1\.0/.test(l)), plain.stderr);
  assert.match(fs.readFileSync(html, 'utf8'), /data-banner="unstable"><p>unstable: resnet18-w25\.onnx, batch 1: the 5 s budget ran out/);
  const json = run('--json');
  assert.is(json.status, 0, json.stderr);
  const doc = JSON.parse(json.stdout);
  validateProfileReport(doc);
  assert.equal(doc.warnings.filter((w: string) => /^(unstable|inconclusive):/.test(w)).length, lines.length);
  assert.is(json.stderr, ''); // --json: the warnings are in the document, nothing on stderr
  void RECORDED_MODEL;
});

test.run();
