#!/usr/bin/env bash
# Browser tests of the web UI and the Grafana dashboard check (plus the pure parts of the PromQL
# check, check-promql.test.js; the check itself is run-promql.sh), against a running server.
#   tests/browser/run.sh http://127.0.0.1:8080
# Installs its npm dependencies from package-lock.json (npm ci), uses Debian's Chromium
# (/usr/bin/chromium, installed with apt-get when missing and run as root), writes screenshots to
# tests/browser/screenshots/ and ends with "browser: N passed, N failed".
# LAB_TOKEN, when set, is used as the API token (for servers that require one).
set -uo pipefail
BASE_URL="${1:-${BASE_URL:-http://127.0.0.1:8080}}"
BASE_URL="${BASE_URL%/}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
say() { printf 'browser-tests: %s\n' "$*"; }

export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    say "installing Debian's chromium"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core; } >/dev/null \
      || { say "could not install chromium"; echo "browser: 0 passed, 1 failed"; exit 1; }
  else
    say "$CHROMIUM is missing (apt-get install chromium)"; echo "browser: 0 passed, 1 failed"; exit 1
  fi
fi

# This kind of machine ships Node 20 with npm; elsewhere Debian's nodejs/npm is the fallback.
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    say "installing Debian's nodejs and npm"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm; } >/dev/null \
      || { say "could not install nodejs/npm"; echo "browser: 0 passed, 1 failed"; exit 1; }
  else
    say "npm is missing (apt-get install nodejs npm)"; echo "browser: 0 passed, 1 failed"; exit 1
  fi
fi

if ! npm ci --no-audit --no-fund --loglevel=error >/dev/null; then
  say "npm ci failed"; echo "browser: 0 passed, 1 failed"; exit 1
fi

for _ in $(seq 50); do
  curl -sf "$BASE_URL/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done
if ! curl -sf "$BASE_URL/healthz" >/dev/null 2>&1; then
  say "no server answers at $BASE_URL/healthz"; echo "browser: 0 passed, 1 failed"; exit 1
fi

mkdir -p screenshots
rm -f screenshots/*.png
TAP="$(mktemp)"
trap 'rm -f "$TAP"' EXIT
say "testing $BASE_URL with $("$CHROMIUM" --version 2>/dev/null | head -n1)"
BASE_URL="$BASE_URL" node --test --test-concurrency=1 --test-timeout=180000 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$TAP" \
  ui.test.js check-dashboards.test.js check-promql.test.js
rc=$?
passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$TAP" | tail -n1)
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$TAP" | tail -n1)
[ -n "$passed" ] || passed=0
[ -n "$failed" ] || failed=$([ "$rc" -eq 0 ] && echo 0 || echo 1)
[ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
say "screenshots in tests/browser/screenshots/"
echo "browser: $passed passed, $failed failed"
exit "$rc"
