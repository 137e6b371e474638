// History (/ui/runs): runs newest first, filtered by experiment, state, verdict and time,
// paginated with the API's opaque cursor. Two rows can be picked for a comparison.

import { api, problemView } from '../api.js';
import { fmtDuration, h, link, replace, stateBadge, tableWrap, timeEl, verdictBadge } from '../dom.js';
import { navigate, setQuery } from '../main.js';

const STATES = ['queued', 'running', 'completed', 'failed', 'cancelled', 'interrupted'];
const VERDICTS = ['confirmed', 'refuted', 'inconclusive'];

// <input type="datetime-local"> value (local time) <-> RFC 3339 UTC.
function localToIso(v) {
  if (!v) return '';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}
function isoToLocal(v) {
  if (!v) return '';
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) return '';
  const off = d.getTimezoneOffset() * 60000;
  return new Date(d.getTime() - off).toISOString().slice(0, 16);
}

function select(id, label, options, value) {
  return h('div', { class: 'field inline' },
    h('label', { for: id }, label),
    h('select', { id, name: id.replace(/^f-/, '') },
      h('option', { value: '' }, 'any'),
      options.map((o) => h('option', { value: o.value ?? o, selected: (o.value ?? o) === value }, o.label ?? o))));
}

export async function renderRuns(main, { params, signal }) {
  document.title = 'History · Reliability Lab';
  const limit = params.get('limit') || '25';
  const form = h('form', { class: 'filters', 'aria-label': 'Filter runs' },
    select('f-experiment', 'Experiment', [], params.get('experiment') || ''),
    select('f-state', 'State', STATES, params.get('state') || ''),
    select('f-verdict', 'Verdict', VERDICTS, params.get('verdict') || ''),
    h('div', { class: 'field inline' }, h('label', { for: 'f-since' }, 'Since'),
      h('input', { type: 'datetime-local', id: 'f-since', name: 'since', value: isoToLocal(params.get('since')) })),
    h('div', { class: 'field inline' }, h('label', { for: 'f-until' }, 'Until'),
      h('input', { type: 'datetime-local', id: 'f-until', name: 'until', value: isoToLocal(params.get('until')) })),
    h('div', { class: 'field inline' }, h('label', { for: 'f-limit' }, 'Per page'),
      h('select', { id: 'f-limit', name: 'limit' }, ['10', '25', '50', '100', '200'].map((n) => h('option', { value: n, selected: n === limit }, n)))),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Apply'),
      h('button', { type: 'button', id: 'f-reset' }, 'Reset')));
  const results = h('div', { class: 'results' }, h('p', { class: 'loading' }, 'Loading runs…'));
  const compareBar = h('div', { class: 'compare-bar', hidden: true });
  main.append(h('div', { class: 'page-head' }, h('h1', null, 'Run history'),
    h('p', { class: 'lede' }, 'Every run, newest first. Pick two runs of the same experiment to compare them.')),
  form, compareBar, results);

  // The experiment filter is filled from the catalog (a failure here leaves it at "any").
  api.experiments().then((cat) => {
    if (signal.aborted) return;
    const sel = form.querySelector('#f-experiment');
    const want = params.get('experiment') || '';
    for (const e of cat.items || []) sel.append(h('option', { value: e.id, selected: e.id === want }, `${e.id} ${e.title}`));
    if (want && ![...sel.options].some((o) => o.value === want)) sel.append(h('option', { value: want, selected: true }, want));
  }).catch(() => {
    const sel = form.querySelector('#f-experiment');
    const want = params.get('experiment');
    if (want) sel.append(h('option', { value: want, selected: true }, want));
  });

  const picked = new Map(); // id -> experiment
  const drawCompareBar = () => {
    const ids = [...picked.keys()];
    compareBar.hidden = ids.length === 0;
    const same = new Set(picked.values()).size <= 1;
    replace(compareBar,
      h('span', null, ids.length === 1 ? `Picked ${ids[0]}; pick one more to compare.` : `Picked ${ids.join(' and ')}.`),
      ids.length === 2 && !same ? h('span', { class: 'warn' }, ' They are runs of different experiments.') : null,
      h('button', { type: 'button', class: 'primary', disabled: ids.length !== 2,
        onclick: () => navigate(`/ui/compare?a=${encodeURIComponent(ids[0])}&b=${encodeURIComponent(ids[1])}`) }, 'Compare'),
      h('button', { type: 'button', onclick: () => { picked.clear(); for (const c of results.querySelectorAll('input.pick')) c.checked = false; drawCompareBar(); } }, 'Clear'));
  };

  // cursors[i] is the cursor that loads page i (page 0: none).
  const cursors = [params.get('cursor') || ''];
  let page = 0;

  const query = () => ({
    experiment: form.elements.namedItem('experiment').value || params.get('experiment') || '',
    state: form.elements.namedItem('state').value,
    verdict: form.elements.namedItem('verdict').value,
    since: localToIso(form.elements.namedItem('since').value),
    until: localToIso(form.elements.namedItem('until').value),
    limit: form.elements.namedItem('limit').value,
  });

  const load = async () => {
    const q = query();
    const p = new URLSearchParams(Object.entries(q).filter(([, v]) => v));
    if (cursors[page]) p.set('cursor', cursors[page]);
    setQuery(p);
    replace(results, h('p', { class: 'loading' }, 'Loading runs…'));
    let data;
    try {
      data = await api.runs({ ...q, cursor: cursors[page] || undefined });
    } catch (err) {
      if (signal.aborted) return;
      replace(results, problemView(err, { context: 'Could not load the runs' }));
      return;
    }
    if (signal.aborted) return;
    const items = data.items || [];
    if (data.next_cursor) cursors[page + 1] = data.next_cursor;
    else cursors.length = page + 1;
    const table = h('table', { class: 'runs' },
      h('caption', { class: 'visually-hidden' }, 'Runs, newest first'),
      h('thead', null, h('tr', null,
        h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'pick to compare')),
        ['run', 'experiment', 'state', 'verdict', 'created', 'duration', 'modes', 'note'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, items.map((r) => h('tr', { 'data-run': r.id },
        h('td', null, h('input', { type: 'checkbox', class: 'pick', 'aria-label': `pick run ${r.id} to compare`, checked: picked.has(r.id),
          onchange: (ev) => {
            if (ev.target.checked) {
              if (picked.size >= 2) picked.delete(picked.keys().next().value);
              picked.set(r.id, r.experiment);
            } else picked.delete(r.id);
            for (const c of results.querySelectorAll('input.pick')) c.checked = picked.has(c.closest('tr').dataset.run);
            drawCompareBar();
          } })),
        h('td', null, link(`/ui/runs/${encodeURIComponent(r.id)}`, h('code', null, r.id))),
        h('td', null, link(`/ui/experiments/${encodeURIComponent(r.experiment)}`, r.experiment)),
        h('td', null, stateBadge(r.state)),
        h('td', null, verdictBadge(r.verdict)),
        h('td', null, timeEl(r.created_at)),
        h('td', { class: 'num' }, fmtDuration(r.duration_seconds)),
        h('td', null, (r.modes || []).join(', ')),
        h('td', { class: 'note' }, r.note || '')))));
    replace(results,
      items.length ? tableWrap(table, 'runs') : h('p', { class: 'empty' }, page === 0 ? 'No runs match these filters yet. Start one from the ' : 'No more runs.', page === 0 ? link('/', 'catalog') : null, page === 0 ? '.' : null),
      h('nav', { class: 'pager', 'aria-label': 'Pages' },
        h('button', { type: 'button', disabled: page === 0, onclick: () => { page -= 1; load(); } }, '← Newer'),
        h('span', { class: 'muted' }, `page ${page + 1}`),
        h('button', { type: 'button', disabled: !data.next_cursor, onclick: () => { page += 1; load(); } }, 'Older →')));
  };

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    params.delete('experiment');
    cursors.length = 1; cursors[0] = ''; page = 0;
    load();
  });
  form.querySelector('#f-reset').addEventListener('click', () => {
    form.reset();
    for (const el of form.querySelectorAll('select')) el.value = el.id === 'f-limit' ? '25' : '';
    for (const el of form.querySelectorAll('input')) el.value = '';
    params.delete('experiment');
    cursors.length = 1; cursors[0] = ''; page = 0;
    load();
  });
  await load();
}
