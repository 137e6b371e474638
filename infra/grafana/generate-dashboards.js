#!/usr/bin/env node
// Writes the Grafana dashboards (dashboards/*.json) from the definitions below, so the panels
// stay consistent (same datasource variable, same run annotations, same experiment filter).
// The JSON files are committed; run `node infra/grafana/generate-dashboards.js` after editing.
// Every metric named here is part of the HTTP contract (shared/design/API.md, "Metrics");
// tests/browser/check-dashboards.js checks them against a running server's /metrics, and
// tests/browser/check-promql.js runs every query against the stack's Prometheus after real runs.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const DS = { type: 'prometheus', uid: '${datasource}' };
const RATE = '$__rate_interval';
const EXP = 'experiment=~"$experiment"';

let nextId = 1;

function target(expr, legendFormat, extra = {}) {
  return { datasource: DS, expr, legendFormat: legendFormat || '__auto', refId: String.fromCharCode(64 + nextRef()), range: true, ...extra };
}
let refCounter = 0;
function nextRef() { refCounter = (refCounter % 26) + 1; return refCounter; }

function timeseries(title, description, gridPos, targets, { unit = 'short', stack = false, min = 0, decimals, thresholds } = {}) {
  refCounter = 0;
  return {
    id: nextId++,
    type: 'timeseries',
    title,
    description,
    datasource: DS,
    gridPos,
    fieldConfig: {
      defaults: {
        unit,
        min,
        decimals,
        custom: {
          drawStyle: 'line', lineWidth: 2, fillOpacity: stack ? 25 : 8, showPoints: 'never', spanNulls: true,
          stacking: { mode: stack ? 'normal' : 'none', group: 'A' },
        },
        thresholds: thresholds || { mode: 'absolute', steps: [{ color: 'green', value: null }] },
      },
      overrides: [],
    },
    options: { legend: { displayMode: 'table', placement: 'bottom', calcs: ['lastNotNull', 'max'] }, tooltip: { mode: 'multi', sort: 'desc' } },
    targets: targets.map((t) => target(...t)),
  };
}

function stat(title, description, gridPos, expr, { unit = 'short', thresholds, decimals = 0, mappings } = {}) {
  refCounter = 0;
  return {
    id: nextId++,
    type: 'stat',
    title,
    description,
    datasource: DS,
    gridPos,
    fieldConfig: {
      defaults: {
        unit,
        decimals,
        mappings: mappings || [],
        thresholds: thresholds || { mode: 'absolute', steps: [{ color: 'green', value: null }] },
      },
      overrides: [],
    },
    options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'background', graphMode: 'area', textMode: 'value_and_name', justifyMode: 'auto' },
    targets: [target(expr, '', { instant: false })],
  };
}

function row(title, y) {
  return { id: nextId++, type: 'row', title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] };
}

const runAnnotation = {
  name: 'Experiment runs',
  datasource: DS,
  enable: true,
  hide: false,
  iconColor: 'rgba(31, 120, 193, 0.35)',
  // A run window is the span during which lab_run_active{experiment} > 0; Grafana merges
  // consecutive samples into one region per experiment, titled with the experiment's id.
  expr: `sum by (experiment) (lab_run_active{${EXP}}) > 0`,
  step: '5s',
  titleFormat: 'run of {{experiment}}',
  textFormat: '{{experiment}} running',
  tagKeys: 'experiment',
  useValueForTime: false,
  target: { refId: 'Anno', expr: `sum by (experiment) (lab_run_active{${EXP}}) > 0`, step: '5s' },
};

function templating() {
  return {
    list: [
      { name: 'datasource', label: 'Prometheus', type: 'datasource', query: 'prometheus', current: {}, hide: 0, refresh: 1, regex: '', includeAll: false, multi: false },
      {
        name: 'experiment', label: 'Experiment', type: 'query', datasource: DS,
        definition: 'label_values(lab_runs_total, experiment)',
        query: { query: 'label_values(lab_runs_total, experiment)', refId: 'PrometheusVariableQueryEditor-VariableQuery', qryType: 1 },
        includeAll: true, allValue: '.*', multi: true, refresh: 2, sort: 1, hide: 0,
        current: { selected: true, text: ['All'], value: ['$__all'] },
      },
    ],
  };
}

