// The web UI in headless Chromium against a running server (BASE_URL): every page loads, a run
// of E-000 is started from the form and followed to its end, its evidence and verdict match the
// API, out-of-bounds parameters are refused in the browser and by the server, and each page is
// photographed at desktop and phone size (tests/browser/screenshots/). The pictures of README.md
// and docs/ui.md are taken here too, from these real runs (docShot, DOC_SHOTS in lib.js; `run.sh
// --update-docs` copies them to docs/screenshots/).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  BASE_URL, DESKTOP, PHONE, FINISHED, launch, newPage, shot, docShot, boxAround, horizontalOverflow, api, waitFinished,
} = require('./lib.js');

let browser;
let runId = null; // the E-000 run started from the form
let catalog = null;

before(async () => {
  browser = await launch();
  const r = await api('GET', '/experiments');
  assert.equal(r.status, 200, `GET /experiments answered ${r.status}`);
  catalog = r.json.items;
});

after(async () => {
  if (browser) await browser.close();
});

function e000() {
  const e = catalog.find((x) => x.id === 'E-000');
  assert.ok(e, 'the catalog has E-000');
  return e;
}

// The catalog lists every experiment of GET /experiments with its claim, availability and
// latest verdict, has no JS errors and no sideways scrolling at desktop and phone size.
test('catalog shows every experiment the API lists', async () => {
  const page = await newPage(browser);
  await page.goto(`${BASE_URL}/`);
  await page.waitForSelector('article.experiment');
  const ids = await page.$$eval('article.experiment', (els) => els.map((e) => e.dataset.id));
  assert.deepEqual([...ids].sort(), catalog.map((e) => e.id).sort());
  const card = page.locator('article[data-id="E-000"]');
  assert.match(await card.locator('.claim').innerText(), new RegExp(e000().claim.slice(0, 20).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  const unavailable = catalog.filter((e) => e.available === false).length;
  assert.equal(await page.locator('article.experiment .badge.unavailable').count(), unavailable);
  assert.equal(await page.title(), 'Catalog · Reliability Lab');
  assert.ok(await horizontalOverflow(page) <= 1, 'no sideways scroll at 1400 px');
  await shot(page, 'catalog-1400', { fullPage: false });
  await page.setViewportSize(PHONE);
  assert.ok(await horizontalOverflow(page) <= 1, 'no sideways scroll on a phone');
  await shot(page, 'catalog-phone', { fullPage: false });
  assert.deepEqual(page.errors, []);
  await page.close();
});

// A parameter outside its declared bounds is caught in the browser: the field says why and
// nothing is sent to the server.
test('out-of-bounds parameter is refused in the browser before sending', async () => {
  const param = e000().parameters.find((p) => p.max !== null && p.max !== undefined);
  assert.ok(param, 'E-000 declares a bounded parameter');
  const page = await newPage(browser);
  const posts = [];
  page.on('request', (req) => { if (req.method() === 'POST') posts.push(req.url()); });
  await page.goto(`${BASE_URL}/`);
  const card = page.locator('article[data-id="E-000"]');
  await card.locator('.run-details > summary').click();
  const input = card.locator(`input[name="${param.name}"]`);
  await input.fill(String(param.max * 10));
  await card.locator('button[type="submit"]').click();
  const err = card.locator(`[data-field="params.${param.name}"] .field-error`);
  await err.waitFor({ state: 'visible' });
  assert.match(await err.innerText(), new RegExp(`at most ${param.max}`));
  assert.equal(await input.getAttribute('aria-invalid'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement.name), param.name, 'focus moves to the bad field');
  assert.match(await card.locator('[data-source="client"]').innerText(), /Not sent/);
  assert.deepEqual(posts, [], 'nothing was sent');
  await card.screenshot({ path: require('node:path').join(__dirname, 'screenshots', 'form-client-error.png') });
  assert.deepEqual(page.errors, []);
  await page.close();
});

// With the browser check off, the server's 400 problem is shown in words and its field error
// is put on the same input.
test('the server 400 problem is shown on the field it names', async () => {
  const param = e000().parameters.find((p) => p.max !== null && p.max !== undefined);
  // What the server answers, asked directly.
  const direct = await api('POST', '/experiments/E-000/runs', { params: { [param.name]: param.max * 10 } });
  assert.equal(direct.status, 400);
  assert.match(direct.type, /application\/problem\+json/);
  const fieldErr = (direct.json.errors || []).find((e) => e.field === `params.${param.name}`);
  assert.ok(fieldErr, `the problem names params.${param.name}: ${direct.text}`);

  const page = await newPage(browser);
  await page.goto(`${BASE_URL}/`);
  const card = page.locator('article[data-id="E-000"]');
  await card.locator('.run-details > summary').click();
  await card.locator(`input[name="${param.name}"]`).fill(String(param.max * 10));
  await card.locator('summary', { hasText: 'Run options' }).click();
  await card.locator('input[name="check_in_browser"]').uncheck();
  const responded = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/experiments/E-000/runs'));
  await card.locator('button[type="submit"]').click();
  const res = await responded;
  assert.equal(res.status(), 400);
  const shown = card.locator('[data-source="server"] .problem');
  await shown.waitFor();
  const text = await shown.innerText();
  assert.match(text, /HTTP 400/);
  assert.ok(text.includes(direct.json.title), `the problem title "${direct.json.title}" is shown`);
  assert.ok(text.includes(fieldErr.message), 'the server\'s field message is shown');
  const onField = card.locator(`[data-field="params.${param.name}"] .field-error`);
  assert.equal(await onField.innerText(), fieldErr.message);
  await card.screenshot({ path: require('node:path').join(__dirname, 'screenshots', 'form-server-400.png') });
  assert.deepEqual(page.errors, []);
  await page.close();
});

// E-000 started from its form: the page moves to the run, follows it live (SSE) to its end,
// and shows the state, verdict, reason, step log and evidence the API reports.
test('start E-000 from the form and follow it to its verdict', async () => {
  const page = await newPage(browser);
  const seenStates = new Set();
  let firstRunState = null;
  let eventsRequested = false;
  page.on('request', (req) => { if (/\/runs\/[^/]+\/events$/.test(new URL(req.url()).pathname)) eventsRequested = true; });
  page.on('response', async (res) => {
    const p = new URL(res.url()).pathname;
    if (firstRunState === null && /^\/runs\/[^/]+$/.test(p) && res.request().method() === 'GET') {
      try { firstRunState = (await res.json()).state; } catch { /* ignore */ }
    }
  });
  await page.goto(`${BASE_URL}/`);
  const card = page.locator('article[data-id="E-000"]');
  await card.locator('.run-details > summary').click();
  await card.locator('summary', { hasText: 'Run options' }).click();
  await card.locator('textarea[name="note"]').fill('browser test');
  const accepted = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/experiments/E-000/runs'));
  await card.locator('button[type="submit"]').click();
  const res = await accepted;
  assert.equal(res.status(), 202, `POST answered ${res.status()}: ${await res.text()}`);
  const posted = await res.json();
  runId = posted.id;
  assert.ok(runId);
  assert.equal(posted.state, 'queued');
  await page.waitForURL(`**/ui/runs/${encodeURIComponent(runId)}`);
  await page.waitForSelector('.run-status .badge[data-state]');
  const live = await page.locator('.live-progress').count();
  if (live) await shot(page, 'run-live', { fullPage: false });
  // Watch the state badge until the run ends.
  const deadline = Date.now() + 90000;
  for (;;) {
    const state = await page.locator('.run-status .badge[data-state]').getAttribute('data-state');
    seenStates.add(state);
    if (FINISHED.includes(state)) break;
    assert.ok(Date.now() < deadline, `run did not end in the UI; states seen: ${[...seenStates]}`);
    await page.waitForTimeout(200);
  }
  const run = await waitFinished(runId);
  if (firstRunState && !FINISHED.includes(firstRunState)) assert.ok(eventsRequested, 'the page followed the run over SSE');
  // State, verdict and reason as the API has them.
  assert.equal(await page.locator('.run-status .badge[data-state]').getAttribute('data-state'), run.state);
  assert.ok(run.verdict, `a finished E-000 run has a verdict (${run.state}: ${run.error || ''})`);
  const badge = page.locator('.run-status .badge[data-verdict]');
  assert.equal(await badge.getAttribute('data-verdict'), run.verdict);
  assert.equal((await badge.innerText()).toLowerCase(), run.verdict);
  if (run.verdict_reason) assert.ok((await page.locator('.verdict-reason').innerText()).includes(run.verdict_reason));
  // The step log has every step.
  await page.waitForFunction((n) => document.querySelectorAll('ol.steps li').length >= n, (run.steps || []).length);
  // Evidence: a column per mode with every metric.
  const modes = Object.keys(run.evidence || {});
  assert.ok(modes.length > 0, 'E-000 recorded evidence');
  for (const mode of modes) {
    const col = page.locator(`article.mode-col.mode-${mode}`);
    await col.waitFor();
    const colText = await col.innerText();
    for (const metric of Object.keys(run.evidence[mode].metrics || {})) assert.ok(colText.includes(metric), `${mode} shows ${metric}`);
  }
  assert.ok(await page.locator('figure.chart').count() >= 1, 'the evidence is drawn');
  assert.equal(await page.locator('#cancel-run').count(), 0, 'no cancel button on a finished run');
  assert.ok(await horizontalOverflow(page) <= 1);
  await shot(page, 'run-finished-1400');
  await page.setViewportSize(PHONE);
  assert.ok(await horizontalOverflow(page) <= 1, 'run page fits a phone');
  await shot(page, 'run-finished-phone');
  await page.setViewportSize(DESKTOP);
  // The JSON report opens in the page.
  await page.locator('button[data-report="json"]').click();
  await page.locator('pre.report').waitFor();
  assert.ok((await page.locator('pre.report').innerText()).includes(runId));
  assert.deepEqual(page.errors, []);
  await page.close();
});

// The cancel button on a running run: E-008 with 60 expiries of a 1 s TTL lasts a minute unless
// cancelled, so the button is there when the page shows the run running; the click is answered
// 202 and the run ends cancelled in well under that minute.
test('cancel button on a live run', async () => {
  const started = await api('POST', '/experiments/E-008/runs', {
    note: 'browser test, cancel',
    modes: ['success'],
    params: { clients: 2, instances: 1, db_delay_ms: 0, expiries: 60 },
  });
  assert.equal(started.status, 202, started.text);
  const id = started.json.id;
  const page = await newPage(browser);
  await page.goto(`${BASE_URL}/ui/runs/${encodeURIComponent(id)}`);
  await page.waitForFunction(() => document.querySelector('.run-status .badge[data-state]')?.dataset.state === 'running', null, { timeout: 30000 });
  const button = page.locator('#cancel-run');
  assert.equal(await button.count(), 1, 'no cancel button on a running run');
  const answered = page.waitForResponse((r) => r.url().endsWith(`/runs/${id}/cancel`));
  const clicked = Date.now();
  await button.click();
  assert.equal((await answered).status(), 202);
  const run = await waitFinished(id, 45000);
  assert.equal(run.state, 'cancelled', `the run ended ${run.state}`);
  assert.ok(Date.now() - clicked < 45000);
  await page.waitForFunction(() => document.querySelector('.run-status .badge[data-state]')?.dataset.state === 'cancelled', null, { timeout: 30000 });
  assert.equal(await page.locator('#cancel-run').count(), 0);
  assert.deepEqual(page.errors, []);
  await page.close();
});

// `repeat` from the form's run options: each repetition's verdict and reason are listed as the
// API reports them.
test('a repeated run lists each repetition', async () => {
  const page = await newPage(browser);
  await page.goto(`${BASE_URL}/ui/experiments/E-000`);
  const form = page.locator('form.run-form');
  await form.locator('summary', { hasText: 'Run options' }).click();
  await form.locator('input[name="repeat"]').fill('2');
  const accepted = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/experiments/E-000/runs'));
  await form.locator('button[type="submit"]').click();
  const res = await accepted;
  assert.equal(res.status(), 202, await res.text());
  const id = (await res.json()).id;
  assert.equal((await res.json()).repeat, 2);
  const run = await waitFinished(id);
  await page.waitForFunction((s) => document.querySelector('.run-status .badge[data-state]')?.dataset.state === s, run.state, { timeout: 30000 });
  const reps = run.repetitions || [];
  assert.equal(reps.length, 2, 'the API reports two repetitions');
  const rows = page.locator('table.repetitions tbody tr');
  await rows.first().waitFor();
  assert.equal(await rows.count(), reps.length);
  for (let i = 0; i < reps.length; i += 1) {
    assert.equal(await rows.nth(i).locator('[data-verdict]').getAttribute('data-verdict'), reps[i].verdict || '');
  }
  assert.deepEqual(page.errors, []);
  await page.close();
});

// History lists the run under its experiment filter, and its row links to the run page.
test('history filters by experiment and links to the run', async () => {
  assert.ok(runId, 'a run was started');
  const page = await newPage(browser);
  await page.goto(`${BASE_URL}/ui/runs?experiment=E-000`);
  const row = page.locator(`tr[data-run="${runId}"]`);
  await row.waitFor();
  assert.ok((await row.innerText()).includes('E-000'));
  const exps = await page.$$eval('table.runs tbody tr td:nth-child(3)', (tds) => tds.map((td) => td.innerText.trim()));
  assert.ok(exps.every((x) => x === 'E-000'), 'only E-000 rows');
  // Filter by state through the form.
  const run = await waitFinished(runId);
  await page.selectOption('#f-state', run.state);
  await page.click('.filters button[type="submit"]');
  await page.waitForURL(new RegExp(`state=${run.state}`));
  await row.waitFor();
  await shot(page, 'history', { fullPage: false });
  await page.setViewportSize(PHONE);
  assert.ok(await horizontalOverflow(page) <= 1, 'history fits a phone');
  await shot(page, 'history-phone', { fullPage: false });
  await page.setViewportSize(DESKTOP);
  await row.locator(`a[href="/ui/runs/${encodeURIComponent(runId)}"]`).click();
  await page.waitForURL(`**/ui/runs/${encodeURIComponent(runId)}`);
  await page.locator('h1').filter({ hasText: runId }).waitFor();
  assert.deepEqual(page.errors, []);
  await page.close();
});

// Two runs of E-000 side by side; picking them in the history leads to the comparison.
test('compare two runs of E-000', async () => {
  assert.ok(runId);
  const second = await api('POST', '/experiments/E-000/runs', { note: 'browser test, second run' });
  assert.equal(second.status, 202, second.text);
  const other = second.json.id;
  await waitFinished(other);
  const page = await newPage(browser);
  await page.goto(`${BASE_URL}/ui/runs?experiment=E-000`);
  await page.locator(`tr[data-run="${runId}"] input.pick`).check();
  await page.locator(`tr[data-run="${other}"] input.pick`).check();
  await page.locator('.compare-bar button.primary').click();
  await page.waitForURL(/\/ui\/compare\?/);
  await page.locator('.compare-head').first().waitFor();
  const heads = await page.locator('.compare-head').allInnerTexts();
  assert.equal(heads.length, 2);
  assert.ok(heads.join(' ').includes(runId) && heads.join(' ').includes(other));
  await page.locator('h2', { hasText: 'Evidence, A beside B' }).waitFor();
  await shot(page, 'compare');
  await page.setViewportSize(PHONE);
  assert.ok(await horizontalOverflow(page) <= 1, 'compare page fits a phone');
  await page.setViewportSize(DESKTOP);
  assert.deepEqual(page.errors, []);
  await page.close();
});

// The audit page shows the chain's verification as the API reports it, and the entries.
test('audit shows the chain state and entries', async () => {
  const verify = await api('GET', '/audit/verify');
  assert.equal(verify.status, 200);
  const list = await api('GET', '/audit?limit=50');
  assert.equal(list.status, 200);
  const page = await newPage(browser);
  await page.goto(`${BASE_URL}/ui/audit`);
  const box = page.locator('.verify');
  await box.waitFor();
  assert.equal(await box.getAttribute('data-ok'), String(verify.json.ok));
  if (verify.json.ok) assert.ok((await box.innerText()).includes(String(verify.json.entries)));
  if (list.json.items.length) {
    await page.locator('table.audit tbody tr').first().waitFor();
    assert.equal(await page.locator('table.audit tbody tr').first().getAttribute('data-seq'), String(list.json.items[0].seq));
  }
  await shot(page, 'audit', { fullPage: false });
  await page.setViewportSize(PHONE);
  assert.ok(await horizontalOverflow(page) <= 1, 'audit page fits a phone');
  assert.deepEqual(page.errors, []);
  await page.close();
});

// The experiment page and the problem shown for a run that does not exist.
test('experiment page, and a missing run shown as a 404 problem in words', async () => {
  const page = await newPage(browser);
  await page.goto(`${BASE_URL}/ui/experiments/E-000`);
  await page.locator('h1', { hasText: 'E-000' }).waitFor();
  assert.ok((await page.locator('.lede').first().innerText()).includes(e000().claim));
  assert.ok(await page.locator('form.run-form').count() === 1);
  await shot(page, 'experiment', { fullPage: false });
  await page.setViewportSize(PHONE);
  assert.ok(await horizontalOverflow(page) <= 1, 'experiment page fits a phone');
  await page.setViewportSize(DESKTOP);
  await page.goto(`${BASE_URL}/ui/runs/no-such-run-id`);
  const problem = page.locator('.problem');
  await problem.waitFor();
  assert.match(await problem.innerText(), /HTTP 404/);
  assert.match(await problem.innerText(), /does not exist/);
  await shot(page, 'missing-run', { fullPage: false });
  assert.deepEqual(page.errors, []);
  await page.close();
});

// Keyboard only: the skip link comes first, the main navigation works with Tab and Enter, and
// the new page's heading receives focus.
test('keyboard: skip link, navigation, focus on the new heading', async () => {
  const page = await newPage(browser);
  await page.goto(`${BASE_URL}/`);
  await page.waitForSelector('article.experiment');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.className), 'skip-link');
  let reached = false;
  for (let i = 0; i < 8 && !reached; i += 1) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement.textContent.trim() === 'History');
  }
  assert.ok(reached, 'History is reachable by Tab');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => window.location.pathname === '/ui/runs');
  await page.waitForFunction(() => document.activeElement.tagName === 'H1');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Run history');
  assert.deepEqual(page.errors, []);
  await page.close();
});

