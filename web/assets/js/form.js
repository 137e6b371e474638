// The "Run" form of one experiment: its modes, its declared parameters with their bounds, and
// the run's own options. Values are checked against the declared bounds before sending; the
// server validates again, and its 400 problem is mapped back onto the same fields.

import { api, ApiError, problemView } from './api.js';
import { announce, h, replace } from './dom.js';
import { modeLabel } from './evidence.js';

// Bounds of the run's own options (domain/catalog.h: kMaxRepeat, kMin/kMaxTimeoutSeconds).
const REPEAT = { min: 1, max: 20 };
const TIMEOUT = { min: 5, max: 3600 };
const NOTE_MAX = 1000;

let formCounter = 0;

function describeBounds(p) {
  const parts = [];
  if (p.type === 'integer') parts.push('whole number');
  if (p.type === 'number') parts.push('number');
  const unit = p.unit ? ` ${p.unit}` : '';
  if (p.min !== null && p.min !== undefined && p.max !== null && p.max !== undefined) parts.push(`${p.min}–${p.max}${unit}`);
  else if (p.min !== null && p.min !== undefined) parts.push(`at least ${p.min}${unit}`);
  else if (p.max !== null && p.max !== undefined) parts.push(`at most ${p.max}${unit}`);
  return parts.join(', ');
}

// Checks one numeric text against a parameter's type and bounds: returns [value, message].
export function checkNumber(text, { type, min, max, unit }) {
  const raw = String(text).trim();
  if (raw === '') return [undefined, 'Enter a value.'];
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(raw)) return [undefined, 'Enter a number.'];
  const n = Number(raw);
  if (!Number.isFinite(n)) return [undefined, 'Enter a finite number.'];
  if (type === 'integer' && !Number.isInteger(n)) return [undefined, 'Enter a whole number.'];
  const u = unit ? ` ${unit}` : '';
  if (min !== null && min !== undefined && n < min) return [n, `Must be at least ${min}${u} (you entered ${raw}).`];
  if (max !== null && max !== undefined && n > max) return [n, `Must be at most ${max}${u} (you entered ${raw}).`];
  return [n, null];
}

function fieldError(id) {
  return h('p', { class: 'field-error', id, hidden: true });
}

function setFieldError(form, field, message) {
  const holder = form.querySelector(`[data-field="${CSS.escape(field)}"]`);
  if (!holder) return false;
  const err = holder.querySelector('.field-error');
  const input = holder.querySelector('input, select, textarea');
  if (message) {
    err.textContent = message;
    err.hidden = false;
    if (input) input.setAttribute('aria-invalid', 'true');
  } else {
    err.textContent = '';
    err.hidden = true;
    if (input) input.removeAttribute('aria-invalid');
  }
  return true;
}

function clearErrors(form) {
  for (const holder of form.querySelectorAll('[data-field]')) setFieldError(form, holder.dataset.field, null);
}

function paramInput(p, prefix) {
  const id = `${prefix}-p-${p.name}`;
  const hintId = `${id}-hint`;
  const errId = `${id}-err`;
  const described = `${hintId} ${errId}`;
  let input;
  if (p.type === 'boolean') {
    input = h('input', { type: 'checkbox', id, name: p.name, checked: Boolean(p.default), 'aria-describedby': described });
    return h('div', { class: 'field check', 'data-field': `params.${p.name}` },
      input, h('label', { for: id }, h('code', null, p.name)),
      h('p', { class: 'hint', id: hintId }, p.description || ''), fieldError(errId));
  }
  if (p.type === 'enum') {
    input = h('select', { id, name: p.name, 'aria-describedby': described },
      (p.choices || []).map((c) => h('option', { value: c, selected: c === p.default }, c)));
  } else {
    input = h('input', {
      type: 'text', inputmode: p.type === 'integer' ? 'numeric' : 'decimal', id, name: p.name,
      value: p.default ?? '', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': described,
      'data-type': p.type,
    });
  }
  const bounds = p.type === 'enum' ? `one of ${(p.choices || []).join(', ')}` : describeBounds(p);
  return h('div', { class: 'field', 'data-field': `params.${p.name}` },
    h('label', { for: id }, h('code', null, p.name), p.unit ? h('span', { class: 'unit' }, ` (${p.unit})`) : null),
    input,
    h('p', { class: 'hint', id: hintId }, [p.description, bounds && `${p.description ? ' · ' : ''}${bounds}`, p.default !== undefined && p.default !== null ? ` · default ${p.default}` : ''].filter(Boolean).join('')),
    fieldError(errId));
}

