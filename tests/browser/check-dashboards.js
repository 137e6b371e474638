#!/usr/bin/env node
// Checks that every Grafana dashboard query (panels, annotations, template variables) names only
// metrics the server exports: it fetches BASE_URL/metrics and compares. A family with no samples
// yet still counts when its `# TYPE` line is there; `x_bucket`/`x_sum`/`x_count` count for a
// histogram or summary `x`.
//   node check-dashboards.js http://127.0.0.1:8080        -> one line per dashboard, then "N passed, N failed"
// Also used as a module by check-dashboards.test.js.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const DASHBOARD_DIR = path.resolve(__dirname, '../../infra/grafana/dashboards');

const KEYWORDS = new Set([
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless',
  'offset', 'inf', 'nan', 'atan2',
]);

// Every PromQL expression in a dashboard: targets (also nested in rows), annotation queries,
// and template variable queries.
function dashboardExpressions(dash) {
  const out = [];
  const visit = (node, where) => {
    if (Array.isArray(node)) { node.forEach((n, i) => visit(n, `${where}[${i}]`)); return; }
    if (!node || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'templating') continue;
      if (key === 'expr' && typeof value === 'string') out.push({ where, expr: value });
      else visit(value, `${where}.${key}`);
    }
  };
  const name = dash.uid || dash.title || 'dashboard';
  visit(dash, name);
  // Query variables (label_values(metric, label) or PromQL); datasource variables name no metric.
  for (const v of dash.templating?.list || []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    const expr = q || v.definition;
    if (expr) out.push({ where: `${name}.templating.${v.name}`, expr });
  }
  return out;
}

// The metric names a PromQL expression (or a Grafana label_values()/query_result() call) uses.
function metricNames(expr) {
  let e = String(expr);
  // label_values(metric, label) and friends name a metric as their first argument.
  e = e.replace(/\blabel_values\s*\(\s*([a-zA-Z_:][\w:]*)\s*,[^)]*\)/g, ' $1 ');
  e = e.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""'); // string literals
  e = e.replace(/\{[^}]*\}/g, ' '); // label matchers
  e = e.replace(/\[[^\]]*\]/g, ' '); // range and subquery selectors
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' '); // label lists
  e = e.replace(/\$\{?[\w:]+\}?/g, ' '); // Grafana variables ($__rate_interval, ${x})
  const names = new Set();
  const re = /[a-zA-Z_:][\w:]*/g;
  let m;
  while ((m = re.exec(e))) {
    const name = m[0];
    const before = e.slice(0, m.index);
    const after = e.slice(m.index + name.length);
    if (/^\s*\(/.test(after)) continue; // a function call
    if (/\d$/.test(before)) continue; // 5m, 1e3, 0.99…
    if (KEYWORDS.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return [...names];
}

// Families the exposition declares (# TYPE) or has samples of: Map name -> type.
function exportedFamilies(text) {
  const families = new Map();
  for (const line of text.split('\n')) {
    const t = line.match(/^#\s*TYPE\s+([a-zA-Z_:][\w:]*)\s+(\w+)/);
    if (t) { families.set(t[1], t[2]); continue; }
    if (!line || line.startsWith('#')) continue;
    const s = line.match(/^([a-zA-Z_:][\w:]*)/);
    if (s && !families.has(s[1])) families.set(s[1], 'untyped');
  }
  return families;
}

function isExported(name, families) {
  if (families.has(name)) return true;
  const m = name.match(/^(.*)_(bucket|sum|count)$/);
  if (m && families.has(m[1])) return ['histogram', 'summary'].includes(families.get(m[1])) || m[2] !== 'bucket';
  return false;
}

function loadDashboards(dir = DASHBOARD_DIR) {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
    .map((f) => ({ file: f, dash: JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) }));
}

// [{file, expressions, metrics, missing:[{metric, where, expr}]}]
function checkDashboards(metricsText, dir = DASHBOARD_DIR) {
  const families = exportedFamilies(metricsText);
  return loadDashboards(dir).map(({ file, dash }) => {
    const exprs = dashboardExpressions(dash);
    const used = new Set();
    const missing = [];
    for (const { where, expr } of exprs) {
      for (const name of metricNames(expr)) {
        used.add(name);
        if (!isExported(name, families)) missing.push({ metric: name, where, expr });
      }
    }
    return { file, expressions: exprs.length, metrics: [...used].sort(), missing };
  });
}

async function fetchMetrics(baseUrl) {
  const headers = {};
  if (process.env.LAB_TOKEN) headers.Authorization = `Bearer ${process.env.LAB_TOKEN}`;
  const res = await fetch(new URL('/metrics', baseUrl), { headers });
  if (!res.ok) throw new Error(`GET /metrics answered ${res.status}`);
  return res.text();
}

module.exports = { dashboardExpressions, metricNames, exportedFamilies, isExported, checkDashboards, fetchMetrics, loadDashboards, DASHBOARD_DIR };

if (require.main === module) {
  const base = process.argv[2] || process.env.BASE_URL;
  if (!base) { console.error('usage: check-dashboards.js BASE_URL'); process.exit(2); }
  fetchMetrics(base).then((text) => {
    let passed = 0; let failed = 0;
    for (const r of checkDashboards(text)) {
      if (r.missing.length === 0 && r.expressions > 0) {
        passed += 1;
        console.log(`ok   ${r.file}: ${r.expressions} queries, ${r.metrics.length} metrics, all exported`);
      } else {
        failed += 1;
        console.log(`FAIL ${r.file}: ${r.expressions ? '' : 'no queries; '}${r.missing.map((m) => `${m.metric} (in ${m.where})`).join(', ')}`);
      }
    }
    console.log(`dashboards: ${passed} passed, ${failed} failed`);
    process.exit(failed ? 1 : 0);
  }).catch((err) => { console.error(`check-dashboards: ${err.message}`); console.log('dashboards: 0 passed, 1 failed'); process.exit(1); });
}
