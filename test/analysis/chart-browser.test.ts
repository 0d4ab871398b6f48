/**
 * Every chart gpt draws, rendered by headless Chromium: no text box leaves its SVG and no two text
 * boxes overlap (a DOM check in the page, with the boxes as the browser laid them out), and a
 * screenshot of the page has the size asked for. Charts: the gradient-path chart by layer index, by
 * stage (plain Darknet-53 against its ELAN form), with an identical series, and the HTML report's
 * latency, per-stage and MACs-vs-latency charts (also with MACs in the billions).
 * Without chromium the browser tests are counted skips; under CI=true they fail.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { analyzeModel } from '../../src/analysis/analyze';
import { ChartSeries, chartSeries, gradientPathChart } from '../../src/analysis/chart';
import { loadModel } from '../../src/onnx/io';
import { convert } from '../../src/passes/convert';
import { ProfileReport, profile } from '../../src/profile';
import { profileHtml } from '../../src/report/html';
import { chromiumOrSkip, fixturePath, tmpDir } from '../helpers';

const dir = tmpDir('gpt-chart-browser-');

/** The page script: every text box against its SVG's box and against every other text box in it. */
const CHECK = `
const problems = [];
for (const svg of document.querySelectorAll('svg')) {
  const name = svg.getAttribute('data-chart') || svg.getAttribute('data-name') || '?';
  const s = svg.getBoundingClientRect();
  const boxes = [...svg.querySelectorAll('text')].filter((t) => t.textContent.trim()).map((t) => ({ t: t.textContent.trim(), r: t.getBoundingClientRect() }));
  for (const b of boxes) {
    if (b.r.left < s.left - 0.5 || b.r.right > s.right + 0.5 || b.r.top < s.top - 0.5 || b.r.bottom > s.bottom + 0.5) problems.push(name + ': "' + b.t + '" leaves the chart');
  }
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i].r, b = boxes[j].r;
    const w = Math.min(a.right, b.right) - Math.max(a.left, b.left), h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
    if (w > 1 && h > 1) problems.push(name + ': "' + boxes[i].t + '" overlaps "' + boxes[j].t + '"');
  }
}
document.body.setAttribute('data-svgs', String(document.querySelectorAll('svg').length));
document.body.setAttribute('data-problems', JSON.stringify(problems));
`;

function page(svgs: string[]): string {
  const inline = svgs.map((s) => `<figure>${s.replace(/^<\?xml[^>]*\?>\s*/, '')}</figure>`).join('\n');
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><style>body{margin:0;font-family:sans-serif} figure{margin:8px}</style></head><body>${inline}<script>${CHECK}</script></body></html>`;
}

/** Load a page in Chromium; the problems its script found, and how many SVGs it saw. */
function check(chromium: string, html: string, name: string): { svgs: number; problems: string[] } {
  const file = path.join(dir, `${name}.html`);
  fs.writeFileSync(file, html);
  const r = spawnSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
    `--user-data-dir=${path.join(dir, `profile-${name}`)}`, '--dump-dom', `file://${file}`], { encoding: 'utf8', timeout: 90_000 });
  const body = /<body[^>]*data-svgs="(\d+)"[^>]*data-problems="([^"]*)"/.exec(r.stdout ?? '');
  assert.ok(body, `chromium printed no checked DOM (status ${r.status}): ${(r.stderr ?? '').slice(-300)}`);
  const unescape = (x: string) => x.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
  return { svgs: Number(body![1]), problems: JSON.parse(unescape(body![2])) };
}

