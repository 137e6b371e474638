// The run page's step log: each step as a structured line (time, mode, source, message, level)
// read from the stored text, grouped by mode so the mode is said once, faults and failpoints
// marked, errors in red, and a filter by mode, source and level.
//
// The server stores a step as "<mode>: <message>" (or "<phase>: <message>" for preflight and
// cleanup) without terminal escapes; a role's own line reads "<mode>: <role>: <message>" and an
// injected fault "<mode>: fault: …". The parsing below only splits that text; when it does not
// recognise a prefix the whole text stays the message.

import { fmtTime, h } from './dom.js';
import { modeLabel, orderModes } from './evidence.js';

// ESC-introduced sequences (CSI … final byte, OSC … BEL/ST, two-byte escapes) and the other C0
// controls but tab: the server strips them already; an older stored run may still hold some.
// eslint-disable-next-line no-control-regex
const CONTROL = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]?|[\x00-\x08\x0b-\x1f\x7f]/g;

export function stripControl(text) {
  return String(text ?? '').replace(CONTROL, '');
}

const PHASES = new Set(['preflight', 'postflight', 'cleanup', 'setup', 'teardown', 'verify', 'run', 'repeat']);
const FAULT = /\b(fault|failpoint|toxic|toxiproxy toxic|sigkill|sigstop|sigcont|killed|paused|partition(?:ed)? (?:the )?network|broker(?:s)? (?:stopped|down)|all brokers|outage|chaos|inject(?:ed|ing)?)\b/i;
const ERROR = /\b(error|errors=[1-9]|failed|could not|cannot|timed? ?out|refused|crash(?:ed)?|abort(?:ed)?|exit [1-9]\d*|exit status [1-9]|signal \d+|panic|unhealthy|dirty)\b/i;
const WARN = /\b(warn(?:ing)?|retry(?:ing)?|retries|inconclusive|degraded|still|gave up|skipp(?:ed|ing)|cancel(?:led|ling)?)\b/i;

