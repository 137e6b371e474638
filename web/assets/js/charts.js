// Small charts drawn by hand in SVG/CSS, from numbers the API returned and nothing else.
// Why no charting library: the pictures needed here are bars per mode, percentile columns, lines
// over a time axis with shaded fault windows and state bands, and one number across runs; ~350
// lines cover them, keep the UI dependency-free (no build step, no vendored bundle to audit and
// update, nothing fetched at run time: uPlot, the smallest good candidate, is ~50 kB minified and
// would still need the shading and bands written on top), and let every chart carry its own text
// alternative for screen readers.

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

// A tick step of 1, 2, 2.5 or 5 × 10^k that cuts `span` into about `count` pieces.
function niceStep(span, count) {
  const raw = span / Math.max(count, 1);
  if (!(raw > 0)) return 1;
  const mag = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((f) => f * mag).find((st) => st >= raw * 0.999) || raw;
}

// Ticks covering [min, max] (both may be negative: time around a fault), on nice steps.
export function rangeTicks(min, max, count = 6) {
  const step = niceStep(max - min, count);
  const ticks = [];
  for (let v = Math.ceil(min / step - 1e-9) * step; v <= max + step * 1e-6; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

const fmtSeconds = (v) => `${fmtNumber(Math.abs(v) < 1e-9 ? 0 : v)}`;

// Lines over time. The x axis is always seconds (labelled, ticked); several series share it, so a
// failure and a success mode are read on one time scale. Extras, all optional:
//   windows: [{from, to, label, key?, legend?}]  shaded spans (a fault, an outage); with `key` (one
//                                       window per mode) the edges take the mode's colour and
//                                       overlapping windows shade darker
//   markers: [{t, label}]               vertical lines at an instant
//   bands:   [{label, segments: [{from, to, state}], states: {state: label}}]  a state strip per
//            row under the plot (a breaker closed / half-open / open)
//   xDomain: [min, max] to share the time scale between charts; yMax to pin the top (100 for %)
//   xLabel:  what t = 0 is ("seconds since the fault began")
export function timeChart(series, {
  caption, xLabel = 'time (s)', yLabel = '', yUnit = '', windows = [], markers = [], bands = [],
  xDomain = null, yMax = null, note = null,
} = {}) {
  const bandH = 12; const bandGap = 15; // each band: its label above, then the coloured strip
  const W = 560; const left = 58; const right = 14; const top = 18; const plotH = 170;
  const bandsTop = top + plotH + 8;
  const axisY = bandsTop + bands.length * (bandH + bandGap);
  const H = axisY + 42;
  const pts = series.flatMap((sr) => sr.points);
  const xs = pts.map((p) => p[0]).concat(windows.flatMap((w) => [w.from, w.to]));
  let [xmin, xmax] = xDomain || [Math.min(...xs), Math.max(...xs)];
  if (!(xmax > xmin)) xmax = xmin + 1;
  if (xmin > 0 && xmin < (xmax - xmin) * 0.05) xmin = 0; // sampling began a few ms in: start at 0 s
  const ys = pts.map((p) => p[1]);
  const yTicks = niceTicks(yMax ?? Math.max(0, ...ys));
  const ymax = yTicks[yTicks.length - 1] || 1;
  const X = (v) => left + (W - left - right) * ((v - xmin) / (xmax - xmin));
  const Y = (v) => top + plotH * (1 - Math.max(0, v) / ymax);
  const unitText = yUnit ? ` ${yUnit}` : '';
  const summary = series.map((sr) => {
    const vals = sr.points.map((p) => p[1]);
    const at = sr.points[vals.indexOf(Math.max(...vals))]?.[0];
    return `${sr.label}: ${sr.points.length} samples, peak ${fmtNumber(Math.max(...vals))}${unitText} at ${fmtSeconds(at)} s`;
  }).concat(windows.map((w) => `${w.label || 'window'} from ${fmtSeconds(w.from)} s to ${fmtSeconds(w.to)} s`)).join('; ');
  const svg = s('svg', {
    viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'svg-chart time-chart', 'data-x-unit': 's',
    'aria-label': `${caption || 'chart'}, over time from ${fmtSeconds(xmin)} to ${fmtSeconds(xmax)} s. ${summary}`,
  });
  // Shaded windows first, under everything else.
  windows.forEach((w, i) => {
    const x1 = X(Math.max(w.from, xmin)); const x2 = X(Math.min(w.to, xmax));
    if (!(x2 > x1)) return;
    svg.append(s('rect', { x: x1, y: top, width: x2 - x1, height: axisY - top, class: ['window', 'window-fault', w.key && 'window-keyed'] },
      s('title', null, `${w.label || 'window'}: ${fmtSeconds(w.from)} s to ${fmtSeconds(w.to)} s`)));
    if (w.key) {
      const cls = seriesClass(w.key, 0);
      for (const x of [x1, x2]) svg.append(s('line', { x1: x, x2: x, y1: top, y2: top + plotH, class: ['window-edge', cls] }));
    }
    if (w.label) svg.append(s('text', { x: x1 + 4, y: top + 11 + i * 12, class: 'tick window-label' }, w.label));
  });
  for (const t of yTicks) {
    svg.append(s('line', { x1: left, x2: W - right, y1: Y(t), y2: Y(t), class: 'grid' }),
      s('text', { x: left - 6, y: Y(t) + 4, class: 'tick y-tick', 'text-anchor': 'end' }, fmtNumber(t)));
  }
  const xTicks = rangeTicks(xmin, xmax, 7);
  for (const t of xTicks) {
    svg.append(s('line', { x1: X(t), x2: X(t), y1: axisY, y2: axisY + 4, class: 'axis' }),
      s('text', { x: X(t), y: axisY + 16, class: 'tick x-tick', 'text-anchor': 'middle', 'data-t': String(t) }, `${fmtSeconds(t)} s`));
  }
  svg.append(s('line', { x1: left, x2: W - right, y1: top + plotH, y2: top + plotH, class: 'axis' }));
  svg.append(s('text', { x: (left + W - right) / 2, y: H - 6, class: 'tick unit x-label', 'text-anchor': 'middle' }, xLabel));
  if (yLabel || yUnit) svg.append(s('text', { x: 4, y: top - 6, class: 'tick unit y-label' }, `${yLabel}${yUnit ? ` (${yUnit})` : ''}`));
  for (const m of markers) {
    if (m.t < xmin || m.t > xmax) continue;
    svg.append(s('line', { x1: X(m.t), x2: X(m.t), y1: top, y2: top + plotH, class: 'marker' }, s('title', null, `${m.label} at ${fmtSeconds(m.t)} s`)));
  }
  // State bands: one row each, coloured per state, labelled at the left.
  bands.forEach((b, i) => {
    const y = bandsTop + i * (bandH + bandGap) + bandGap - 2;
    svg.append(s('text', { x: left, y: y - 3, class: 'tick band-label' }, b.label));
    for (const seg of b.segments) {
      const x1 = X(Math.max(seg.from, xmin)); const x2 = X(Math.min(seg.to, xmax));
      if (!(x2 > x1)) continue;
      svg.append(s('rect', { x: x1, y, width: x2 - x1, height: bandH, class: ['band', `state-band-${seg.state}`] },
        s('title', null, `${b.label}: ${b.states?.[seg.state] || seg.state} from ${fmtSeconds(seg.from)} s to ${fmtSeconds(seg.to)} s`)));
    }
  });
  series.forEach((sr, i) => {
    const sorted = [...sr.points].sort((a, b) => a[0] - b[0]).filter((p) => p[0] >= xmin - 1e-9 && p[0] <= xmax + 1e-9);
    const d = sorted.map((p, k) => `${k ? 'L' : 'M'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(' ');
    const cls = sr.cls || seriesClass(sr.key, i);
    svg.append(s('path', { d, class: ['line', cls], 'data-series': sr.key }, s('title', null, sr.label)));
    if (sorted.length <= 60) {
      for (const p of sorted) {
        svg.append(s('circle', { cx: X(p[0]), cy: Y(p[1]), r: 2.2, class: ['dot', cls] },
          s('title', null, `${sr.label}: ${fmtNumber(p[1])}${unitText} at ${fmtSeconds(p[0])} s`)));
      }
    }
  });
  const fig = h('figure', { class: 'chart' });
  if (caption) fig.append(h('figcaption', null, caption));
  const keys = series.map((sr, i) => ({ label: sr.label, cls: sr.cls || seriesClass(sr.key, i) }));
  const windowLegend = (w) => w.legend || w.label;
  const windowKeys = windows.filter((w, i) => windowLegend(w) && windows.findIndex((x) => windowLegend(x) === windowLegend(w)) === i)
    .map((w) => ({ label: windowLegend(w), cls: 'window-fault' }));
  const stateKeys = [];
  for (const b of bands) for (const [st, label] of Object.entries(b.states || {})) {
    if (!stateKeys.some((k) => k.st === st)) stateKeys.push({ st, label, cls: `state-band-${st}` });
  }
  if (keys.length > 1 || windowKeys.length || stateKeys.length) fig.append(legend([...keys, ...windowKeys, ...stateKeys]));
  fig.append(svg);
  if (note) fig.append(h('p', { class: 'muted small chart-note' }, note));
  return fig;
}

// One number across runs of an experiment, oldest to newest: the x axis is the runs in order
// (a category: each tick is a run, labelled by when it was created), one line per series.
//   runs: [{id, label}]; series: [{key, label, values: [n|undefined …]}] aligned with runs
export function runsChart(runs, series, { caption, yLabel = '', yUnit = '', href = null } = {}) {
  const W = 560; const H = 230; const left = 58; const right = 14; const top = 18; const bottom = 48;
  const all = series.flatMap((sr) => sr.values).filter((v) => typeof v === 'number');
  const yTicks = niceTicks(Math.max(0, ...all));
  const ymax = yTicks[yTicks.length - 1] || 1;
  const step = (W - left - right) / Math.max(runs.length, 1);
  const X = (i) => left + step * (i + 0.5);
  const Y = (v) => top + (H - top - bottom) * (1 - Math.max(0, v) / ymax);
  const unitText = yUnit ? ` ${yUnit}` : '';
  const svg = s('svg', {
    viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'svg-chart runs-chart',
    'aria-label': `${caption || 'chart'}, over the last ${runs.length} runs, oldest first. ` +
      series.map((sr) => `${sr.label}: ${sr.values.map((v) => (typeof v === 'number' ? fmtNumber(v) : 'not measured')).join(', ')}`).join('; '),
  });
  for (const t of yTicks) {
    svg.append(s('line', { x1: left, x2: W - right, y1: Y(t), y2: Y(t), class: 'grid' }),
      s('text', { x: left - 6, y: Y(t) + 4, class: 'tick', 'text-anchor': 'end' }, fmtNumber(t)));
  }
  svg.append(s('line', { x1: left, x2: W - right, y1: H - bottom, y2: H - bottom, class: 'axis' }));
  const every = Math.ceil(runs.length / 8);
  runs.forEach((r, i) => {
    if (i % every && i !== runs.length - 1) return;
    svg.append(s('text', { x: X(i), y: H - bottom + 15, class: 'tick', 'text-anchor': 'middle' }, r.label));
  });
  svg.append(s('text', { x: (left + W - right) / 2, y: H - 6, class: 'tick unit', 'text-anchor': 'middle' }, 'runs, oldest → newest (created, local time)'));
  if (yLabel || yUnit) svg.append(s('text', { x: 4, y: top - 6, class: 'tick unit' }, `${yLabel}${yUnit ? ` (${yUnit})` : ''}`));
  series.forEach((sr, si) => {
    const cls = sr.cls || seriesClass(sr.key, si);
    const pts = sr.values.map((v, i) => [i, v]).filter((p) => typeof p[1] === 'number');
    if (pts.length > 1) {
      svg.append(s('path', { d: pts.map((p, k) => `${k ? 'L' : 'M'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(' '), class: ['line', 'thin', cls] }));
    }
    for (const [i, v] of pts) {
      const dot = s('circle', { cx: X(i), cy: Y(v), r: 3.5, class: ['dot', cls] },
        s('title', null, `${runs[i].id} (${runs[i].label}): ${sr.label} ${fmtNumber(v)}${unitText}`));
      svg.append(href ? s('a', { href: href(runs[i]) }, dot) : dot);
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
