#!/usr/bin/env bash
# Runs experiments one after the other through the HTTP API of a running lab server (`./lab up`)
# and prints a Markdown table: state, verdict, the key numbers of each mode and the run time.
# Usage: bench/catalog.sh [--url URL] [E-001 E-002 ...]   (default: every available experiment)
# A token, when the server needs one: LAB_TOKEN=... bench/catalog.sh
set -euo pipefail
URL="http://127.0.0.1:8080"
if [ "${1:-}" = "--url" ]; then URL="$2"; shift 2; fi
AUTH=()
[ -n "${LAB_TOKEN:-}" ] && AUTH=(-H "Authorization: Bearer $LAB_TOKEN")

api() { curl -sS --max-time 10 "${AUTH[@]}" "$@"; }

if [ $# -eq 0 ]; then
  mapfile -t IDS < <(api "$URL/experiments" | python3 -c '
import json, sys
doc = json.load(sys.stdin)
items = doc["items"] if isinstance(doc, dict) else doc
for e in items:
    if e.get("available"):
        print(e["id"])')
else
  IDS=("$@")
fi

echo "| experiment | state | verdict | numbers per mode | run time |"
echo "|---|---|---|---|---|"
for id in "${IDS[@]}"; do
  run=$(api -X POST -H 'Content-Type: application/json' -d '{}' "$URL/experiments/$id/runs")
  rid=$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("id",""))' <<<"$run")
  if [ -z "$rid" ]; then echo "| $id | not queued: $run | | | |"; continue; fi
  for _ in $(seq 1200); do  # at most 10 minutes per run
    view=$(api "$URL/runs/$rid")
    state=$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("state",""))' <<<"$view")
    case "$state" in completed|failed|cancelled|interrupted) break ;; esac
    sleep 0.5
  done
  VIEW="$view" python3 - "$id" <<'EOF'
import json, os, sys
run = json.loads(os.environ["VIEW"])
parts = []
for mode, ev in run.get("evidence", {}).items():
    m = ev.get("metrics", {})
    nums = ", ".join(f"{k} {v:g}" for k, v in m.items() if "." not in k)
    if ev.get("inconclusive"):
        nums += f" (inconclusive: {ev['inconclusive']})"
    parts.append(f"**{mode}**: {nums}")
secs = run.get("duration_seconds")
took = f"{secs:.1f} s" if isinstance(secs, (int, float)) else "?"
print(f"| {sys.argv[1]} | {run.get('state')} | {run.get('verdict')} | {'<br>'.join(parts)} | {took} |")
EOF
done
