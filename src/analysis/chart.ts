/**
 * The gradient-path chart: shortest and longest gradient path per weight layer in execution order
 * (the paper's Figure comparing plain and partial networks), stages as shaded bands, one or more
 * series on one chart so a plain model and its PRN / CSP / ELAN form can be compared.
 * Returns a self-contained SVG string: no scripts, fonts, images or links.
 */
import { GptError } from '../errors';
import type { GradientPathReport } from './gradient-path';

export interface ChartLayer {
  order: number;
  shortest: number;
  longest: number;
}

export interface ChartStage {
  name: string;
  /** First and last `order` of the stage (inclusive). */
  start: number;
  end: number;
}

export interface ChartSeries {
  label: string;
  layers: ChartLayer[];
  stages?: ChartStage[];
}

export interface ChartOptions {
  width?: number;
  height?: number;
  title?: string;
  xLabel?: string;
  yLabel?: string;
}

/** A report as one chart series (stages with no weight layer are left out). */
export function chartSeries(label: string, report: GradientPathReport): ChartSeries {
  return {
    label,
    layers: report.layers.filter((l) => l.timestamps > 0).map(({ order, shortest, longest }) => ({ order, shortest, longest })),
    stages: report.stages.filter((s) => s.start >= 0).map(({ name, start, end }) => ({ name, start, end })),
  };
}

/** Text or attribute content, escaped for XML. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(2).replace(/\.?0+$/, '');
}

/**
 * Axis ticks from 0: a step of 1, 2 or 5 x 10^k, about `target` steps, the last tick at or above
 * `max`. Every chart here uses this one routine. `integer` keeps the step at 1 or more (layer indices).
 */
export function niceTicks(max: number, target = 5, integer = false): { max: number; step: number; ticks: number[] } {
  if (!(max > 0) || !Number.isFinite(max)) return { max: 1, step: integer ? 1 : 0.2, ticks: integer ? [0, 1] : [0, 0.2, 0.4, 0.6, 0.8, 1] };
  const raw = max / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * mag).find((v) => v >= raw * (1 - 1e-9))!;
  if (integer) step = Math.max(1, Math.round(step));
  const n = Math.ceil(max / step - 1e-9);
  // decimal steps: round each tick to the step's digits (0.1 * 3 is 0.30000000000000004)
  const digits = Math.max(0, -Math.floor(Math.log10(step)) + 1);
  const ticks = Array.from({ length: n + 1 }, (_, i) => Number((i * step).toFixed(digits)));
  return { max: ticks[ticks.length - 1], step, ticks };
}

/** Width of a text in pixels, estimated (sans-serif averages about 0.6 em per character). */
export function textWidth(text: string, fontSize = 11): number {
  return text.length * fontSize * 0.6;
}

/** `text` cut with an ellipsis to fit `px` pixels. */
export function fitText(text: string, px: number, fontSize = 11): string {
  if (textWidth(text, fontSize) <= px) return text;
  const n = Math.max(1, Math.floor(px / (fontSize * 0.6)) - 1);
  return `${text.slice(0, n)}…`;
}

/** Series equal layer by layer to an earlier one: their lines would hide each other. */
function sameAs(series: ChartSeries[]): (number | null)[] {
  const key = (s: ChartSeries) => JSON.stringify([...s.layers].sort((a, b) => a.order - b.order).map((l) => [l.shortest, l.longest]));
  const keys = series.map(key);
  return keys.map((k, i) => {
    const j = keys.indexOf(k);
    return j < i && series[i].layers.length > 0 ? j : null;
  });
}

/**
 * The x position of every layer when all series have stages: the axis is cut into segments (before
 * the first stage, each stage, each gap between stages, after the last), each as wide as the most
 * layers any series has there, so stage k of every model sits over the same band.
 */