// A token typed into the dialog is stored and sent as a Bearer header, and can be forgotten.
test('token dialog stores the token and sends it', async () => {
  const page = await newPage(browser);
  await page.goto(`${BASE_URL}/ui/audit`);
  await page.locator('.verify, .problem').first().waitFor();
  await page.click('#token-button');
  await page.fill('#token-input', 'browser-test-token');
  const sent = page.waitForRequest((req) => new URL(req.url()).pathname.startsWith('/audit'));
  await page.click('#token-form button[value="save"]');
  const req = await sent;
  assert.equal(req.headers().authorization, 'Bearer browser-test-token');
  await page.waitForFunction(() => document.getElementById('token-button').textContent === 'Token: set');
  await page.click('#token-button');
  await page.locator('#token-dialog[open]').waitFor();
  await page.click('#token-form button[value="clear"]');
  await page.waitForFunction(() => document.getElementById('token-button').textContent === 'Token: none');
  assert.equal(await page.evaluate(() => window.localStorage.getItem('reliability-lab.token')), null);
  await page.close();
});

// --- issue 16: charts with a time axis, a clean step log, history that answers "is it stable?" ---

// N21 (circuit breaker, shortened: ~15 s on the stack) records p99 and errors per 250 ms slot
// around its fault. Its run page draws them on a time axis in seconds with the fault shaded, draws
// no chart over a "sample" index, shows every step without terminal escapes with the mode said once,
// and the step filter by mode hides the other mode's steps.
test('N21 run page: time charts with the fault shaded, a clean step log and its mode filter', async () => {
  const started = await api('POST', '/experiments/N21/runs', {
    note: 'browser test, time charts',
    params: { baseline_s: 1, fault_s: 3, after_s: 2, settle_ms: 1000 },
  });
  assert.equal(started.status, 202, started.text);
  const run = await waitFinished(started.json.id, 120000);
  assert.equal(run.state, 'completed', `N21 ended ${run.state}: ${run.error || ''}`);
  for (const mode of ['failure', 'success']) {
    assert.ok((run.evidence?.[mode]?.details?.timeline || []).length >= 3, `${mode} recorded a timeline`);
  }
  const page = await newPage(browser);
  await page.goto(`${BASE_URL}/ui/runs/${encodeURIComponent(run.id)}`);
  await page.locator('figure.chart svg.time-chart').first().waitFor();

  // The latency chart: x axis labelled in seconds, ticks "N s" increasing, both modes drawn, the
  // fault shaded, the breaker's states as a band.
  const latency = page.locator('figure.chart', { has: page.locator('figcaption', { hasText: 'p99 latency over time' }) });
  assert.equal(await latency.count(), 1, 'one p99-over-time chart');
  assert.match(await latency.locator('svg .x-label').textContent(), /seconds/);
  const ticks = await latency.locator('svg text.x-tick').allTextContents();
  assert.ok(ticks.length >= 3, `at least 3 time ticks: ${ticks}`);
  for (const t of ticks) assert.match(t, /^-?[\d,.]+ s$/, `tick "${t}" is in seconds`);
  const values = ticks.map((t) => Number(t.replace(/[ s,]/g, '')));
  assert.ok(values.every((v, i) => i === 0 || v > values[i - 1]), `ticks increase: ${values}`);
  assert.ok(values[0] < 0 && values[values.length - 1] > 3, `the axis spans before and after the fault: ${values}`);
  assert.deepEqual((await latency.locator('svg path.line').evaluateAll((ps) => ps.map((p) => p.dataset.series))).sort(), ['failure', 'success']);
  assert.equal(await latency.locator('svg rect.window').count(), 1, 'the fault window is shaded');
  assert.ok(await latency.locator('svg rect.band').count() >= 2, 'the breaker states are drawn as a band');
  // No chart of the old kind: an x axis of "sample" indexes.
  const captions = await page.locator('figure.chart figcaption').allTextContents();
  assert.ok(!captions.some((c) => /per sample/.test(c)), `no "per sample" chart: ${captions}`);
  assert.equal(await page.locator('svg text', { hasText: /^sample$/ }).count(), 0);

  // Step log: every step, none with an escape, the mode said once per group, not on each line.
  const steps = page.locator('ol.steps li.step');
  assert.equal(await steps.count(), run.steps.length);
  const texts = await steps.allTextContents();
  assert.ok(texts.every((t) => !t.includes('\x1b')), 'no escape character in any step');
  const messages = await page.locator('ol.steps li.step .step-msg').allTextContents();
  assert.ok(!messages.some((m) => /^(failure|success): /.test(m)), 'the mode is not repeated on each line');
  assert.equal(await page.locator('ol.steps li.step-group[data-mode="failure"]').count(), 1, 'the failure mode is said once');
  assert.ok(await page.locator('ol.steps li.step-fault').count() >= 2, 'fault on/off steps are highlighted');
  const perMode = (m) => run.steps.filter((s) => s.message.startsWith(`${m}: `)).length;
  assert.ok(perMode('failure') > 0 && perMode('success') > 0);
  assert.equal(await page.locator('ol.steps li.step[data-mode="success"]:visible').count(), perMode('success'));
  await page.selectOption('#step-mode', 'failure');
  assert.equal(await page.locator('ol.steps li.step[data-mode="success"]:visible').count(), 0, 'success steps hidden');
  assert.equal(await page.locator('ol.steps li.step[data-mode="failure"]:visible').count(), perMode('failure'));
  assert.equal(await page.locator('ol.steps li.step:visible').count(), perMode('failure'), 'only failure steps shown');
  await page.selectOption('#step-level', 'fault');
  const faultOnly = await page.locator('ol.steps li.step:visible').count();
  assert.ok(faultOnly >= 2 && faultOnly < perMode('failure'), `the fault filter narrows the failure steps (${faultOnly})`);
  await page.selectOption('#step-level', '');
  await page.selectOption('#step-mode', '');
  assert.equal(await page.locator('ol.steps li.step:visible').count(), run.steps.length);

  await latency.screenshot({ path: require('node:path').join(__dirname, 'screenshots', 'run-n21-latency-chart.png') });
  await shot(page, 'run-n21-1400');
  // The docs' pictures of a run: its page's top (state, verdict and why, timeline, evidence), the
  // two time-axis charts, the step log; then the page's top on a phone.
  const errorsChart = page.locator('figure.chart', { has: page.locator('figcaption', { hasText: 'Errors over time' }) });
  assert.equal(await errorsChart.count(), 1, 'one errors-over-time chart');
  await docShot(page, 'run', { clip: { x: 0, y: 0, width: DESKTOP.width, height: 1000 } });
  await docShot(page, 'run-charts', { clip: await boxAround([latency, errorsChart]) });
  await docShot(page.locator('section[aria-labelledby="sec-step-log"]'), 'step-log');
  await page.setViewportSize(PHONE);
  assert.ok(await horizontalOverflow(page) <= 1, 'the run page with time charts fits a phone');
  await shot(page, 'run-n21-phone');
  await docShot(page, 'run-phone', { clip: { x: 0, y: 0, width: PHONE.width, height: 1400 } });
  assert.deepEqual(page.errors, []);
  await page.close();
});

