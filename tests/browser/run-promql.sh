#!/usr/bin/env bash
# Every Grafana panel query and every alert rule, run against the stack's real Prometheus while it
# scrapes a real lab server that has just done real runs (tests/browser/check-promql.js).
#   tests/browser/run-promql.sh          (tests/run-all.sh promql; needs the stack and build/reliability-lab)
# The stack's Prometheus scrapes one fixed address (job "lab", 127.0.0.1:8080 from infra/stack.env):
#   * nothing listens there -> starts build/reliability-lab there (temporary data dir), provokes
#     one admission rejection (halt, a refused run, lift), and stops it at the end;
#   * a lab server answers there -> uses it as is (only queues the runs; no halt);
#   * something else listens there -> fails, naming it.
# Then queues quick real runs (E-005, E-049, E-000, E-008 with small parameters, then E-049 and
# E-008 again once Prometheus has scraped them: ~25 s), waits (bounded) until Prometheus has
# scraped after them with >= 3 samples a minute for rate(), and runs the check over the window
# since the runs started. Ends with "promql: N passed, N failed".
# Environment: LAB_PROMETHEUS_URL (default from infra/stack.env), LAB_TOKEN (an operator token for a
# server that requires one), LAB_PROMQL_VERBOSE=1 (print passing expressions too).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/tests/browser"
say() { printf 'promql: %s\n' "$*"; }
fail() { say "$*"; echo "promql: 0 passed, 1 failed"; exit 1; }
envval() { sed -n "s/^$1=//p" "$ROOT/infra/stack.env" | head -n1; }

PROM="${LAB_PROMETHEUS_URL:-$(envval LAB_PROMETHEUS_URL)}"
PROM="${PROM%/}"
command -v node >/dev/null 2>&1 || fail "node is missing (apt-get install nodejs)"
command -v jq >/dev/null 2>&1 || fail "jq is missing (apt-get install jq)"
curl -sf -m 3 "$PROM/-/ready" >/dev/null || fail "no Prometheus at $PROM (infra/stack.sh up)"

# The address Prometheus scrapes for job "lab".
ADDR=$(curl -sf -m 3 "$PROM/api/v1/targets" |
  jq -r '[.data.activeTargets[] | select(.labels.job == "lab") | .scrapeUrl][0] // empty' |
  sed -E 's#^https?://([^/]+).*#\1#')
[ -n "$ADDR" ] || fail "Prometheus at $PROM has no target for job \"lab\" (infra/lib/parts.sh writes it)"
BASE="http://$ADDR"
AUTH=()
[ -n "${LAB_TOKEN:-}" ] && AUTH=(-H "Authorization: Bearer $LAB_TOKEN")

TMP=$(mktemp -d)
SERVER=""
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

port_open() { (exec 3<>"/dev/tcp/${ADDR%:*}/${ADDR##*:}") 2>/dev/null; }
if curl -sf -m 2 "${AUTH[@]}" "$BASE/healthz" >/dev/null 2>&1; then
  say "a lab server already answers at $ADDR: using it (runs are queued on it, nothing else)"