function stageAlignment(series: ChartSeries[]): { x: Map<ChartLayer, number>[]; bands: { name: string; start: number; end: number }[]; extent: number } {
  const nStages = Math.max(...series.map((s) => s.stages!.length));
  // segment index: 0 = before stage 0, 2k+1 = stage k, 2k+2 = after stage k
  const segmentsOf = (s: ChartSeries) => {
    const stages = [...s.stages!].sort((a, b) => a.start - b.start);
    const seg = new Map<ChartLayer, number>();
    for (const l of s.layers) {
      let k = 0;
      stages.forEach((g, gi) => {
        if (l.order >= g.start) k = l.order <= g.end ? 2 * gi + 1 : 2 * gi + 2;
      });
      seg.set(l, k);
    }
    return seg;
  };
  const segs = series.map(segmentsOf);
  const nSeg = 2 * nStages + 1;
  const count = (si: number, k: number) => [...segs[si].values()].filter((v) => v === k).length;
  const widths = Array.from({ length: nSeg }, (_, k) => Math.max(k % 2 === 1 ? 1 : 0, ...series.map((_, si) => count(si, k))));
  const starts = widths.map((_, k) => widths.slice(0, k).reduce((a, b) => a + b, 0));
  const x = series.map((s, si) => {
    const m = new Map<ChartLayer, number>();
    const seen = new Map<number, number>();
    for (const l of [...s.layers].sort((a, b) => a.order - b.order)) {
      const k = segs[si].get(l)!;
      const j = seen.get(k) ?? 0;
      seen.set(k, j + 1);
      m.set(l, starts[k] + ((j + 0.5) * widths[k]) / count(si, k));
    }
    return m;
  });
  const bands = Array.from({ length: nStages }, (_, g) => ({
    name: series.find((s) => s.stages![g])?.stages![g].name ?? `stage ${g}`,
    start: starts[2 * g + 1],
    end: starts[2 * g + 1] + widths[2 * g + 1],
  }));
  return { x, bands, extent: widths.reduce((a, b) => a + b, 0) };
}

/** The chart's headline: max shortest and longest gradient path of each series, in series order. */
export function headline(series: ChartSeries[]): string {
  const live = series.filter((s) => s.layers.length);
  if (!live.length) return '';
  const max = (s: ChartSeries, k: 'shortest' | 'longest') => Math.max(...s.layers.map((l) => l[k]));
  const arrow = (k: 'shortest' | 'longest') => live.map((s) => max(s, k)).join(' -> ');
  return `max shortest gradient path ${arrow('shortest')}, longest ${arrow('longest')}${live.length > 1 ? ` (${live.map((s) => s.label).join(' -> ')})` : ''}`;
}

