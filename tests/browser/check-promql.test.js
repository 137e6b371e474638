// The pure parts of check-promql.js (no Prometheus needed): Grafana variable substitution, vector
// selectors out of PromQL, the rules-file reader, and the dashboard query collection.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { substitute, vectorSelectors, parseRulesFile, loadRules, collectDashboardQueries, DEFAULT_VARS } = require('./check-promql.js');

test('Grafana variables are substituted, unknown ones reported', () => {
  assert.deepEqual(substitute('rate(x{experiment=~"$experiment"}[$__rate_interval])', DEFAULT_VARS),
    { expr: 'rate(x{experiment=~".*"}[1m])', unknown: [] });
  assert.deepEqual(substitute('increase(x[${__range}]) / [[__interval]] ${experiment:regex}', DEFAULT_VARS).expr,
    'increase(x[5m]) / 30s .*');
  assert.deepEqual(substitute('x{a="$nope"}', DEFAULT_VARS).unknown, ['nope']);
});

test('vector selectors keep their label matchers', () => {
  assert.deepEqual(vectorSelectors('sum(rate(a_total{result="miss"}[2m])) / sum(rate(a_total[2m])) and up{job="lab"} == 0'),
    ['a_total{result="miss"}', 'a_total', 'up{job="lab"}']);
  assert.deepEqual(vectorSelectors('histogram_quantile(0.95, sum by (le) (rate(h_bucket{x=~"a|}b"}[1m])))'), ['h_bucket{x=~"a|}b"}']);
  assert.deepEqual(vectorSelectors('max(m) / max(n) > 0.8'), ['m', 'n']);
});

test('rules files are read: names and one-line or block expressions', () => {
  const rules = parseRulesFile([
    'groups:',
    '  - name: g1',
    '    rules:',
    '      - alert: A # comment',
    '        expr: max(x) > 30',
    '        for: 1m',
    '      - record: job:y:rate1m',
    '        expr: |',
    '          sum(rate(y[1m]))',
    '            and z',
    '        labels: {a: b}',
    '  - name: "g2"',
    '    rules:',
    '      - alert: "B"',
    '        expr: >-',
    '          up',
    '          == 0',
  ].join('\n'));
  assert.deepEqual(rules, [
    { group: 'g1', kind: 'alert', name: 'A', expr: 'max(x) > 30' },
    { group: 'g1', kind: 'record', name: 'job:y:rate1m', expr: 'sum(rate(y[1m]))\n  and z' },
    { group: 'g2', kind: 'alert', name: 'B', expr: 'up == 0' },
  ]);
});

test('the repository rules and dashboards are all collected', () => {
  const rules = loadRules();
  assert.ok(rules.length >= 8);
  for (const r of rules) assert.ok(r.expr && r.group, `${r.file}: ${r.name} has an expr and a group`);
  const queries = collectDashboardQueries();
  assert.ok(queries.length >= 20);
  assert.ok(queries.some((q) => /annotation/.test(q.wheres[0])), 'annotations are collected');
  assert.ok(queries.some((q) => /variable \$experiment/.test(q.wheres[0])), 'template variables are collected');
  assert.ok(queries.some((q) => !q.rangeOk), 'instant-only table targets are told apart');
  for (const q of queries) assert.deepEqual(substitute(q.expr, DEFAULT_VARS).unknown, [], q.expr);
});
