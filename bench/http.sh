#!/usr/bin/env bash
# HTTP benchmark: wrk against the lab server and, side by side in the same run, against nginx
# serving the same response bodies as static files. Prints requests/s, p50/p99 and the ratio.
#   bench/http.sh [DURATION_SECONDS=10] [CONNECTIONS=64]
# Needs build/reliability-lab (./lab build), wrk and nginx (Debian: wrk, nginx-light).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DURATION="${1:-10}"
CONNS="${2:-64}"
for tool in wrk nginx curl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (apt-get install wrk nginx-light curl)"; exit 1; }
done
BIN="${LAB_BIN:-$ROOT/build/reliability-lab}"
[ -x "$BIN" ] || { echo "bench: build first (./lab build)"; exit 1; }
WORK=$(mktemp -d)
cleanup() { kill "${SERVER:-}" 2>/dev/null || true; [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

"$BIN" --listen 127.0.0.1:0 --port-file "$WORK/port" --data-dir "$WORK/data" --rate-limit 0 \
  --queue-capacity 1000000 --web-root "$ROOT/web" --migrations "$ROOT/migrations" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
PORT=$(cat "$WORK/port")
LAB="http://127.0.0.1:$PORT"
sleep 0.5
RSS_IDLE_KB=$(awk '/VmRSS/{print $2}' "/proc/$SERVER/status")

RUN=$(curl -s -X POST "$LAB/experiments/E-000/runs" | sed -E 's/.*"id":"([^"]+)".*/\1/')
for _ in $(seq 100); do
  curl -s "$LAB/runs/$RUN" | grep -q '"finished_at":"' && break; sleep 0.2
done

# nginx serves the very same bytes from files.
mkdir -p "$WORK/www/runs" "$WORK/nginx"
curl -s "$LAB/experiments" >"$WORK/www/experiments"
curl -s "$LAB/runs/$RUN" >"$WORK/www/runs/$RUN"
# A free port for nginx: the probe cannot see a port held by a client's socket (a bind then
# fails with EADDRINUSE), so nginx itself is the test, a bounded number of times.
NPORT=$((PORT + 1))
for attempt in $(seq 20); do
  while (echo >"/dev/tcp/127.0.0.1/$NPORT") 2>/dev/null; do NPORT=$((NPORT + 1)); done
  cat >"$WORK/nginx.conf" <<CONF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx; fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  server { listen 127.0.0.1:$NPORT; root $WORK/www; default_type application/json; }
}
CONF
  nginx -c "$WORK/nginx.conf" 2>"$WORK/nginx.err" && break
  [ "$attempt" = 20 ] && { cat "$WORK/nginx.err"; echo "bench: nginx did not start"; exit 1; }
  NPORT=$((NPORT + 1))
done
NGX="http://127.0.0.1:$NPORT"
sleep 0.3

# wrk's --latency block gives 50% and 99% lines; convert to ms.
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.2f", v}'; }
measure() {  # url [script]
  local out
  if [ -n "${2:-}" ]; then out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$2" "$1"); else out=$(wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "$1"); fi
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
  p50=$(awk '$1=="50%"{print $2}' <<<"$out" | to_ms)
  p99=$(awk '$1=="99%"{print $2}' <<<"$out" | to_ms)
  non2xx=$(awk '/Non-2xx/{print $5}' <<<"$out"); non2xx=${non2xx:-0}
  echo "$rps $p50 $p99 $non2xx"
}

cat >"$WORK/post.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"params":{"timeout_ms":100}}'
wrk.headers["Content-Type"] = "application/json"
LUA

printf '\nReliability Lab HTTP benchmark: wrk -t2 -c%s -d%ss, server and nginx side by side on %s cores\n\n' "$CONNS" "$DURATION" "$(nproc)"
printf '%-28s %12s %9s %9s %12s %9s %9s %8s\n' "request" "lab req/s" "p50 ms" "p99 ms" "nginx req/s" "p50 ms" "p99 ms" "ratio"
for path in /experiments "/runs/$RUN"; do
  read -r lrps lp50 lp99 lerr <<<"$(measure "$LAB$path")"
  read -r nrps np50 np99 _ <<<"$(measure "$NGX$path")"
  label=$path; [ "$path" != /experiments ] && label="/runs/{id}"
  ratio=$(awk -v a="$lrps" -v b="$nrps" 'BEGIN{printf "%.2f", a/b}')
  printf 'GET %-24s %12s %9s %9s %12s %9s %9s %7sx' "$label" "$lrps" "$lp50" "$lp99" "$nrps" "$np50" "$np99" "$ratio"
  [ "$lerr" != 0 ] && printf '  (lab non-2xx: %s)' "$lerr"
  echo
done
BEFORE=$(curl -s "$LAB/runs?limit=1" >/dev/null; echo)
read -r prps pp50 pp99 perr <<<"$(measure "$LAB/experiments/E-000/runs" "$WORK/post.lua")"
printf 'POST %-23s %12s %9s %9s %12s %9s %9s %8s' "/experiments/E-000/runs" "$prps" "$pp50" "$pp99" "-" "-" "-" "-"
[ "$perr" != 0 ] && printf '  (non-2xx: %s)' "$perr"
echo
RSS_AFTER_KB=$(awk '/VmRSS/{print $2}' "/proc/$SERVER/status")
printf '\nserver RSS: idle %.1f MB, after the load %.1f MB\n' "$(echo "$RSS_IDLE_KB/1024" | bc -l)" "$(echo "$RSS_AFTER_KB/1024" | bc -l)"
echo "durable POSTs: every 202 was committed to SQLite (WAL, synchronous=NORMAL) before it was sent"
