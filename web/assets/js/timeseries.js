// Charts with a meaning, chosen per experiment from what its evidence holds: lines over a time
// axis (seconds) where something was sampled over time — latency, error rate, backlog, lag — with
// the fault or outage shaded, and before/after bars where the evidence is counts. Modes (or, on
// the compare page, runs A and B) share one time scale. A list that is not sampled over time
// (broker ids, counts per schema id) is never drawn as a line: it stays in the details table.
//
// `columns` (as in evidence.js): [{key, seriesKey?, label, metrics, details}] — one per mode on a
// run page, one per run on the compare page. Each builder returns {charts, usedDetails,
// usedMetrics} so the generic charts do not draw the same numbers twice.

import { fmtNumber } from './dom.js';
import { groupedColumns, metricBars, timeChart } from './charts.js';

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const keyOf = (c) => c.seriesKey || c.key;

// Shared [min, max] of all points (and windows) so every chart of a run uses one time scale.
function domainOf(seriesList, windows = []) {
  const xs = seriesList.flatMap((sr) => sr.points.map((p) => p[0])).concat(windows.flatMap((w) => [w.from, w.to]));
  if (!xs.length) return null;
  return [Math.min(...xs), Math.max(...xs)];
}

// Contiguous spans where `pred(sample)` holds: [{from, to}] in the samples' time.
function spansWhere(samples, t, pred) {
  const spans = [];
  let open = null;
  samples.forEach((x, i) => {
    if (pred(x)) {
      if (open === null) open = t(x);
    } else if (open !== null) {
      spans.push({ from: open, to: t(x) });
      open = null;
    }
    if (i === samples.length - 1 && open !== null) spans.push({ from: open, to: t(x) });
  });
  return spans;
}

// --- N21: circuit breaker ----------------------------------------------------------------------
// details.timeline: 250 ms slots {t_s (0 = fault on), p99_ms, error_pct, breaker_state}; the fault
// lasts metrics.fault_ms; details.breaker_transitions [{t_s, from, to}] gives the breaker's state
// exactly (the timeline's breaker_state is sampled every 200 ms and is the fallback).
const BREAKER_STATES = { closed: 'breaker closed', half_open: 'half-open (trial calls)', open: 'breaker open' };

function breakerSegments(details, domain) {
  const tr = Array.isArray(details?.breaker_transitions) ? details.breaker_transitions.filter((x) => num(x.t_s) !== undefined) : [];
  if (details?.service?.breaker === 'off') return null;
  if (tr.length) {
    const segs = [];
    let from = domain[0];
    let state = tr[0].from || 'closed';
    for (const x of [...tr].sort((a, b) => a.t_s - b.t_s)) {
      segs.push({ from, to: x.t_s, state: state.replace('-', '_') });
      from = x.t_s;
      state = x.to || state;
    }
    segs.push({ from, to: domain[1], state: state.replace('-', '_') });
    return segs;
  }
  const tl = Array.isArray(details?.timeline) ? details.timeline : [];
  if (!tl.some((x) => x.breaker_state > 0)) return null;
  const name = (v) => (v >= 2 ? 'open' : v >= 1 ? 'half_open' : 'closed');
  const segs = [];
  tl.forEach((x, i) => {
    const to = tl[i + 1]?.t_s ?? x.t_s + 0.25;
    const st = name(x.breaker_state);
    if (segs.length && segs[segs.length - 1].state === st) segs[segs.length - 1].to = to;
    else segs.push({ from: x.t_s, to, state: st });
  });
  return segs;
}

