import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chartSeries, escapeXml, gradientPathChart, headline, niceTicks, ChartSeries } from '../../src/analysis/chart';
import { gradientPaths } from '../../src/analysis/gradient-path';
import { isGptError } from '../../src/errors';
import { syntheticResNet } from '../synthetic';

/** Tags balance (a tiny checker: elements, self-closing tags, the XML declaration skipped). */
function balanced(svg: string): { ok: boolean; why?: string; count: number } {
  const stack: string[] = [];
  let count = 0;
  const re = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/g;
  const stripped = svg.replace(/^<\?xml[^>]*\?>/, '');
  let last = 0;
  for (let m; (m = re.exec(stripped)); ) {
    // nothing tag-like may hide between tags
    if (/[<>]/.test(stripped.slice(last, m.index))) return { ok: false, why: `stray markup before ${m[0]}`, count };
    last = re.lastIndex;
    count++;
    const [, close, name, , self] = m;
    if (self) continue;
    if (!close) stack.push(name);
    else if (stack.pop() !== name) return { ok: false, why: `</${name}> closes the wrong element`, count };
  }
  if (/[<>]/.test(stripped.slice(last))) return { ok: false, why: 'stray markup at the end', count };
  return stack.length === 0 ? { ok: true, count } : { ok: false, why: `unclosed ${stack.join(', ')}`, count };
}

function polylines(svg: string): { cls: string; points: number }[] {
  return [...svg.matchAll(/<polyline class="(\w+)"[^>]*points="([^"]*)"/g)].map((m) => ({
    cls: m[1],
    points: m[2].trim().split(/\s+/).length,
  }));
}

const plain: ChartSeries = {
  label: 'plain <ResNet> & "co"',
  layers: Array.from({ length: 10 }, (_, i) => ({ order: i, shortest: 2 + (i % 2), longest: 11 - i })),
  stages: [{ name: 'stage <1>', start: 0, end: 4 }, { name: 'stage 2', start: 5, end: 9 }],
};
const prn: ChartSeries = {
  label: "PRN 'half'",
  layers: Array.from({ length: 12 }, (_, i) => ({ order: i, shortest: 2, longest: 13 - i })),
  stages: [{ name: 'a', start: 0, end: 5 }, { name: 'b', start: 6, end: 11 }],
};

test('two series on one well-formed, self-contained chart', () => {
  const svg = gradientPathChart([plain, prn], { title: 'plain vs PRN' });
  const b = balanced(svg);
  assert.ok(b.ok, b.why);
  assert.ok(svg.startsWith('<?xml'));
  assert.match(svg, /<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  // no external references: no links, images, scripts, styles from elsewhere
  assert.not.match(svg, /href|<image|<script|url\(|@import/);
  // both labels, escaped; the raw forms never appear
  assert.ok(svg.includes('plain &lt;ResNet&gt; &amp; &quot;co&quot;'));
  assert.ok(svg.includes('PRN &#39;half&#39;'));
  assert.not.ok(svg.includes('<ResNet>'));
  assert.ok(svg.includes('stage &lt;1&gt;'));
  // one shortest and one longest line per series, one vertex per layer
  assert.equal(polylines(svg), [
    { cls: 'longest', points: 10 },
    { cls: 'shortest', points: 10 },
    { cls: 'longest', points: 12 },
    { cls: 'shortest', points: 12 },
  ]);
  // legend: a solid and a dashed sample per series
  assert.is((svg.match(/: longest</g) ?? []).length, 2);
  assert.is((svg.match(/: shortest</g) ?? []).length, 2);
});

test('vertices follow execution order and the y axis grows upwards', () => {
  const shuffled: ChartSeries = { label: 's', layers: [{ order: 2, shortest: 1, longest: 1 }, { order: 0, shortest: 3, longest: 3 }, { order: 1, shortest: 2, longest: 2 }] };
  const svg = gradientPathChart([shuffled]);
  const pts = /class="longest"[^>]*points="([^"]*)"/.exec(svg)![1].split(' ').map((p) => p.split(',').map(Number));
  assert.ok(pts[0][0] < pts[1][0] && pts[1][0] < pts[2][0], 'x increases with order');
  assert.ok(pts[0][1] < pts[1][1] && pts[1][1] < pts[2][1], 'a longer path is drawn higher (smaller y)');
});

test('a report converts to a series with its stages', () => {
  // synthetic N = 2: 6 weight layers; the stage "blocks" holds the 4 block convs (orders 1-4)
  const model = syntheticResNet(2);
  const blockNodes = model.graph.nodes.filter((n) => n.name.startsWith('b')).map((n) => n.name);
  const s = chartSeries('synthetic', gradientPaths(model, { stages: [{ name: 'blocks', nodes: blockNodes }] }));
  assert.is(s.layers.length, 6);
  assert.equal(s.stages, [{ name: 'blocks', start: 1, end: 4 }]);
  const svg = gradientPathChart([s]);
  assert.ok(balanced(svg).ok);
  assert.equal(polylines(svg).map((p) => p.points), [6, 6]);
  assert.ok(svg.includes('>blocks</text>'));
});

