/**
 * The profile report as one self-contained HTML page: inline CSS, inline SVG charts drawn here, and a
 * few lines of inline script that only check the page (no network, no fonts, no external files).
 *
 * Charts (each an <svg data-chart="...">): the latency distribution per model (box plot + samples),
 * per-stage time bars (with --per-node), MACs vs latency of the compared models, and the
 * gradient-path chart of src/analysis/chart.ts.
 */
import { ChartSeries, chartSeries, escapeXml, fitText, gradientPathChart, niceTicks, textWidth } from '../analysis/chart';
import { StageSpec, gradientPaths } from '../analysis/gradient-path';
import type { Structure } from '../analysis/structure-types';
import type { Model } from '../ir/model';
import type { ProfileReport } from '../profile';
import { formatRatio } from '../profile/stats';
import { perNodeExplanation, topKernels } from '../profile/node-profile';

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
const color = (i: number) => PALETTE[i % PALETTE.length];

function num(x: number, d = 3): string {
  if (!Number.isFinite(x)) return '-';
  return Math.abs(x) >= 100 ? x.toFixed(1) : Math.abs(x) >= 1 ? x.toFixed(Math.min(d, 2)) : x.toPrecision(d);
}

/** A tick value as text: no trailing zeros, no float noise (0.30000000000000004). */
function tick(v: number): string {
  return String(Number(v.toPrecision(6)));
}

/** Placed label boxes: a new label moves down (then up) until it overlaps none and stays inside the chart. */
class LabelPlacer {
  private boxes: { x0: number; y0: number; x1: number; y1: number }[] = [];
  constructor(private readonly w: number, private readonly h: number, private readonly top: number) {}
  /** Text anchored at (x, y) (baseline), to the right of x or, near the right edge, to its left. */
  place(text: string, x: number, y: number, fontSize = 11): { x: number; y: number; anchor: 'start' | 'end' } {
    const tw = textWidth(text, fontSize);
    const anchor = x + 8 + tw > this.w - 4 ? 'end' : 'start';
    const lx = anchor === 'end' ? Math.max(tw + 4, x - 8) : x + 8;
    const box = (yy: number) => (anchor === 'end' ? { x0: lx - tw, x1: lx } : { x0: lx, x1: lx + tw });
    const fits = (yy: number) => {
      const b = { ...box(yy), y0: yy - fontSize, y1: yy + 2 };
      return b.y0 >= this.top && b.y1 <= this.h && !this.boxes.some((o) => b.x0 < o.x1 && o.x0 < b.x1 && b.y0 < o.y1 && o.y0 < b.y1);
    };
    let yy = y;
    for (let k = 1; k < 40 && !fits(yy); k++) yy = y + (k % 2 ? 1 : -1) * Math.ceil(k / 2) * (fontSize + 2);
    yy = Math.min(this.h - 2, Math.max(this.top + fontSize, yy));
    this.boxes.push({ ...box(yy), y0: yy - fontSize, y1: yy + 2 });
    return { x: lx, y: yy, anchor };
  }
}

