// Compare (/ui/compare?a=..&b=..): two runs side by side — verdicts, the parameters and recorded
// configuration setting by setting (differences marked), and each mode's numbers A beside B.

import { api, problemView } from '../api.js';
import { flatten, fmtDuration, fmtNumber, fmtValue, h, link, replace, section, stateBadge, tableWrap, timeEl, verdictBadge } from '../dom.js';
import { criteriaList, criteriaMetrics, evidenceCharts, modeLabel, orderModes } from '../evidence.js';
import { navigate } from '../main.js';

function diffTable(a, b, label) {
  const fa = flatten(a || {});
  const fb = flatten(b || {});
  const keys = [...new Set([...Object.keys(fa), ...Object.keys(fb)])].sort();
  if (!keys.length) return h('p', { class: 'muted' }, `Neither run recorded ${label}.`);
  const differing = keys.filter((k) => JSON.stringify(fa[k]) !== JSON.stringify(fb[k]));
  return h('div', null,
    h('p', { class: 'muted small' }, differing.length ? `${differing.length} of ${keys.length} differ (marked).` : `All ${keys.length} are the same.`),
    tableWrap(h('table', { class: 'diff' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'setting'), h('th', { scope: 'col' }, 'A'), h('th', { scope: 'col' }, 'B'))),
      h('tbody', null, keys.map((k) => {
        const diff = differing.includes(k);
        return h('tr', { class: diff ? 'changed' : null },
          h('th', { scope: 'row' }, h('code', null, k), diff ? h('span', { class: 'visually-hidden' }, ' (differs)') : null),
          h('td', null, fmtValue(fa[k])), h('td', null, fmtValue(fb[k])));
      }))), label));
}

function metricsDiff(ra, rb, criteria) {
  const modes = orderModes([...new Set([...Object.keys(ra.evidence || {}), ...Object.keys(rb.evidence || {})])]);
  if (!modes.length) return [h('p', { class: 'muted' }, 'Neither run recorded evidence.')];
  const critSet = criteriaMetrics(criteria);
  return modes.map((mode) => {
    const ma = ra.evidence?.[mode]?.metrics || {};
    const mb = rb.evidence?.[mode]?.metrics || {};
    const names = [...new Set([...Object.keys(ma), ...Object.keys(mb)])];
    const cols = [
      { key: 'A', seriesKey: 'a', label: `A ${ra.id}`, metrics: ma, details: ra.evidence?.[mode]?.details },
      { key: 'B', seriesKey: 'b', label: `B ${rb.id}`, metrics: mb, details: rb.evidence?.[mode]?.details },
    ];
    return h('div', { class: 'compare-mode' },
      h('h3', null, modeLabel(mode)),
      tableWrap(h('table', { class: 'metrics' },
        h('thead', null, h('tr', null, ['metric', 'A', 'B', 'B − A'].map((c, i) => h('th', { scope: 'col', class: i ? 'num' : null }, c)))),
        h('tbody', null, names.map((n) => {
          const a = ma[n]; const b = mb[n];
          const delta = typeof a === 'number' && typeof b === 'number' ? b - a : null;
          return h('tr', { class: [critSet.has(`${mode}.${n}`) && 'highlight', delta !== null && delta !== 0 && 'changed'] },
            h('th', { scope: 'row' }, h('code', null, n), critSet.has(`${mode}.${n}`) ? h('span', { class: 'crit-mark', title: 'used by the verdict criteria' }, ' ◆') : null),
            h('td', { class: 'num' }, fmtValue(a)), h('td', { class: 'num' }, fmtValue(b)),
            h('td', { class: 'num' }, delta === null ? '—' : `${delta > 0 ? '+' : ''}${fmtNumber(delta)}`));
        }))), `${mode} metrics A and B`),
      h('div', { class: 'charts' }, evidenceCharts(cols, { critSet, critKey: (_c, n) => `${mode}.${n}`, experiment: ra.experiment === rb.experiment ? ra.experiment : '' })));
  });
}

function picker(a, b) {
  const form = h('form', { class: 'filters', 'aria-label': 'Runs to compare' },
    h('div', { class: 'field inline' }, h('label', { for: 'cmp-a' }, 'Run A'), h('input', { id: 'cmp-a', name: 'a', value: a || '', autocomplete: 'off', spellcheck: 'false' })),
    h('div', { class: 'field inline' }, h('label', { for: 'cmp-b' }, 'Run B'), h('input', { id: 'cmp-b', name: 'b', value: b || '', autocomplete: 'off', spellcheck: 'false' })),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Compare')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const k of ['a', 'b']) { const v = form.elements.namedItem(k).value.trim(); if (v) p.set(k, v); }
    navigate(`/ui/compare?${p}`);
  });
  return form;
}