test('edge cases: a single layer gets a dot; no series still gives a valid chart; NaN is refused', () => {
  const one = gradientPathChart([{ label: 'one', layers: [{ order: 0, shortest: 1, longest: 1 }] }]);
  assert.ok(balanced(one).ok);
  assert.is((one.match(/<circle/g) ?? []).length, 2);
  const none = gradientPathChart([]);
  assert.ok(balanced(none).ok);
  assert.equal(polylines(none), []);
  try {
    gradientPathChart([{ label: 'bad', layers: [{ order: 0, shortest: NaN, longest: 1 }] }]);
    assert.unreachable('NaN must be refused');
  } catch (e) {
    assert.ok(isGptError(e) && e.code === 'E_ARG');
  }
});

test('niceTicks: steps of 1, 2 or 5 x 10^k that reach the maximum, for every chart (no 6.25 / 18.75 / 37.5 / 112.5)', () => {
  for (const max of [0.037, 0.9, 1, 6.25, 18.75, 37.5, 53, 112.5, 999, 9285.115904, 1.2e7]) {
    const t = niceTicks(max);
    const mantissa = t.step / 10 ** Math.floor(Math.log10(t.step) + 1e-9);
    assert.ok([1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-9), `step ${t.step} for ${max}`);
    assert.ok(t.max >= max && t.max - t.step < max, `last tick ${t.max} covers ${max} with no spare step`);
    assert.is(t.ticks[0], 0);
    t.ticks.forEach((v, i) => assert.ok(Math.abs(v - i * t.step) < t.step * 1e-9, `tick ${v}`));
    assert.ok(t.ticks.length >= 3 && t.ticks.length <= 11, `${t.ticks.length} ticks for ${max}`);
  }
  assert.equal(niceTicks(53, 6, true).ticks, [0, 10, 20, 30, 40, 50, 60]);
  assert.equal(niceTicks(0.3, 3).ticks, [0, 0.1, 0.2, 0.3]);
  assert.is(niceTicks(3, 10, true).step, 1, 'layer indices step by whole layers');
  // negative: nothing to scale still gives an axis
  assert.equal(niceTicks(0).ticks.length > 1, true);
});

test('aligned by stage: stage k of every series sits over the same band, whatever its layer count', () => {
  // plain: 2 + 2 layers in stages a, b; other: 1 + 5 layers
  const a: ChartSeries = { label: 'a', layers: [0, 1, 2, 3].map((o) => ({ order: o, shortest: 1, longest: 4 - o })), stages: [{ name: 'a', start: 0, end: 1 }, { name: 'b', start: 2, end: 3 }] };
  const b: ChartSeries = { label: 'b', layers: [0, 1, 2, 3, 4, 5].map((o) => ({ order: o, shortest: 1, longest: 6 - o })), stages: [{ name: 'a', start: 0, end: 0 }, { name: 'b', start: 1, end: 5 }] };
  const svg = gradientPathChart([a, b]);
  const strips = [...svg.matchAll(/<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)" height="14"/g)].map((m) => [Number(m[1]), Number(m[1]) + Number(m[2])]);
  assert.is(strips.length, 2, 'one shared strip: a band per stage');
  const xs = [...svg.matchAll(/class="longest"[^>]*points="([^"]*)"/g)].map((m) => m[1].split(' ').map((p) => Number(p.split(',')[0])));
  const inside = (x: number, band: number[]) => x > band[0] && x < band[1];
  assert.ok(xs[0].slice(0, 2).every((x) => inside(x, strips[0])) && xs[0].slice(2).every((x) => inside(x, strips[1])), `a: ${xs[0]}`);
  assert.ok(inside(xs[1][0], strips[0]) && xs[1].slice(1).every((x) => inside(x, strips[1])), `b: ${xs[1]}`);
  // negative: without stages the x axis is the layer index, with numbered ticks
  const plainSvg = gradientPathChart([{ label: 'a', layers: a.layers }, { label: 'b', layers: b.layers }]);
  assert.match(plainSvg, /weight layer \(execution order\)/);
  assert.not.match(plainSvg, /aligned by stage/);
});

test('the headline: max shortest and longest path of each series, in order', () => {
  assert.is(headline([plain, prn]), 'max shortest gradient path 3 -> 2, longest 11 -> 13 (plain <ResNet> & "co" -> PRN \'half\')');
  assert.is(headline([plain]), 'max shortest gradient path 3, longest 11');
  assert.is(headline([]), '');
});

test('an identical series is drawn dotted and says whose twin it is; a different one is not', () => {
  const svg = gradientPathChart([plain, { ...plain, label: 'twin' }, prn]);
  assert.match(svg, /data-label="twin" data-same-as="plain &lt;ResNet&gt; &amp; &quot;co&quot;"/);
  assert.match(svg, /twin \(same as plain &lt;ResNet&gt;/);
  const dashes = [...svg.matchAll(/<g class="series"[\s\S]*?<\/g>/g)].map((g) => [...g[0].matchAll(/stroke-dasharray="([^"]*)"/g)].map((m) => m[1]).join('|'));
  assert.not.equal(dashes[1], dashes[0]);
  assert.is(dashes[2], dashes[0], 'the third series differs in its numbers, so it keeps the usual dashes');
});

test('escapeXml', () => {
  assert.is(escapeXml(`a<b>&"c'`), 'a&lt;b&gt;&amp;&quot;c&#39;');
});

test('the checker rejects unbalanced markup (negative case)', () => {
  assert.not.ok(balanced('<svg><g></svg>').ok);
  assert.not.ok(balanced('<svg><text>a < b</text></svg>').ok);
  assert.ok(balanced('<svg><g><line x1="0"/></g></svg>').ok);
});

test.run();
