// One run (/ui/runs/{id}): state, verdict and why, live progress and step log over SSE while it
// runs, the evidence of each mode side by side with charts, repetitions, artifacts, stack,
// configuration, reports, and a cancel button.

import { api, ApiError, problemView, readEvents } from '../api.js';
import {
  announce, fmtDuration, fmtValue, h, isFinished, jsonBlock, link, replace, section, stateBadge,
  tableWrap, timeEl, verdictBadge,
} from '../dom.js';
import { progressBar } from '../charts.js';
import { criteriaList, detailsView, evidenceView, modeLabel, orderModes } from '../evidence.js';
import { stepLog } from '../steps.js';

const MAX_RECONNECTS = 5;

function kv(rows) {
  return h('dl', { class: 'kv' }, rows.filter(Boolean).map(([k, v]) => h('div', null, h('dt', null, k), h('dd', null, v))));
}

// A cleanup kept by the server: one that could not finish (retried once the stack is healthy),
// one queued at start for a run killed mid-run, or one asked for by DELETE /runs/{id}/artifacts.
function cleanupNote(run) {
  const c = run.cleanup;
  if (!c) return null;
  if (c.state === 'done') {
    return h('p', { class: 'muted small', id: 'cleanup-state' }, `Artifacts removed at ${c.updated_at} (${c.reason}).`);
  }
  const left = c.artifacts_left?.length || 0;
  const text = c.state === 'given_up'
    ? `Cleanup given up after ${c.attempts} attempts: ${left} artifacts left; DELETE /runs/${run.id}/artifacts tries again.`
    : `Cleanup pending: ${left} artifacts left after ${c.attempts} attempts; retried when the stack is healthy (next at ${c.next_attempt_at}).`;
  return h('p', { class: 'warn', id: 'cleanup-state' }, text, c.last_error ? ` Last error: ${c.last_error}` : null);
}

