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

/** Round a maximum up to a tick-friendly value; returns [max, step]. */
function niceScale(max: number, ticks = 6): [number, number] {
  if (max <= 0) return [1, 1];
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const s = Math.max(1, Math.round(step));
  return [Math.ceil(max / s) * s, s];
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
  const withStages = series.filter((s) => (s.stages ?? []).length > 0);
  const stripH = 16;
  const legendRows = series.length;
  const m = { left: 64, right: 24, top: 36 + stripH * withStages.length, bottom: 56 + 16 * legendRows };
  const pw = Math.max(10, width - m.left - m.right);
  const ph = Math.max(10, height - m.top - m.bottom);

  const orders = series.flatMap((s) => [...s.layers.map((l) => l.order), ...(s.stages ?? []).flatMap((g) => [g.start, g.end])]);
  const xMin = orders.length ? Math.min(0, ...orders) : 0;
  const xMax0 = orders.length ? Math.max(...orders) : 1;
  const xMax = xMax0 > xMin ? xMax0 : xMin + 1;
  const [yMax, yStep] = niceScale(Math.max(0, ...series.flatMap((s) => s.layers.map((l) => l.longest))));
  const [, xStep] = niceScale(xMax - xMin, 10);
  const X = (o: number) => m.left + ((o - xMin) / (xMax - xMin)) * pw;
  const Y = (v: number) => m.top + ph - (v / yMax) * ph;
  const r = (x: number) => x.toFixed(1);

  const out: string[] = [];
  out.push('<?xml version="1.0" encoding="UTF-8"?>');
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  const title = opts.title ?? `Gradient paths: ${series.map((s) => s.label).join(' vs ')}`;
  out.push(`<title>${escapeXml(title)}</title>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<text x="${r(m.left)}" y="18" font-size="14" font-weight="bold">${escapeXml(title)}</text>`);

  // stage bands: shaded in the plot for the first series that has stages; a labelled strip per series
  out.push('<g class="stages">');
  withStages.forEach((s, si) => {
    const color = PALETTE[series.indexOf(s) % PALETTE.length];
    const y0 = m.top - stripH * (withStages.length - si);
    (s.stages ?? []).forEach((g, gi) => {
      const x0 = X(g.start - 0.5 < xMin ? xMin : g.start - 0.5);
      const x1 = X(g.end + 0.5 > xMax ? xMax : g.end + 0.5);
      const w = Math.max(0.5, x1 - x0);
      if (si === 0 && gi % 2 === 0) out.push(`<rect x="${r(x0)}" y="${r(m.top)}" width="${r(w)}" height="${r(ph)}" fill="#000000" fill-opacity="0.05"/>`);
      out.push(`<rect x="${r(x0)}" y="${r(y0)}" width="${r(w)}" height="${stripH - 2}" fill="${color}" fill-opacity="${gi % 2 ? 0.15 : 0.3}"/>`);
      out.push(`<text x="${r(x0 + w / 2)}" y="${r(y0 + stripH - 5)}" text-anchor="middle" font-size="10">${escapeXml(g.name)}</text>`);
    });
  });
  out.push('</g>');

  // axes, ticks, grid
  out.push('<g class="axes" stroke="#444444" stroke-width="1">');
  out.push(`<line x1="${r(m.left)}" y1="${r(m.top + ph)}" x2="${r(m.left + pw)}" y2="${r(m.top + ph)}"/>`);
  out.push(`<line x1="${r(m.left)}" y1="${r(m.top)}" x2="${r(m.left)}" y2="${r(m.top + ph)}"/>`);
  for (let v = 0; v <= yMax; v += yStep) {
    out.push(`<line x1="${r(m.left)}" y1="${r(Y(v))}" x2="${r(m.left + pw)}" y2="${r(Y(v))}" stroke="#dddddd"/>`);
  }
  for (let o = Math.ceil(xMin / xStep) * xStep; o <= xMax; o += xStep) {
    out.push(`<line x1="${r(X(o))}" y1="${r(m.top + ph)}" x2="${r(X(o))}" y2="${r(m.top + ph + 4)}"/>`);
  }
  out.push('</g>');
  out.push('<g class="tick-labels" fill="#222222">');
  for (let v = 0; v <= yMax; v += yStep) out.push(`<text x="${r(m.left - 6)}" y="${r(Y(v) + 4)}" text-anchor="end">${fmt(v)}</text>`);
  for (let o = Math.ceil(xMin / xStep) * xStep; o <= xMax; o += xStep) {
    out.push(`<text x="${r(X(o))}" y="${r(m.top + ph + 16)}" text-anchor="middle">${fmt(o)}</text>`);
  }
  out.push(`<text x="${r(m.left + pw / 2)}" y="${r(m.top + ph + 32)}" text-anchor="middle">${escapeXml(opts.xLabel ?? 'weight layer (execution order)')}</text>`);
  const yl = escapeXml(opts.yLabel ?? 'gradient path length (weight layers)');
  out.push(`<text x="14" y="${r(m.top + ph / 2)}" text-anchor="middle" transform="rotate(-90 14 ${r(m.top + ph / 2)})">${yl}</text>`);
  out.push('</g>');

  // one polyline per series and kind; a lone layer also gets a dot, since a one-point line draws nothing
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const layers = [...s.layers].sort((a, b) => a.order - b.order);
    out.push(`<g class="series" data-label="${escapeXml(s.label)}" stroke="${color}" fill="none" stroke-width="1.5">`);
    for (const kind of ['longest', 'shortest'] as const) {
      if (layers.length === 0) continue;
      const pts = layers.map((l) => `${r(X(l.order))},${r(Y(l[kind]))}`).join(' ');
      const dash = kind === 'shortest' ? ' stroke-dasharray="5 3"' : '';
      out.push(`<polyline class="${kind}"${dash} points="${pts}"/>`);
      if (layers.length === 1) out.push(`<circle cx="${r(X(layers[0].order))}" cy="${r(Y(layers[0][kind]))}" r="2.5" fill="${color}"/>`);
    }
    out.push('</g>');
  });

  // legend below the axis label
  out.push('<g class="legend">');
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length];
    const y = m.top + ph + 46 + 16 * i;
    const x = m.left;
    out.push(`<line x1="${x}" y1="${r(y - 4)}" x2="${x + 24}" y2="${r(y - 4)}" stroke="${color}" stroke-width="1.5"/>`);
    out.push(`<text x="${x + 30}" y="${r(y)}">${escapeXml(s.label)}: longest</text>`);
    const x2 = x + Math.min(pw / 2, 260);
    out.push(`<line x1="${r(x2)}" y1="${r(y - 4)}" x2="${r(x2 + 24)}" y2="${r(y - 4)}" stroke="${color}" stroke-width="1.5" stroke-dasharray="5 3"/>`);
    out.push(`<text x="${r(x2 + 30)}" y="${r(y)}">${escapeXml(s.label)}: shortest</text>`);
  });
  out.push('</g>');
  out.push('</svg>');
  return out.join('\n') + '\n';
}
