// One experiment (/ui/experiments/{id}): claim, whether it is stable (the verdicts of its last runs
// as a strip, its key number across runs), how it runs, how to read it, the verdict criteria,
// parameters, its last runs, and the Run form.

const HISTORY_LIMIT = 40;

// The numbers the criteria read, the one that carries the claim first: a metric compared between
// modes ("failure.p99 >= 4 x success.p99") or expected differently per mode ("failure.lost > 0",
// "success.lost == 0") before guards that every mode must pass alike ("… fault_fired == 1").
export function keyMetrics(criteria) {
  const byName = new Map();
  (criteria || []).forEach((c, i) => {
    const p = parseCriterion(c);
    if (!p) return;
    const add = (mode, metric, rule) => {
      if (!byName.has(metric)) byName.set(metric, { metric, first: i, modes: new Set(), rules: new Set(), ratio: false });
      const e = byName.get(metric);
      e.modes.add(mode);
      e.rules.add(rule);
      if (p.rhsMode) e.ratio = true;
    };
    const rule = p.rhsMode ? `${p.op} ${p.factor} x` : `${p.op} ${p.value}`;
    add(p.mode, p.metric, rule);
    if (p.rhsMode) add(p.rhsMode, p.rhsMetric, rule);
  });
  const score = (e) => (e.ratio ? 4 : 0) + (e.modes.size > 1 && e.rules.size > 1 ? 3 : 0) + e.modes.size
    - (e.modes.size > 1 && e.rules.size === 1 ? 3 : 0);
  return [...byName.values()].sort((a, b) => score(b) - score(a) || a.first - b.first)
    .map((e) => ({ metric: e.metric, modes: orderModes([...e.modes]) }));
}

function stripLabel(r) {
  return `${r.id}: ${r.verdict || `no verdict (${r.state})`}, created ${fmtTime(r.created_at)}`;
}

// The last runs, oldest to newest: a strip of verdicts, how often the claim held, and the key
// number across runs (pick another criteria number from the list).
async function historyView(e, signal) {
  const box = h('div', { class: 'history' }, h('p', { class: 'loading' }, `Loading the runs of ${e.id}…`));
  api.runs({ experiment: e.id, limit: HISTORY_LIMIT }).then((data) => {
    if (signal.aborted) return;
    const runs = [...(data.items || [])].reverse();
    if (!runs.length) { replace(box, h('p', { class: 'muted' }, 'No runs yet: the strip fills as runs finish.')); return; }
    const finished = runs.filter((r) => isFinished(r.state));
    const counts = { confirmed: 0, refuted: 0, inconclusive: 0, none: 0 };
    for (const r of finished) counts[r.verdict in counts ? r.verdict : 'none'] += 1;
    const strip = h('ol', { class: 'verdict-strip', 'aria-label': `verdicts of the last ${runs.length} runs, oldest first` },
      runs.map((r) => h('li', null, h('a', {
        href: `/ui/runs/${encodeURIComponent(r.id)}`, 'data-nav': true, 'data-run': r.id, 'data-verdict': r.verdict || '',
        class: `verdict-${r.verdict || 'none'}`, title: stripLabel(r), 'aria-label': stripLabel(r),
      }))));
    const parts = [];
    if (counts.refuted) parts.push(`refuted in ${counts.refuted}`);
    if (counts.inconclusive) parts.push(`inconclusive in ${counts.inconclusive}`);
    if (counts.none) parts.push(`no verdict in ${counts.none} (failed, cancelled or interrupted)`);
    const left = [
      strip,
      h('div', { class: 'strip-axis', 'aria-hidden': 'true' }, h('span', null, `oldest: ${fmtTime(runs[0].created_at)}`), h('span', null, `newest: ${fmtTime(runs[runs.length - 1].created_at)}`)),
      h('p', { class: 'stability' }, finished.length
        ? `The claim held in ${counts.confirmed} of the last ${finished.length} finished runs${parts.length ? `; ${parts.join(', ')}` : ''}.`
        : 'No run has finished yet.',
      runs.length >= HISTORY_LIMIT ? h('span', { class: 'muted' }, ` (the last ${HISTORY_LIMIT} runs)`) : null),
    ];
    // The key number across the finished runs that recorded it.
    const keys = keyMetrics(e.criteria).filter((k) => finished.some((r) => k.modes.some((m) => typeof r.evidence?.[m]?.metrics?.[k.metric] === 'number')));
    if (keys.length) {
      const chartBox = h('div', { class: 'key-number' });
      const draw = (metric) => {
        const k = keys.find((x) => x.metric === metric) || keys[0];
        const withIt = finished.filter((r) => k.modes.some((m) => typeof r.evidence?.[m]?.metrics?.[k.metric] === 'number'));
        const series = k.modes.map((m) => ({ key: m, label: `${modeLabel(m)}.${k.metric}`, values: withIt.map((r) => r.evidence?.[m]?.metrics?.[k.metric]) }))
          .filter((sr) => sr.values.some((v) => typeof v === 'number'));
        const last = series.map((sr) => `${sr.label} ${fmtNumber(sr.values[sr.values.length - 1])}`).join(', ');
        replace(chartBox, runsChart(withIt.map((r) => ({ id: r.id, label: fmtTime(r.created_at).slice(5, 16) })), series, {
          caption: `${k.metric} across the last ${withIt.length} runs`, yLabel: k.metric,
          yUnit: (k.metric.match(/_(ms|s|pct)(?:_|$)/)?.[1] || '').replace('pct', '%'),
          href: (r) => `/ui/runs/${encodeURIComponent(r.id)}`,
        }), h('p', { class: 'muted small' }, `Latest: ${last}.`));
      };
      const select = keys.length > 1 ? h('select', { id: 'key-metric', onchange: (ev) => draw(ev.target.value) },
        keys.map((k, i) => h('option', { value: k.metric, selected: i === 0 }, `${k.metric} (${k.modes.join(', ')})`))) : null;
      if (select) left.push(h('div', { class: 'field inline key-pick' }, h('label', { for: 'key-metric' }, 'Number across runs'), select));
      draw(keys[0].metric);
      replace(box, h('div', { class: 'history-strip' }, left), chartBox);
      return;
    }
    replace(box, h('div', { class: 'history-strip' }, left));
  }).catch((err) => { if (!signal.aborted) replace(box, problemView(err, { context: 'Could not load the runs' })); });
  return box;
}