function dashboard(uid, title, description, panels) {
  return {
    uid,
    title,
    description,
    tags: ['reliability-lab'],
    timezone: 'browser',
    editable: true,
    graphTooltip: 1,
    refresh: '10s',
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-1h', to: 'now' },
    timepicker: { refresh_intervals: ['5s', '10s', '30s', '1m', '5m'] },
    annotations: { list: [
      { builtIn: 1, datasource: { type: 'grafana', uid: '-- Grafana --' }, enable: true, hide: true, iconColor: 'rgba(0, 211, 255, 1)', name: 'Annotations & Alerts', type: 'dashboard' },
      runAnnotation,
    ] },
    templating: templating(),
    links: [
      { title: 'Control plane', type: 'link', url: '/d/lab-control-plane', icon: 'dashboard', targetBlank: false, keepTime: true, includeVars: true },
      { title: 'Pipeline during runs', type: 'link', url: '/d/lab-pipeline', icon: 'dashboard', targetBlank: false, keepTime: true, includeVars: true },
    ],
    panels,
  };
}

const red = (v) => ({ mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'red', value: v }] });

function controlPlane() {
  nextId = 1;
  return dashboard('lab-control-plane', 'Reliability Lab — control plane',
    'The lab server: HTTP requests and latencies, the run queue and workers, admission control, runs and verdicts by experiment. Shaded regions are run windows (lab_run_active).',
    [
      row('Now', 0),
      stat('Queue depth', 'Runs accepted and waiting for a worker (lab_queue_depth).', { h: 4, w: 4, x: 0, y: 1 }, 'lab_queue_depth', { thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: 5 }, { color: 'red', value: 20 }] } }),
      stat('Workers busy', 'Workers executing a run now, of lab_workers_total.', { h: 4, w: 4, x: 4, y: 1 }, 'lab_workers_busy', { thresholds: { mode: 'absolute', steps: [{ color: 'blue', value: null }] } }),
      stat('Workers total', 'Size of the worker pool.', { h: 4, w: 4, x: 8, y: 1 }, 'lab_workers_total', { thresholds: { mode: 'absolute', steps: [{ color: 'text', value: null }] } }),
      stat('Runs executing', 'Runs executing now, all experiments (sum of lab_run_active).', { h: 4, w: 4, x: 12, y: 1 }, `sum(lab_run_active{${EXP}})`, { thresholds: { mode: 'absolute', steps: [{ color: 'text', value: null }, { color: 'blue', value: 1 }] } }),
      stat('Stack dirty', 'A postflight check says the stack has not recovered from a run (lab_stack_dirty = 1).', { h: 4, w: 4, x: 16, y: 1 }, 'max(lab_stack_dirty)', { thresholds: red(1), mappings: [{ type: 'value', options: { 0: { text: 'clean', index: 0 }, 1: { text: 'DIRTY', index: 1 } } }] }),
      stat('Rejected runs (1h)', 'Run requests refused by admission control in the last hour (queue full, rate limit, halt); 0 until the first refusal creates the counter.', { h: 4, w: 4, x: 20, y: 1 }, 'sum(increase(lab_admission_rejections_total[1h])) or vector(0)', { thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: 1 }] } }),

      row('HTTP', 5),
      timeseries('Requests per second by route', 'rate(lab_http_requests_total) by route and method.', { h: 8, w: 12, x: 0, y: 6 },
        [[`sum by (route, method) (rate(lab_http_requests_total[${RATE}]))`, '{{method}} {{route}}']], { unit: 'reqps' }),
      timeseries('Responses by status code', 'Requests per second by HTTP status code; 4xx are refusals the server chose (validation, auth, admission), 5xx are its failures.', { h: 8, w: 12, x: 12, y: 6 },
        [[`sum by (code) (rate(lab_http_requests_total[${RATE}]))`, '{{code}}']], { unit: 'reqps', stack: true }),
      timeseries('Latency p50 / p95 / p99 (all routes)', 'From the lab_http_request_duration_seconds histogram.', { h: 8, w: 12, x: 0, y: 14 },
        [
          [`histogram_quantile(0.5, sum by (le) (rate(lab_http_request_duration_seconds_bucket[${RATE}])))`, 'p50'],
          [`histogram_quantile(0.95, sum by (le) (rate(lab_http_request_duration_seconds_bucket[${RATE}])))`, 'p95'],
          [`histogram_quantile(0.99, sum by (le) (rate(lab_http_request_duration_seconds_bucket[${RATE}])))`, 'p99'],
        ], { unit: 's' }),
      timeseries('Latency p95 by route', 'The slowest routes; /runs/{id}/events (SSE) stays open for a run\'s whole life, so it is long by design.', { h: 8, w: 12, x: 12, y: 14 },
        [[`histogram_quantile(0.95, sum by (le, route) (rate(lab_http_request_duration_seconds_bucket[${RATE}])))`, '{{route}}']], { unit: 's' }),

      row('Queue, workers, admission', 22),
      timeseries('Queue and workers', 'Queue depth against busy and total workers: a queue that grows while all workers are busy is saturation.', { h: 8, w: 12, x: 0, y: 23 },
        [['lab_queue_depth', 'queued'], ['lab_workers_busy', 'workers busy'], ['lab_workers_total', 'workers total']]),
      timeseries('Admission rejections by reason', 'Requests answered 503/429 quickly instead of queued (lab_admission_rejections_total).', { h: 8, w: 12, x: 12, y: 23 },
        [[`sum by (reason) (rate(lab_admission_rejections_total[${RATE}]))`, '{{reason}}']], { unit: 'reqps', stack: true }),

      row('Runs and verdicts', 31),
      timeseries('Runs finished by experiment and verdict', 'Runs reaching a final state per 5 minutes (lab_runs_total).', { h: 8, w: 12, x: 0, y: 32 },
        [[`sum by (experiment, state, verdict) (increase(lab_runs_total{${EXP}}[5m]))`, '{{experiment}} {{state}} {{verdict}}']], { stack: true }),
      timeseries('Run duration p95 by experiment', 'From the lab_run_duration_seconds histogram.', { h: 8, w: 12, x: 12, y: 32 },
        [[`histogram_quantile(0.95, sum by (le, experiment) (rate(lab_run_duration_seconds_bucket{${EXP}}[${RATE}])))`, '{{experiment}}']], { unit: 's' }),
      {
        id: nextId++,
        type: 'table',
        title: 'Latest verdict per experiment',
        description: 'lab_experiment_last_verdict == 1 names each experiment\'s latest verdict.',
        datasource: DS,
        gridPos: { h: 9, w: 12, x: 0, y: 40 },
        targets: [{ datasource: DS, expr: `lab_experiment_last_verdict{${EXP}} == 1`, format: 'table', instant: true, range: false, refId: 'A' }],
        transformations: [{ id: 'organize', options: { excludeByName: { Time: true, Value: true, __name__: true, instance: true, job: true }, indexByName: { experiment: 0, verdict: 1 } } }],
        fieldConfig: {
          defaults: { custom: { align: 'auto', cellOptions: { type: 'auto' } } },
          overrides: [{
            matcher: { id: 'byName', options: 'verdict' },
            properties: [
              { id: 'custom.cellOptions', value: { type: 'color-background', mode: 'basic' } },
              { id: 'mappings', value: [{ type: 'value', options: { confirmed: { color: 'green', index: 0 }, refuted: { color: 'red', index: 1 }, inconclusive: { color: 'orange', index: 2 } } }] },
            ],
          }],
        },
        options: { showHeader: true, sortBy: [{ displayName: 'experiment', desc: false }] },
      },
      timeseries('Runs executing by experiment', 'lab_run_active: the same signal the shaded run windows come from.', { h: 9, w: 12, x: 12, y: 40 },
        [[`sum by (experiment) (lab_run_active{${EXP}})`, '{{experiment}}']], { stack: true, decimals: 0 }),
    ]);
}

