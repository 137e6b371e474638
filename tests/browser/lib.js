// Shared helpers of the browser tests: the server under test, Debian's Chromium driven by
// playwright-core, screenshots, and a guard that fails a test on any uncaught page error.
'use strict';

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

module.exports = { BASE_URL, DESKTOP, PHONE, FINISHED, launch, newPage, shot, horizontalOverflow, api, waitFinished };
