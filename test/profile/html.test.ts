/**
 * The HTML report (src/report/html.ts): self-contained, and it loads in headless Chromium without
 * errors with every chart present (its inline script sets data-ok / data-error on <body>).
 * The browser check is skipped when no chromium is installed (CI installs Debian's package).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { recognize } from '../../src/analysis/structure';
import { loadModel } from '../../src/onnx/io';
import { ProfileReport, profile } from '../../src/profile';
import { gradientSeriesFor, profileHtml } from '../../src/report/html';
import { chromiumOrSkip, fixturePath, tmpDir } from '../helpers';

const files = [fixturePath('resnet18-w25.onnx'), fixturePath('vovnet39-w25.onnx')];
let report: ProfileReport;
let html: string;

test.before(async () => {
  report = await profile(files, { warmup: 1, iterations: 5, perNode: true });
  const series = files.map((f) => {
    const m = loadModel(f);
    return gradientSeriesFor(path.basename(f), m, recognize(m));
  });
  html = profileHtml(report, { gradientSeries: series.filter((s) => s !== null) });
});

test('self-contained: no external resource, every chart inline', () => {
  assert.not.match(html, /<(link|img|iframe)\b/i);
  assert.not.match(html, /\bsrc=/i);
  const urls = html.match(/https?:\/\/[^\s"'<>)]+/g) ?? [];
  assert.ok(urls.every((u) => u === 'http://www.w3.org/2000/svg'), `only the SVG namespace: ${urls.join(' ')}`);
  for (const c of ['latency', 'stages', 'macs-latency', 'gradient-paths']) assert.ok(html.includes(`data-chart="${c}"`), c);
  // one MACs-vs-latency point per model
  assert.is((html.match(/data-point=/g) ?? []).length, 2);
});

test('loads in headless Chromium without errors, charts present', () => {
  const chromium = chromiumOrSkip('HTML report in a browser');
  if (!chromium) return;
  const dir = tmpDir('gpt-html-');
  const file = path.join(dir, 'report.html');
  fs.writeFileSync(file, html);
  const r = spawnSync(chromium, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${path.join(dir, 'profile')}`, '--dump-dom', `file://${file}`,
  ], { encoding: 'utf8', timeout: 60_000 });
  const body = /<body[^>]*>/.exec(r.stdout ?? '')?.[0] ?? '';
  assert.ok(body, `chromium printed no DOM (status ${r.status}): ${(r.stderr ?? '').slice(-300)}`);
  assert.not.match(body, /data-error/, body);
  assert.match(body, /data-ok="1"/);
  assert.ok(Number(/data-charts="(\d+)"/.exec(body)?.[1]) >= 4, body);
  assert.match(r.stdout, /<svg[^>]*data-chart="gradient-paths"/);
});

test('negative: a page missing a chart says so', () => {
  const broken = html.replace('data-chart="stages"', 'data-chart="nothing"');
  const chromium = chromiumOrSkip('HTML report in a browser');
  if (!chromium) return;
  const dir = tmpDir('gpt-html-');
  const file = path.join(dir, 'broken.html');
  fs.writeFileSync(file, broken);
  const r = spawnSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${path.join(dir, 'profile')}`, '--dump-dom', `file://${file}`], { encoding: 'utf8', timeout: 60_000 });
  assert.match(r.stdout, /data-error="missing charts: stages"/);
});

test.run();
