// Evidence as pictures: a run's evidence ({<mode>: {metrics, details}}) shown mode beside mode,
// with charts chosen per experiment and from the shape of the numbers (series over time from
// details, counts, latency percentiles; see timeseries.js). Only what the API returned is drawn.

import { fmtNumber, fmtValue, h, jsonBlock, tableWrap } from './dom.js';
import { groupedColumns, metricBars } from './charts.js';
import { chartsFor } from './timeseries.js';

const MODE_ORDER = ['failure', 'success', 'check'];
const MODE_LABEL = { failure: '✗ failure', success: '✓ success', check: 'check' };

export function modeLabel(mode) {
  return MODE_LABEL[mode] || mode;
}

export function orderModes(modes) {
  return [...modes].sort((a, b) => {
    const ia = MODE_ORDER.indexOf(a); const ib = MODE_ORDER.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
  });
}

// "latency_p99_ms" -> {group: "latency", q: 99, unit: "ms"}; non-percentiles -> null.
export function parsePercentile(name) {
  const m = name.match(/^(?:(.*?)_)?p(\d{2,3}(?:\.\d+)?)(?:_(ms|us|s|seconds|millis))?$/i);
  if (!m) return null;
  const unit = m[3] ? ({ millis: 'ms', seconds: 's' }[m[3]] || m[3]) : '';
  return { group: m[1] || 'latency', q: Number(m[2]), unit };
}

// The criteria strings ("failure.lost > 0", "failure.db_reads >= 10 x success.db_reads").
export function parseCriterion(text) {
  const m = String(text).match(/^\s*([\w-]+)\.([\w.-]+)\s*(>=|<=|==|=|>|<|!=)\s*(.+?)\s*$/);
  if (!m) return null;
  const rhs = m[4];
  const ratio = rhs.match(/^(?:([\d.eE+-]+)\s*[x×*]\s*)?([\w-]+)\.([\w.-]+)$/);
  if (ratio) return { mode: m[1], metric: m[2], op: m[3], factor: ratio[1] ? Number(ratio[1]) : 1, rhsMode: ratio[2], rhsMetric: ratio[3] };
  const num = Number(rhs);
  return { mode: m[1], metric: m[2], op: m[3], value: Number.isFinite(num) ? num : null };
}

// Which metric names of which mode the criteria look at: Set of "mode.metric".
export function criteriaMetrics(criteria) {
  const set = new Set();
  for (const c of criteria || []) {
    const p = parseCriterion(c);
    if (!p) continue;
    set.add(`${p.mode}.${p.metric}`);
    if (p.rhsMode) set.add(`${p.rhsMode}.${p.rhsMetric}`);
  }
  return set;
}

function metricOf(evidence, mode, metric) {
  const v = evidence?.[mode]?.metrics?.[metric];
  return typeof v === 'number' ? v : undefined;
}

// Each criterion with the numbers the run observed for it (no verdict is recomputed here: the
// server's verdict and reason stand; this only puts the numbers next to the rule).
export function criteriaList(criteria, evidence) {
  if (!criteria?.length) return null;
  return h('ul', { class: 'criteria' }, criteria.map((c) => {
    const p = parseCriterion(c);
    const observed = [];
    if (p && evidence) {
      const l = metricOf(evidence, p.mode, p.metric);
      observed.push(`${p.mode}.${p.metric} = ${l === undefined ? 'not measured' : fmtNumber(l)}`);
      if (p.rhsMode) {
        const r = metricOf(evidence, p.rhsMode, p.rhsMetric);
        observed.push(`${p.rhsMode}.${p.rhsMetric} = ${r === undefined ? 'not measured' : fmtNumber(r)}`);
      }
    }
    return h('li', null, h('code', null, c),
      observed.length ? h('span', { class: 'observed' }, ` — observed ${observed.join(', ')}`) : null);
  }));
}

// --- the side-by-side view --------------------------------------------------------------------

const isScalar = (v) => v === null || ['string', 'number', 'boolean'].includes(typeof v);
// A short list of scalars (a partition's replicas [1, 2]) reads as one cell: "1, 2".
const isCell = (v) => isScalar(v) || (Array.isArray(v) && v.length <= 12 && v.every(isScalar));
const cellText = (v) => (Array.isArray(v) ? (v.length ? v.map(fmtValue).join(', ') : '(none)') : fmtValue(v));

