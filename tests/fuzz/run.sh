#!/usr/bin/env bash
# The fuzz stage: Schemathesis over the served /openapi.json of the real server binary, every check
# on (tests/fuzz/schemathesis.toml turns them on and names the few allowed answers and why).
#   tests/fuzz/run.sh            (tests/run-all.sh fuzz; needs build/reliability-lab, not the stack)
# Starts its own server on a free loopback port with a temporary data dir, three tokens (admin,
# operator, viewer), no rate limit and stack endpoints on a closed port (tests/fuzz/closed-stack.sh),
# so the runs the fuzzer queues end at preflight and never touch the shared stack. Three passes:
#   admin     every operation but the halt switch, with the admin token (the deep pass)
#   anonymous every operation without a token (401 on the API, the public probes answer)
#   viewer    every operation but the halt switch with the viewer token (403 on the mutations)
#   halt      POST/DELETE /halt with the admin token (last: a halt refuses new runs, 503)
# Then: 0 server errors (5xx) in the server's own counters beyond the allowed ones, the request
# budget reached, the audit chain intact. Prints requests made, failures by check.
# Schemathesis is installed into .lab/venv (pinned, reused when present).
# LAB_FUZZ_EXAMPLES (per operation, admin pass; default 100), LAB_FUZZ_SEED (default 20261207),
# LAB_FUZZ_MIN_REQUESTS (default 2000), LAB_FUZZ_KEEP=1 keeps the logs and data of a failed run. Ends with "fuzz: N passed, N failed".
set -uo pipefail
export PYTHONDONTWRITEBYTECODE=1
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/tests/fuzz"
ST_VERSION=4.32.5
VENV="$ROOT/.lab/venv"
EXAMPLES="${LAB_FUZZ_EXAMPLES:-100}"
SEED="${LAB_FUZZ_SEED:-20261207}"
MIN_REQUESTS="${LAB_FUZZ_MIN_REQUESTS:-2000}"
PASSED=0
FAILED=0
ok() { PASSED=$((PASSED + 1)); printf 'ok    %s\n' "$1"; }
bad() { FAILED=$((FAILED + 1)); printf 'FAIL  %s\n' "$1"; shift; [ $# -gt 0 ] && printf '      %s\n' "$@"; }
finish() { echo "fuzz: $PASSED passed, $FAILED failed"; [ "$FAILED" -eq 0 ]; exit $?; }

TMP=$(mktemp -d)
SERVER=""
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; fi
  if [ "$FAILED" -gt 0 ] && [ "${LAB_FUZZ_KEEP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# --- Schemathesis in .lab/venv (python3 -m venv; python3-venv from apt when missing) ----------
if [ "$("$VENV/bin/st" --version 2>/dev/null)" != "st, version $ST_VERSION" ]; then
  echo "installing schemathesis $ST_VERSION into $VENV"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  if ! python3 -m venv "$VENV" >"$TMP/venv.log" 2>&1; then
    # Debian's python3 has venv without ensurepip until python3-venv is installed.
    echo "python3 -m venv failed ($(tail -n 1 "$TMP/venv.log")): installing python3-venv"
    rm -rf "$VENV"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv) >/dev/null 2>&1
  fi
  if ! { { [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"; } && "$VENV/bin/pip" install -q --disable-pip-version-check \
    "schemathesis==$ST_VERSION"; } >"$TMP/install.log" 2>&1; then
    bad "install schemathesis $ST_VERSION into $VENV" "$(tail -n 20 "$TMP/install.log")"
    rm -rf "$VENV"
    finish
  fi
fi
echo "$("$VENV/bin/st" --version) ($VENV)"

# --- the server ------------------------------------------------------------------------------
# shellcheck source=closed-stack.sh
source "$HERE/closed-stack.sh"
closed_stack_config "$TMP/config.json" || { bad "closed stack config"; finish; }
ADMIN="fuzz-admin-$RANDOM$RANDOM"
OPERATOR="fuzz-op-$RANDOM$RANDOM"
VIEWER="fuzz-view-$RANDOM$RANDOM"
printf '%s:admin\n%s:operator\n%s:viewer\n' "$ADMIN" "$OPERATOR" "$VIEWER" >"$TMP/tokens"
mkdir -p "$TMP/data"
"$ROOT/build/reliability-lab" --listen 127.0.0.1:0 --port-file "$TMP/port" --data-dir "$TMP/data" \
  --config "$TMP/config.json" --tokens-file "$TMP/tokens" --rate-limit 0 \
  --queue-capacity 1000000 --shutdown-timeout 2 \
  --web-root "$ROOT/web" --migrations "$ROOT/migrations" >"$TMP/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do [ -s "$TMP/port" ] && break; sleep 0.1; done
if [ ! -s "$TMP/port" ]; then bad "the server did not start" "$(tail -n 20 "$TMP/server.log")"; finish; fi
URL="http://127.0.0.1:$(cat "$TMP/port")"
echo "server: $URL (data $TMP/data), seed $SEED, $EXAMPLES examples per operation"

# Requests the server counted, by status class: "total 5xx" from /metrics.
server_counts() {
  curl -s "$URL/metrics" | awk '/^lab_http_requests_total\{/ {
      n = $NF; t += n; if (match($0, /code="5/)) f += n
    } END { printf "%d %d\n", t, f }'
}

# st_pass NAME MAX_EXAMPLES [st run options...]: one Schemathesis pass; its JSON report is read
# for test cases and failures by check.
REQUESTS_TOTAL=0
st_pass() {
  local name="$1" examples="$2"; shift 2
  local before after report="$TMP/report-$name"
  read -r before _ < <(server_counts)
  local t0=$SECONDS
  (cd "$TMP" && "$VENV/bin/st" --no-color --config-file "$HERE/schemathesis.toml" run "$URL/openapi.json" \
    --max-examples "$examples" --seed "$SEED" --workers 2 \
    --report json --report-dir "$report" --output-truncate false "$@") >"$TMP/st-$name.log" 2>&1
  local rc=$?
  read -r after _ < <(server_counts)
  local requests=$((after - before))
  REQUESTS_TOTAL=$((REQUESTS_TOTAL + requests))
  local summary
  summary=$(python3 - "$report" <<'PY'
import glob, json, sys
files = glob.glob(sys.argv[1] + "/*.json")
if not files:
    print("no report"); sys.exit(0)
d = json.load(open(files[0]))
tc = d.get("test_cases", {})
fails = ", ".join(f'{f["code"]} {f["title"]}: {f["count"]} ({"; ".join(f["operations"])})'
                  for f in d.get("failures", [])) or "none"
errs = len(d.get("errors", []))
print(f'{tc.get("generated", 0)} test cases, {d.get("operations", {}).get("tested", 0)} operations, '
      f'failures by check: {fails}; errors: {errs}')
PY
)
  echo "pass $name: $requests requests in $((SECONDS - t0)) s; $summary"
  if [ $rc -eq 0 ]; then
    ok "schemathesis $name pass ($requests requests, 0 failures)"
  else
    bad "schemathesis $name pass (exit $rc): $summary" \
      "--- the failures ($TMP/st-$name.log):" "$(sed -n '/= FAILURES =/,/= SUMMARY =/p' "$TMP/st-$name.log" | head -n 150)" \
      "$(grep -E 'Error|error' "$TMP/st-$name.log" | head -n 20)"
  fi
}

st_pass admin "$EXAMPLES" -H "Authorization: Bearer $ADMIN" \
  --exclude-name "POST /halt" --exclude-name "DELETE /halt"
st_pass anonymous "$((EXAMPLES / 2 + 1))"
st_pass viewer "$((EXAMPLES / 4 + 1))" -H "Authorization: Bearer $VIEWER" \
  --exclude-name "POST /halt" --exclude-name "DELETE /halt"
st_pass halt "$((EXAMPLES / 4 + 1))" -H "Authorization: Bearer $ADMIN" \
  --include-name "POST /halt" --include-name "DELETE /halt"

# --- what the server saw ---------------------------------------------------------------------
read -r total fives < <(server_counts)
echo "server: $total requests counted in /metrics, $fives answered 5xx"
curl -s "$URL/metrics" | grep -E '^lab_http_requests_total\{code="5' | sed 's/^/      /'
# 503 on /readyz (the closed stack) is by design; any other 5xx is a finding.
others=$(curl -s "$URL/metrics" | grep -E '^lab_http_requests_total\{code="5' |
  grep -vE 'code="503".*route="/readyz"' | awk '{s += $NF} END {print s + 0}')
if [ "$others" -eq 0 ]; then ok "no 5xx beyond /readyz's 503 (closed stack)"; else
  bad "$others answers 5xx beyond /readyz's 503" "$(tail -n 20 "$TMP/server.log")"
fi
if [ "$REQUESTS_TOTAL" -ge "$MIN_REQUESTS" ]; then ok "request budget: $REQUESTS_TOTAL >= $MIN_REQUESTS"; else
  bad "request budget: $REQUESTS_TOTAL < $MIN_REQUESTS requests made"
fi
verify=$(curl -s -H "Authorization: Bearer $ADMIN" "$URL/audit/verify")
if python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if d.get("ok") is True else 1)' "$verify" 2>/dev/null; then
  ok "audit chain intact after the fuzzing: $verify"
else
  bad "audit chain after the fuzzing" "$verify"
fi
if kill -0 "$SERVER" 2>/dev/null; then ok "the server is still up"; else
  bad "the server died" "$(tail -n 30 "$TMP/server.log")"; SERVER=""
fi
finish