function artifactsView(run) {
  const modes = orderModes(Object.keys(run.artifacts || {}));
  const total = modes.reduce((n, m) => n + (run.artifacts[m]?.length || 0), 0);
  const note = cleanupNote(run);
  if (!total) {
    return h('div', null, note,
      h('p', { class: 'muted' }, isFinished(run.state) ? 'The run recorded no artifacts.' : 'None recorded yet.'));
  }
  return h('div', null, note,
    h('p', { class: 'muted small' }, run.keep_artifacts
      ? 'Kept on the stack (keep_artifacts was set): inspect them with kcat, mysql or redis-cli.'
      : 'Created for this run and removed at its end.'),
    tableWrap(h('table', null,
      h('thead', null, h('tr', null, ['mode', 'kind', 'name'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, modes.flatMap((m) => (run.artifacts[m] || []).map((a) => h('tr', null,
        h('td', null, modeLabel(m)), h('td', null, a.kind), h('td', null, h('code', null, a.name))))))), 'artifacts'));
}

function stackView(stack) {
  const parts = Object.keys(stack || {});
  if (!parts.length) return h('p', { class: 'muted' }, 'No stack readings recorded.');
  return tableWrap(h('table', { class: 'stack' },
    h('thead', null, h('tr', null, ['part', 'answered', 'version', 'round trip', 'detail'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, parts.map((p) => {
      const v = stack[p] || {};
      return h('tr', { class: v.ok ? null : 'bad' },
        h('th', { scope: 'row' }, p),
        h('td', null, v.ok ? h('span', { class: 'ok' }, '✔ yes') : h('span', { class: 'bad-text' }, '✘ no')),
        h('td', null, v.version || '—'),
        h('td', { class: 'num' }, typeof v.latency_ms === 'number' ? `${fmtValue(v.latency_ms)} ms` : '—'),
        h('td', null, v.detail || ''));
    }))), 'stack');
}

function paramsView(params) {
  const keys = Object.keys(params || {});
  if (!keys.length) return h('p', { class: 'muted' }, 'No parameters.');
  return tableWrap(h('table', null, h('tbody', null, keys.map((k) => h('tr', null, h('th', { scope: 'row' }, h('code', null, k)), h('td', null, fmtValue(params[k])))))), 'parameters');
}

function repetitionsView(reps, criteria, experiment) {
  const counts = { confirmed: 0, refuted: 0, inconclusive: 0 };
  for (const r of reps) if (r.verdict in counts) counts[r.verdict] += 1;
  return h('div', null,
    h('p', null, `The claim held in ${counts.confirmed} of ${reps.length} repetitions`,
      counts.refuted ? `, was refuted in ${counts.refuted}` : '', counts.inconclusive ? `, undecided in ${counts.inconclusive}` : '', '.'),
    tableWrap(h('table', { class: 'repetitions' },
      h('thead', null, h('tr', null, ['#', 'verdict', 'reason'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, reps.map((r) => h('tr', null, h('td', null, String(r.index)), h('td', null, verdictBadge(r.verdict)), h('td', null, r.reason || ''))))), 'repetitions'),
    reps.map((r) => r.evidence ? h('details', { class: 'raw' }, h('summary', null, `Repetition ${r.index} evidence`),
      evidenceView(r.evidence, { criteria, experiment })) : null));
}

function reportsView(run) {
  const viewer = h('div', { class: 'report-viewer' });
  const show = async (format) => {
    replace(viewer, h('p', { class: 'loading' }, `Loading the ${format} report…`));
    try {
      const { data, response } = await api.report(run.id, format);
      const text = typeof data === 'string' ? data : JSON.stringify(data, null, 2);
      const type = response.headers.get('Content-Type') || 'text/plain';
      const url = URL.createObjectURL(new Blob([text], { type }));
      const ext = { json: 'json', markdown: 'md', junit: 'xml' }[format];
      replace(viewer,
        h('div', { class: 'actions' }, h('a', { href: url, download: `${run.id}.${ext}`, class: 'button' }, `Download ${format}`),
          h('button', { type: 'button', onclick: () => { URL.revokeObjectURL(url); replace(viewer); } }, 'Close')),
        h('pre', { class: 'json report', tabindex: '0', 'aria-label': `${format} report` }, text));
    } catch (err) {
      replace(viewer, problemView(err, { context: `Could not load the ${format} report` }));
    }
  };
  const base = run.links?.report || `/runs/${encodeURIComponent(run.id)}/report`;
  return h('div', null,
    h('div', { class: 'actions' }, ['json', 'markdown', 'junit'].map((f) =>
      h('button', { type: 'button', 'data-report': f, onclick: () => show(f) }, { json: 'JSON', markdown: 'Markdown', junit: 'JUnit XML' }[f]))),
    h('p', { class: 'muted small' }, 'Direct links (without a token header): ',
      ['json', 'markdown', 'junit'].map((f, i) => [i ? ' · ' : '', h('a', { href: `${base}?format=${f}` }, f)])),
    viewer);
}

export async function renderRun(main, { args, signal }) {
  const [id] = args;
  document.title = `Run ${id} · Reliability Lab`;
  main.append(h('p', { class: 'crumbs' }, link('/ui/runs', 'History'), ' / ', h('code', null, id)));
  let run;
  try {
    run = await api.run(id);
  } catch (err) {
    if (signal.aborted) return;
    main.append(h('h1', null, `Run ${id}`), problemView(err, { context: `Could not load run ${id}` }));
    return;
  }
  if (signal.aborted) return;
  // The experiment's description (mode texts, criteria); the page works without it.
  let experiment = null;
  try { experiment = await api.experiment(run.experiment); } catch { /* shown without descriptions */ }
  if (signal.aborted) return;

  const head = h('div', { class: 'page-head' });
  const status = h('section', { class: 'panel run-status', 'aria-labelledby': 'status-title' });
  const live = h('div', { class: 'live' });
  const body = h('div', { class: 'run-body' });
  main.append(head, status, body);

  const log = stepLog(run);
  const addStep = (st) => log.add([st]);
  log.add(run.steps || []);
  log.render();
  // The run of the same experiment created just before this one, for a one-click comparison.
  const previous = h('div', { class: 'previous-run' });
  api.runs({ experiment: run.experiment, until: run.created_at, limit: 1 }).then((data) => {
    if (signal.aborted) return;
    const prev = (data.items || []).find((r) => r.id !== run.id);
    replace(previous, prev
      ? h('p', { class: 'small' }, 'Previous run of ', run.experiment, ': ',
        h('a', { href: `/ui/runs/${encodeURIComponent(prev.id)}`, 'data-nav': true, rel: 'prev', class: 'prev-run', 'data-run': prev.id }, h('code', null, prev.id)), ' ', verdictBadge(prev.verdict), h('br'),
        h('a', { href: `/ui/compare?a=${encodeURIComponent(prev.id)}&b=${encodeURIComponent(run.id)}`, 'data-nav': true, class: 'compare-prev' }, 'Compare with the previous run →'))
      : h('p', { class: 'muted small' }, `The first run of ${run.experiment} on this server.`));
  }).catch(() => replace(previous));
  let progress = run.progress || { percent: 0, step: '' };
  let cancelNote = null;

  const drawHead = () => {
    const title = experiment?.title ? ` ${experiment.title}` : '';
    replace(head,
      h('h1', null, 'Run ', h('code', { class: 'run-id' }, run.id)),
      h('p', { class: 'lede' }, link(`/ui/experiments/${encodeURIComponent(run.experiment)}`, h('span', { class: 'exp-id' }, run.experiment), title),
        experiment?.claim ? h('span', { class: 'muted' }, ` — ${experiment.claim}`) : null));
  };

  const drawStatus = () => {
    const finished = isFinished(run.state);
    const canCancel = run.state === 'queued' || run.state === 'running';
    replace(status,
      h('h2', { id: 'status-title', class: 'visually-hidden' }, 'Status'),
      h('div', { class: 'status-row' },
        h('div', { class: 'status-main' },
          h('div', { class: 'badges' }, h('span', { class: 'muted' }, 'state '), stateBadge(run.state), h('span', { class: 'muted' }, ' verdict '), verdictBadge(run.verdict, { large: true })),
          run.verdict_reason ? h('p', { class: 'verdict-reason' }, h('strong', null, 'Why: '), run.verdict_reason) : null,
          !finished ? h('div', { class: 'live-progress' }, progressBar(progress.percent, `run ${run.id} progress`),
            h('p', { class: 'progress-step muted' }, progress.step || (run.state === 'queued' ? 'waiting in the queue' : ''))) : null,
          run.error ? h('div', { class: 'problem', role: 'alert' }, h('p', { class: 'problem-title' }, 'The run reported an error'), h('p', null, run.error)) : null),
        h('div', { class: 'status-side' },
          canCancel ? h('button', { type: 'button', class: 'danger', id: 'cancel-run', onclick: cancel }, 'Cancel run') : null,
          previous,
          link(`/ui/compare?a=${encodeURIComponent(run.id)}`, 'Compare with another run'))),
      cancelNote,
      live);
  };

  const drawBody = () => {
    const criteria = experiment?.criteria || [];
    const modeDescriptions = Object.fromEntries((experiment?.modes || []).map((m) => [m.name, m.description]));
    const evidence = run.evidence || {};
    const finished = isFinished(run.state);
    replace(body,
      section('Timeline', kv([
        ['created', timeEl(run.created_at)],
        ['started', timeEl(run.started_at)],
        ['finished', timeEl(run.finished_at)],
        ['duration', fmtDuration(run.duration_seconds)],
        run.mode_seconds && Object.keys(run.mode_seconds).length
          ? ['per mode', orderModes(Object.keys(run.mode_seconds)).map((m) => `${modeLabel(m)} ${fmtDuration(run.mode_seconds[m])}`).join(' · ')] : null,
        run.actor ? ['started by', run.actor] : null,
        ['modes', (run.modes || []).map(modeLabel).join(', ') || '—'],
        ['repeat', String(run.repeat ?? 1)],
        ['timeout', run.timeout_seconds ? fmtDuration(run.timeout_seconds) : '—'],
        ['keep artifacts', run.keep_artifacts ? 'yes' : 'no'],
        run.note ? ['note', run.note] : null,
      ])),
      section('Evidence',
        Object.keys(evidence).length ? evidenceView(evidence, { criteria, modeDescriptions, experiment: run.experiment })
          : h('p', { class: 'muted' }, finished ? 'This run recorded no evidence.' : 'Evidence appears when the run ends.'),
        criteria.length ? h('div', null, h('h3', null, 'Verdict criteria'), criteriaList(criteria, Object.keys(evidence).length ? evidence : null)) : null),
      run.repetitions?.length ? section('Repetitions', repetitionsView(run.repetitions, criteria, run.experiment)) : null,
      section('Step log', log.element),
      h('div', { class: 'run-lower' },
        h('div', null,
          section('Stack it ran against', stackView(run.stack)),
          run.postflight && Object.keys(run.postflight).length
            ? section('Postflight', detailsView(run.postflight) || jsonBlock(run.postflight)) : null,
          section('Artifacts', artifactsView(run)),
          run.client_library_failures?.length
            ? section('Client library failures', h('ul', null, run.client_library_failures.map((f) => h('li', null, typeof f === 'string' ? f : JSON.stringify(f))))) : null),
        h('div', null,
          section('Parameters', paramsView(run.params)),
          run.configuration && Object.keys(run.configuration).length
            ? section('Configuration', h('details', { class: 'raw' }, h('summary', null, 'settings recorded for reproducibility'), jsonBlock(run.configuration))) : null,
          section('Reports', reportsView(run)))));
  };

  async function cancel(ev) {
    const button = ev.currentTarget;
    button.disabled = true;
    try {
      await api.cancel(run.id);
      cancelNote = h('p', { class: 'ok' }, 'Cancellation requested; the run cleans up and then ends.');
      announce('Cancellation requested');
    } catch (err) {
      cancelNote = problemView(err, { context: 'Could not cancel' });
      button.disabled = false;
    }
    drawStatus();
  }

  drawHead();
  drawStatus();
  drawBody();
  if (isFinished(run.state)) return;

  // --- live ----------------------------------------------------------------------------------
  const setLive = (text, cls = 'muted') => replace(live, text ? h('p', { class: ['live-note', cls] }, text) : null);
  let lastId = null;
  let ended = false;
  const finish = (finalRun) => {
    if (ended) return;
    ended = true;
    run = finalRun;
    log.add(run.steps || []);
    log.update(run);
    setLive('');
    drawStatus();
    drawBody();
    announce(`Run ${run.state}${run.verdict ? `, verdict ${run.verdict}` : ''}`);
  };
  const onEvent = ({ event, data, id: eid }) => {
    if (eid) lastId = eid;
    if (event === 'step' && data && typeof data === 'object') {
      addStep(data);
    } else if (event === 'progress' && data && typeof data === 'object') {
      progress = { percent: data.percent ?? progress.percent, step: data.step ?? progress.step };
      const bar = status.querySelector('progress');
      if (bar) {
        bar.value = Math.max(0, Math.min(100, Number(progress.percent) || 0));
        status.querySelector('.progress-text').textContent = `${Math.round(bar.value)} %`;
        status.querySelector('.progress-step').textContent = progress.step || '';
      } else drawStatus();
    } else if (event === 'state' && data && typeof data === 'object') {
      const changed = data.state !== run.state;
      run = { ...run, state: data.state ?? run.state, verdict: data.verdict ?? run.verdict };
      if (changed) { drawStatus(); announce(`Run is ${run.state}`); }
    } else if (event === 'end' && data && typeof data === 'object') {
      finish(data);
    } else if (event === 'error') {
      setLive(`The live stream reported a problem: ${data?.detail || data?.title || data}`, 'warn');
    }
  };

  const poll = async () => {
    setLive('Following the run by polling (the live stream is unavailable).');
    while (!ended && !signal.aborted) {
      await new Promise((r) => setTimeout(r, 2000));
      if (signal.aborted) return;
      try {
        const fresh = await api.run(run.id);
        if (isFinished(fresh.state)) { finish(fresh); return; }
        run = fresh;
        progress = fresh.progress || progress;
        for (const st of fresh.steps || []) addStep(st);
        drawStatus();
      } catch (err) {
        if (signal.aborted) return;
        setLive(`Polling failed: ${err.title || err.message}; retrying.`, 'warn');
      }
    }
  };

  const eventsPath = run.links?.events || `/runs/${encodeURIComponent(run.id)}/events`;
  setLive('Live: following the run as it happens.', 'live-on');
  for (let attempt = 0; !ended && !signal.aborted; attempt += 1) {
    try {
      await readEvents(eventsPath, { onEvent, signal, lastEventId: lastId });
    } catch (err) {
      if (signal.aborted || err?.name === 'AbortError') return;
      if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 429) {
        setLive('');
        replace(live, problemView(err, { context: 'The live stream was refused' }));
        await poll();
        return;
      }
    }
    if (ended || signal.aborted) return;
    // The stream closed without its end event: look at the run itself before reconnecting.
    try {
      const fresh = await api.run(run.id);
      if (isFinished(fresh.state)) { finish(fresh); return; }
    } catch { /* try the stream again */ }
    if (attempt >= MAX_RECONNECTS) { await poll(); return; }
    setLive('Live stream interrupted; reconnecting…', 'warn');
    await new Promise((r) => setTimeout(r, 1000 * (attempt + 1)));
  }
}