/** Width and height from a PNG's IHDR chunk. */
function pngSize(file: string): { width: number; height: number } {
  const b = fs.readFileSync(file);
  assert.equal([...b.subarray(1, 4)], [0x50, 0x4e, 0x47], 'a PNG');
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

let svgs: string[] = [];
let html = '';

test.before(async () => {
  const dk = loadModel(fixturePath('darknet53-w25.onnx'));
  const plain = chartSeries('darknet53-w25', analyzeModel(dk).gradient);
  const { model: elan } = convert(loadModel(fixturePath('darknet53-w25.onnx')), { to: 'elan' });
  const elanSeries = chartSeries('darknet53-w25 ELAN', analyzeModel(elan).gradient);
  const byIndex: ChartSeries[] = [plain, elanSeries].map((s) => ({ label: s.label, layers: s.layers }));
  const r18 = chartSeries('resnet18-w25', analyzeModel(loadModel(fixturePath('resnet18-w25.onnx'))).gradient);
  svgs = [
    gradientPathChart([plain, elanSeries], { title: 'Gradient paths per weight layer: darknet53-w25 -> ELAN' }),
    gradientPathChart(byIndex, { title: 'by layer index' }),
    gradientPathChart([r18, { ...r18, label: 'resnet18-w25 PRN' }], { title: 'identical series' }),
    gradientPathChart([plain], { width: 480, height: 320, title: 'a small chart' }),
  ].map((s, i) => s.replace('<svg', `<svg data-name="gradient-${i}"`));
  const files = [fixturePath('resnet18-w25.onnx'), fixturePath('vovnet39-w25.onnx')];
  const report: ProfileReport = await profile(files, { warmup: 1, iterations: 5, perNode: true, labels: ['resnet18-w25', 'vovnet39-w25'] });
  html = profileHtml(report, { gradientSeries: [r18] });
  // the same report with MACs in the billions: the axis is then in GMACs
  const big: ProfileReport = JSON.parse(JSON.stringify(report));
  for (const m of big.models) for (const run of m.runs) run.macs *= 10_000;
  svgs.push(/<svg[^>]*data-chart="macs-latency"[\s\S]*?<\/svg>/.exec(profileHtml(big))![0].replace('data-chart="macs-latency"', 'data-chart="macs-latency-G"'));
});

test('the charts say what they show: GMACs for billions, the headline, "same as" for a hidden twin', () => {
  assert.match(svgs[4], />GMACs</);
  assert.not.match(svgs[4], /MACs \(millions\)/);
  assert.match(html, />MMACs</);
  assert.match(svgs[0], /class="headline"[^>]*>max shortest gradient path \d+ -&gt; \d+, longest \d+ -&gt; \d+/);
  assert.match(svgs[2], /data-same-as="resnet18-w25"/);
  assert.match(svgs[2], /resnet18-w25 PRN \(same as resnet18-w25\): longest/);
  // negative: two different series are not marked
  assert.not.match(svgs[0], /data-same-as/);
});

test('in Chromium, no text leaves its chart or overlaps another: every gradient-path chart', () => {
  const chromium = chromiumOrSkip('charts in a browser');
  if (!chromium) return;
  const r = check(chromium, page(svgs), 'charts');
  assert.is(r.svgs, svgs.length);
  assert.equal(r.problems, []);
});

test('in Chromium, the HTML report: every chart checked, a screenshot of the size asked for', () => {
  const chromium = chromiumOrSkip('HTML report charts in a browser');
  if (!chromium) return;
  const withCheck = html.replace('</body>', `<script>${CHECK}</script></body>`);
  const r = check(chromium, withCheck, 'report');
  assert.ok(r.svgs >= 4, `latency, stages, MACs-latency and gradient paths: ${r.svgs}`);
  assert.equal(r.problems, []);
  const file = path.join(dir, 'report.html');
  const png = path.join(dir, 'report.png');
  const shot = spawnSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--hide-scrollbars', '--disable-background-networking', '--disable-component-update',
    `--user-data-dir=${path.join(dir, 'profile-shot')}`, '--window-size=1000,1400', `--screenshot=${png}`, `file://${file}`], { encoding: 'utf8', timeout: 90_000 });
  assert.ok(fs.existsSync(png), `no screenshot (status ${shot.status}): ${(shot.stderr ?? '').slice(-300)}`);
  assert.equal(pngSize(png), { width: 1000, height: 1400 });
  assert.ok(fs.statSync(png).size > 20_000, 'the screenshot has content, not a blank page');
});

test('negative: the page check reports a label outside the chart and two labels on top of each other', () => {
  const chromium = chromiumOrSkip('charts in a browser');
  if (!chromium) return;
  const bad = '<svg xmlns="http://www.w3.org/2000/svg" data-name="bad" width="200" height="100" viewBox="0 0 200 100">' +
    '<text x="180" y="50">far too long a label</text><text x="10" y="20">one</text><text x="12" y="22">two</text></svg>';
  const r = check(chromium, page([bad]), 'bad');
  assert.ok(r.problems.some((p) => p.includes('"far too long a label" leaves the chart')), r.problems.join('; '));
  assert.ok(r.problems.some((p) => p.includes('"one" overlaps "two"')), r.problems.join('; '));
});

test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
test.run();
