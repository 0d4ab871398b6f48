import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chartSeries, escapeXml, gradientPathChart, ChartSeries } from '../../src/analysis/chart';
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

test('escapeXml', () => {
  assert.is(escapeXml(`a<b>&"c'`), 'a&lt;b&gt;&amp;&quot;c&#39;');
});

test('the checker rejects unbalanced markup (negative case)', () => {
  assert.not.ok(balanced('<svg><g></svg>').ok);
  assert.not.ok(balanced('<svg><text>a < b</text></svg>').ok);
  assert.ok(balanced('<svg><g><line x1="0"/></g></svg>').ok);
});

test.run();
