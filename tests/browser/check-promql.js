#!/usr/bin/env node
// Runs every Grafana dashboard query (panels, annotations, template variables) and every alert and
// recording rule of infra/prometheus/rules/*.yml against a real Prometheus that scrapes the lab
// server, after real runs (tests/browser/run-promql.sh sets that up). A panel that can never show
// data is a defect; so is an alert that reads a series that does not exist.
//   node check-promql.js [--since EPOCH_SECONDS] [--var name=value]... [--verbose] [PROMETHEUS_URL]
// PROMETHEUS_URL defaults to $LAB_PROMETHEUS_URL, then http://127.0.0.1:19090. --since is the start
// of the window the range fallback looks at (the check's own runs; default: one hour ago).
//
// Dashboard expressions (Grafana variables substituted: $__rate_interval=1m, $__interval=30s,
// $__range=5m, $experiment=.* (the dashboards' "All"), others from --var):
//   * GET /api/v1/query (instant, now): HTTP 400 bad_data / 422 = a failure (parse or execution error);
//   * at least one series with a finite value now passes; otherwise, for a query Grafana draws over
//     a time range (every panel target and annotation but "instant only" table targets),
//     GET /api/v1/query_range over [since, now] must have a finite sample (a run window, a lag
//     series that only exists while a run executes, a rate that was non-zero during the runs);
//   * label_values(metric, label) variables go through /api/v1/label/<label>/values?match[]=metric
//     over [since, now], as Grafana does, and must return at least one value;
//   * every vector selector in it (metric + label matchers) must have series in [since, now] too, so
//     `x or vector(0)` or `a / b` with a misspelt metric or label value cannot pass;
//   * empty (or NaN only) fails, unless the expression is in ALLOWED_EMPTY below with its reason.
// Rules (the files and Prometheus's GET /api/v1/rules):
//   * every rule of every file is loaded, health "ok", no lastError, evaluated at least once;
//   * its expression as written in the file parses (instant query);
//   * a recording rule must return series like a panel;
//   * an alert is not expected to fire on a healthy stack, so "returns series" means: each vector
//     selector it reads (metric with its label matchers) has series in [since, now] (an alert on a
//     metric name or label value that does not exist can never fire). Its state is printed only.
// Ends with "promql: N passed, N failed" (one unit per distinct expression, per rule).
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { dashboardExpressions, loadDashboards, metricNames } = require('./check-dashboards.js');

const RULES_DIR = path.resolve(__dirname, '../../infra/prometheus/rules');

// Values for Grafana's built-in variables and the dashboards' own ones ("All" = allValue).
const DEFAULT_VARS = {
  __rate_interval: '1m', // >= 4 x the 5 s scrape interval, as Grafana computes it
  __interval: '30s',
  __interval_ms: '30000',
  __range: '5m',
  __range_s: '300',
  __range_ms: '300000',
  experiment: '.*',
  job: 'lab',
  instance: '.*',
};

// Expressions that may legitimately return nothing after the check's runs: a regex on the
// expression as written (before substitution) and why. Keep it short; every entry is printed.
const ALLOWED_EMPTY = [
  // (none needed today: the runs of run-promql.sh give every panel data)
];

// Grafana variable references: $name, ${name}, ${name:format}, [[name]].
function substitute(expr, vars) {
  const unknown = new Set();
  const out = String(expr).replace(/\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)/g, (m, a, b, c) => {
    const name = a || b || c;
    if (Object.prototype.hasOwnProperty.call(vars, name)) return vars[name];
    unknown.add(name);
    return m;
  });
  return { expr: out, unknown: [...unknown] };
}