// "failure: valuation-service: exit 0" -> {mode: 'failure', source: 'valuation-service', message: 'exit 0'}
export function parseStep(step, modes = []) {
  const text = stripControl(step.message);
  let rest = text;
  let mode = '';
  let phase = '';
  const first = rest.match(/^([a-z][\w-]*): (.*)$/s);
  if (first && (modes.includes(first[1]) || ['failure', 'success', 'check'].includes(first[1]))) {
    mode = first[1];
    rest = first[2];
  } else if (first && PHASES.has(first[1])) {
    phase = first[1];
    rest = first[2];
  }
  // A second prefix that is one word (a role, "fault", a component) names the source.
  let source = phase || 'runner';
  const second = rest.match(/^([A-Za-z][\w.#-]{0,40}): (.*)$/s);
  if (second) {
    source = second[1];
    rest = second[2];
  }
  const fault = source === 'fault' || source === 'failpoint' || FAULT.test(rest);
  const level = ERROR.test(rest) && !/\bexit 0\b/.test(rest) ? 'error' : WARN.test(rest) ? 'warn' : 'info';
  return {
    seq: step.seq, at: step.at, mode, source, message: rest, level, fault,
    kind: fault ? 'fault' : level,
  };
}

function relSeconds(at, t0) {
  const t = Date.parse(at);
  if (Number.isNaN(t) || t0 === null) return null;
  return (t - t0) / 1000;
}

// The step log component. `run` gives the modes and the start time; add() takes raw steps (from
// GET /runs/{id} or the SSE `step` event) in any order and keeps them in seq order.
export function stepLog(initialRun) {
  let run = initialRun;
  const modes = [...(run.modes || [])];
  const parsed = new Map(); // seq -> parsed step
  const filter = { mode: '', source: '', level: '' };

  const list = h('ol', { class: 'steps', 'aria-label': 'step log', 'aria-live': 'off' });
  const count = h('span', { class: 'muted small step-count', 'aria-live': 'polite' });
  const modeSel = h('select', { id: 'step-mode', name: 'mode' });
  const sourceSel = h('select', { id: 'step-source', name: 'source' });
  const levelSel = h('select', { id: 'step-level', name: 'level' },
    h('option', { value: '' }, 'all'),
    h('option', { value: 'fault' }, 'faults and failpoints'),
    h('option', { value: 'problem' }, 'errors and warnings'));
  const controls = h('form', { class: 'step-filters filters', 'aria-label': 'Filter the step log', onsubmit: (e) => e.preventDefault() },
    h('div', { class: 'field inline' }, h('label', { for: 'step-mode' }, 'Mode'), modeSel),
    h('div', { class: 'field inline' }, h('label', { for: 'step-source' }, 'Source'), sourceSel),
    h('div', { class: 'field inline' }, h('label', { for: 'step-level' }, 'Show'), levelSel),
    count);
  const empty = h('p', { class: 'muted empty-steps' }, 'No steps yet.');
  const root = h('div', { class: 'step-log' }, controls, list, empty);

  const visible = (p) => (!filter.mode || (filter.mode === '-' ? !p.mode : p.mode === filter.mode))
    && (!filter.source || p.source === filter.source)
    && (!filter.level || (filter.level === 'fault' ? p.fault : p.level !== 'info'));

  const fillSelect = (sel, values, labelOf, current) => {
    const want = ['', ...values];
    const have = [...sel.options].map((o) => o.value);
    if (want.join('\n') === have.join('\n')) return;
    sel.replaceChildren(...want.map((v) => h('option', { value: v, selected: v === current }, v ? labelOf(v) : 'all')));
  };

  const render = () => {
    const steps = [...parsed.values()].sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
    // Times are shown from the run's start (or its first step while it has not said when).
    const firstAt = steps.map((p) => Date.parse(p.at)).filter((t) => !Number.isNaN(t));
    const started = run.started_at ? Date.parse(run.started_at) : NaN;
    const t0 = !Number.isNaN(started) ? started : firstAt.length ? Math.min(...firstAt) : null;
    const stepModes = orderModes([...new Set(steps.map((p) => p.mode).filter(Boolean))]);
    const general = steps.some((p) => !p.mode);
    fillSelect(modeSel, [...stepModes, ...(general ? ['-'] : [])], (v) => (v === '-' ? 'none (preflight, cleanup)' : modeLabel(v)), filter.mode);
    fillSelect(sourceSel, [...new Set(steps.map((p) => p.source))].sort(), (v) => v, filter.source);
    const items = [];
    let group = null;
    let shown = 0;
    for (const p of steps) {
      const show = visible(p);
      if (show) shown += 1;
      const groupKey = p.mode || '-';
      if (groupKey !== group) {
        group = groupKey;
        // The mode, said once for the steps that follow.
        items.push(h('li', { class: ['step-group', `mode-${p.mode || 'none'}`], 'data-mode': p.mode, role: 'presentation' },
          h('span', { class: 'step-group-name' }, p.mode ? `${modeLabel(p.mode)} mode` : 'run')));
      }
      const rel = relSeconds(p.at, t0);
      items.push(h('li', {
        class: ['step', `level-${p.level}`, p.fault && 'step-fault'],
        'data-seq': String(p.seq ?? ''), 'data-mode': p.mode, 'data-source': p.source, 'data-level': p.level,
        hidden: !show,
      },
      h('span', { class: 'step-time' }, p.at
        ? h('time', { datetime: p.at, title: `${fmtTime(p.at)} local, ${p.at} UTC, step #${p.seq ?? '?'}` }, rel === null ? fmtTime(p.at).slice(11) : `+${rel.toFixed(rel < 100 ? 2 : 1)} s`)
        : null),
      h('span', { class: 'step-source', title: 'source' }, p.source),
      h('span', { class: 'step-msg' },
        p.fault ? h('span', { class: 'step-tag fault-tag' }, '⚡ fault') : null,
        p.level === 'error' ? h('span', { class: 'step-tag error-tag' }, '✘ error') : null,
        p.level === 'warn' ? h('span', { class: 'step-tag warn-tag' }, '⚠') : null,
        p.message)));
    }
    // A mode heading is hidden when none of its steps is shown.
    for (let i = 0; i < items.length; i += 1) {
      if (!items[i].classList.contains('step-group')) continue;
      let any = false;
      for (let j = i + 1; j < items.length && !items[j].classList.contains('step-group'); j += 1) any = any || !items[j].hidden;
      items[i].hidden = !any;
    }
    const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4;
    list.replaceChildren(...items);
    if (atBottom) list.scrollTop = list.scrollHeight;
    empty.hidden = steps.length > 0;
    list.hidden = steps.length === 0;
    controls.hidden = steps.length === 0;
    count.textContent = shown === steps.length ? `${steps.length} steps` : `${shown} of ${steps.length} steps shown`;
  };

  for (const [sel, key] of [[modeSel, 'mode'], [sourceSel, 'source'], [levelSel, 'level']]) {
    sel.addEventListener('change', () => { filter[key] = sel.value; render(); });
  }

  let pending = false;
  return {
    element: root,
    get size() { return parsed.size; },
    add(steps) {
      let changed = false;
      for (const st of steps) {
        const key = st.seq ?? `n${parsed.size}`;
        if (parsed.has(key)) continue;
        parsed.set(key, parseStep(st, modes));
        changed = true;
      }
      // Live steps come in bursts: draw once per frame.
      if (changed && !pending) {
        pending = true;
        (window.requestAnimationFrame || setTimeout)(() => { pending = false; render(); });
      }
    },
    render,
    // The run changed (it started, or ended): times are re-based on its start.
    update(fresh) { run = fresh; render(); },
  };
}