// The experiment page's history strip shows the verdicts of the experiment's runs, oldest to
// newest, as GET /runs reports them, and draws the key number across runs.
test('experiment page: the verdict strip of the last runs, in order, and the key number', async () => {
  for (let i = 0; i < 2; i += 1) {
    const r = await api('POST', '/experiments/E-000/runs', { note: `browser test, history ${i}` });
    assert.equal(r.status, 202, r.text);
    await waitFinished(r.json.id);
  }
  const list = await api('GET', '/runs?experiment=E-000&limit=40');
  assert.equal(list.status, 200);
  const expected = list.json.items.map((r) => ({ id: r.id, verdict: r.verdict || '' })).reverse();
  assert.ok(expected.length >= 2);
  const page = await newPage(browser);
  await page.goto(`${BASE_URL}/ui/experiments/E-000`);
  const strip = page.locator('ol.verdict-strip a');
  await strip.first().waitFor();
  const shown = await strip.evaluateAll((as) => as.map((a) => ({ id: a.dataset.run, verdict: a.dataset.verdict })));
  assert.deepEqual(shown, expected, 'the strip lists the runs oldest to newest with their verdicts');
  const finished = list.json.items.filter((r) => FINISHED.includes(r.state));
  const confirmed = finished.filter((r) => r.verdict === 'confirmed').length;
  assert.match(await page.locator('.stability').innerText(), new RegExp(`held in ${confirmed} of the last ${finished.length} finished runs`));
  const keyChart = page.locator('.key-number figure.chart');
  assert.match(await keyChart.locator('figcaption').innerText(), /unreachable across the last \d+ runs/);
  assert.equal(await keyChart.locator('svg circle.dot').count(), finished.filter((r) => typeof r.evidence?.check?.metrics?.unreachable === 'number').length);
  await page.locator('section[aria-labelledby="sec-is-it-stable-"]').screenshot({ path: require('node:path').join(__dirname, 'screenshots', 'experiment-history.png') });
  // The newest square leads to the newest run.
  await strip.last().click();
  await page.waitForURL(`**/ui/runs/${encodeURIComponent(expected[expected.length - 1].id)}`);
  assert.deepEqual(page.errors, []);
  await page.close();
});