// Vector selectors an expression reads: "metric{matchers}" for every metric name in it (several
// occurrences with different matchers give several selectors).
function vectorSelectors(expr) {
  const e = String(expr);
  const out = new Set();
  for (const name of metricNames(e)) {
    const re = new RegExp(`(?<![\\w:])${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w:])\\s*(\\{(?:[^}"']|"(?:[^"\\\\]|\\\\.)*"|'(?:[^'\\\\]|\\\\.)*')*\\})?`, 'g');
    let m;
    while ((m = re.exec(e))) {
      const after = e.slice(m.index + m[0].length);
      if (!m[1] && /^\s*\(/.test(after)) continue; // a function of the same name
      out.add(`${name}${m[1] ? m[1].replace(/\s+/g, ' ') : ''}`);
    }
  }
  return [...out];
}

// The rules of a Prometheus rules file: [{group, kind: 'alert'|'record', name, expr}]. The files are
// plain enough (groups -> rules -> alert/record + expr, expr on one line or a | / > block) that a
// few lines read them; anything else in a rule is ignored.
function parseRulesFile(text) {
  const lines = text.split('\n');
  const rules = [];
  let group = null;
  let current = null;
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i].replace(/\s+#.*$/, '');
    let m;
    if ((m = line.match(/^\s*-\s*name:\s*(.+?)\s*$/))) { group = unquote(m[1]); continue; }
    if ((m = line.match(/^\s*-\s*(alert|record):\s*(.+?)\s*$/))) {
      current = { group, kind: m[1], name: unquote(m[2]), expr: null };
      rules.push(current);
      continue;
    }
    if (current && (m = lines[i].match(/^(\s*)expr:\s*(.*)$/))) {
      const indent = m[1].length;
      const value = m[2].trim();
      if (/^[|>][+-]?$/.test(value)) {
        const body = [];
        while (i + 1 < lines.length && (lines[i + 1].trim() === '' || lines[i + 1].match(/^(\s*)/)[1].length > indent)) {
          i += 1;
          body.push(lines[i]);
        }
        const pad = Math.min(...body.filter((l) => l.trim()).map((l) => l.match(/^(\s*)/)[1].length));
        const joined = body.map((l) => l.slice(pad)).join(value[0] === '>' ? ' ' : '\n');
        current.expr = joined.trim();
      } else {
        current.expr = unquote(value);
      }
    }
  }
  return rules;
}
function unquote(s) {
  const t = s.trim();
  if ((t.startsWith('"') && t.endsWith('"')) || (t.startsWith("'") && t.endsWith("'"))) return t.slice(1, -1);
  return t;
}

function loadRules(dir = RULES_DIR) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).sort()
    .flatMap((f) => parseRulesFile(fs.readFileSync(path.join(dir, f), 'utf8')).map((r) => ({ ...r, file: f })));
}