// Runs of the same experiment to pick B from, when only A is known.
async function suggestions(runA, signal) {
  const box = h('div', null, h('p', { class: 'loading' }, `Loading other runs of ${runA.experiment}…`));
  api.runs({ experiment: runA.experiment, limit: 20 }).then((data) => {
    if (signal.aborted) return;
    const others = (data.items || []).filter((r) => r.id !== runA.id);
    replace(box, others.length
      ? h('ul', { class: 'suggestions' }, others.map((r) => h('li', null,
        link(`/ui/compare?a=${encodeURIComponent(runA.id)}&b=${encodeURIComponent(r.id)}`, h('code', null, r.id)), ' ',
        stateBadge(r.state), ' ', verdictBadge(r.verdict), ' ', timeEl(r.created_at), r.note ? ` — ${r.note}` : '')))
      : h('p', { class: 'muted' }, `No other run of ${runA.experiment} yet.`));
  }).catch((err) => replace(box, problemView(err, { context: 'Could not list runs' })));
  return box;
}

export async function renderCompare(main, { params, signal }) {
  document.title = 'Compare · Reliability Lab';
  const a = params.get('a') || '';
  const b = params.get('b') || '';
  main.append(h('div', { class: 'page-head' }, h('h1', null, 'Compare two runs'),
    h('p', { class: 'lede' }, 'Two runs of one experiment side by side — for example before and after a parameter change. Pick them in the ', link('/ui/runs', 'history'), ' or enter their ids.')),
  picker(a, b));
  if (!a && !b) return;
  const out = h('div', null, h('p', { class: 'loading' }, 'Loading both runs…'));
  main.append(out);
  const load = (id) => (id ? api.run(id).then((r) => ({ r }), (err) => ({ err })) : Promise.resolve({ r: null }));
  const [ra, rb] = await Promise.all([load(a), load(b)]);
  if (signal.aborted) return;
  const problems = [[a, ra], [b, rb]].filter(([, x]) => x.err).map(([id, x]) => problemView(x.err, { context: `Run ${id}` }));
  if (problems.length) { replace(out, problems); return; }
  if (!rb.r || !ra.r) {
    const one = ra.r || rb.r;
    replace(out, section(`Pick a run to compare with ${one.id}`, await suggestions(one, signal)));
    return;
  }
  const A = ra.r; const B = rb.r;
  let experiment = null;
  try { experiment = await api.experiment(A.experiment); } catch { /* criteria are optional here */ }
  if (signal.aborted) return;
  const criteria = A.experiment === B.experiment ? experiment?.criteria || [] : [];
  const head = (label, r) => h('div', { class: 'card compare-head' },
    h('h3', null, `${label}: `, link(`/ui/runs/${encodeURIComponent(r.id)}`, h('code', null, r.id))),
    h('p', null, link(`/ui/experiments/${encodeURIComponent(r.experiment)}`, r.experiment), ' · ', stateBadge(r.state), ' ', verdictBadge(r.verdict)),
    r.verdict_reason ? h('p', { class: 'small' }, r.verdict_reason) : null,
    h('p', { class: 'muted small' }, 'created ', timeEl(r.created_at), ' · took ', fmtDuration(r.duration_seconds)),
    r.note ? h('p', { class: 'small' }, `note: ${r.note}`) : null,
    h('div', { class: 'small' }, criteriaList(criteria, r.evidence && Object.keys(r.evidence).length ? r.evidence : null)));
  replace(out,
    A.experiment !== B.experiment ? h('p', { class: 'warn', role: 'note' }, `These are runs of different experiments (${A.experiment} and ${B.experiment}); their numbers may not mean the same thing.`) : null,
    h('div', { class: 'compare-grid' }, head('A', A), head('B', B)),
    section('Evidence, A beside B', metricsDiff(A, B, criteria)),
    section('Parameters', diffTable({ modes: A.modes, repeat: A.repeat, timeout_seconds: A.timeout_seconds, ...A.params }, { modes: B.modes, repeat: B.repeat, timeout_seconds: B.timeout_seconds, ...B.params }, 'parameters')),
    section('Configuration', diffTable(A.configuration, B.configuration, 'configuration')),
    section('Stack', diffTable(A.stack, B.stack, 'stack readings')));
}