/** Box (p25..p75, whiskers min..max, p50 line, p90/p99 ticks) and the samples as dots, one row per model. */
function latencyChart(r: ProfileReport, batchIndex: number): string {
  const rows = r.models.map((m, i) => ({ label: m.label, run: m.runs[batchIndex], i })).filter((x) => x.run);
  const W = 760;
  const left = 190;
  const rowH = 44;
  const H = 40 + rows.length * rowH + 30;
  const axis = niceTicks(Math.max(...rows.map((x) => x.run.latencyMs.max)));
  const X = (v: number) => left + (v / axis.max) * (W - left - 20);
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" data-chart="latency" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img">`];
  out.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">Latency distribution, batch ${rows[0]?.run.batch ?? '?'} (ms)</text>`);
  for (const v of axis.ticks) {
    out.push(`<line x1="${X(v)}" y1="30" x2="${X(v)}" y2="${H - 28}" stroke="#ddd"/><text x="${X(v)}" y="${H - 12}" text-anchor="middle" font-size="11">${tick(v)}</text>`);
  }
  rows.forEach(({ label, run, i }, k) => {
    const y = 40 + k * rowH + rowH / 2;
    const sorted = [...run.samplesMs].sort((a, b) => a - b);
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.round((sorted.length - 1) * p)))];
    const s = run.latencyMs;
    out.push(`<text x="${left - 8}" y="${y + 4}" text-anchor="end" font-size="12">${escapeXml(fitText(label, left - 12, 12))}<title>${escapeXml(label)}</title></text>`);
    out.push(`<line x1="${X(s.min)}" y1="${y}" x2="${X(s.max)}" y2="${y}" stroke="${color(i)}"/>`);
    out.push(`<rect x="${X(q(0.25))}" y="${y - 10}" width="${Math.max(1, X(q(0.75)) - X(q(0.25)))}" height="20" fill="${color(i)}" fill-opacity="0.25" stroke="${color(i)}"><title>p25 ${num(q(0.25))} ms, p75 ${num(q(0.75))} ms</title></rect>`);
    out.push(`<line x1="${X(s.p50)}" y1="${y - 12}" x2="${X(s.p50)}" y2="${y + 12}" stroke="${color(i)}" stroke-width="2.5"><title>p50 ${num(s.p50)} ms</title></line>`);
    for (const [p, v] of [['p90', s.p90], ['p99', s.p99]] as const) out.push(`<line x1="${X(v)}" y1="${y - 6}" x2="${X(v)}" y2="${y + 6}" stroke="${color(i)}"><title>${p} ${num(v)} ms</title></line>`);
    run.samplesMs.forEach((v, j) => {
      const jitter = (((j * 2654435761) >>> 0) % 1000) / 1000 - 0.5; // deterministic spread
      out.push(`<circle cx="${X(v).toFixed(1)}" cy="${(y + 15 + jitter * 6).toFixed(1)}" r="1.6" fill="${color(i)}" fill-opacity="0.6"/>`);
    });
  });
  out.push('</svg>');
  return out.join('');
}

/** Per-stage time (ms per run, from the per-node profile), one bar group per model. */
function stageChart(r: ProfileReport, batchIndex: number): string | null {
  const per = r.models.map((m, i) => ({ label: m.label, p: m.perNode[batchIndex], i })).filter((x) => x.p);
  if (!per.length) return null;
  const stages = [...new Set(per.flatMap((x) => x.p.byStage.map((s) => s.stage)))];
  const W = 760;
  const left = 120;
  const barH = 12;
  const groupH = per.length * barH + 10;
  const H = 50 + stages.length * groupH + 30;
  const axis = niceTicks(Math.max(...per.flatMap((x) => x.p.byStage.map((s) => s.ms))), 4);
  const X = (v: number) => left + (v / axis.max) * (W - left - 30);
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" data-chart="stages" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img">`];
  out.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">Time per stage, batch ${per[0].p.batch} (ms per run)</text>`);
  // legend entries side by side, each as wide as its label, cut to fit the chart
  let lx = left;
  for (const { label, i } of per) {
    const text = fitText(label, Math.max(40, W - lx - 24));
    out.push(`<rect x="${lx}" y="26" width="10" height="10" fill="${color(i)}"/><text x="${lx + 14}" y="35" font-size="11">${escapeXml(text)}</text>`);
    lx += 14 + textWidth(text) + 16;
  }
  stages.forEach((st, si) => {
    const y0 = 46 + si * groupH;
    out.push(`<text x="${left - 8}" y="${y0 + groupH / 2}" text-anchor="end" font-size="12">${escapeXml(fitText(st, left - 12, 12))}</text>`);
    per.forEach(({ label, p, i }, k) => {
      const row = p.byStage.find((s) => s.stage === st);
      if (!row) return;
      out.push(`<rect x="${left}" y="${y0 + k * barH}" width="${Math.max(0.5, X(row.ms) - left).toFixed(1)}" height="${barH - 2}" fill="${color(i)}"><title>${escapeXml(label)} ${escapeXml(st)}: ${num(row.ms)} ms (${(row.share * 100).toFixed(1)}%)</title></rect>`);
    });
  });
  for (const v of axis.ticks) out.push(`<text x="${X(v)}" y="${H - 10}" text-anchor="middle" font-size="11">${tick(v)}</text>`);
  out.push('</svg>');
  return out.join('');
}

