// Catalog (/): every experiment with its claim, category, availability and latest verdict, and a
// Run form per experiment.

import { api, problemView } from '../api.js';
import { h, link, replace, verdictBadge } from '../dom.js';
import { runForm } from '../form.js';
import { navigate, setQuery } from '../main.js';

const CATEGORY_LABEL = {
  stack: 'Stack',
  core: 'Core experiments',
  advanced: 'Advanced experiments',
  'redis-ops': 'Redis operations',
  resilience: 'Resilience scenarios',
};

export function categoryLabel(c) {
  return CATEGORY_LABEL[c] || c;
}

export function availabilityBadge(e) {
  return e.available === false
    ? h('span', { class: 'badge unavailable', title: 'the server has no runner for it in this build' }, 'not available')
    : h('span', { class: 'badge available' }, 'available');
}

function card(e) {
  const verdict = e.last_run_id
    ? link(`/ui/runs/${encodeURIComponent(e.last_run_id)}`, verdictBadge(e.last_verdict), h('span', { class: 'visually-hidden' }, ` (latest run ${e.last_run_id})`))
    : h('span', { class: 'muted small' }, 'never run');
  return h('article', { class: ['card', 'experiment', e.available === false && 'is-unavailable'], id: `exp-${e.id}`, 'data-id': e.id, 'aria-labelledby': `exp-${e.id}-title` },
    h('header', null,
      h('h3', { id: `exp-${e.id}-title` }, link(`/ui/experiments/${encodeURIComponent(e.id)}`, h('span', { class: 'exp-id' }, e.id), ' ', e.title)),
      h('div', { class: 'badges' }, h('span', { class: 'badge cat' }, e.category), availabilityBadge(e),
        h('span', { class: 'latest' }, h('span', { class: 'muted small' }, 'latest: '), verdict))),
    h('p', { class: 'claim' }, e.claim),
    e.requires?.length ? h('p', { class: 'muted small' }, 'needs ', e.requires.join(', '),
      e.exclusive?.length ? ` · runs alone on ${e.exclusive.join(', ')}` : '') : null,
    h('details', { class: 'run-details' },
      h('summary', null, e.available === false ? 'Run form (not available)' : `Run ${e.id}…`),
      runForm(e, { onStarted: (id) => navigate(`/ui/runs/${encodeURIComponent(id)}`) })));
}

export async function renderCatalog(main, { params, signal }) {
  document.title = 'Catalog · Reliability Lab';
  const body = h('div', { class: 'catalog-body' }, h('p', { class: 'loading' }, 'Loading the catalog…'));
  const filter = h('input', { type: 'search', id: 'catalog-filter', placeholder: 'id, title, claim, part…', value: params.get('q') || '', autocomplete: 'off' });
  const availOnly = h('input', { type: 'checkbox', id: 'catalog-available', checked: params.get('available') === '1' });
  main.append(
    h('div', { class: 'page-head' },
      h('h1', null, 'Experiments'),
      h('p', { class: 'lede' }, 'Each experiment states a claim about a reliability pattern and tests it on the real stack: the anti-pattern (✗ failure mode) beside the standard practice (✓ success mode). Start one, then follow it to its verdict.')),
    h('div', { class: 'toolbar', role: 'search' },
      h('label', { for: 'catalog-filter' }, 'Filter'), filter,
      h('span', { class: 'check-inline' }, availOnly, h('label', { for: 'catalog-available' }, 'available only'))),
    body);

  let items;
  try {
    items = (await api.experiments()).items || [];
  } catch (err) {
    if (signal.aborted) return;
    replace(body, problemView(err, { context: 'Could not load the catalog' }));
    return;
  }
  if (signal.aborted) return;

  const draw = () => {
    const q = filter.value.trim().toLowerCase();
    const shown = items.filter((e) => (!availOnly.checked || e.available !== false) &&
      (!q || [e.id, e.title, e.claim, e.category, ...(e.requires || [])].join(' ').toLowerCase().includes(q)));
    const p = new URLSearchParams();
    if (q) p.set('q', filter.value.trim());
    if (availOnly.checked) p.set('available', '1');
    setQuery(p);
    const groups = new Map();
    for (const e of shown) {
      if (!groups.has(e.category)) groups.set(e.category, []);
      groups.get(e.category).push(e);
    }
    const available = items.filter((e) => e.available !== false).length;
    replace(body,
      h('p', { class: 'muted small', 'aria-live': 'polite' }, `${shown.length} of ${items.length} experiments shown · ${available} available on this server`),
      shown.length ? null : h('p', null, 'No experiment matches the filter.'),
      [...groups].map(([cat, list]) => h('section', { class: 'category', 'aria-labelledby': `cat-${cat}` },
        h('h2', { id: `cat-${cat}` }, categoryLabel(cat)),
        h('div', { class: 'cards' }, list.map(card)))));
  };
  filter.addEventListener('input', draw);
  availOnly.addEventListener('change', draw);
  draw();
}