// Collects and checks the form. Returns {body, errors:[{field, message}]}.
export function collect(form, experiment, { check = true } = {}) {
  const errors = [];
  const body = { modes: [], params: {} };
  for (const box of form.querySelectorAll('input[name="mode"]')) if (box.checked) body.modes.push(box.value);
  if (check && (experiment.modes || []).length && !body.modes.length) errors.push({ field: 'modes', message: 'Choose at least one mode.' });
  for (const p of experiment.parameters || []) {
    const el = form.elements.namedItem(p.name);
    if (!el) continue;
    if (p.type === 'boolean') { body.params[p.name] = el.checked; continue; }
    if (p.type === 'enum') {
      if (check && p.choices?.length && !p.choices.includes(el.value)) errors.push({ field: `params.${p.name}`, message: `Choose one of ${p.choices.join(', ')}.` });
      body.params[p.name] = el.value;
      continue;
    }
    const [n, msg] = checkNumber(el.value, p);
    if (msg && check) errors.push({ field: `params.${p.name}`, message: msg });
    // Unchecked, send what was typed: a number if it is one, else the text (the server decides).
    body.params[p.name] = n !== undefined ? n : el.value;
  }
  const note = form.elements.namedItem('note').value;
  if (note.trim()) body.note = note.trim();
  if (check && note.length > NOTE_MAX) errors.push({ field: 'note', message: `At most ${NOTE_MAX} characters (now ${note.length}).` });
  body.keep_artifacts = form.elements.namedItem('keep_artifacts').checked;
  const [rep, repMsg] = checkNumber(form.elements.namedItem('repeat').value, { type: 'integer', ...REPEAT });
  if (repMsg && check) errors.push({ field: 'repeat', message: repMsg });
  body.repeat = rep !== undefined ? rep : form.elements.namedItem('repeat').value;
  const [to, toMsg] = checkNumber(form.elements.namedItem('timeout_seconds').value, { type: 'integer', unit: 's', ...TIMEOUT });
  if (toMsg && check) errors.push({ field: 'timeout_seconds', message: toMsg });
  body.timeout_seconds = to !== undefined ? to : form.elements.namedItem('timeout_seconds').value;
  return { body, errors };
}

// Maps a server field ("modes[0]", "params.events") onto a form field holder.
function holderField(field) {
  if (/^modes(\[\d+\])?$/.test(field)) return 'modes';
  return field;
}

