// Shared helpers of the browser tests: the server under test, Debian's Chromium driven by
// playwright-core, screenshots (the tests' own and the docs' pictures), and a guard that fails a
// test on any uncaught page error.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { chromium } = require('playwright-core');

const BASE_URL = (process.env.BASE_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = path.join(__dirname, 'screenshots');
const DESKTOP = { width: 1400, height: 1000 };
const PHONE = { width: 390, height: 844 };

fs.mkdirSync(SHOTS, { recursive: true });

async function launch() {
  const userDataDir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'lab-chromium-'));
  // A persistent context gives Chromium its own fresh --user-data-dir for this run.
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: DESKTOP,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  context.setDefaultTimeout(20000);
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

// A page that records uncaught errors and failed requests; check() throws if any JS error happened.
async function newPage(ctx, viewport = DESKTOP) {
  const page = await ctx.context.newPage();
  await page.setViewportSize(viewport);
  if (process.env.LAB_TOKEN) {
    // A server that requires tokens: the UI reads the token from local storage, as a user's would.
    await page.addInitScript((token) => window.localStorage.setItem('reliability-lab.token', token), process.env.LAB_TOKEN);
  }
  const errors = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // 4xx/5xx answers the test provokes on purpose are logged by Chromium as resource errors.
    if (msg.type() === 'error' && !/Failed to load resource/.test(msg.text())) errors.push(`console: ${msg.text()}`);
  });
  page.errors = errors;
  return page;
}

async function shot(page, name, { fullPage = true } = {}) {
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  return file;
}

// The pictures of README.md and docs/ui.md, taken from these tests' real runs on the real stack
// after their assertions passed. Each is written as screenshots/docs-<name>.png; `run.sh
// --update-docs` (or LAB_UPDATE_DOCS=1) copies them to docs/screenshots/<name>.png after a green
// run, and only then. Small on purpose (< 250 KB each): a part of a page, not the whole page.
const DOC_SHOTS = {
  catalog: 'the catalog at 1400 px, after this session\'s runs (latest verdicts)',
  run: 'an N21 run page at 1400 px: state, verdict and why, timeline, the evidence of both modes',
  'run-charts': 'the same run\'s time-axis charts: p99 and errors per 250 ms, the fault shaded, the breaker state as a band',
  'run-phone': 'the same run page at 390 px (phone)',
  'step-log': 'the same run\'s step log with its filters',
  history: 'the run history at 1400 px, newest first',
};

// target: a page (clip: {x, y, width, height} in page coordinates, else the viewport) or a
// locator (that element). The page is scrolled to its top first so the sticky top bar stays there.
async function docShot(target, name, { clip } = {}) {
  assert.ok(name in DOC_SHOTS, `${name} is not one of DOC_SHOTS`);
  const file = path.join(SHOTS, `docs-${name}.png`);
  const isPage = typeof target.goto === 'function';
  const page = isPage ? target : target.page();
  await page.evaluate(() => window.scrollTo(0, 0));
  const options = { path: file, animations: 'disabled', caret: 'hide' };
  if (isPage && clip) Object.assign(options, { clip, fullPage: true });
  await target.screenshot(options);
  return file;
}

// The box around several elements, in page coordinates, with a margin, for docShot's clip.
async function boxAround(locators, margin = 8) {
  const boxes = [];
  for (const l of locators) {
    const page = l.page();
    const scrollY = await page.evaluate(() => window.scrollY);
    const b = await l.boundingBox();
    assert.ok(b, 'the element is on the page');
    boxes.push({ ...b, y: b.y + scrollY });
  }
  const page = locators[0].page();
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  const x = Math.max(0, Math.min(...boxes.map((b) => b.x)) - margin);
  const y = Math.max(0, Math.min(...boxes.map((b) => b.y)) - margin);
  const right = Math.min(width, Math.max(...boxes.map((b) => b.x + b.width)) + margin);
  const bottom = Math.max(...boxes.map((b) => b.y + b.height)) + margin;
  return { x, y, width: right - x, height: bottom - y };
}

// No sideways scrolling of the whole page (tables scroll inside their own boxes).
async function horizontalOverflow(page) {
  return page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
}

async function api(method, pathname, body) {
  const headers = { Accept: 'application/json' };
  if (process.env.LAB_TOKEN) headers.Authorization = `Bearer ${process.env.LAB_TOKEN}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${BASE_URL}${pathname}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const type = res.headers.get('content-type') || '';
  const text = await res.text();
  let json = null;
  if (type.includes('json') && text) json = JSON.parse(text);
  return { status: res.status, type, json, text, headers: res.headers };
}

const FINISHED = ['completed', 'failed', 'cancelled', 'interrupted'];

async function waitFinished(id, timeoutMs = 90000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await api('GET', `/runs/${encodeURIComponent(id)}`);
    if (r.status === 200 && FINISHED.includes(r.json.state)) return r.json;
    if (Date.now() > end) throw new Error(`run ${id} did not finish within ${timeoutMs} ms (state ${r.json?.state})`);
    await new Promise((res) => setTimeout(res, 500));
  }
}

module.exports = {
  BASE_URL, DESKTOP, PHONE, FINISHED, DOC_SHOTS, launch, newPage, shot, docShot, boxAround, horizontalOverflow, api, waitFinished,
};