/** The compared models as points: MACs (x, in G or M) against p50 latency (y), one series per batch. */
function macsChart(r: ProfileReport): string {
  const pts = r.models.flatMap((m, i) => m.runs.map((run) => ({ label: m.label, i, macs: run.macs, ms: run.latencyMs.p50, batch: run.batch })));
  const W = 520;
  const H = 360;
  const l = 70;
  const b = 50;
  const top = 30;
  const unit = Math.max(...pts.map((p) => p.macs)) >= 1e9 ? { div: 1e9, name: 'GMACs' } : { div: 1e6, name: 'MMACs' };
  const xa = niceTicks(Math.max(...pts.map((p) => p.macs / unit.div)), 4);
  const ya = niceTicks(Math.max(...pts.map((p) => p.ms)), 4);
  const X = (v: number) => l + (v / unit.div / xa.max) * (W - l - 20);
  const Y = (v: number) => H - b - (v / ya.max) * (H - b - top);
  const out: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" data-chart="macs-latency" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img">`];
  out.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">MACs vs p50 latency</text>`);
  out.push(`<line x1="${l}" y1="${H - b}" x2="${W - 20}" y2="${H - b}" stroke="#333"/><line x1="${l}" y1="${top}" x2="${l}" y2="${H - b}" stroke="#333"/>`);
  for (const v of xa.ticks) out.push(`<text x="${X(v * unit.div)}" y="${H - b + 16}" text-anchor="middle" font-size="11">${tick(v)}</text>`);
  for (const v of ya.ticks) out.push(`<text x="${l - 6}" y="${Y(v) + 4}" text-anchor="end" font-size="11">${tick(v)}</text>`);
  out.push(`<text x="${(W + l) / 2}" y="${H - 12}" text-anchor="middle" font-size="12">${unit.name}</text>`);
  out.push(`<text x="16" y="${(H - b) / 2}" text-anchor="middle" font-size="12" transform="rotate(-90 16 ${(H - b) / 2})">latency p50 (ms)</text>`);
  const placer = new LabelPlacer(W, H - b - 2, top);
  for (const p of pts) {
    out.push(`<circle data-point="${escapeXml(p.label)}" cx="${X(p.macs).toFixed(1)}" cy="${Y(p.ms).toFixed(1)}" r="5" fill="${color(p.i)}"><title>${escapeXml(p.label)} batch ${p.batch}: ${num(p.macs / unit.div)} ${unit.name}, ${num(p.ms)} ms</title></circle>`);
  }
  // labels after the points, highest point first, each moved clear of the others
  for (const p of [...pts].sort((a, c) => Y(a.ms) - Y(c.ms))) {
    const text = fitText(`${p.label}${r.models[0].runs.length > 1 ? ` b${p.batch}` : ''}`, W / 2);
    const at = placer.place(text, X(p.macs), Y(p.ms) - 6);
    out.push(`<text class="point-label" x="${at.x.toFixed(1)}" y="${at.y.toFixed(1)}" font-size="11"${at.anchor === 'end' ? ' text-anchor="end"' : ''}>${escapeXml(text)}</text>`);
  }
  out.push('</svg>');
  return out.join('');
}

