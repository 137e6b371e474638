#!/usr/bin/env bash
# The whole test suite, as `./lab test` and CI run it. Stages:
#   format      every C++ file as .clang-format has it (clang-format 14 --dry-run --Werror)
#   unit        ctest -L unit (no stack, seconds)
#   e2e         the real binary over HTTP (ctest -L e2e)
#   fuzz        Schemathesis (pinned, in .lab/venv) over the served /openapi.json of its own server,
#               every check on, with and without tokens, >= 2,000 requests: 0 server errors, 0
#               schema violations (tests/fuzz/run.sh, ~1-2 min; no stack)
#   crash       20 kill -9 of its own server at random moments of a POST burst: every accepted run
#               there after restart, integrity_check ok, audit chain ok (tests/crash/run.py, ~1 min)
#   asan        ASan+UBSan build of what it runs: the unit tests again, and the e2e tests against the
#               sanitized server (asan-e2e; any sanitizer report fails the stage)
#   tsan        TSan build of the libraries: the unit tests (queue, workers, store) again
#   stack       brings the local stack up (infra/stack.sh up), then ctest -L stack: each part
#               checked with real clients, each fault command and its inverse
#   integration every experiment through the HTTP API of the real server on the real stack, the
#               runner framework (cancel, timeout, namespaces), ctest -L integration
#   cli         the command line (./lab run|runs|report, tools/labctl.py) against its own server
#               on the stack (tests/cli/run.sh, ~5 s)
#   promql      every Grafana panel/annotation/variable query and every alert rule run against the
#               stack's Prometheus after real runs of a lab server on 127.0.0.1:8080 (started there
#               if the port is free): each parses and returns series (tests/browser/run-promql.sh, ~30 s)
#   browser     the web UI in headless Chromium + the dashboard metric check
# Usage: tests/run-all.sh [stage ...]   (default: all of them). Ends with "N passed, N failed".
# LAB_TEST_NO_STACK=1 skips the four stages that need the stack (a machine that cannot run it).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
JOBS="${LAB_JOBS:-$(nproc)}"
STAGES=("$@")
NO_STACK_SKIPS=0
if [ ${#STAGES[@]} -eq 0 ]; then
  STAGES=(format unit e2e fuzz crash asan tsan stack integration cli browser promql)
  if [ "${LAB_TEST_NO_STACK:-0}" = 1 ]; then
    STAGES=(format unit e2e fuzz crash asan tsan browser)
    NO_STACK_SKIPS=1
  fi
fi
PASSED=0
FAILED=0
SUMMARY=()
STAGE_T0=$SECONDS

# Each stage starts with a header (and the time since the start); the summary gives each stage's
# own time, so a slow stage is named, not guessed.
say() { STAGE_T0=$SECONDS; printf '\n\033[1m== %s\033[0m  (at %dm%02ds)\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)); }
want() { local s; for s in "${STAGES[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
record() {  # stage passed failed
  PASSED=$((PASSED + $2)); FAILED=$((FAILED + $3))
  SUMMARY+=("$(printf '%-12s %4d passed, %4d failed  %5ds' "$1" "$2" "$3" $((SECONDS - STAGE_T0)))")
}
timed() { SUMMARY+=("$(printf '%-12s %-26s  %5ds' "$1" "$2" $((SECONDS - STAGE_T0)))"); }
skipped() { SUMMARY+=("$(printf '%-12s skipped: %s' "$1" "$2")"); }

# Runs ctest in a build dir with a label and records its counts (a ctest that cannot run
# counts as one failure, never as zero tests).
run_ctest() {  # stage build-dir label [extra ctest args]
  local stage="$1" dir="$2" label="$3"; shift 3
  local log; log=$(mktemp)
  (cd "$dir" && ctest -L "$label" --output-on-failure --timeout 600 "$@") 2>&1 | tee "$log"
  local line total failed
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1)
  if [ -z "$line" ]; then
    if grep -q 'No tests were found' "$log"; then record "$stage" 0 1; else record "$stage" 0 1; fi
  else
    failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
    record "$stage" $((total - failed)) "$failed"
  fi
  rm -f "$log"
}

# Runs a test script that ends with "STAGE: N passed, N failed" and records those counts (a script
# that prints no such line counts as one failure).
run_script() {  # stage command...
  local stage="$1"; shift
  local log; log=$(mktemp)
  "$@" 2>&1 | tee "$log"
  local line
  line=$(grep -E "^$stage: [0-9]+ passed, [0-9]+ failed" "$log" | tail -n1)
  if [ -n "$line" ]; then
    record "$stage" "$(sed -E 's/.*: ([0-9]+) passed.*/\1/' <<<"$line")" "$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")"
  else
    record "$stage" 0 1
  fi
  rm -f "$log"
}

build() {  # dir type [cmake args]
  local dir="$1" type="$2"; shift 2
  cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null &&
    cmake --build "$dir" -j "$JOBS"
}

say "dependencies"
"$ROOT/lab" deps || { echo "could not install the build dependencies"; echo "0 passed, 1 failed"; exit 1; }
timed dependencies "installed"

say "build (build/)"
if ! build "$ROOT/build" RelWithDebInfo; then
  echo "the build failed"; echo "0 passed, 1 failed"; exit 1
fi
timed build "built"

if want format; then
  say "format (clang-format --dry-run --Werror)"
  # One check over every file; the files that are off are named.
  files=0; off=0
  while IFS= read -r f; do
    files=$((files + 1))
    if ! clang-format --dry-run --Werror "$ROOT/$f" >/dev/null 2>&1; then
      off=$((off + 1)); echo "not formatted: $f (clang-format -i $f)"
    fi
  done < <(git -C "$ROOT" ls-files '*.cc' '*.h' '*.cc.in')
  echo "$files files, $off not formatted"
  if [ "$files" -gt 0 ] && [ "$off" -eq 0 ]; then record format 1 0; else record format 0 1; fi
fi
if want unit; then say "unit tests"; run_ctest unit "$ROOT/build" unit; fi
if want e2e; then say "end-to-end tests"; run_ctest e2e "$ROOT/build" e2e; fi
if want fuzz; then
  say "fuzz (tests/fuzz: Schemathesis over /openapi.json of its own server, no stack)"
  run_script fuzz bash "$ROOT/tests/fuzz/run.sh"
fi
if want crash; then
  say "crash (tests/crash: kill -9 under a POST burst, restart, nothing accepted lost)"
  run_script crash python3 "$ROOT/tests/crash/run.py"
fi

if want asan; then
  say "ASan+UBSan build and tests (build-asan/)"
  # Only the targets this stage runs: the unit tests (the executables of build/'s unit tests, so
  # a new one is never left out) and e2e_test, which brings the server and lab-runner-host. The
  # rest of the product (lab-role, bench, integration and stack tools) is not built here.
  asan_targets=$(cd "$ROOT/build" && ctest -N -V -L unit | sed -n 's/^[0-9]*: Test command: //p' |
    awk '{print $1}' | xargs -r -n1 basename | sort -u | tr '\n' ' ')
  if [ -n "$asan_targets" ] &&
    cmake -S "$ROOT" -B "$ROOT/build-asan" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
      -DLAB_SANITIZE=address -DLAB_BUILD_SERVER=ON >/dev/null &&
    # shellcheck disable=SC2086 # one word per target
    cmake --build "$ROOT/build-asan" -j "$JOBS" --target $asan_targets e2e_test; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      run_ctest asan "$ROOT/build-asan" unit
    # The e2e tests again, against the sanitized server (build-asan/reliability-lab: e2e_test has
    # its binary's path built in). A server's report goes to a file of its own: a test that kills
    # its server or ignores its exit code would not see it, so any report fails the stage.
    # Two tests run only in the e2e stage: OutOfDescriptorsBacksOffAndRecovers (out of
    # descriptors, the sanitizer runtime itself fails: its memory probe needs a pipe, so UBSan's
    # vptr check misreports and stops the server) and KillNineLosesNoAcceptedRun (its 30 s to
    # finish 120+ runs is sized for an optimized build; each run starts the instrumented
    # lab-runner-host, 0.14 s a start instead of 0.014 s, and 121 runs took 33 s).
    say "e2e tests against the ASan+UBSan server (build-asan/)"
    reports="$ROOT/build-asan/sanitizer-reports"
    rm -rf "$reports" && mkdir -p "$reports"
    ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$reports/asan" \
      UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan" \
      run_ctest asan-e2e "$ROOT/build-asan" e2e \
      -E '^(E2E\.OutOfDescriptorsBacksOffAndRecovers|DurabilityE2E\.KillNineLosesNoAcceptedRun)$'
    if [ -n "$(ls -A "$reports")" ]; then
      echo "sanitizer reports in $reports:"; head -n 60 "$reports"/*
      record asan-report 0 1
    fi
  else
    record asan 0 1
  fi
fi

if want tsan; then
  say "TSan build and the concurrency tests (build-tsan/)"
  if build "$ROOT/build-tsan" RelWithDebInfo -DLAB_SANITIZE=thread -DLAB_BUILD_SERVER=OFF; then
    # Tests labelled uninstrumented-threads run librdkafka's threads, which TSan cannot follow.
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
      run_ctest tsan "$ROOT/build-tsan" unit -LE uninstrumented-threads
  else
    record tsan 0 1
  fi
fi

STACK_UP=0
STACK_WAS_UP=0
if want stack || want integration || want cli || want promql; then
  say "the local stack"
  # A stack someone already runs is left running afterwards; one this script starts is stopped.
  "$ROOT/infra/stack.sh" status >/dev/null 2>&1 && STACK_WAS_UP=1
  if [ -x "$ROOT/infra/stack.sh" ] && "$ROOT/infra/stack.sh" up; then
    STACK_UP=1
    timed stack-up "up"
  else
    echo "the stack did not come up (see .lab/stack/*/ logs)"
    record stack-up 0 1
  fi
fi
if want stack && [ $STACK_UP = 1 ]; then say "stack tests"; run_ctest stack "$ROOT/build" stack; fi
if want integration && [ $STACK_UP = 1 ]; then
  say "integration tests (experiments through the API on the real stack)"
  run_ctest integration "$ROOT/build" integration
fi
if want cli && [ $STACK_UP = 1 ]; then
  say "command line (tests/cli: ./lab run|runs|report against the real server)"
  run_script cli bash "$ROOT/tests/cli/run.sh"
fi

if [ $NO_STACK_SKIPS = 1 ]; then
  skipped stack "LAB_TEST_NO_STACK=1"
  skipped integration "LAB_TEST_NO_STACK=1"
  skipped cli "LAB_TEST_NO_STACK=1"
  skipped promql "LAB_TEST_NO_STACK=1"
fi
if want browser && [ ! -f "$ROOT/tests/browser/run.sh" ]; then
  say "browser tests"
  echo "tests/browser/run.sh is missing"; record browser 0 1
elif want browser; then
  say "browser tests"
  DATA=$(mktemp -d)
  "$ROOT/build/reliability-lab" --listen 127.0.0.1:0 --port-file "$DATA/port" --data-dir "$DATA" \
    --web-root "$ROOT/web" --migrations "$ROOT/migrations" >"$DATA/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do [ -s "$DATA/port" ] && break; sleep 0.1; done
  if [ -s "$DATA/port" ]; then
    run_script browser bash "$ROOT/tests/browser/run.sh" "http://127.0.0.1:$(cat "$DATA/port")"
  else
    echo "the server for the browser tests did not start:"; cat "$DATA/server.log"; record browser 0 1
  fi
  kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null
fi

if want promql && [ $STACK_UP = 1 ]; then  # after browser: its run.sh installs node on a fresh machine
  say "promql (tests/browser/run-promql.sh: dashboard and rule queries on the stack's Prometheus)"
  run_script promql bash "$ROOT/tests/browser/run-promql.sh"
fi

if [ $STACK_UP = 1 ] && [ $STACK_WAS_UP = 0 ] && [ "${LAB_KEEP_STACK:-0}" != 1 ]; then
  # `down` exits non-zero when a stack port is still held afterwards: that is a failure too.
  say "stopping the stack"
  if "$ROOT/infra/stack.sh" down; then record stack-down 1 0; else record stack-down 0 1; fi
fi

say "summary"
printf '%s\n' "${SUMMARY[@]}"
echo "total time: $((SECONDS / 60))m$((SECONDS % 60))s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
