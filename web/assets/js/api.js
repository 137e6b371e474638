// The only place that talks to the server. Every call sends the stored token (if any) and turns
// an RFC 9457 problem document, a network failure or a non-JSON answer into an ApiError that the
// pages can show in words.

import { h } from './dom.js';

const TOKEN_KEY = 'reliability-lab.token';

export function getToken() {
  try {
    return window.localStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function setToken(token) {
  try {
    if (token) window.localStorage.setItem(TOKEN_KEY, token);
    else window.localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage can be disabled (private mode); the token then lives for this page only.
  }
}

export class ApiError extends Error {
  constructor({ status = 0, title, detail, type, errors = [], retryAfter = null, path, method }) {
    super(title || `HTTP ${status}`);
    this.status = status;
    this.title = title || '';
    this.detail = detail || '';
    this.type = type || '';
    this.errors = Array.isArray(errors) ? errors : [];
    this.retryAfter = retryAfter;
    this.path = path;
    this.method = method;
  }
}

export function authHeaders(extra = {}) {
  const headers = { Accept: 'application/json', ...extra };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  return headers;
}

async function toError(response, method, path) {
  let body = null;
  const type = response.headers.get('Content-Type') || '';
  const text = await response.text().catch(() => '');
  if (type.includes('json') && text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = null;
    }
  }
  const retryHeader = response.headers.get('Retry-After');
  const retryAfter = retryHeader && /^\d+$/.test(retryHeader.trim()) ? Number(retryHeader) : retryHeader;
  return new ApiError({
    status: response.status,
    title: body?.title || response.statusText || `HTTP ${response.status}`,
    detail: body?.detail || (body ? '' : text.slice(0, 300)),
    type: body?.type,
    errors: body?.errors,
    retryAfter,
    path,
    method,
  });
}

// request('GET', '/runs', {query: {...}}) -> {data, response}
export async function request(method, path, { query, body, headers, signal } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
    }
    const qs = params.toString();
    if (qs) url += (url.includes('?') ? '&' : '?') + qs;
  }
  const init = { method, headers: authHeaders(headers), signal, credentials: 'same-origin' };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    throw new ApiError({
      status: 0,
      title: 'Could not reach the server',
      detail: `${method} ${path} failed before an answer arrived (${err?.message || err}). Is the lab server running?`,
      path,
      method,
    });
  }
  if (!response.ok) throw await toError(response, method, path);
  if (response.status === 204) return { data: null, response };
  const type = response.headers.get('Content-Type') || '';
  if (type.includes('json')) {
    try {
      return { data: await response.json(), response };
    } catch (err) {
      throw new ApiError({ status: response.status, title: 'The server sent malformed JSON', detail: String(err), path, method });
    }
  }
  return { data: await response.text(), response };
}

export async function get(path, query, opts = {}) {
  return (await request('GET', path, { ...opts, query })).data;
}

export const api = {
  experiments: () => get('/experiments'),
  experiment: (id) => get(`/experiments/${encodeURIComponent(id)}`),
  startRun: (id, body) => request('POST', `/experiments/${encodeURIComponent(id)}/runs`, { body }),
  runs: (query) => get('/runs', query),
  run: (id) => get(`/runs/${encodeURIComponent(id)}`),
  cancel: (id) => request('POST', `/runs/${encodeURIComponent(id)}/cancel`),
  report: (id, format) => request('GET', `/runs/${encodeURIComponent(id)}/report`, { query: { format } }),
  audit: (query) => get('/audit', query),
  verifyAudit: () => get('/audit/verify'),
};

// What an HTTP status means to the person looking at the page.
function hint(err) {
  switch (err.status) {
    case 0: return 'Check that the lab server is running (./lab up) and reachable from this browser.';
    case 400: return 'The server rejected the request; the fields named here say what to change.';
    case 401: return 'The server requires a token. Set one with the “Token” button at the top right.';
    case 403: return 'Your token’s role may not do this (starting or cancelling runs needs the operator role).';
    case 404: return 'It does not exist (or no longer exists) on this server.';
    case 409: return 'The request conflicts with the current state (for example, the run has already finished).';
    case 413: return 'The request body is larger than the server accepts.';
    case 422: return 'The same Idempotency-Key was used with a different body.';
    case 429: return `Too many requests from this client.${retryText(err)}`;
    case 501: return 'This experiment has no runner in this build of the server, so it cannot run yet.';
    case 503: return `The server is not accepting new runs right now (queue full or halted).${retryText(err)}`;
    default: return err.status >= 500 ? 'The server failed; its log (.lab/server.log) has the details.' : '';
  }
}

function retryText(err) {
  if (err.retryAfter === null || err.retryAfter === undefined || err.retryAfter === '') return '';
  return typeof err.retryAfter === 'number'
    ? ` Try again in ${err.retryAfter} s.` : ` Try again after ${err.retryAfter}.`;
}

// A problem rendered for people: title, status, detail, field errors and what to do.
export function problemView(err, { context } = {}) {
  if (!(err instanceof ApiError)) {
    return h('div', { class: 'problem', role: 'alert' },
      h('p', { class: 'problem-title' }, context || 'Something went wrong in the page'),
      h('p', null, String(err?.message || err)));
  }
  const statusText = err.status ? `HTTP ${err.status}` : 'no answer';
  return h('div', { class: 'problem', role: 'alert', 'data-status': String(err.status) },
    h('p', { class: 'problem-title' },
      context ? `${context}: ` : '', err.title, ' ', h('span', { class: 'muted' }, `(${statusText})`)),
    err.detail ? h('p', { class: 'problem-detail' }, err.detail) : null,
    err.errors.length ? h('ul', { class: 'problem-fields' },
      err.errors.map((e) => h('li', null, h('code', null, e.field || '(body)'), ': ', e.message || ''))) : null,
    hint(err) ? h('p', { class: 'problem-hint' }, hint(err)) : null);
}

// Reads a Server-Sent Events stream through fetch (EventSource cannot send an Authorization
// header). Calls onEvent({event, data, id}) per event; resolves when the stream closes.
export async function readEvents(path, { onEvent, signal, lastEventId }) {
  const headers = authHeaders({ Accept: 'text/event-stream' });
  if (lastEventId) headers['Last-Event-ID'] = String(lastEventId);
  let response;
  try {
    response = await fetch(path, { headers, signal, cache: 'no-store', credentials: 'same-origin' });
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
    throw new ApiError({ status: 0, title: 'Could not reach the server', detail: String(err?.message || err), path, method: 'GET' });
  }
  if (!response.ok) throw await toError(response, 'GET', path);
  if (!response.body) throw new ApiError({ status: response.status, title: 'This browser cannot stream responses', path, method: 'GET' });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = { event: 'message', data: [], id: null };
  const dispatch = () => {
    if (event.data.length) {
      const raw = event.data.join('\n');
      let data = raw;
      try { data = JSON.parse(raw); } catch { /* plain text data */ }
      onEvent({ event: event.event, data, id: event.id });
    }
    event = { event: 'message', data: [], id: null };
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let nl;
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') { dispatch(); continue; }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let val = colon < 0 ? '' : line.slice(colon + 1);
      if (val.startsWith(' ')) val = val.slice(1);
      if (field === 'event') event.event = val;
      else if (field === 'data') event.data.push(val);
      else if (field === 'id') event.id = val;
    }
  }
  dispatch();
}
