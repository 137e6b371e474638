// Every Grafana dashboard query names only metrics the running server exports (BASE_URL/metrics),
// and the extraction of metric names from PromQL is itself right.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { checkDashboards, fetchMetrics, metricNames, loadDashboards } = require('./check-dashboards.js');

const BASE_URL = process.env.BASE_URL || 'http://127.0.0.1:8080';

// Metric names come out of PromQL without functions, keywords, labels, durations or variables.
test('metric names are read out of PromQL', () => {
  assert.deepEqual(metricNames('histogram_quantile(0.95, sum by (le, route) (rate(lab_http_request_duration_seconds_bucket{route=~"/runs.*"}[$__rate_interval])))'),
    ['lab_http_request_duration_seconds_bucket']);
  assert.deepEqual(metricNames('sum(rate(a_total{result="hit"}[5m])) / sum(rate(a_total[5m])) > 0.5 and on(x) b'), ['a_total', 'b']);
  assert.deepEqual(metricNames('label_values(lab_runs_total, experiment)'), ['lab_runs_total']);
  assert.deepEqual(metricNames('lab_experiment_last_verdict{experiment=~"$experiment"} == 1'), ['lab_experiment_last_verdict']);
});

// A family declared by `# TYPE` without samples counts; a missing one is reported.
test('the check reports a metric the exposition lacks', () => {
  const text = '# TYPE lab_queue_depth gauge\n# TYPE lab_http_request_duration_seconds histogram\n';
  const results = checkDashboards(text);
  const missing = results.flatMap((r) => r.missing.map((m) => m.metric));
  assert.ok(!missing.includes('lab_queue_depth'));
  assert.ok(!missing.includes('lab_http_request_duration_seconds_bucket'));
  assert.ok(missing.includes('lab_outbox_backlog'));
});

// The dashboards exist and each has queries and the run-window annotation.
test('dashboards have queries and run annotations', () => {
  const dashboards = loadDashboards();
  assert.ok(dashboards.length >= 2);
  for (const { file, dash } of dashboards) {
    assert.ok(dash.panels.some((p) => p.targets?.length), `${file} has queries`);
    assert.ok(dash.annotations.list.some((a) => /lab_run_active/.test(a.expr || '')), `${file} draws run windows`);
  }
});

// Against the running server.
test(`every dashboard query names a metric exported at ${BASE_URL}/metrics`, async () => {
  const text = await fetchMetrics(BASE_URL);
  for (const r of checkDashboards(text)) {
    assert.deepEqual(r.missing.map((m) => `${m.metric} (${m.where})`), [], `${r.file} names metrics the server does not export`);
  }
});