function n21(columns) {
  const withTl = columns.filter((c) => Array.isArray(c.details?.timeline) && c.details.timeline.length >= 3);
  if (!withTl.length) return null;
  const faultS = Math.max(...withTl.map((c) => num(c.metrics?.fault_ms) ?? 0)) / 1000;
  const toxic = withTl.map((c) => c.details?.fault?.toxic).find(Boolean);
  const windows = faultS > 0 ? [{ from: 0, to: faultS, label: toxic ? `fault: ${toxic}` : 'fault' }] : [];
  const p99 = withTl.map((c) => ({ key: keyOf(c), label: c.label, points: c.details.timeline.filter((x) => num(x.p99_ms) !== undefined).map((x) => [x.t_s, x.p99_ms]) }));
  const err = withTl.map((c) => ({ key: keyOf(c), label: c.label, points: c.details.timeline.filter((x) => num(x.error_pct) !== undefined).map((x) => [x.t_s, x.error_pct]) }));
  const domain = domainOf([...p99, ...err], windows);
  const bands = withTl.map((c) => {
    const segments = breakerSegments(c.details, domain);
    return segments ? { label: `${c.label}: breaker state`, segments, states: BREAKER_STATES } : null;
  }).filter(Boolean);
  const noBreaker = withTl.filter((c) => c.details?.service?.breaker === 'off').map((c) => c.label);
  const xLabel = 'seconds since the fault began (250 ms slots, by send time)';
  const charts = [
    timeChart(p99, {
      caption: 'p99 latency over time', yLabel: 'p99 latency', yUnit: 'ms', windows, bands, xDomain: domain, xLabel,
      note: noBreaker.length ? `${noBreaker.join(', ')}: no breaker, so no state band.` : null,
    }),
    timeChart(err, { caption: 'Errors over time', yLabel: 'requests answered with an error', yUnit: '%', yMax: 100, windows, bands, xDomain: domain, xLabel }),
  ];
  // Before / during / after: the p99 of each window the verdict reads, mode beside mode.
  const order = ['baseline', 'during', 'settled', 'after'];
  const withWindows = columns.filter((c) => c.details?.windows && typeof c.details.windows === 'object');
  if (withWindows.length) {
    const cats = order.filter((w) => withWindows.some((c) => num(c.details.windows[w]?.p99_ms) !== undefined));
    charts.push(groupedColumns(cats, withWindows.map((c) => ({ key: keyOf(c), label: c.label, values: cats.map((w) => num(c.details.windows[w]?.p99_ms)) })),
      { unit: 'ms', caption: 'p99 latency before, during and after the fault (per window)' }));
  }
  return { charts, usedDetails: new Set(['timeline', 'windows', 'breaker_transitions']), usedMetrics: new Set() };
}

// --- N19: outbox outage --------------------------------------------------------------------------
// details.timeline: samples {t_ms (since the mode's sampler started), brokers_up, pending,
// oldest_age_ms, committed}; the outage is where brokers_up == 0.
function n19(columns) {
  const withTl = columns.filter((c) => Array.isArray(c.details?.timeline) && c.details.timeline.length >= 3
    && c.details.timeline.every((x) => num(x.t_ms) !== undefined));
  if (!withTl.length) return null;
  const t = (x) => x.t_ms / 1000;
  const windows = [];
  for (const c of withTl) {
    const spans = spansWhere(c.details.timeline, t, (x) => num(x.brokers_up) === 0);
    for (const sp of spans) {
      windows.push({ ...sp, key: withTl.length > 1 ? keyOf(c) : undefined, label: `${c.label} down`, legend: 'all brokers down (darker where both were)' });
    }
  }
  // pending and oldest_age_ms are -1 where there is no outbox (writes go straight to Kafka).
  const series = (field, scale = 1) => withTl.map((c) => ({
    key: keyOf(c), label: c.label,
    points: c.details.timeline.filter((x) => num(x[field]) !== undefined && x[field] >= 0).map((x) => [t(x), x[field] * scale]),
  })).filter((sr) => sr.points.length >= 2);
  const backlog = series('pending');
  const age = series('oldest_age_ms', 1 / 1000).filter((sr) => backlog.some((b) => b.key === sr.key));
  const committed = series('committed');
  const domain = domainOf([...backlog, ...age, ...committed], windows);
  const allUp = Math.max(...withTl.flatMap((c) => c.details.timeline.map((x) => num(x.brokers_up) ?? 0)));
  const brokerState = (x) => (x.brokers_up === 0 ? 'down' : x.brokers_up >= allUp ? 'up' : 'partial');
  const bands = withTl.filter((c) => c.details.timeline.some((x) => num(x.brokers_up) !== undefined)).map((c) => {
    const tl = c.details.timeline;
    const segments = [];
    tl.forEach((x, i) => {
      const to = i + 1 < tl.length ? t(tl[i + 1]) : t(x);
      const st = brokerState(x);
      if (segments.length && segments[segments.length - 1].state === st) segments[segments.length - 1].to = to;
      else segments.push({ from: t(x), to, state: st });
    });
    return { label: `${c.label}: brokers accepting connections`, segments, states: { up: 'all brokers accepting', partial: 'some brokers down', down: 'all brokers down' } };
  });
  const noOutbox = withTl.filter((c) => !backlog.some((sr) => sr.key === keyOf(c))).map((c) => c.label);
  const xLabel = 'seconds since the mode began sampling (TCP probe of the brokers every 200 ms)';
  const charts = [];
  if (backlog.length) {
    charts.push(timeChart(backlog, {
      caption: 'Outbox backlog over time', yLabel: 'rows not yet relayed', windows, bands, xDomain: domain, xLabel,
      note: noOutbox.length ? `${noOutbox.join(', ')}: writes go straight to Kafka (no outbox), so it has no backlog to draw.` : null,
    }));
  }
  if (age.some((sr) => sr.points.some((p) => p[1] > 0))) charts.push(timeChart(age, { caption: 'Age of the oldest unrelayed row', yLabel: 'oldest row', yUnit: 's', windows, xDomain: domain, xLabel }));
  if (committed.length) charts.push(timeChart(committed, { caption: 'Orders committed to the database over time', yLabel: 'orders committed', windows, bands, xDomain: domain, xLabel }));
  return { charts, usedDetails: new Set(['timeline']), usedMetrics: new Set() };
}