// The readable part of a mode's details: objects of like records become tables (e.g. one row
// per stack part with ok/version/rtt_ms/detail), lists of words become lists, scalars a line each.
// Anything else stays in the raw JSON below it.
export function detailsView(details) {
  if (!details || typeof details !== 'object' || Array.isArray(details)) return null;
  const tables = [];
  const lines = [];
  const records = {};
  for (const [k, v] of Object.entries(details)) {
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every(isCell) && Object.keys(v).length) records[k] = v;
    else if (Array.isArray(v) && v.length && v.every((x) => typeof x === 'string' || typeof x === 'number')) lines.push([k, v.join(', ')]);
    else if (isScalar(v)) lines.push([k, fmtValue(v)]);
  }
  const recordKeys = Object.keys(records);
  if (recordKeys.length >= 2) {
    const fields = [];
    for (const r of Object.values(records)) for (const f of Object.keys(r)) if (!fields.includes(f)) fields.push(f);
    // Short fields first (ok, version, numbers), long free text (detail, error…) last.
    const late = (f) => (/^(detail|details|error|message|reason)$/.test(f) ? 1 : 0);
    fields.sort((a, b) => late(a) - late(b) || (a === 'ok' ? -1 : b === 'ok' ? 1 : 0));
    tables.push(tableWrap(h('table', { class: 'records' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, ''), fields.map((f) => h('th', { scope: 'col' }, f)))),
      h('tbody', null, recordKeys.map((k) => h('tr', { class: records[k].ok === false ? 'bad' : null },
        h('th', { scope: 'row' }, k),
        fields.map((f) => {
          const v = records[k][f];
          if (f === 'ok' && typeof v === 'boolean') return h('td', null, v ? h('span', { class: 'ok' }, '✔ yes') : h('span', { class: 'bad-text' }, '✘ no'));
          return h('td', { class: typeof v === 'number' ? 'num' : null }, v === '' ? '—' : cellText(v));
        }))))), 'details'));
  } else {
    for (const k of recordKeys) lines.push([k, Object.entries(records[k]).map(([f, v]) => `${f}=${Array.isArray(v) ? `[${cellText(v)}]` : fmtValue(v)}`).join(', ')]);
  }
  if (!tables.length && !lines.length) return null;
  return h('div', { class: 'details-view' },
    tables,
    lines.length ? h('dl', { class: 'kv' }, lines.map(([k, v]) => h('div', null, h('dt', null, k.replace(/_/g, ' ')), h('dd', null, v)))) : null);
}

function metricTable(metrics, mode, critSet) {
  const names = Object.keys(metrics || {});
  if (!names.length) return h('p', { class: 'muted' }, 'No metrics recorded for this mode.');
  return tableWrap(h('table', { class: 'metrics' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'metric'), h('th', { scope: 'col', class: 'num' }, 'value'))),
    h('tbody', null, names.map((n) => h('tr', { class: critSet.has(`${mode}.${n}`) ? 'highlight' : null },
      h('th', { scope: 'row' }, h('code', null, n), critSet.has(`${mode}.${n}`) ? h('span', { class: 'crit-mark', title: 'used by the verdict criteria' }, ' ◆') : null),
      h('td', { class: 'num' }, fmtValue(metrics[n])))))), `${mode} metrics`);
}