/** A model's gradient-path series with stage bands from the recognised structure (when there is one). */
export function gradientSeriesFor(label: string, model: Model, structure: Structure | null): ChartSeries | null {
  try {
    const stages: StageSpec[] = structure
      ? structure.stages.map((s) => ({ name: `stage ${s.index}`, nodes: [...s.entry, ...s.blocks.flatMap((b) => b.nodes)] }))
      : [];
    return chartSeries(label, gradientPaths(model, { stages }));
  } catch {
    return null; // the chart is a nicety; a model the analysis cannot walk still gets its latency report
  }
}

/** "adaptive (±2%, at most 60 s per batch)", "30 iterations" or "10 s". */
export function runsSetting(r: ProfileReport): string {
  const s = r.settings;
  if (s.iterations !== null) return `${s.iterations} iterations`;
  if (s.durationS !== null) return `${s.durationS} s`;
  const rounds = [...new Set(r.models[0].runs.map((x) => x.iterations))].join('/');
  return `adaptive (to ±${((s.precision ?? 0) * 100).toFixed(0)}%, at most ${s.maxTimeS} s per batch): ${rounds} rounds`;
}

export interface HtmlOptions {
  /** Gradient-path series of the models (see gradientSeriesFor). */
  gradientSeries?: ChartSeries[];
  title?: string;
}