// A run's page links to the run of the same experiment created just before it, and to the
// comparison of the two in one click.
test('run page links to the previous run of the same experiment and compares in one click', async () => {
  const list = await api('GET', '/runs?experiment=E-000&limit=2');
  const [newest, previous] = list.json.items;
  assert.ok(newest && previous, 'two runs of E-000 exist');
  const page = await newPage(browser);
  await page.goto(`${BASE_URL}/ui/runs/${encodeURIComponent(newest.id)}`);
  const prev = page.locator('.previous-run a.prev-run');
  await prev.waitFor();
  assert.equal(await prev.getAttribute('data-run'), previous.id);
  assert.equal(await prev.getAttribute('href'), `/ui/runs/${encodeURIComponent(previous.id)}`);
  await page.locator('.previous-run a.compare-prev').click();
  await page.waitForURL(/\/ui\/compare\?/);
  const url = new URL(page.url());
  assert.equal(url.searchParams.get('a'), previous.id);
  assert.equal(url.searchParams.get('b'), newest.id);
  const heads = page.locator('.compare-head');
  await heads.nth(1).waitFor();
  assert.ok((await heads.nth(0).innerText()).includes(previous.id));
  assert.ok((await heads.nth(1).innerText()).includes(newest.id));
  // The oldest run of an experiment says so instead of linking.
  const oldest = (await api('GET', '/runs?experiment=E-000&limit=200')).json.items.at(-1);
  await page.goto(`${BASE_URL}/ui/runs/${encodeURIComponent(oldest.id)}`);
  await page.locator('.previous-run p').waitFor();
  assert.match(await page.locator('.previous-run').innerText(), /first run of E-000/);
  assert.deepEqual(page.errors, []);
  await page.close();
});

