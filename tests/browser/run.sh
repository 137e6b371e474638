#!/usr/bin/env bash
# Browser tests of the web UI and the Grafana dashboard check (plus the pure parts of the PromQL
# check, check-promql.test.js; the check itself is run-promql.sh), against a running server.
#   tests/browser/run.sh [--update-docs] http://127.0.0.1:8080
# Installs its npm dependencies from package-lock.json (npm ci), uses Debian's Chromium
# (/usr/bin/chromium, installed with apt-get when missing and run as root), writes screenshots to
# tests/browser/screenshots/ and ends with "browser: N passed, N failed".
# LAB_TOKEN, when set, is used as the API token (for servers that require one).
# The pictures of README.md and docs/ui.md are among the screenshots (docs-<name>.png, from the
# tests' real runs; DOC_SHOTS in lib.js). --update-docs, or LAB_UPDATE_DOCS=1 (which passes
# through tests/run-all.sh browser), copies them to docs/screenshots/<name>.png after a run with
# no failure, and removes the PNGs there that are no longer produced. Without it the tree is left
# as it is.
set -uo pipefail
UPDATE_DOCS="${LAB_UPDATE_DOCS:-0}"
URL_ARG=""
for arg in "$@"; do
  case "$arg" in
    --update-docs) UPDATE_DOCS=1 ;;
    -h|--help) sed -n '2,12p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) URL_ARG="$arg" ;;
  esac
done
BASE_URL="${URL_ARG:-${BASE_URL:-http://127.0.0.1:8080}}"
BASE_URL="${BASE_URL%/}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DOCS_SHOTS="$(cd "$HERE/../.." && pwd)/docs/screenshots"
cd "$HERE"
say() { printf 'browser-tests: %s\n' "$*"; }

# Copies screenshots/docs-<name>.png to docs/screenshots/<name>.png for every name of DOC_SHOTS,
# all or nothing, and removes the other PNGs there; says each file's size.
update_docs() {
  local names name missing=() total=0 size
  names=$(node -e "console.log(Object.keys(require('./lib.js').DOC_SHOTS).join(' '))") || return 1
  for name in $names; do [ -s "screenshots/docs-$name.png" ] || missing+=("docs-$name.png"); done
  if [ ${#missing[@]} -gt 0 ]; then say "not updating docs/screenshots: missing ${missing[*]}"; return 1; fi
  mkdir -p "$DOCS_SHOTS"
  for f in "$DOCS_SHOTS"/*.png; do
    [ -e "$f" ] || continue
    name=$(basename "$f" .png)
    [[ " $names " == *" $name "* ]] || { rm -f "$f"; say "removed docs/screenshots/$name.png (no longer produced)"; }
  done
  for name in $names; do
    cp "screenshots/docs-$name.png" "$DOCS_SHOTS/$name.png"
    size=$(stat -c %s "$DOCS_SHOTS/$name.png"); total=$((total + size))
    say "docs/screenshots/$name.png  $((size / 1024)) KB$([ "$size" -gt 256000 ] && echo '  (over 250 KB: clip it smaller)')"
  done
  say "docs/screenshots: $((total / 1024)) KB in all$([ "$total" -gt 1048576 ] && echo ' (over 1 MB)')"
}

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
if [ "$UPDATE_DOCS" = 1 ]; then
  if [ "$rc" -ne 0 ] || [ "$failed" -ne 0 ]; then
    say "not updating docs/screenshots: a test failed"
  elif ! update_docs; then
    failed=$((failed + 1)); rc=1
  fi
fi
echo "browser: $passed passed, $failed failed"
exit "$rc"