elif port_open; then
  fail "$ADDR (what Prometheus scrapes as job \"lab\") is taken by something that is not a lab server: $(ss -ltnpH "sport = :${ADDR##*:}" 2>/dev/null | head -n1)"
else
  [ -x "$ROOT/build/reliability-lab" ] || fail "build/reliability-lab is missing (./lab build)"
  "$ROOT/build/reliability-lab" --listen "$ADDR" --port-file "$TMP/port" --data-dir "$TMP" \
    --web-root "$ROOT/web" --migrations "$ROOT/migrations" >"$TMP/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.1; done
  [ -s "$TMP/port" ] || fail "the lab server did not start on $ADDR: $(tail -n 5 "$TMP/server.log")"
  say "started build/reliability-lab on $ADDR (pid $SERVER, data $TMP)"
fi
T0=$(($(date +%s) - 1))

api() {  # method path [json body] -> prints "HTTP_CODE BODY"
  local body="${3:-}"
  curl -s -m 10 "${AUTH[@]}" -X "$1" -H 'Content-Type: application/json' ${body:+-d "$body"} \
    -w '\n%{http_code}' "$BASE$2" | { local all; all=$(cat); printf '%s %s\n' "${all##*$'\n'}" "${all%$'\n'*}"; }
}

# One real admission rejection (reason "halted") so the rejection panels have a series; only on
# the server this script started (halting someone else's server would cancel their runs).
if [ -n "$SERVER" ]; then
  r1=$(api POST /halt '{"reason":"promql check: one admission rejection"}')
  r2=$(api POST /experiments/E-049/runs '{}')
  r3=$(api DELETE /halt)
  [ "${r2%% *}" = 503 ] && [ "${r3%% *}" = 200 ] ||
    say "could not provoke an admission rejection (halt ${r1%% *}, run ${r2%% *}, lift ${r3%% *})"
fi

# Quick real runs: E-005 (DLQ, outbox, consumer lag while it runs, ~10 s: a run window the
# annotations can draw) on one worker, E-049, E-000 and E-008 (cache, DB) on the other.
# A labelled counter or histogram series is born with its first value, and rate()/increase()
# ignore that first value: so E-049 and E-008 run a second time once Prometheus has scraped the
# first round, and the latency, run-duration and cache-ratio panels get a real increase.
RUNS=()
EXPERIMENTS=()
queue() {  # experiment json
  local out id
  out=$(api POST "/experiments/$1/runs" "$2")
  id=$(jq -r '.id // empty' <<<"${out#* }" 2>/dev/null)
  if { [ "${out%% *}" != 202 ] && [ "${out%% *}" != 201 ]; } || [ -z "$id" ]; then
    fail "could not queue $1: HTTP ${out%% *} ${out#* }"
  fi
  RUNS+=("$id"); EXPERIMENTS+=("$1")
}
wait_runs() {  # run ids...: until each is final (bounded, 90 s from the first call)
  local id state
  for id in "$@"; do
    while :; do
      state=$(api GET "/runs/$id" | cut -d' ' -f2- | jq -r '.state // empty' 2>/dev/null)
      case "$state" in queued|running|"") ;; *) break ;; esac
      [ $SECONDS -lt $RUN_DEADLINE ] || fail "run $id still ${state:-unknown} after 90 s"
      sleep 0.5
    done
    say "run $id: $(api GET "/runs/$id" | cut -d' ' -f2- | jq -r '"\(.experiment) \(.state) \(.verdict // "-")"')"
  done
}
q() { curl -sf -m 5 --get --data-urlencode "query=$1" "$PROM/api/v1/query" | jq -r '.data.result[0].value[1] // empty'; }
wait_scraped() {  # after-epoch min-samples-per-minute experiments...: a lab scrape after that time
  local after="$1" min="$2" deadline=$((SECONDS + 40)) last samples seen want n; shift 2
  want=$(printf '%s\n' "$@" | sort -u | paste -sd'|')
  n=$(printf '%s\n' "$@" | sort -u | wc -l)
  while :; do
    last=$(q 'max(timestamp(lab_workers_total{job="lab"}))')
    samples=$(q 'max(count_over_time(lab_workers_total{job="lab"}[1m]))')
    seen=$(q "count(count by (experiment) (lab_runs_total{job=\"lab\",experiment=~\"$want\"}))")
    if [ -n "$last" ] && [ "${last%.*}" -gt "$after" ] && [ "${samples:-0}" -ge "$min" ] && [ "${seen:-0}" -ge "$n" ]; then return 0; fi
    [ $SECONDS -lt $deadline ] || fail "Prometheus did not scrape the runs within 40 s (last scrape ${last:-none}, samples/min ${samples:-0}, experiments seen ${seen:-0}/$n)"
    sleep 1
  done
}

RUN_DEADLINE=$((SECONDS + 90))
queue E-005 '{"params":{"events":10,"poison_every":5}}'
queue E-049 '{}'
queue E-000 '{"params":{"timeout_ms":1000}}'
queue E-008 '{"modes":["failure","success"],"params":{"clients":20,"instances":1,"db_delay_ms":20,"expiries":1}}'
say "queued ${RUNS[*]} (${EXPERIMENTS[*]})"
wait_runs "${RUNS[@]:1}"
wait_scraped "$(date +%s)" 1 "${EXPERIMENTS[@]:1}"
queue E-049 '{}'
queue E-008 '{"modes":["failure","success"],"params":{"clients":20,"instances":1,"db_delay_ms":20,"expiries":1}}'
say "queued ${RUNS[*]:4} again (second round)"
wait_runs "${RUNS[0]}" "${RUNS[@]:4}"
# A scrape after the last run, every experiment in lab_runs_total, and >= 3 lab samples in the
# last minute (rate() over $__rate_interval = 1m needs 2).
wait_scraped "$(date +%s)" 3 "${EXPERIMENTS[@]}"
say "Prometheus scraped the runs ($(($(date +%s) - T0)) s after they started)"

args=(--since "$T0")
[ "${LAB_PROMQL_VERBOSE:-0}" = 1 ] && args+=(--verbose)
node "$HERE/check-promql.js" "${args[@]}" "$PROM"