import { api, problemView } from '../api.js';
import { fmtDuration, fmtNumber, fmtTime, h, isFinished, link, replace, section, stateBadge, tableWrap, timeEl, verdictBadge } from '../dom.js';
import { runForm } from '../form.js';
import { runsChart } from '../charts.js';
import { modeLabel, orderModes, parseCriterion } from '../evidence.js';
import { navigate } from '../main.js';
import { availabilityBadge, categoryLabel } from './catalog.js';

export async function renderExperiment(main, { args, signal }) {
  const [id] = args;
  document.title = `${id} · Reliability Lab`;
  main.append(h('p', { class: 'crumbs' }, link('/', 'Catalog'), ' / ', id));
  let e;
  try {
    e = await api.experiment(id);
  } catch (err) {
    if (signal.aborted) return;
    main.append(h('h1', null, id), problemView(err, { context: `Could not load experiment ${id}` }));
    return;
  }
  if (signal.aborted) return;
  document.title = `${e.id} ${e.title} · Reliability Lab`;
  const lastRuns = e.last_runs || [];
  main.append(
    h('div', { class: 'page-head' },
      h('h1', null, h('span', { class: 'exp-id' }, e.id), ' ', e.title),
      h('div', { class: 'badges' }, h('span', { class: 'badge cat' }, categoryLabel(e.category)), availabilityBadge(e),
        e.last_run_id ? h('span', null, 'latest: ', link(`/ui/runs/${encodeURIComponent(e.last_run_id)}`, verdictBadge(e.last_verdict))) : null),
      h('p', { class: 'lede' }, e.claim)),
    section('Is it stable?', await historyView(e, signal)),
    h('div', { class: 'two-col' },
      h('div', null,
        section('How it runs', h('p', null, e.how || '—')),
        section('How to read the evidence', h('p', null, e.reading || '—')),
        section('Verdict criteria',
          e.criteria?.length ? h('ul', { class: 'criteria' }, e.criteria.map((c) => h('li', null, h('code', null, c)))) : h('p', { class: 'muted' }, 'none declared'),
          h('p', { class: 'muted small' }, 'Confirmed when all hold; refuted when the evidence contradicts one; inconclusive when a number is missing or the run could not decide.')),
        section('Modes', h('ul', null, (e.modes || []).map((m) => h('li', null, h('strong', null, modeLabel(m.name)), ': ', m.description)))),
        section('Stack', h('p', null, 'needs: ', e.requires?.length ? e.requires.join(', ') : 'nothing'),
          e.exclusive?.length ? h('p', null, 'holds alone: ', e.exclusive.join(', '), ' (runs needing the same wait in the queue)') : null,
          h('p', { class: 'muted small' }, `default timeout ${fmtDuration(e.default_timeout_seconds)}`))),
      h('div', null,
        section('Run it', runForm(e, { onStarted: (rid) => navigate(`/ui/runs/${encodeURIComponent(rid)}`) })),
        section('Last runs',
          lastRuns.length ? tableWrap(h('table', null,
            h('thead', null, h('tr', null, ['run', 'state', 'verdict', 'created'].map((c) => h('th', { scope: 'col' }, c)))),
            h('tbody', null, lastRuns.map((r) => h('tr', null,
              h('td', null, link(`/ui/runs/${encodeURIComponent(r.id)}`, h('code', null, r.id))),
              h('td', null, stateBadge(r.state)), h('td', null, verdictBadge(r.verdict)), h('td', null, timeEl(r.created_at)))))), 'last runs')
            : h('p', { class: 'muted' }, 'No runs yet.'),
          h('p', null, link(`/ui/runs?experiment=${encodeURIComponent(e.id)}`, `All runs of ${e.id} →`))))));
}
