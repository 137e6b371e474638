#!/usr/bin/env bash
# The command line (`./lab run|runs|report|watch`, tools/labctl.py) against the real server binary
# on the real stack (E-049 needs Redis; ~0.1 s a run), plus the unit tests of its pure parts.
#   tests/cli/run.sh            (tests/run-all.sh cli; needs build/reliability-lab and the stack)
# Starts its own server on a free loopback port with a temporary data dir and two tokens
# (operator, viewer), so it never touches a server on :8080. Ends with "cli: N passed, N failed".
set -uo pipefail
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the checkout
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LAB="$ROOT/lab"
PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); printf 'ok    %s\n' "$1"; }
bad() { FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$1"; shift; printf '      %s\n' "$@"; }

TMP=$(mktemp -d)
SERVER=""
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

# --- unit tests of the pure functions -------------------------------------------------------
if python3 -m unittest discover -s "$ROOT/tests/cli" -p 'test_*.py' >"$TMP/unit.log" 2>&1; then
  ok "unit: $(grep -E '^Ran [0-9]+ tests' "$TMP/unit.log")"
else
  bad "unit tests (python3 -m unittest discover -s tests/cli)" "$(tail -n 30 "$TMP/unit.log")"
fi

# --- the real server ------------------------------------------------------------------------
OPERATOR="cli-op-$RANDOM$RANDOM"
VIEWER="cli-view-$RANDOM$RANDOM"
printf '%s:operator\n%s:viewer\n' "$OPERATOR" "$VIEWER" >"$TMP/tokens"
"$ROOT/build/reliability-lab" --listen 127.0.0.1:0 --port-file "$TMP/port" --data-dir "$TMP" \
  --tokens-file "$TMP/tokens" --web-root "$ROOT/web" --migrations "$ROOT/migrations" \
  >"$TMP/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.1; done
if [ ! -s "$TMP/port" ]; then
  bad "the server did not start" "$(tail -n 20 "$TMP/server.log")"
  echo "cli: $PASSED passed, $((FAILED)) failed"; exit 1
fi
export LAB_URL="http://127.0.0.1:$(cat "$TMP/port")"
export LAB_TOKEN="$OPERATOR"
export NO_COLOR=1
echo "server: $LAB_URL (data $TMP)"

# expect NAME RC PATTERN... -- CMD...: runs CMD (stdout+stderr to $TMP/out), checks its exit
# status, that every PATTERN (grep -E) is in its output, and that no traceback or escape code is.
expect() {
  local name="$1" rc="$2"; shift 2
  local patterns=()
  while [ "$1" != "--" ]; do patterns+=("$1"); shift; done
  shift
  "$@" >"$TMP/out" 2>"$TMP/err"
  local got=$?
  cp "$TMP/out" "$TMP/stdout"
  cat "$TMP/err" >>"$TMP/out"
  local problems=()
  [ "$got" -eq "$rc" ] || problems+=("exit status $got, expected $rc")
  local p
  for p in "${patterns[@]}"; do grep -Eq -- "$p" "$TMP/out" || problems+=("no line matches /$p/"); done
  grep -q 'Traceback' "$TMP/out" && problems+=("a Python traceback")
  grep -q $'\033' "$TMP/out" && problems+=("escape codes in output that is not a terminal")
  if [ ${#problems[@]} -eq 0 ]; then ok "$name"; else
    bad "$name" "${problems[@]}" "--- output of: $*" "$(tail -n 40 "$TMP/out")"
  fi
}

expect "run E-049 --expect confirmed: live steps, verdict, why, a table per mode, exit 0" 0 \
  '^queued run r[0-9a-z]+: E-049' 'failure +started' 'success +finished in' \
  '^verdict: confirmed$' '^why:' '^  - failure\.failed_restricted > 0 \(observed 3\)' \
  '^failure' '^  metric +value +criterion +held' '^  failed_restricted +3 +> 0 +✓' \
  '^  failed_restricted +0 +== 0 +✓' '^ok: verdict confirmed as expected \(exit 0\)' \
  -- "$LAB" run E-049 --expect confirmed
RUN_ID=$(sed -nE 's/^queued run (r[0-9a-z]+):.*/\1/p' "$TMP/out" | head -n1)

expect "run E-049 --expect refuted: a confirmed verdict exits 1" 1 \
  '^verdict: confirmed$' '^FAIL: verdict confirmed, expected refuted \(exit 1\)' \
  -- "$LAB" run E-049 --expect refuted

expect "run E-049 --param practice=off --repeat 2 --expect refuted: each repetition refuted" 0 \
  '^verdict: refuted$' '^  #1  refuted' '^  #2  refuted' \
  '^  failed_restricted +3 +3 +== 0 +0/2 ✗' '^ok: verdict refuted as expected' \
  -- "$LAB" run E-049 --param practice=off --repeat 2 --expect refuted

expect "run --json: the final run as JSON on stdout, exit 0" 0 '"verdict": "confirmed"' \
  -- "$LAB" run E-049 --mode failure,success --json
python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["state"]=="completed", r' \
  "$TMP/stdout" 2>/dev/null && ok "run --json: stdout parses as the run" \
  || bad "run --json: stdout is not the run's JSON" "$(head -c 400 "$TMP/stdout")"

expect "an unknown experiment: exit 2, one clear line" 2 \
  '^lab: error: there is no experiment E-999 \(404' -- "$LAB" run E-999
[ "$(wc -l <"$TMP/err")" -eq 1 ] && ok "an unknown experiment: one line on stderr" \
  || bad "an unknown experiment: stderr is not one line" "$(cat "$TMP/err")"
expect "a --param without '=': exit 2" 2 "^lab: error: bad --param 'practice': expected NAME=VALUE" \
  -- "$LAB" run E-049 --param practice
expect "an unknown --param: exit 2, names the known ones" 2 \
  "E-049 has no parameter 'events' \(its parameters: practice\)" -- "$LAB" run E-049 --param events=5
expect "a --param value the server refuses: exit 2 with the server's words" 2 \
  '^lab: error: the run request is invalid: params\.practice .*\(400 Invalid run request' \
  -- "$LAB" run E-049 --param practice=maybe
expect "an unknown --mode: exit 2" 2 "E-049 has no mode 'nope' \(its modes: failure, success\)" \
  -- "$LAB" run E-049 --mode nope
expect "an unknown option: exit 2 with usage" 2 '^usage: lab' 'unrecognized arguments: --bogus' \
  -- "$LAB" run E-049 --bogus

expect "runs --experiment E-049 lists the run" 0 "^id +experiment +state +verdict" \
  "^$RUN_ID +E-049 +completed +confirmed" -- "$LAB" runs --experiment E-049
[ "$(grep -c ' E-049 ' "$TMP/out")" -eq 4 ] && ok "runs: the 4 runs of E-049, nothing else" \
  || bad "runs: expected 4 E-049 rows" "$(cat "$TMP/out")"
expect "runs --limit 1 pages" 0 '^\(more: --limit 2\)' -- "$LAB" runs --experiment E-049 --limit 1
expect "runs --experiment E-000: none" 0 '^no runs of E-000' -- "$LAB" runs --experiment E-000

(cd "$TMP" && "$LAB" report "$RUN_ID" --format junit -o report.xml >/dev/null 2>&1)
if python3 - "$TMP/report.xml" <<'EOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suite = root if root.tag == "testsuite" else root.find("testsuite")
assert suite is not None and suite.get("name") == "E-049", ET.tostring(root)[:200]
assert suite.get("tests") == "1" and suite.get("failures") == "0" and suite.get("errors") == "0"
assert suite.find("testcase") is not None
EOF
then ok "report --format junit -o FILE (from the caller's directory): well-formed, 1 test, 0 failures"
else bad "report --format junit: not the expected XML" "$(head -c 600 "$TMP/report.xml" 2>&1)"; fi

expect "report --format markdown has the verdict" 0 '^# E-049' "\| $RUN_ID \| completed \| confirmed \|" \
  -- "$LAB" report "$RUN_ID" --format markdown
expect "report of an unknown run: exit 2" 2 '^lab: error: there is no run rnope \(404' \
  -- "$LAB" report rnope --format junit
expect "watch a finished run --expect refuted: exit 1" 1 '^verdict: confirmed$' \
  -- "$LAB" watch "$RUN_ID" --expect refuted

expect "a wrong LAB_TOKEN: exit 2, says the token was refused" 2 \
  '^lab: error: .*\(401.*LAB_TOKEN was refused' -- env LAB_TOKEN=wrong-token "$LAB" run E-049
expect "no LAB_TOKEN on a server with tokens: exit 2, says to set it" 2 \
  '^lab: error: .*\(401.*set LAB_TOKEN' -- env -u LAB_TOKEN "$LAB" runs
expect "a viewer token may list but not run: exit 2 with 403" 2 '^lab: error: .*\(403' \
  -- env LAB_TOKEN="$VIEWER" "$LAB" run E-049
expect "no server at LAB_URL: exit 2" 2 '^lab: error: cannot reach the server at http://127\.0\.0\.1:9: connection refused' \
  -- env LAB_URL=http://127.0.0.1:9 "$LAB" runs

echo "cli: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
