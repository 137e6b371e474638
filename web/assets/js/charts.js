// Small charts drawn by hand in SVG/CSS, from numbers the API returned and nothing else.
// Why no charting library: the pictures needed here are bars per mode, percentile columns and a
// few lines over time; ~250 lines cover them, keep the UI dependency-free (no install step, no
// vendored bundle to audit, nothing fetched at run time), and let every chart carry its own
// text alternative for screen readers.

import { fmtNumber, h, s } from './dom.js';

// Series colours are CSS classes so light and dark themes both work (see app.css).
export const SERIES_CLASSES = ['series-0', 'series-1', 'series-2', 'series-3', 'series-4', 'series-5'];

export function seriesClass(key, index) {
  if (key === 'failure') return 'series-failure';
  if (key === 'success') return 'series-success';
  if (key === 'check') return 'series-check';
  return SERIES_CLASSES[index % SERIES_CLASSES.length];
}

// Rounds a span to 1, 2 or 5 × 10^k steps so axis ticks read well.
export function niceTicks(max, count = 4) {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((st) => st >= raw) || raw;
  const ticks = [];
  for (let v = 0; v <= max + step * 0.001; v += step) ticks.push(Number(v.toPrecision(12)));
  if (ticks[ticks.length - 1] < max) ticks.push(Number((ticks[ticks.length - 1] + step).toPrecision(12)));
  return ticks;
}

function legend(series) {
  return h('ul', { class: 'legend' }, series.map((sr, i) =>
    h('li', null, h('span', { class: ['swatch', sr.cls || seriesClass(sr.key, i)], 'aria-hidden': 'true' }), sr.label)));
}

// Small multiples of horizontal bars: one row per metric, one bar per series, each row scaled to
// its own largest value (a 2,000-event count and a 3-duplicate count are both readable; what the
// eye compares is failure against success on the same metric). Zero is drawn as an empty track.
//   rows: [{name, note?, highlight?, values: {seriesKey: number|undefined}}]
//   series: [{key, label}]
//   sharedScale: all rows on one scale (for the same quantity measured on several things).
export function metricBars(rows, series, { caption, sharedScale = false } = {}) {
  const fig = h('figure', { class: 'chart metric-bars' });
  if (caption) fig.append(h('figcaption', null, caption));
  if (series.length > 1) fig.append(legend(series));
  const list = h('div', { class: 'bar-rows' });
  const numeric = (vals) => vals.filter((v) => typeof v === 'number').map((v) => Math.abs(v));
  const globalMax = Math.max(0, ...rows.flatMap((row) => numeric(series.map((sr) => row.values[sr.key]))));
  for (const row of rows) {
    const vals = series.map((sr) => row.values[sr.key]);
    const max = sharedScale ? globalMax : Math.max(0, ...numeric(vals));
    const label = series.map((sr, i) => `${sr.label} ${typeof vals[i] === 'number' ? fmtNumber(vals[i]) : 'not measured'}`).join(', ');
    const group = h('div', { class: ['bar-row', row.highlight && 'highlight'], role: 'group', 'aria-label': `${row.name}: ${label}` },
      h('div', { class: 'bar-name' }, h('code', null, row.name), row.highlight ? h('span', { class: 'crit-mark', title: 'used by the verdict criteria' }, ' ◆') : null));
    const bars = h('div', { class: 'bar-set', 'aria-hidden': 'true' });
    series.forEach((sr, i) => {
      const v = vals[i];
      const pct = typeof v === 'number' && max > 0 ? Math.max(Math.abs(v) / max * 100, v === 0 ? 0 : 1.5) : 0;
      bars.append(h('div', { class: 'bar-line' },
        h('div', { class: 'bar-track' },
          h('div', { class: ['bar', seriesClass(sr.key, i)], style: `width:${pct.toFixed(2)}%` })),
        h('span', { class: ['bar-value', typeof v !== 'number' && 'muted'] }, typeof v === 'number' ? fmtNumber(v) : '—')));
    });
    group.append(bars);
    list.append(group);
  }
  fig.append(list);
  return fig;
}