function pipeline() {
  nextId = 1;
  return dashboard('lab-pipeline', 'Reliability Lab — pipeline during runs',
    'The pipeline\'s own signals while experiments execute: outbox backlog and age, consumer lag, DLQ, cache hit ratio, DB queries, under-replicated partitions. Shaded regions are run windows (lab_run_active), so a spike can be matched to the experiment that caused it.',
    [
      row('Now', 0),
      stat('Outbox backlog', 'Outbox rows not yet published (lab_outbox_backlog).', { h: 4, w: 4, x: 0, y: 1 }, 'sum(lab_outbox_backlog)', { thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: 1000 }] } }),
      stat('Oldest outbox row', 'Age of the oldest unpublished outbox row.', { h: 4, w: 4, x: 4, y: 1 }, 'max(lab_outbox_oldest_age_seconds)', { unit: 's', decimals: 1, thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: 5 }, { color: 'red', value: 60 }] } }),
      stat('Consumer lag (max)', 'The largest lag of any consumer group and topic.', { h: 4, w: 4, x: 8, y: 1 }, 'max(lab_consumer_lag)', { thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: 100 }] } }),
      stat('Cache hit ratio (5m)', 'Share of cache reads that hit (lab_cache_requests_total{result="hit"}).', { h: 4, w: 4, x: 12, y: 1 },
        'sum(rate(lab_cache_requests_total{result="hit"}[5m])) / sum(rate(lab_cache_requests_total[5m]))', { unit: 'percentunit', decimals: 1, thresholds: { mode: 'absolute', steps: [{ color: 'red', value: null }, { color: 'orange', value: 0.5 }, { color: 'green', value: 0.9 }] } }),
      stat('Under-replicated partitions', 'Kafka partitions whose ISR is smaller than their replica set.', { h: 4, w: 4, x: 16, y: 1 }, 'max(lab_kafka_under_replicated_partitions)', { thresholds: red(1) }),
      stat('Stack dirty', 'A run left the stack unhealthy and it has not recovered yet.', { h: 4, w: 4, x: 20, y: 1 }, 'max(lab_stack_dirty)', { thresholds: red(1), mappings: [{ type: 'value', options: { 0: { text: 'clean', index: 0 }, 1: { text: 'DIRTY', index: 1 } } }] }),

      row('Outbox', 5),
      timeseries('Outbox backlog', 'Rows written by the command-service and not yet published by the relay; it grows while Kafka is down and drains after.', { h: 8, w: 12, x: 0, y: 6 },
        [['lab_outbox_backlog', 'backlog']]),
      timeseries('Oldest unpublished row', 'How far behind the relay is, in seconds.', { h: 8, w: 12, x: 12, y: 6 },
        [['lab_outbox_oldest_age_seconds', 'oldest age']], { unit: 's' }),

      row('Consumers', 14),
      timeseries('Consumer lag by group and topic', 'Records produced and not yet consumed (lab_consumer_lag).', { h: 8, w: 12, x: 0, y: 15 },
        [['lab_consumer_lag', '{{group}} / {{topic}}']]),
      timeseries('Messages to the DLQ', 'Dead-lettered messages per second (rate of lab_dlq_messages_total).', { h: 8, w: 12, x: 12, y: 15 },
        [[`sum(rate(lab_dlq_messages_total[${RATE}]))`, 'to DLQ']], { unit: 'ops' }),

      row('Cache and database', 23),
      timeseries('Cache hit ratio', 'Hits over all cache reads; a stampede shows as a dip with a DB query spike beside it.', { h: 8, w: 8, x: 0, y: 24 },
        [[`sum(rate(lab_cache_requests_total{result="hit"}[${RATE}])) / sum(rate(lab_cache_requests_total[${RATE}]))`, 'hit ratio']], { unit: 'percentunit', decimals: 1 }),
      timeseries('Cache reads by result', 'Cache reads per second by result.', { h: 8, w: 8, x: 8, y: 24 },
        [[`sum by (result) (rate(lab_cache_requests_total[${RATE}]))`, '{{result}}']], { unit: 'ops', stack: true }),
      timeseries('DB queries per second', 'Queries the experiments sent to MySQL (rate of lab_db_queries_total).', { h: 8, w: 8, x: 16, y: 24 },
        [[`sum(rate(lab_db_queries_total[${RATE}]))`, 'queries']], { unit: 'qps' }),

      row('Kafka', 32),
      timeseries('Under-replicated partitions', 'Partitions with ISR < replicas: expected while a durability experiment stops a broker, a problem if it stays after.', { h: 8, w: 12, x: 0, y: 33 },
        [['lab_kafka_under_replicated_partitions', 'under-replicated']], { decimals: 0, thresholds: red(1) }),
      timeseries('Runs executing by experiment', 'lab_run_active, the source of the shaded run windows.', { h: 8, w: 12, x: 12, y: 33 },
        [[`sum by (experiment) (lab_run_active{${EXP}})`, '{{experiment}}']], { stack: true, decimals: 0 }),
    ]);
}

const outDir = path.join(__dirname, 'dashboards');
fs.mkdirSync(outDir, { recursive: true });
for (const [file, dash] of [['control-plane.json', controlPlane()], ['pipeline.json', pipeline()]]) {
  fs.writeFileSync(path.join(outDir, file), `${JSON.stringify(dash, null, 2)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), path.join(outDir, file))}`);
}
