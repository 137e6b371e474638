#!/usr/bin/env bash
# Prometheus is configured to scrape the lab server (the target may be down when no lab server
# runs), scrapes the MariaDB exporter and Toxiproxy, and has loaded every alert rule.
source "$(dirname "$0")/lib.sh"
P="$LAB_PROMETHEUS_URL"

targets="$(curl -sf -m 5 "$P/api/v1/targets")" || fail "GET /api/v1/targets"
lab="$(jq -c '.data.activeTargets[] | select(.labels.job == "lab")' <<<"$targets")"
[ -n "$lab" ] || fail "no scrape target with job=lab"
[ "$(jq -r .scrapeUrl <<<"$lab")" = "http://$LAB_METRICS_TARGET/metrics" ] || fail "lab target scrapes $(jq -r .scrapeUrl <<<"$lab")"
ok "lab target configured: $(jq -r .scrapeUrl <<<"$lab") (health now: $(jq -r .health <<<"$lab"))"

job_up() { curl -sf -m 5 "$P/api/v1/targets" | jq -e --arg j "$1" '.data.activeTargets[] | select(.labels.job == $j) | select(.health == "up")' >/dev/null; }
eventually 30 "mysqld exporter target up" job_up mysqld
eventually 30 "toxiproxy target up" job_up toxiproxy
v="$(curl -sf -m 5 "$P/api/v1/query" --data-urlencode 'query=mysql_global_variables_max_connections' | jq -r '.data.result[0].value[1]')"
[ "$v" = 200 ] || fail "mysql_global_variables_max_connections = '$v', expected 200"
ok "mysqld and toxiproxy targets up; max_connections seen as $v"

rules="$(curl -sf -m 5 "$P/api/v1/rules" | jq -r '.data.groups[].rules[] | select(.type == "alerting") | .name' | sort)"
for a in LabOutboxStale LabConsumerLagHigh LabDlqReceivingMessages LabCacheMissSurge LabDbConnectionsSaturated \
         LabDbThroughputCollapsed LabKafkaUnderReplicatedPartitions LabServerDown; do
  grep -qx "$a" <<<"$rules" || fail "alert rule $a not loaded"
done
[ "$(curl -sf -m 5 "$P/api/v1/rules" | jq -r '[.data.groups[].rules[] | select(.health != "ok" and .health != "unknown")] | length')" = 0 ] \
  || fail "a rule failed to evaluate"
ok "all 8 alert rules loaded and evaluating"