// --- E-006: schema rollout -----------------------------------------------------------------------
// details.lag_timeline_ms_lag: [[t_ms since the lag sampler started, lag in records], …].
function e006(columns) {
  const withLag = columns.filter((c) => Array.isArray(c.details?.lag_timeline_ms_lag) && c.details.lag_timeline_ms_lag.length >= 3);
  if (!withLag.length) return null;
  const lag = withLag.map((c) => ({ key: keyOf(c), label: c.label, points: c.details.lag_timeline_ms_lag.filter((p) => Array.isArray(p) && num(p[0]) !== undefined && num(p[1]) !== undefined).map((p) => [p[0] / 1000, p[1]]) }));
  const notes = withLag.map((c) => {
    const m = c.metrics || {};
    return num(m.final_lag) !== undefined ? `${c.label}: max lag ${fmtNumber(m.max_lag)}, final lag ${fmtNumber(m.final_lag)}` : null;
  }).filter(Boolean);
  return {
    charts: [timeChart(lag, {
      caption: 'Consumer lag over time', yLabel: 'consumer lag', yUnit: 'records', xLabel: 'seconds since the lag sampler started',
      note: notes.length ? `${notes.join('; ')}. The producer switch to V2 is not timestamped in the evidence, so it is not marked.` : null,
    })],
    usedDetails: new Set(['lag_timeline_ms_lag']),
    usedMetrics: new Set(),
  };
}

// --- E-009: acks and durability ------------------------------------------------------------------
// Counts, one unit (records): what was acknowledged, what was read back after the election, and
// the difference, on one scale, mode beside mode.
function e009(columns, series) {
  const names = ['acknowledged', 'read_back', 'lost_acked', 'rejected_isr'];
  if (!columns.some((c) => num(c.metrics?.acknowledged) !== undefined)) return null;
  const rows = names.filter((n) => columns.some((c) => num(c.metrics?.[n]) !== undefined)).map((n) => ({
    name: n, values: Object.fromEntries(columns.map((c) => [keyOf(c), num(c.metrics?.[n])])),
  }));
  return {
    charts: [metricBars(rows, series, { caption: 'Records acknowledged, then read back after the leader election (one scale, records)', sharedScale: true })],
    usedDetails: new Set(),
    usedMetrics: new Set(names),
  };
}

