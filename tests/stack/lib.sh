# shellcheck shell=bash
# Shared by the stack tests (tests/stack/*.sh): endpoints from `infra/stack.sh env`, bounded
# retries, and cleanups that put a faulted part back so the next test finds a healthy stack.
# Each test exits non-zero with "FAIL [test]: what" as soon as a check does not hold.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK="$ROOT/infra/stack.sh"
STATE="${LAB_STACK_STATE:-$ROOT/.lab/stack}"
TEST="$(basename "$0" .sh)"
RUN="$$$(date +%s | tail -c 5)"                  # unique suffix for topics, keys, subjects
KTOOL="${LAB_KAFKA_TOOL:-$ROOT/build/tests/stack/stack_kafka_tool}"

while IFS='=' read -r key val; do export "$key=$val"; done < <("$STACK" env)

fail() { echo "FAIL [$TEST]: $*" >&2; exit 1; }
ok()   { echo "ok   [$TEST]: $*"; }
now_ms() { date +%s%3N; }

# eventually SECS DESCRIPTION CMD...: CMD must succeed within SECS (polled every 0.5 s).
eventually() {
  local secs="$1" what="$2"; shift 2
  local deadline=$(( $(now_ms) + secs * 1000 ))
  until "$@" >/dev/null 2>&1; do
    [ "$(now_ms)" -ge "$deadline" ] && fail "not within ${secs}s: $what"
    sleep 0.5
  done
}

# Cleanups run on exit in reverse order, whether the test passed or not.
CLEANUPS=()
on_exit() { CLEANUPS+=("$*"); }
run_cleanups() {
  local rc=$? i
  for (( i=${#CLEANUPS[@]}-1; i>=0; i-- )); do eval "${CLEANUPS[$i]}" >/dev/null 2>&1 || true; done
  exit $rc
}
trap run_cleanups EXIT

# The pid the stack recorded for PART (empty if none).
part_pid() { cat "$STATE/$1/pid" 2>/dev/null || true; }
proc_state() { awk '{print $3}' "/proc/$1/stat" 2>/dev/null || true; }
# PID has exited (a zombie not yet reaped by init counts as exited)
gone() { ! kill -0 "$1" 2>/dev/null || [ "$(proc_state "$1")" = Z ]; }

# `infra/stack.sh status` must fail and name PART with STATE (down|paused|unhealthy).
expect_status_names() {
  local part="$1" st="$2" out
  if out="$("$STACK" status 2>&1)"; then fail "status exited 0 while $part is $st"; fi
  grep -q "$part($st)" <<<"$out" || fail "status did not name $part($st): $(tail -n1 <<<"$out")"
}
# After a fault is undone, status must say all is well (within 20 s: a broker back from a pause
# re-registers, a cluster node re-syncs).
expect_status_ok() {
  local deadline=$(( $(now_ms) + 20000 ))
  until "$STACK" status >/dev/null 2>&1; do
    [ "$(now_ms)" -ge "$deadline" ] && fail "status not ok: $("$STACK" status 2>&1 | tail -n1)"
    sleep 1
  done
}

need_ktool() { [ -x "$KTOOL" ] || fail "kafka_tool not built ($KTOOL): build the tests first"; }
