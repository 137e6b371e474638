// Audit (/ui/audit): the hash-chained audit history, newest first, filtered by actor, action and
// target and paginated by cursor, with the chain's verification state at the top.

import { api, problemView } from '../api.js';
import { h, jsonBlock, replace, tableWrap, timeEl } from '../dom.js';
import { setQuery } from '../main.js';

function verifyView(v) {
  if (v.ok) {
    return h('div', { class: 'verify ok-box', role: 'status', 'data-ok': 'true' },
      h('p', { class: 'verify-title' }, '✔ The audit chain is intact'),
      h('p', null, `All ${v.entries} entries check out: each stores the SHA-256 of the one before it.`));
  }
  return h('div', { class: 'verify bad-box', role: 'alert', 'data-ok': 'false' },
    h('p', { class: 'verify-title' }, '✘ The audit chain is broken'),
    h('p', null, `First broken entry: #${v.first_broken_seq ?? '?'} of ${v.entries ?? '?'} checked.`),
    v.reason ? h('p', null, `Reason: ${v.reason}`) : null,
    h('p', { class: 'small' }, 'An entry was changed or removed after it was written. Entries before it are still trustworthy.'));
}

// A target naming a run ("run:ID", "runs/ID", or a bare id on a run.* action) links to it.
function targetCell(e) {
  if (!e.target) return '—';
  const m = String(e.target).match(/^(?:runs?[:/])?([\w.-]+)$/);
  const isRun = m && (/^runs?[:/]/.test(e.target) || String(e.action || '').startsWith('run'));
  return isRun ? h('a', { href: `/ui/runs/${encodeURIComponent(m[1])}`, 'data-nav': true }, e.target) : e.target;
}

function shortHash(hash) {
  if (!hash) return h('span', { class: 'muted' }, '—');
  return h('code', { title: hash, class: 'hash' }, `${hash.slice(0, 10)}…`);
}

export async function renderAudit(main, { params, signal }) {
  document.title = 'Audit · Reliability Lab';
  const verify = h('div', { class: 'verify-holder' }, h('p', { class: 'loading' }, 'Verifying the chain…'));
  const field = (name, label) => h('div', { class: 'field inline' }, h('label', { for: `a-${name}` }, label),
    h('input', { id: `a-${name}`, name, value: params.get(name) || '', autocomplete: 'off', spellcheck: 'false' }));
  const form = h('form', { class: 'filters', 'aria-label': 'Filter audit entries' },
    field('actor', 'Actor'), field('action', 'Action'), field('target', 'Target'),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Apply'),
      h('button', { type: 'button', id: 'a-reset' }, 'Reset'),
      h('button', { type: 'button', id: 'a-verify' }, 'Verify again')));
  const results = h('div', { class: 'results' });
  main.append(h('div', { class: 'page-head' }, h('h1', null, 'Audit history'),
    h('p', { class: 'lede' }, 'Every accepted state change — runs queued, started, finished, cancelled; settings; refused logins — append-only and hash-chained.')),
  verify, form, results);

  const doVerify = async () => {
    replace(verify, h('p', { class: 'loading' }, 'Verifying the chain…'));
    try {
      const v = await api.verifyAudit();
      if (!signal.aborted) replace(verify, verifyView(v));
    } catch (err) {
      if (!signal.aborted) replace(verify, problemView(err, { context: 'Could not verify the audit chain' }));
    }
  };

  const cursors = [params.get('cursor') || ''];
  let page = 0;
  const load = async () => {
    const q = { actor: form.elements.namedItem('actor').value.trim(), action: form.elements.namedItem('action').value.trim(), target: form.elements.namedItem('target').value.trim(), limit: 50 };
    const p = new URLSearchParams(Object.entries(q).filter(([k, v]) => v && k !== 'limit'));
    if (cursors[page]) p.set('cursor', cursors[page]);
    setQuery(p);
    replace(results, h('p', { class: 'loading' }, 'Loading entries…'));
    let data;
    try {
      data = await api.audit({ ...q, cursor: cursors[page] || undefined });
    } catch (err) {
      if (!signal.aborted) replace(results, problemView(err, { context: 'Could not load the audit history' }));
      return;
    }
    if (signal.aborted) return;
    const items = data.items || [];
    if (data.next_cursor) cursors[page + 1] = data.next_cursor;
    else cursors.length = page + 1;
    const rows = items.flatMap((e) => {
      const detailsId = `audit-${e.seq}`;
      const hasChange = e.before !== null && e.before !== undefined || e.after !== null && e.after !== undefined;
      return [h('tr', { 'data-seq': String(e.seq) },
        h('td', { class: 'num' }, String(e.seq)),
        h('td', null, timeEl(e.time)),
        h('td', null, e.actor || '—'),
        h('td', null, h('code', null, e.action || '')),
        h('td', null, targetCell(e)),
        h('td', null, e.request_id ? h('code', { class: 'small' }, e.request_id) : '—'),
        h('td', null, shortHash(e.hash)),
        h('td', null, hasChange ? h('details', { id: detailsId },
          h('summary', null, 'change'),
          h('div', { class: 'before-after' },
            h('div', null, h('h4', null, 'before'), jsonBlock(e.before ?? null)),
            h('div', null, h('h4', null, 'after'), jsonBlock(e.after ?? null)),
            h('p', { class: 'small muted' }, 'previous hash ', h('code', { class: 'hash-full' }, e.prev_hash || '—'), h('br'), 'hash ', h('code', { class: 'hash-full' }, e.hash || '—'))))
          : h('span', { class: 'muted' }, '—')))];
    });
    replace(results,
      items.length ? tableWrap(h('table', { class: 'audit' },
        h('caption', { class: 'visually-hidden' }, 'Audit entries, newest first'),
        h('thead', null, h('tr', null, ['seq', 'time', 'actor', 'action', 'target', 'request', 'hash', 'before / after'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, rows)), 'audit entries') : h('p', { class: 'empty' }, page === 0 ? 'No audit entries match.' : 'No more entries.'),
      h('nav', { class: 'pager', 'aria-label': 'Pages' },
        h('button', { type: 'button', disabled: page === 0, onclick: () => { page -= 1; load(); } }, '← Newer'),
        h('span', { class: 'muted' }, `page ${page + 1}`),
        h('button', { type: 'button', disabled: !data.next_cursor, onclick: () => { page += 1; load(); } }, 'Older →')));
  };
  form.addEventListener('submit', (ev) => { ev.preventDefault(); cursors.length = 1; cursors[0] = ''; page = 0; load(); });
  form.querySelector('#a-reset').addEventListener('click', () => {
    for (const el of form.querySelectorAll('input')) el.value = '';
    cursors.length = 1; cursors[0] = ''; page = 0; load();
  });
  form.querySelector('#a-verify').addEventListener('click', doVerify);
  await Promise.all([doVerify(), load()]);
}