// Resolves a dashboardExpressions() `where` path ("uid.panels[3].targets[0]") to the object.
function objectAt(dash, where) {
  let node = dash;
  const parts = where.replace(/^[^.[]*/, '').match(/\.[^.[]+|\[\d+\]/g) || [];
  for (const p of parts) {
    if (node == null) return undefined;
    node = p.startsWith('[') ? node[Number(p.slice(1, -1))] : node[p.slice(1)];
  }
  return node;
}

// "uid panel "Title"" for a target's path, "uid annotation "Name"", "uid variable $x".
function describe(dash, where) {
  const uid = dash.uid || dash.title || 'dashboard';
  let m;
  if ((m = where.match(/^(.*\.panels\[\d+\])\.targets\[\d+\]$/))) {
    const panel = objectAt(dash, m[1]);
    if (panel && panel.title) return `${uid} panel "${panel.title}"`;
  }
  if ((m = where.match(/^(.*\.annotations\.list\[\d+\])/))) {
    const anno = objectAt(dash, m[1]);
    if (anno && anno.name) return `${uid} annotation "${anno.name}"`;
  }
  if ((m = where.match(/\.templating\.(\w+)$/))) return `${uid} variable $${m[1]}`;
  return where;
}

// Every dashboard query, deduplicated by expression: [{expr, wheres, rangeOk}] where rangeOk says
// Grafana draws it over a time range (not an instant-only table target).
function collectDashboardQueries(dashboards = loadDashboards()) {
  const byExpr = new Map();
  for (const { dash } of dashboards) {
    for (const { where, expr } of dashboardExpressions(dash)) {
      const obj = objectAt(dash, where);
      const instantOnly = obj && obj.instant === true && obj.range === false;
      const variable = /\.templating\./.test(where);
      const q = byExpr.get(expr) || { expr, wheres: [], rangeOk: false, variable };
      const label = describe(dash, where);
      if (!q.wheres.includes(label)) q.wheres.push(label);
      if (!instantOnly) q.rangeOk = true;
      byExpr.set(expr, q);
    }
  }
  return [...byExpr.values()];
}

class Prometheus {
  constructor(base) { this.base = base.replace(/\/+$/, ''); }

  async get(pathname, params) {
    const url = new URL(this.base + pathname);
    for (const [k, v] of Object.entries(params || {})) {
      for (const one of [].concat(v)) url.searchParams.append(k, String(one));
    }
    const res = await fetch(url, { signal: AbortSignal.timeout(15000) });
    let body;
    try { body = await res.json(); } catch { body = { status: 'error', error: `HTTP ${res.status}, not JSON` }; }
    return { http: res.status, ...body };
  }

  query(expr, time) { return this.get('/api/v1/query', { query: expr, time }); }

  queryRange(expr, start, end) {
    const step = Math.max(5, Math.ceil((end - start) / 1000));
    return this.get('/api/v1/query_range', { query: expr, start, end, step });
  }
}

// Number of series and whether any sample is a finite number.
function summarize(data) {
  if (!data) return { series: 0, finite: false };
  if (data.resultType === 'scalar' || data.resultType === 'string') {
    return { series: 1, finite: Number.isFinite(Number(data.result[1])) };
  }
  const result = data.result || [];
  const finite = result.some((s) => (s.value ? [s.value] : s.values || []).some(([, v]) => Number.isFinite(Number(v))));
  return { series: result.length, finite };
}

function errorOf(r) {
  const kind = r.http === 400 ? 'parse error' : r.errorType === 'execution' || r.http === 422 ? 'execution error' : `HTTP ${r.http}`;
  return `${kind}: ${r.error || r.errorType || 'no detail'}`;
}

// Why selectors of an expression have no series in [since, now] (for diagnosis), or [].
async function emptySelectors(prom, expr, since, now) {
  const window = Math.max(60, Math.ceil(now - since));
  const empty = [];
  for (const sel of vectorSelectors(expr)) {
    const r = await prom.query(`count(last_over_time(${sel}[${window}s]))`, now);
    if (r.status !== 'success') { empty.push(`${sel} (${errorOf(r)})`); continue; }
    if (summarize(r.data).series === 0) empty.push(sel);
  }
  return empty;
}

function allowedEmpty(expr) {
  return ALLOWED_EMPTY.find((a) => a.pattern.test(expr));
}

// One dashboard query -> {ok, how} or {ok:false, reason}.
async function checkQuery(prom, q, vars, since, now) {
  const { expr, unknown } = substitute(q.expr, vars);
  if (unknown.length) return { ok: false, reason: `unknown Grafana variable(s) ${unknown.map((u) => `$${u}`).join(', ')} (pass --var name=value)` };

  // Grafana's own functions for variable queries.
  let m;
  if ((m = expr.match(/^\s*label_values\s*\(\s*(?:(.+?)\s*,\s*)?([a-zA-Z_][\w]*)\s*\)\s*$/))) {
    const [, match, label] = m;
    const params = { start: since, end: now };
    if (match) params['match[]'] = match;
    const r = await prom.get(`/api/v1/label/${encodeURIComponent(label)}/values`, params);
    if (r.status !== 'success') return { ok: false, reason: errorOf(r) };
    if (!r.data.length) return { ok: false, reason: `label_values: no value of "${label}"${match ? ` on ${match}` : ''} in the window`, selectors: match ? [match] : [] };
    return { ok: true, how: `${r.data.length} values (${r.data.slice(0, 5).join(', ')}${r.data.length > 5 ? ', …' : ''})` };
  }
  let promql = expr;
  if ((m = expr.match(/^\s*query_result\s*\(([\s\S]*)\)\s*$/))) promql = m[1];
  else if (/^\s*(metrics|label_names)\s*\(/.test(expr)) return { ok: false, reason: 'unsupported Grafana variable function' };

  const inst = await prom.query(promql, now);
  if (inst.status !== 'success') return { ok: false, reason: errorOf(inst) };
  // Every selector must have series too: `x or vector(0)` returns data even when x is misspelt.
  const empty = await emptySelectors(prom, promql, since, now);
  const allowed = allowedEmpty(q.expr);
  const s = summarize(inst.data);
  let how = null;
  if (s.series > 0 && s.finite) how = `${s.series} series now`;
  else if (q.rangeOk) {
    const rng = await prom.queryRange(promql, since, now);
    if (rng.status !== 'success') return { ok: false, reason: errorOf(rng) };
    const rs = summarize(rng.data);
    if (rs.series > 0 && rs.finite) how = `${rs.series} series in the window (${s.series ? 'NaN' : 'none'} now)`;
  }
  if (how && !empty.length) return { ok: true, how };
  if (allowed) return { ok: true, how: `${how ? 'selectors without series' : 'empty'}, allowed: ${allowed.reason}` };
  if (how) return { ok: false, reason: `${how}, but no series at all for ${empty.join(', ')}` };
  return {
    ok: false,
    reason: `${s.series ? 'only NaN' : 'no series'} now${q.rangeOk ? ' nor in the window' : ' (instant query)'}` +
      (empty.length ? `; no series at all for ${empty.join(', ')}` : ''),
  };
}

// Rules: the files against GET /api/v1/rules.
async function checkRules(prom, fileRules, since, now) {
  const results = [];
  const r = await prom.get('/api/v1/rules');
  if (r.status !== 'success') return [{ name: 'GET /api/v1/rules', ok: false, reason: errorOf(r) }];
  const loaded = new Map();
  for (const g of r.data.groups || []) {
    for (const rule of g.rules || []) loaded.set(`${g.name}/${rule.name}`, { ...rule, file: g.file });
  }
  for (const fr of fileRules) {
    const name = `${fr.file}: ${fr.kind} ${fr.name}`;
    const problems = [];
    const lr = loaded.get(`${fr.group}/${fr.name}`);
    if (!lr) problems.push(`not loaded by Prometheus (group ${fr.group}); a rules file Prometheus rejects keeps the old rules — check its log, then infra/stack.sh reload prometheus`);
    else {
      if (lr.health !== 'ok') problems.push(`health ${lr.health}`);
      if (lr.lastError) problems.push(`lastError: ${lr.lastError}`);
      if (!lr.lastEvaluation || lr.lastEvaluation.startsWith('0001-')) problems.push('never evaluated');
    }
    if (!fr.expr) { results.push({ name, ok: false, reason: 'no expr in the file' }); continue; }
    const inst = await prom.query(fr.expr, now);
    if (inst.status !== 'success') problems.push(`the file's expr: ${errorOf(inst)}`);
    let how = '';
    if (!problems.length && fr.kind === 'record') {
      const s = summarize(inst.data);
      const empty = await emptySelectors(prom, fr.expr, since, now);
      const allowed = allowedEmpty(fr.expr);
      if (!(s.series > 0 && s.finite) || empty.length) {
        if (allowed) how = `empty, allowed: ${allowed.reason}`;
        else problems.push(`${s.series > 0 && s.finite ? `${s.series} series` : 'returns no series'}${empty.length ? `; no series at all for ${empty.join(', ')}` : ''}`);
      } else how = `${s.series} series`;
    } else if (!problems.length) {
      const empty = await emptySelectors(prom, fr.expr, since, now);
      const allowed = empty.length ? allowedEmpty(fr.expr) : null;
      if (empty.length && !allowed) problems.push(`can never fire: no series for ${empty.join(', ')} in the window`);
      how = `${lr.state}${allowed ? `, selectors empty, allowed: ${allowed.reason}` : `, ${vectorSelectors(fr.expr).length} selectors with series`}`;
    }
    results.push(problems.length ? { name, ok: false, reason: problems.join('; ') } : { name, ok: true, how });
  }
  // Loaded rules no file declares (an old file still loaded, a rule renamed without a reload).
  const declared = new Set(fileRules.map((fr) => `${fr.group}/${fr.name}`));
  for (const [key, lr] of loaded) {
    if (!declared.has(key) && lr.file && lr.file.startsWith(RULES_DIR)) {
      results.push({ name: `loaded rule ${key}`, ok: false, reason: `loaded from ${lr.file} but not in the files (reload Prometheus)` });
    }
  }
  return results;
}

async function main(argv) {
  const args = { vars: { ...DEFAULT_VARS }, verbose: false, since: null, url: null };
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    if (a === '--since') args.since = Number(argv[(i += 1)]);
    else if (a === '--var') { const [k, ...v] = argv[(i += 1)].split('='); args.vars[k] = v.join('='); }
    else if (a === '--verbose' || a === '-v') args.verbose = true;
    else if (a === '--help' || a === '-h') { console.log('usage: check-promql.js [--since EPOCH] [--var name=value]... [--verbose] [PROMETHEUS_URL]'); return 0; }
    else args.url = a;
  }
  const prom = new Prometheus(args.url || process.env.LAB_PROMETHEUS_URL || 'http://127.0.0.1:19090');
  const now = Date.now() / 1000;
  const since = Number.isFinite(args.since) && args.since > 0 ? Math.min(args.since, now - 60) : now - 3600;

  let passed = 0;
  let failed = 0;
  const report = (what, res) => {
    if (res.ok) {
      passed += 1;
      if (args.verbose || /allowed/.test(res.how)) console.log(`ok   ${what}: ${res.how}`);
    } else {
      failed += 1;
      console.log(`FAIL ${what}: ${res.reason}`);
    }
  };

  const queries = collectDashboardQueries();
  for (const q of queries) {
    const res = await checkQuery(prom, q, args.vars, since, now);
    const where = q.wheres.length > 1 ? `${q.wheres[0]} (+${q.wheres.length - 1} more)` : q.wheres[0];
    report(`${where} \`${q.expr.replace(/\s+/g, ' ')}\``, res);
  }
  const fileRules = loadRules();
  const rules = await checkRules(prom, fileRules, since, now);
  for (const res of rules) report(res.name, res);

  console.log(`checked ${queries.length} distinct dashboard queries (${queries.reduce((n, q) => n + q.wheres.length, 0)} uses) and ${fileRules.length} rules against ${prom.base}, window ${Math.round(now - since)} s`);
  console.log(`promql: ${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

module.exports = { checkQuery, checkRules, Prometheus, substitute, vectorSelectors, parseRulesFile, loadRules, collectDashboardQueries, objectAt, summarize, DEFAULT_VARS, ALLOWED_EMPTY };

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code)).catch((err) => {
    console.error(`check-promql: ${err.message}`);
    console.log('promql: 0 passed, 1 failed');
    process.exit(1);
  });
}
