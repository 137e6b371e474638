// One experiment (/ui/experiments/{id}): claim, how it runs, how to read it, the verdict
// criteria, parameters, its last runs, and the Run form.

import { api, problemView } from '../api.js';
import { fmtDuration, h, link, section, stateBadge, tableWrap, timeEl, verdictBadge } from '../dom.js';
import { runForm } from '../form.js';
import { modeLabel } from '../evidence.js';
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