// Evidence charts shared by the run and compare pages. `columns`: [{key, label, metrics, details}]
export function evidenceCharts(columns, { critSet = new Set(), critKey = (col, name) => `${col.key}.${name}`, experiment = '' } = {}) {
  const series = columns.map((c) => ({ key: c.seriesKey || c.key, label: c.label }));
  // First what was sampled over time (and the experiment's own before/after charts).
  const timed = chartsFor(experiment, columns, series);
  const out = [...timed.charts];
  // Metrics named "<thing>.<quantity>" (kafka.rtt_ms, redis.rtt_ms…): one chart per quantity
  // measured on two or more things, on a shared scale, so the things can be compared.
  const numericNames = [];
  for (const c of columns) for (const n of Object.keys(c.metrics || {})) {
    if (!numericNames.includes(n) && !parsePercentile(n) && typeof c.metrics[n] === 'number') numericNames.push(n);
  }
  const byQuantity = new Map();
  for (const n of numericNames) {
    const dot = n.lastIndexOf('.');
    if (dot <= 0) continue;
    const q = n.slice(dot + 1);
    if (!byQuantity.has(q)) byQuantity.set(q, []);
    byQuantity.get(q).push(n);
  }
  const grouped = new Set();
  for (const [q, list] of byQuantity) {
    if (list.length < 2) continue;
    list.forEach((n) => grouped.add(n));
    out.push(metricBars(list.map((n) => ({
      name: n.slice(0, n.lastIndexOf('.')),
      highlight: columns.some((c) => critSet.has(critKey(c, n))),
      values: Object.fromEntries(columns.map((c) => [c.seriesKey || c.key, c.metrics?.[n]])),
    })), series, { caption: `${q.replace(/_/g, ' ')}, compared across ${list.length} (one scale)`, sharedScale: true }));
  }
  // Counts (everything else that is not a percentile), mode beside mode. With one mode alone the
  // table already says it all, so no chart is drawn for it.
  const names = numericNames.filter((n) => !grouped.has(n) && !timed.usedMetrics.has(n));
  if (names.length && columns.length > 1) {
    const rows = names.map((n) => ({
      name: n,
      highlight: columns.some((c) => critSet.has(critKey(c, n))),
      values: Object.fromEntries(columns.map((c) => [c.seriesKey || c.key, c.metrics?.[n]])),
    }));
    out.push(metricBars(rows, series, { caption: `Counts, ${columns.map((c) => c.label).join(' beside ')} (each row on its own scale)` }));
  }
  // Percentiles, grouped by their prefix ("latency", "commit_to_projection"…).
  const groups = new Map();
  for (const c of columns) for (const [n, v] of Object.entries(c.metrics || {})) {
    const p = parsePercentile(n);
    if (!p || typeof v !== 'number') continue;
    const g = `${p.group}|${p.unit}`;
    if (!groups.has(g)) groups.set(g, { group: p.group, unit: p.unit, qs: new Map() });
    const entry = groups.get(g);
    if (!entry.qs.has(p.q)) entry.qs.set(p.q, {});
    entry.qs.get(p.q)[c.seriesKey || c.key] = v;
  }
  for (const g of groups.values()) {
    const qs = [...g.qs.keys()].sort((a, b) => a - b);
    out.push(groupedColumns(qs.map((q) => `p${q}`),
      columns.map((c) => ({ key: c.seriesKey || c.key, label: c.label, values: qs.map((q) => g.qs.get(q)[c.seriesKey || c.key]) })),
      { unit: g.unit, caption: `${g.group.replace(/_/g, ' ')} percentiles${g.unit ? ` (${g.unit})` : ''}` }));
  }
  return out;
}

// The run page's evidence: mode columns side by side, then the charts, then raw details.
export function evidenceView(evidence, { criteria = [], modeDescriptions = {}, experiment = '' } = {}) {
  const modes = orderModes(Object.keys(evidence || {}));
  if (!modes.length) return h('p', { class: 'muted' }, 'No evidence recorded.');
  const critSet = criteriaMetrics(criteria);
  const grid = h('div', { class: ['evidence-grid', `cols-${Math.min(modes.length, 3)}`] });
  for (const mode of modes) {
    const ev = evidence[mode] || {};
    grid.append(h('article', { class: ['mode-col', `mode-${mode}`], 'aria-label': `${mode} mode evidence` },
      h('h3', null, modeLabel(mode)),
      modeDescriptions[mode] ? h('p', { class: 'muted mode-desc' }, modeDescriptions[mode]) : null,
      metricTable(ev.metrics, mode, critSet),
      detailsView(ev.details),
      ev.details && Object.keys(ev.details).length
        ? h('details', { class: 'raw' }, h('summary', null, 'details (as recorded)'), jsonBlock(ev.details)) : null));
  }
  const charts = evidenceCharts(modes.map((m) => ({ key: m, label: modeLabel(m), metrics: evidence[m]?.metrics, details: evidence[m]?.details })), { critSet, experiment });
  return h('div', { class: 'evidence' }, grid,
    charts.length ? h('div', { class: 'charts' }, charts) : null,
    critSet.size ? h('p', { class: 'muted small' }, '◆ marks the numbers the verdict criteria read.') : null);
}