// After this session's runs: each catalog card's "latest" links to the experiment's newest run
// with its verdict, as GET /experiments reports them, and the history lists the runs newest first
// as GET /runs does. Both pages are the docs' catalog and history pictures.
test('catalog and history after the runs: latest verdicts and the newest runs first', async () => {
  const exps = await api('GET', '/experiments');
  assert.equal(exps.status, 200);
  const ran = exps.json.items.filter((e) => e.last_run_id);
  assert.ok(ran.some((e) => e.id === 'E-000') && ran.some((e) => e.id === 'N21'), `E-000 and N21 have a latest run: ${ran.map((e) => e.id)}`);
  const page = await newPage(browser);
  await page.goto(`${BASE_URL}/`);
  await page.waitForSelector('article.experiment');
  for (const e of exps.json.items) {
    const latest = page.locator(`article[data-id="${e.id}"] .latest`);
    if (!e.last_run_id) {
      assert.match(await latest.innerText(), /never run/, `${e.id} says it was never run`);
      continue;
    }
    const a = latest.locator('a');
    assert.equal(await a.getAttribute('href'), `/ui/runs/${encodeURIComponent(e.last_run_id)}`, `${e.id}'s latest run`);
    assert.equal(await a.locator('[data-verdict]').getAttribute('data-verdict'), e.last_verdict || '', `${e.id}'s latest verdict`);
  }
  await docShot(page, 'catalog', { clip: { x: 0, y: 0, width: DESKTOP.width, height: 900 } });

  const runs = await api('GET', '/runs?limit=25');
  assert.equal(runs.status, 200);
  await page.goto(`${BASE_URL}/ui/runs`);
  await page.locator('table.runs tbody tr').first().waitFor();
  const rows = await page.$$eval('table.runs tbody tr', (trs) => trs.map((tr) => tr.dataset.run));
  assert.deepEqual(rows, runs.json.items.map((r) => r.id), 'the history lists GET /runs, newest first');
  // The page down to the end of its table and pager.
  const height = Math.min(await page.locator('.results').evaluate((el) => el.getBoundingClientRect().bottom + window.scrollY) + 16, 900);
  await docShot(page, 'history', { clip: { x: 0, y: 0, width: DESKTOP.width, height } });
  assert.deepEqual(page.errors, []);
  await page.close();
});
