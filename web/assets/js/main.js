// The single-page app's shell: client-side routing over /, /ui/runs, /ui/runs/{id},
// /ui/experiments/{id}, /ui/compare and /ui/audit, the token dialog, and focus handling so a
// keyboard or screen-reader user lands on each new page's heading.

import { getToken, setToken } from './api.js';
import { clear, h } from './dom.js';
import { renderCatalog } from './pages/catalog.js';
import { renderExperiment } from './pages/experiment.js';
import { renderRuns } from './pages/runs.js';
import { renderRun } from './pages/run.js';
import { renderCompare } from './pages/compare.js';
import { renderAudit } from './pages/audit.js';

const routes = [
  { re: /^\/(?:ui\/?)?$/, section: 'catalog', render: () => renderCatalog },
  { re: /^\/ui\/(?:catalog|experiments)\/?$/, section: 'catalog', render: () => renderCatalog },
  { re: /^\/ui\/experiments\/([^/]+)\/?$/, section: 'catalog', render: () => renderExperiment },
  { re: /^\/ui\/runs\/?$/, section: 'runs', render: () => renderRuns },
  { re: /^\/ui\/runs\/([^/]+)\/?$/, section: 'runs', render: () => renderRun },
  { re: /^\/ui\/compare\/?$/, section: 'compare', render: () => renderCompare },
  { re: /^\/ui\/audit\/?$/, section: 'audit', render: () => renderAudit },
];

let current = null; // { controller } of the page on screen, aborted when leaving it

function notFound(main) {
  main.append(
    h('h1', { tabindex: '-1' }, 'Page not found'),
    h('p', null, 'There is no page at ', h('code', null, window.location.pathname), '. ',
      h('a', { href: '/', 'data-nav': true }, 'Back to the catalog'), '.'));
}

async function route({ focus = true } = {}) {
  if (current) current.controller.abort();
  const controller = new AbortController();
  current = { controller };
  const main = document.getElementById('main');
  clear(main);
  const path = window.location.pathname;
  const params = new URLSearchParams(window.location.search);
  const match = routes.map((r) => ({ r, m: path.match(r.re) })).find((x) => x.m);
  for (const a of document.querySelectorAll('nav a[data-section]')) {
    if (match && a.dataset.section === match.r.section) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (!match) {
    document.title = 'Not found · Reliability Lab';
    notFound(main);
  } else {
    const render = match.r.render();
    const args = match.m.slice(1).map((x) => decodeURIComponent(x));
    try {
      await render(main, { params, args, signal: controller.signal });
    } catch (err) {
      if (err?.name !== 'AbortError') {
        main.append(h('div', { class: 'problem', role: 'alert' }, `The page failed to render: ${err?.message || err}`));
        console.error(err);
      }
    }
  }
  if (focus && !controller.signal.aborted) {
    const heading = main.querySelector('h1');
    if (heading) {
      heading.setAttribute('tabindex', '-1');
      heading.focus({ preventScroll: true });
    }
    window.scrollTo(0, 0);
  }
}

export function navigate(url, { replace = false } = {}) {
  if (replace) window.history.replaceState({}, '', url);
  else window.history.pushState({}, '', url);
  route();
}

// Updates the query string of the page on screen without re-rendering it.
export function setQuery(params) {
  const qs = params.toString();
  window.history.replaceState({}, '', window.location.pathname + (qs ? `?${qs}` : ''));
}

document.addEventListener('click', (event) => {
  const a = event.target.closest('a[data-nav]');
  if (!a || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(a.href, window.location.href);
  if (url.origin !== window.location.origin) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener('popstate', () => route());

// --- token dialog ------------------------------------------------------------------------------

function showTokenState() {
  const button = document.getElementById('token-button');
  const has = Boolean(getToken());
  button.textContent = has ? 'Token: set' : 'Token: none';
  button.classList.toggle('has-token', has);
  button.setAttribute('aria-label', has ? 'API token is set; change it' : 'No API token set; set one');
}

function setupToken() {
  const button = document.getElementById('token-button');
  const dialog = document.getElementById('token-dialog');
  const input = document.getElementById('token-input');
  button.addEventListener('click', () => {
    input.value = getToken();
    dialog.returnValue = '';
    dialog.showModal();
    input.focus();
  });
  dialog.addEventListener('close', () => {
    if (dialog.returnValue === 'save') setToken(input.value.trim());
    if (dialog.returnValue === 'clear') setToken('');
    input.value = '';
    showTokenState();
    if (dialog.returnValue === 'save' || dialog.returnValue === 'clear') route({ focus: false });
    button.focus();
  });
  showTokenState();
}

window.addEventListener('storage', showTokenState);

setupToken();
route({ focus: false });