const BUILDERS = { N21: n21, N19: n19, 'E-006': e006, 'E-009': e009 };

// --- any other experiment: arrays of samples with a time field -----------------------------------
const TIME_FIELDS = [['t_s', 1], ['t', 1], ['elapsed_s', 1], ['seconds', 1], ['t_ms', 1e-3], ['elapsed_ms', 1e-3], ['at_ms', 1e-3], ['t_us', 1e-6]];

// Arrays of objects with a numeric time field and at least 3 samples; a field that is only 0/1
// (a flag) is not a line. Pairs only when the name says the first element is time
// ("…timeline…", "…_series", "…_ms_<what>"). Returns [{path, field, points (seconds), unit}].
export function findTimeSeries(details, maxDepth = 3) {
  const found = [];
  const walk = (value, path, depth) => {
    if (depth > maxDepth || value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      if (value.length < 3) return;
      if (value.every((v) => v && typeof v === 'object' && !Array.isArray(v))) {
        const tf = TIME_FIELDS.find(([k]) => value.every((v) => num(v[k]) !== undefined));
        if (!tf) return;
        const [tk, scale] = tf;
        let ts = value.map((v) => v[tk] * scale);
        if (ts[0] > 1e8) { const t0 = Math.min(...ts); ts = ts.map((x) => x - t0); } // epoch: from the first
        for (const f of Object.keys(value[0])) {
          if (f === tk || !value.every((v) => num(v[f]) !== undefined)) continue;
          if (value.every((v) => v[f] === 0 || v[f] === 1)) continue;
          const unit = f.match(/_(ms|pct|s|bytes)$/)?.[1];
          found.push({ path, field: f, points: value.map((v, i) => [ts[i], v[f]]), unit: unit === 'pct' ? '%' : unit || '' });
        }
        return;
      }
      const named = path.match(/(?:^|[._])(?:timeline|series|over_time)|_ms_([a-z_]+)$/);
      if (named && value.every((v) => Array.isArray(v) && v.length === 2 && num(v[0]) !== undefined && num(v[1]) !== undefined)) {
        const ms = /_ms(_|$)/.test(path);
        found.push({ path, field: named[1] || '', points: value.map((v) => [ms ? v[0] / 1000 : v[0], v[1]]), unit: '' });
      }
      return;
    }
    for (const [k, v] of Object.entries(value)) walk(v, path ? `${path}.${k}` : k, depth + 1);
  };
  walk(details, '', 0);
  return found;
}

function genericTimeCharts(columns, used) {
  const byName = new Map();
  for (const c of columns) {
    for (const sr of findTimeSeries(c.details || {})) {
      if (used.has(sr.path.split('.')[0])) continue;
      const name = sr.field ? `${sr.path}.${sr.field}` : sr.path;
      if (!byName.has(name)) byName.set(name, { path: sr.path, field: sr.field, unit: sr.unit, lines: [] });
      byName.get(name).lines.push({ key: keyOf(c), label: c.label, points: sr.points });
    }
  }
  const all = [...byName.values()];
  const domain = domainOf(all.flatMap((x) => x.lines));
  return all.map(({ path, field, unit, lines }) => {
    const what = (field || path.split('.').pop()).replace(/_(ms|pct|s)$/, '').replace(/_/g, ' ');
    const where = path.replace(/_/g, ' ').replace(/\./g, ' › ');
    return timeChart(lines, { caption: `${what} over time${field ? ` (${where})` : ''}`, yLabel: what, yUnit: unit, xDomain: domain, xLabel: 'seconds (as recorded by the runner)' });
  });
}

// The time and before/after charts for these columns; `experiment` chooses a builder.
export function chartsFor(experiment, columns, series) {
  const built = BUILDERS[experiment]?.(columns, series) || null;
  const usedDetails = built?.usedDetails || new Set();
  const charts = [...(built?.charts || []), ...genericTimeCharts(columns, usedDetails)];
  return { charts, usedMetrics: built?.usedMetrics || new Set() };
}