// Grouped vertical columns on one shared axis (e.g. latency p50/p95/p99 per mode).
//   categories: ['p50','p95','p99']; series: [{key,label,values:[n|undefined…]}]
export function groupedColumns(categories, series, { unit = '', caption } = {}) {
  const W = 560; const H = 240; const left = 56; const right = 12; const top = 14; const bottom = 34;
  const all = series.flatMap((sr) => sr.values).filter((v) => typeof v === 'number');
  const ticks = niceTicks(Math.max(0, ...all));
  const ymax = ticks[ticks.length - 1] || 1;
  const y = (v) => top + (H - top - bottom) * (1 - v / ymax);
  const groupW = (W - left - right) / Math.max(categories.length, 1);
  const barW = Math.min(36, (groupW * 0.76) / Math.max(series.length, 1));
  const text = categories.map((c, ci) => `${c}: ${series.map((sr) => `${sr.label} ${typeof sr.values[ci] === 'number' ? fmtNumber(sr.values[ci]) + (unit ? ` ${unit}` : '') : 'not measured'}`).join(', ')}`).join('; ');
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${caption || 'chart'}. ${text}`, class: 'svg-chart' });
  for (const t of ticks) {
    svg.append(s('line', { x1: left, x2: W - right, y1: y(t), y2: y(t), class: 'grid' }),
      s('text', { x: left - 6, y: y(t) + 4, class: 'tick', 'text-anchor': 'end' }, fmtNumber(t)));
  }
  if (unit) svg.append(s('text', { x: 4, y: top - 2, class: 'tick unit' }, unit));
  categories.forEach((cat, ci) => {
    const gx = left + ci * groupW + (groupW - barW * series.length) / 2;
    series.forEach((sr, si) => {
      const v = sr.values[ci];
      if (typeof v !== 'number') return;
      const x = gx + si * barW;
      const rect = s('rect', { x: x + 2, y: y(Math.max(v, 0)), width: Math.max(barW - 4, 2), height: Math.max(H - bottom - y(Math.max(v, 0)), 0), class: ['col', seriesClass(sr.key, si)] },
        s('title', null, `${sr.label} ${cat}: ${fmtNumber(v)}${unit ? ` ${unit}` : ''}`));
      svg.append(rect);
      if (barW >= 22) svg.append(s('text', { x: x + barW / 2, y: y(Math.max(v, 0)) - 3, class: 'tick value', 'text-anchor': 'middle' }, fmtNumber(v)));
    });
    svg.append(s('text', { x: left + ci * groupW + groupW / 2, y: H - bottom + 18, class: 'tick', 'text-anchor': 'middle' }, cat));
  });
  svg.append(s('line', { x1: left, x2: W - right, y1: H - bottom, y2: H - bottom, class: 'axis' }));
  const fig = h('figure', { class: 'chart' });
  if (caption) fig.append(h('figcaption', null, caption));
  if (series.length > 1) fig.append(legend(series));
  fig.append(svg);
  return fig;
}

// Lines over time (or over any numeric x). series: [{key,label,points:[[x,y]…]}]
export function lineChart(series, { caption, xLabel = '', yLabel = '' } = {}) {
  const W = 560; const H = 240; const left = 56; const right = 14; const top = 16; const bottom = 38;
  const pts = series.flatMap((sr) => sr.points);
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  const xmin = Math.min(...xs); const xmaxRaw = Math.max(...xs);
  const xmax = xmaxRaw === xmin ? xmin + 1 : xmaxRaw;
  const yTicks = niceTicks(Math.max(0, ...ys));
  const ymax = yTicks[yTicks.length - 1] || 1;
  const X = (v) => left + (W - left - right) * ((v - xmin) / (xmax - xmin));
  const Y = (v) => top + (H - top - bottom) * (1 - v / ymax);
  const summary = series.map((sr) => {
    const vals = sr.points.map((p) => p[1]);
    return `${sr.label}: ${sr.points.length} points, max ${fmtNumber(Math.max(...vals))}, last ${fmtNumber(vals[vals.length - 1])}`;
  }).join('; ');
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${caption || 'chart'}. ${summary}`, class: 'svg-chart' });
  for (const t of yTicks) {
    svg.append(s('line', { x1: left, x2: W - right, y1: Y(t), y2: Y(t), class: 'grid' }),
      s('text', { x: left - 6, y: Y(t) + 4, class: 'tick', 'text-anchor': 'end' }, fmtNumber(t)));
  }
  const xTicks = niceTicks(xmax - xmin, 5).map((t) => xmin + t).filter((t) => t <= xmax + 1e-9);
  for (const t of xTicks) {
    svg.append(s('text', { x: X(t), y: H - bottom + 16, class: 'tick', 'text-anchor': 'middle' }, fmtNumber(t)));
  }
  svg.append(s('line', { x1: left, x2: W - right, y1: H - bottom, y2: H - bottom, class: 'axis' }));
  if (xLabel) svg.append(s('text', { x: (left + W - right) / 2, y: H - 4, class: 'tick unit', 'text-anchor': 'middle' }, xLabel));
  if (yLabel) svg.append(s('text', { x: 4, y: top - 4, class: 'tick unit' }, yLabel));
  series.forEach((sr, i) => {
    const sorted = [...sr.points].sort((a, b) => a[0] - b[0]);
    const d = sorted.map((p, k) => `${k ? 'L' : 'M'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(' ');
    svg.append(s('path', { d, class: ['line', seriesClass(sr.key, i)] }, s('title', null, sr.label)));
    if (sorted.length <= 40) {
      for (const p of sorted) {
        svg.append(s('circle', { cx: X(p[0]), cy: Y(p[1]), r: 2.5, class: ['dot', seriesClass(sr.key, i)] },
          s('title', null, `${sr.label}: ${fmtNumber(p[1])} at ${fmtNumber(p[0])}`)));
      }
    }
  });
  const fig = h('figure', { class: 'chart' });
  if (caption) fig.append(h('figcaption', null, caption));
  if (series.length > 1) fig.append(legend(series));
  fig.append(svg);
  return fig;
}

// A labelled progress bar (native <progress> keeps screen readers informed).
export function progressBar(percent, label) {
  const pct = Math.max(0, Math.min(100, Number(percent) || 0));
  return h('div', { class: 'progress' },
    h('progress', { max: '100', value: String(pct), 'aria-label': label || 'progress' }),
    h('span', { class: 'progress-text' }, `${Math.round(pct)} %`));
}