function table(header: string[], rows: string[][]): string {
  return `<table><thead><tr>${header.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c, i) => `<td${i ? ' class="n"' : ''}>${escapeXml(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

export function profileHtml(r: ProfileReport, opts: HtmlOptions = {}): string {
  const title = opts.title ?? `gpt profile: ${r.models.map((m) => m.label).join(' vs ')}`;
  const batches = r.models[0].runs.length;
  const sections: string[] = [];
  const expected: string[] = ['macs-latency'];

  const rows: string[][] = [];
  for (let b = 0; b < batches; b++) {
    for (const m of r.models) {
      const x = m.runs[b];
      if (!x) continue;
      const v = x.vsBaseline;
      rows.push([m.label, String(x.batch), num(x.latencyMs.p50), num(x.latencyMs.mean), num(x.latencyMs.p90), num(x.latencyMs.p99), `${(x.latencyMs.cv * 100).toFixed(1)}%`, num(x.throughput), num(x.gmacPerS),
        v ? formatRatio(v) : 'baseline', v ? `${v.macsRatio.toFixed(3)}x` : 'baseline']);
    }
  }
  const banner = r.warnings.filter((w) => /^(unstable|inconclusive):/.test(w));
  if (banner.length) sections.push(`<div class="banner" data-banner="unstable">${banner.map((w) => `<p>${escapeXml(w)}</p>`).join('')}</div>`);
  sections.push(`<h2>Latency</h2><p class="meta">latency ratio: ${escapeXml(r.settings.ratioMethod)}, p50 / p50 of ${escapeXml(r.models[0].label)}</p>${table(['model', 'batch', 'p50 ms', 'mean ms', 'p90 ms', 'p99 ms', 'cv', 'items/s', 'GMAC/s', 'latency ratio [95% CI]', 'MACs ratio'], rows)}`);
  for (let b = 0; b < batches; b++) {
    sections.push(`<figure>${latencyChart(r, b)}</figure>`);
    expected.push('latency');
  }
  sections.push(`<h2>MACs and latency</h2><figure>${macsChart(r)}</figure>`);
  if (r.settings.perNode) {
    sections.push('<h2>Per node</h2>');
    for (let b = 0; b < batches; b++) {
      const svg = stageChart(r, b);
      if (svg) {
        sections.push(`<figure>${svg}</figure>`);
        expected.push('stages');
      }
    }
    for (const m of r.models) {
      for (const p of m.perNode) {
        sections.push(`<h3>${escapeXml(m.label)}, batch ${p.batch}: kernels ${num(p.nodeSumMs)} ms of ${num(p.runMs)} ms per run</h3>`);
        sections.push(`<p class="meta">${escapeXml(perNodeExplanation(p, m.runs.find((x) => x.batch === p.batch)?.latencyMs.p50 ?? null))}</p>`);
        sections.push(`<h4>Top 10 kernels</h4>${table(['kernel', 'op type', 'ms', 'share', 'stage', 'note'], topKernels(p).map((k) => [k.name, k.opType, num(k.ms), `${(k.share * 100).toFixed(1)}%`, k.stage, k.note]))}`);
        sections.push(table(['op type', 'kernels', 'ms', 'share'], p.byOpType.map((o) => [o.opType, String(o.kernels), num(o.ms), `${(o.share * 100).toFixed(1)}%`])));
        sections.push(table(['provider', 'kernels', 'ms'], p.byProvider.map((o) => [o.provider, String(o.kernels), num(o.ms)])));
        if (p.cpuFallback?.count) sections.push(`<p class="warn">${p.cpuFallback.count} kernel(s) ran on the CPU provider, not ${escapeXml(r.ep)}: ${escapeXml(p.cpuFallback.kernels.join(', '))}</p>`);
      }
    }
  }
  const series = (opts.gradientSeries ?? []).filter((s) => s.layers.length);
  if (series.length) {
    let svg: string;
    try {
      svg = gradientPathChart(series, { title: 'Gradient paths per weight layer', width: 760 });
    } catch {
      svg = '';
    }
    if (svg) {
      sections.push(`<h2>Gradient paths</h2><figure data-chart-wrap="gradient-paths">${svg.replace('<svg', '<svg data-chart="gradient-paths"')}</figure>`);
      expected.push('gradient-paths');
    }
  }
  if (r.warnings.length) sections.push(`<h2>Warnings</h2><ul>${r.warnings.map((w) => `<li class="warn">${escapeXml(w)}</li>`).join('')}</ul>`);
  const env = r.environment;
  const meta = `${escapeXml(r.ep)} via ${escapeXml(r.backend)} · onnxruntime-node ${escapeXml(env.onnxruntime)} · ${escapeXml(env.cpuModel)} x${env.cpus} · ${escapeXml(env.platform)}/${escapeXml(env.arch)} · node ${escapeXml(env.node)} · warm-up ${r.settings.warmup}, ${escapeXml(runsSetting(r))}${r.settings.interleaved ? ', interleaved' : ''} · ${r.settings.threads ? `${r.settings.threads} intra-op threads` : `${r.backend === 'torch' ? 'torch' : 'ORT'} default threads`}${env.threads.ompNumThreads ? `, OMP_NUM_THREADS=${escapeXml(env.threads.ompNumThreads)}` : ''} · load average ${env.loadavg.start.map((x) => x.toFixed(2)).join(' ')} at start, ${env.loadavg.end.map((x) => x.toFixed(2)).join(' ')} at end`;
  // The script only checks the page: every expected chart is there; errors are recorded on <body>.
  const script = `(function(){var b=document.body;window.addEventListener('error',function(e){b.setAttribute('data-error',String(e.message))});
var want=${JSON.stringify([...new Set(expected)])};var missing=want.filter(function(k){return !document.querySelector('svg[data-chart="'+k+'"]')});
b.setAttribute('data-charts',String(document.querySelectorAll('svg[data-chart]').length));
if(missing.length){b.setAttribute('data-error','missing charts: '+missing.join(', '))}else if(!b.hasAttribute('data-error')){b.setAttribute('data-ok','1')}})();`;
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
<title>${escapeXml(title)}</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 16px}th,td{padding:3px 8px;border-bottom:1px solid #ddd;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}figure{margin:8px 0}svg{font-family:system-ui,sans-serif}.warn{color:#b00}.meta{color:#666}.banner{background:#fff3cd;border:1px solid #e0b000;padding:4px 12px;margin:8px 0}</style>
</head><body>
<h1>${escapeXml(title)}</h1>
<p class="meta">${meta}</p>
${sections.join('\n')}
<script>${script}</script>
</body></html>
`;
}
