#!/usr/bin/env bash
# The local stack of Reliability Lab as plain processes on loopback (no containers):
# Kafka x3 (KRaft), Apicurio Registry (Confluent API), MariaDB (+ mysqld exporter), Redis,
# Redis Cluster x6, Toxiproxy, Prometheus. Data and logs under .lab/stack/. See infra/README.md.
#
#   infra/stack.sh up | down | status | reset | install | env | logs PART [-f]
#   infra/stack.sh kafka|cluster  kill|stop|start|pause|resume N
#   infra/stack.sh mysql|redis|registry|toxiproxy|prometheus|mysql-exporter  kill|stop|start|pause|resume
#   infra/stack.sh net list | latency PROXY MS [JITTER] | bandwidth PROXY KBPS | timeout PROXY [MS]
#                    | reset PROXY [MS] | down PROXY | up PROXY | clear [PROXY]
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
# shellcheck source=lib/install.sh
source "$INFRA/lib/install.sh"
# shellcheck source=lib/parts.sh
source "$INFRA/lib/parts.sh"
# shellcheck source=lib/faults.sh
source "$INFRA/lib/faults.sh"

usage() { sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

take_lock() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock -w 600 9 || die "another infra/stack.sh up/down/reset is running"
}

cmd_up() {
  local t0 failed=() part n
  t0="$(now_ms)"
  take_lock
  install_all
  local t1; t1="$(now_ms)"
  [ $(( t1 - t0 )) -gt 5000 ] && say "install step took $(( (t1 - t0) / 1000 ))s"
  mkdir -p "$STATE"
  # Start everything at once (each start is non-blocking), then wait for each part in turn.
  for part in mysql redis cluster1 cluster2 cluster3 cluster4 cluster5 cluster6 toxiproxy prometheus \
              kafka1 kafka2 kafka3 registry; do
    ensure_part "$part"
  done
  part_ready mysql || failed+=(mysql)
  if [[ ! " ${failed[*]} " =~ " mysql " ]]; then
    ensure_part mysql-exporter; part_ready mysql-exporter || failed+=(mysql-exporter)
  else
    failed+=(mysql-exporter)
  fi
  part_ready redis || failed+=(redis)
  local cl_ok=1
  for n in 1 2 3 4 5 6; do wait_for "cluster$n" 30 cluster_ping "$n" || { failed+=("cluster$n"); cl_ok=0; }; done
  if [ "$cl_ok" = 1 ]; then
    cluster_ensure_created
    wait_until 60 "Redis Cluster state ok on all 6 nodes" cluster_all_ok || failed+=(cluster)
  fi
  for part in toxiproxy prometheus registry kafka1 kafka2 kafka3; do
    part_ready "$part" || failed+=("$part")
  done
  if [ ${#failed[@]} -gt 0 ]; then
    die "not up: ${failed[*]} (after $(( ($(now_ms) - t0) / 1000 ))s; logs: infra/stack.sh logs PART)"
  fi
  say "stack up in $(( ($(now_ms) - t0) / 1000 )).$(( ($(now_ms) - t0) % 1000 / 100 ))s — endpoints: infra/stack.sh env"
}

# Processes tagged as ours, whatever their pid files say (catches orphans).
tagged_pids() {
  local d pid
  for d in /proc/[0-9]*; do
    pid="${d#/proc/}"
    [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] && continue
    is_ours "$pid" && echo "$pid"
  done
  return 0
}

all_ports() { local p; for p in "${ALL_PARTS[@]}"; do part_ports "$p"; done | tr ' ' '\n' | grep -v '^$' | sort -un; }

cmd_down() {
  take_lock
  local part pid pids=() rc=0 p
  # SIGTERM everything at once (paused ones are resumed first), then wait.
  for part in "${ALL_PARTS[@]}"; do
    if pid="$(part_pid "$part")"; then
      kill -CONT "$pid" 2>/dev/null || true; kill -TERM "$pid" 2>/dev/null || true; pids+=("$part:$pid")
    fi
  done
  local deadline=$(( $(now_ms) + 30000 ))   # then SIGKILL (a broker that lost the quorum can hang in shutdown)
  for entry in "${pids[@]}"; do
    part="${entry%%:*}"; pid="${entry#*:}"
    local left=$(( (deadline - $(now_ms)) / 1000 )); [ "$left" -lt 1 ] && left=1
    if ! wait_gone "$pid" "$left"; then
      warn "$part (pid $pid) ignored SIGTERM; sending SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 10 || true
    fi
    rm -f "$(pid_file "$part")"
  done
  # Orphans (a pid file lost or overwritten): anything still tagged as ours.
  for pid in $(tagged_pids); do
    warn "stopping leftover stack process $pid ($(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | cut -c1-80))"
    kill -CONT "$pid" 2>/dev/null || true; kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 10 || true
  done
  for part in "${ALL_PARTS[@]}"; do rm -f "$(pid_file "$part")"; done
  for p in $(all_ports); do
    for pid in $(port_pids "$p"); do
      warn "port $p is still in use by pid $pid ($(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | cut -c1-80)), not ours"; rc=1
    done
  done
  [ ${#pids[@]} -gt 0 ] && say "stack down (${#pids[@]} processes stopped)" || say "stack down (nothing was running)"
  return $rc
}

cmd_status() {
  local part pid state down=() endpoint
  printf '%-15s %-9s %-8s %s\n' PART STATE PID ENDPOINT
  for part in "${ALL_PARTS[@]}"; do
    endpoint="127.0.0.1:$(part_ports "$part" | cut -d' ' -f1)"
    if ! pid="$(part_pid "$part")"; then
      state=down; pid=-
    elif is_paused "$pid"; then
      state=paused
    else
      case "$part" in
        *) if part_healthy "$part"; then state=up; else state=unhealthy; fi ;;
      esac
    fi
    [ "$state" = up ] || down+=("$part($state)")
    printf '%-15s %-9s %-8s %s\n' "$part" "$state" "$pid" "$endpoint"
  done
  if [ ${#down[@]} -gt 0 ]; then
    echo "not up: ${down[*]}" >&2
    return 1
  fi
  echo "all ${#ALL_PARTS[@]} parts up"
}

cmd_reset() {
  cmd_down || true
  say "wiping $STATE"
  rm -rf "${STATE:?}"/*
  exec 9>&-
  cmd_up
}

cmd_logs() {
  local part="${1:-}" follow=0
  [ -n "$part" ] || die "usage: infra/stack.sh logs PART [-f]   (parts: ${ALL_PARTS[*]})"
  shift
  if [[ "${1:-}" =~ ^[0-9]+$ ]] && [[ "$part" =~ ^(kafka|cluster)$ ]]; then part="$part$1"; shift; fi
  [ "${1:-}" = -f ] && follow=1
  [[ " ${ALL_PARTS[*]} " == *" $part "* ]] || die "unknown part '$part' (parts: ${ALL_PARTS[*]})"
  local log; log="$(part_log "$part")"
  [ -f "$log" ] || die "no log yet for $part ($log)"
  echo "==> $log" >&2
  if [ "$follow" = 1 ]; then exec tail -n 50 -F "$log"; else tail -n "${LAB_LOG_LINES:-100}" "$log"; fi
}

cmd_env() { grep -E '^[A-Z_]+=' "$STACK_ENV"; }

main() {
  local cmd="${1:-help}"; shift || true
  case "$cmd" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    reset) cmd_reset ;;
    install) install_all ;;
    env) cmd_env ;;
    logs) cmd_logs "$@" ;;
    kafka|cluster|mysql|redis|registry|toxiproxy|prometheus|mysql-exporter) cmd_fault "$cmd" "$@" ;;
    net) cmd_net "$@" ;;
    help|-h|--help) usage ;;
    *) usage >&2; die "unknown command '$cmd'" ;;
  esac
}

main "$@"