export function gradientPathChart(series: ChartSeries[], opts: ChartOptions = {}): string {
  for (const s of series) {
    for (const l of s.layers) {
      if (![l.order, l.shortest, l.longest].every(Number.isFinite)) {
        throw new GptError('E_ARG', `series '${s.label}' has a layer with a non-finite value`, { subject: s.label, hint: 'pass numbers from gradientPaths()' });
      }
    }
  }
  const width = opts.width ?? 960;
  const height = opts.height ?? 480;
  const aligned = series.length > 0 && series.every((s) => (s.stages ?? []).length > 0) ? stageAlignment(series) : null;
  const stripH = 16;
  const strips = aligned ? 1 : series.filter((s) => (s.stages ?? []).length > 0).length;
  const m = { left: 64, right: 24, top: 54 + stripH * strips, bottom: 56 + 16 * series.length };
  const pw = Math.max(10, width - m.left - m.right);
  const ph = Math.max(10, height - m.top - m.bottom);

  // x: layer order, or (aligned) the stage segments; y: path length from 0
  let xMin = 0;
  let xMax = 1;
  if (aligned) {
    xMax = Math.max(1, aligned.extent);
  } else {
    const orders = series.flatMap((s) => [...s.layers.map((l) => l.order), ...(s.stages ?? []).flatMap((g) => [g.start, g.end])]);
    xMin = orders.length ? Math.min(0, ...orders) : 0;
    const top = orders.length ? Math.max(...orders) : 1;
    xMax = top > xMin ? top : xMin + 1;
  }
  const yAxis = niceTicks(Math.max(0, ...series.flatMap((s) => s.layers.map((l) => l.longest))), 6, true);
  const X = (o: number) => m.left + ((o - xMin) / (xMax - xMin)) * pw;
  const Y = (v: number) => m.top + ph - (v / yAxis.max) * ph;
  const r = (x: number) => x.toFixed(1);
  const xOf = (si: number, l: ChartLayer) => X(aligned ? aligned.x[si].get(l)! : l.order);

  const out: string[] = [];
  out.push('<?xml version="1.0" encoding="UTF-8"?>');
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  const title = opts.title ?? `Gradient paths: ${series.map((s) => s.label).join(' vs ')}`;
  out.push(`<title>${escapeXml(title)}</title>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text class="title" x="${r(m.left)}" y="18" font-size="14" font-weight="bold">${escapeXml(fitText(title, width - m.left - 8, 14))}</text>`);
  const head = headline(series);
  if (head) out.push(`<text class="headline" x="${r(m.left)}" y="36" font-size="12">${escapeXml(fitText(head, width - m.left - 8, 12))}</text>`);

  // stage bands: shaded in the plot; a labelled strip (one shared strip when aligned by stage)
  const band = (x0: number, x1: number, y0: number, name: string, color: string, gi: number, shade: boolean) => {
    const w = Math.max(0.5, x1 - x0);
    if (shade && gi % 2 === 0) out.push(`<rect x="${r(x0)}" y="${r(m.top)}" width="${r(w)}" height="${r(ph)}" fill="#000000" fill-opacity="0.05"/>`);
    out.push(`<rect x="${r(x0)}" y="${r(y0)}" width="${r(w)}" height="${stripH - 2}" fill="${color}" fill-opacity="${gi % 2 ? 0.15 : 0.3}"><title>${escapeXml(name)}</title></rect>`);
    // the name, or its number when the band is narrow, or nothing when even that does not fit
    const label = [name, String(gi)].find((t) => textWidth(t, 10) <= w - 2);
    if (label !== undefined) out.push(`<text class="stage-label" x="${r(x0 + w / 2)}" y="${r(y0 + stripH - 5)}" text-anchor="middle" font-size="10">${escapeXml(label)}</text>`);
  };
  out.push('<g class="stages">');
  if (aligned) {
    aligned.bands.forEach((g, gi) => band(X(g.start), X(g.end), m.top - stripH, g.name, '#555555', gi, true));
  } else {
    series.filter((s) => (s.stages ?? []).length > 0).forEach((s, si, withStages) => {
      const color = PALETTE[series.indexOf(s) % PALETTE.length];
      const y0 = m.top - stripH * (withStages.length - si);
      (s.stages ?? []).forEach((g, gi) => {
        band(X(g.start - 0.5 < xMin ? xMin : g.start - 0.5), X(g.end + 0.5 > xMax ? xMax : g.end + 0.5), y0, g.name, color, gi, si === 0);
      });
    });
  }
  out.push('</g>');

  // axes, ticks, grid
  const xAxis = aligned ? null : niceTicks(xMax - xMin, 10, true);
  out.push('<g class="axes" stroke="#444444" stroke-width="1">');
  out.push(`<line x1="${r(m.left)}" y1="${r(m.top + ph)}" x2="${r(m.left + pw)}" y2="${r(m.top + ph)}"/>`);
  out.push(`<line x1="${r(m.left)}" y1="${r(m.top)}" x2="${r(m.left)}" y2="${r(m.top + ph)}"/>`);
  for (const v of yAxis.ticks) out.push(`<line x1="${r(m.left)}" y1="${r(Y(v))}" x2="${r(m.left + pw)}" y2="${r(Y(v))}" stroke="#dddddd"/>`);
  const xTicks = xAxis ? xAxis.ticks.map((t) => t + Math.ceil(xMin / xAxis.step) * xAxis.step).filter((o) => o <= xMax) : [];
  for (const o of xTicks) out.push(`<line x1="${r(X(o))}" y1="${r(m.top + ph)}" x2="${r(X(o))}" y2="${r(m.top + ph + 4)}"/>`);
  out.push('</g>');
  out.push('<g class="tick-labels" fill="#222222">');
  for (const v of yAxis.ticks) out.push(`<text x="${r(m.left - 6)}" y="${r(Y(v) + 4)}" text-anchor="end">${fmt(v)}</text>`);
  for (const o of xTicks) out.push(`<text x="${r(X(o))}" y="${r(m.top + ph + 16)}" text-anchor="middle">${fmt(o)}</text>`);
  const xLabel = opts.xLabel ?? (aligned ? 'weight layers in execution order, aligned by stage' : 'weight layer (execution order)');
  out.push(`<text x="${r(m.left + pw / 2)}" y="${r(m.top + ph + 32)}" text-anchor="middle">${escapeXml(xLabel)}</text>`);
  const yl = escapeXml(fitText(opts.yLabel ?? 'gradient path length (weight layers)', ph));
  out.push(`<text x="14" y="${r(m.top + ph / 2)}" text-anchor="middle" transform="rotate(-90 14 ${r(m.top + ph / 2)})">${yl}</text>`);
  out.push('</g>');

  // one polyline per series and kind; a lone layer also gets a dot, since a one-point line draws nothing.
  // A series identical to an earlier one is drawn dotted and wider, so the one under it shows through.
  const twin = sameAs(series);
  const dash = (si: number, kind: 'longest' | 'shortest') => (twin[si] !== null ? (kind === 'longest' ? '1 5' : '1 5 6 5') : kind === 'shortest' ? '5 3' : '');
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const layers = [...s.layers].sort((a, b) => a.order - b.order);
    const sw = twin[i] !== null ? 3 : 1.5;
    out.push(`<g class="series" data-label="${escapeXml(s.label)}"${twin[i] !== null ? ` data-same-as="${escapeXml(series[twin[i]!].label)}"` : ''} stroke="${color}" fill="none" stroke-width="${sw}"${twin[i] !== null ? ' stroke-linecap="round"' : ''}>`);
    for (const kind of ['longest', 'shortest'] as const) {
      if (layers.length === 0) continue;
      const pts = layers.map((l) => `${r(xOf(i, l))},${r(Y(l[kind]))}`).join(' ');
      const d = dash(i, kind);
      out.push(`<polyline class="${kind}"${d ? ` stroke-dasharray="${d}"` : ''} points="${pts}"/>`);
      if (layers.length === 1) out.push(`<circle cx="${r(xOf(i, layers[0]))}" cy="${r(Y(layers[0][kind]))}" r="2.5" fill="${color}"/>`);
    }
    out.push('</g>');
  });

  // legend below the axis label: the longest and the shortest line of each series, side by side
  out.push('<g class="legend">');
  const labels = series.map((s, i) => (twin[i] !== null ? `${s.label} (same as ${series[twin[i]!].label})` : s.label));
  const colW = Math.min(pw / 2, Math.max(180, ...labels.map((l) => 30 + textWidth(`${l}: longest`) + 16)));
  series.forEach((_, i) => {
    const color = PALETTE[i % PALETTE.length];
    const y = m.top + ph + 46 + 16 * i;
    const sw = twin[i] !== null ? 3 : 1.5;
    [['longest', m.left], ['shortest', m.left + colW]].forEach(([kind, x]) => {
      const k = kind as 'longest' | 'shortest';
      const d = dash(i, k);
      const room = (k === 'longest' ? colW : pw - colW) - 34;
      out.push(`<line x1="${r(+x)}" y1="${r(y - 4)}" x2="${r(+x + 24)}" y2="${r(y - 4)}" stroke="${color}" stroke-width="${sw}"${d ? ` stroke-dasharray="${d}"` : ''}/>`);
      out.push(`<text x="${r(+x + 30)}" y="${r(y)}">${escapeXml(fitText(`${labels[i]}: ${k}`, room))}</text>`);
    });
  });
  out.push('</g>');
  out.push('</svg>');
  return out.join('\n') + '\n';
}