export function runForm(experiment, { onStarted } = {}) {
  const prefix = `rf${++formCounter}`;
  const status = h('div', { class: 'form-status', 'aria-live': 'polite' });
  const disabled = experiment.available === false;
  const modes = experiment.modes || [];
  const form = h('form', { class: 'run-form', novalidate: true, 'data-experiment': experiment.id, 'aria-label': `Run ${experiment.id}` },
    modes.length ? h('fieldset', { class: 'modes', 'data-field': 'modes' },
      h('legend', null, 'Modes'),
      modes.map((m) => {
        const id = `${prefix}-m-${m.name}`;
        return h('div', { class: 'field check' },
          h('input', { type: 'checkbox', id, name: 'mode', value: m.name, checked: true }),
          h('label', { for: id }, modeLabel(m.name)),
          m.description ? h('p', { class: 'hint' }, m.description) : null);
      }),
      fieldError(`${prefix}-modes-err`)) : null,
    (experiment.parameters || []).length
      ? h('fieldset', { class: 'params' }, h('legend', null, 'Parameters'), experiment.parameters.map((p) => paramInput(p, prefix)))
      : h('p', { class: 'muted' }, 'This experiment has no parameters.'),
    h('details', { class: 'run-options' },
      h('summary', null, 'Run options (repeat, timeout, note, artifacts)'),
      h('div', { class: 'field', 'data-field': 'repeat' },
        h('label', { for: `${prefix}-repeat` }, 'Repeat'),
        h('input', { id: `${prefix}-repeat`, name: 'repeat', type: 'text', inputmode: 'numeric', value: '1', autocomplete: 'off', 'aria-describedby': `${prefix}-repeat-hint ${prefix}-repeat-err` }),
        h('p', { class: 'hint', id: `${prefix}-repeat-hint` }, `run it this many times and report each verdict (${REPEAT.min}–${REPEAT.max})`),
        fieldError(`${prefix}-repeat-err`)),
      h('div', { class: 'field', 'data-field': 'timeout_seconds' },
        h('label', { for: `${prefix}-timeout` }, 'Timeout (s)'),
        h('input', { id: `${prefix}-timeout`, name: 'timeout_seconds', type: 'text', inputmode: 'numeric', value: String(experiment.default_timeout_seconds ?? 120), autocomplete: 'off', 'aria-describedby': `${prefix}-timeout-hint ${prefix}-timeout-err` }),
        h('p', { class: 'hint', id: `${prefix}-timeout-hint` }, `the run is stopped (and cleaned up) after this long (${TIMEOUT.min}–${TIMEOUT.max} s)`),
        fieldError(`${prefix}-timeout-err`)),
      h('div', { class: 'field', 'data-field': 'note' },
        h('label', { for: `${prefix}-note` }, 'Note'),
        h('textarea', { id: `${prefix}-note`, name: 'note', rows: '2', maxlength: String(NOTE_MAX * 2), 'aria-describedby': `${prefix}-note-err` }),
        fieldError(`${prefix}-note-err`)),
      h('div', { class: 'field check', 'data-field': 'keep_artifacts' },
        h('input', { id: `${prefix}-keep`, name: 'keep_artifacts', type: 'checkbox' }),
        h('label', { for: `${prefix}-keep` }, 'Keep artifacts'),
        h('p', { class: 'hint' }, 'leave the run\'s topics, tables and keys on the stack to inspect them (kcat, mysql, redis-cli)'),
        fieldError(`${prefix}-keep-err`)),
      h('div', { class: 'field check' },
        h('input', { id: `${prefix}-check`, name: 'check_in_browser', type: 'checkbox', checked: true }),
        h('label', { for: `${prefix}-check` }, 'Check values in the browser before sending'),
        h('p', { class: 'hint' }, 'untick to let the server judge them (it validates every request either way)'))),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', class: 'primary', disabled }, disabled ? 'Not available' : `Start ${experiment.id}`),
      disabled ? h('span', { class: 'muted' }, ' the server has no runner for this experiment yet') : null),
    status);

  form.addEventListener('input', (ev) => {
    const holder = ev.target.closest('[data-field]');
    if (holder) setFieldError(form, holder.dataset.field, null);
  });

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    replace(status);
    const check = form.elements.namedItem('check_in_browser').checked;
    const { body, errors } = collect(form, experiment, { check });
    if (errors.length) {
      for (const e of errors) setFieldError(form, holderField(e.field), e.message);
      replace(status, h('div', { class: 'problem', role: 'alert', 'data-source': 'client' },
        h('p', { class: 'problem-title' }, `Not sent: ${errors.length === 1 ? 'one value needs' : `${errors.length} values need`} fixing`),
        h('ul', { class: 'problem-fields' }, errors.map((e) => h('li', null, h('code', null, e.field), ': ', e.message)))));
      const first = form.querySelector('[aria-invalid="true"]');
      if (first) first.focus();
      return;
    }
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    replace(status, h('p', { class: 'muted' }, 'Sending…'));
    try {
      const { data, response } = await api.startRun(experiment.id, body);
      const location = response.headers.get('Location');
      const id = data?.id || (location ? location.split('/').pop() : null);
      replace(status, h('p', { class: 'ok' }, `Queued as ${id}.`));
      announce(`Run ${id} queued`);
      if (onStarted && id) onStarted(id, data);
    } catch (err) {
      if (err instanceof ApiError) {
        let unmatched = 0;
        for (const e of err.errors) if (!setFieldError(form, holderField(e.field || ''), e.message)) unmatched += 1;
        replace(status, h('div', { 'data-source': 'server' }, problemView(err, { context: 'The server refused the run' })));
        if (err.errors.length && unmatched < err.errors.length) {
          const first = form.querySelector('[aria-invalid="true"]');
          if (first) first.focus();
        }
      } else {
        replace(status, problemView(err));
      }
    } finally {
      button.disabled = disabled;
    }
  });
  return form;
}
