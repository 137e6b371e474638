#!/usr/bin/env bash
# Network faults through Toxiproxy, each undone by its inverse: latency (+jitter), bandwidth,
# timeout (black hole), reset, proxy down/up, on Redis; latency on MariaDB and the registry;
# a black hole in front of all Kafka brokers for clients that bootstrap through the proxies.
source "$(dirname "$0")/lib.sh"
on_exit "'$STACK' net clear"
RP="${LAB_REDIS_PROXIED##*:}"
RD="${LAB_REDIS##*:}"
key="stacktest:net:$RUN"
on_exit "timeout 5 redis-cli -h 127.0.0.1 -p $RD del $key"

# ms for one redis PING on PORT; empty if it failed
ping_ms() {
  local t0 out; t0=$(now_ms)
  out="$(timeout "${2:-5}" redis-cli -h 127.0.0.1 -p "$1" ping 2>&1)" || return 1
  [ "$out" = PONG ] || return 1
  echo $(( $(now_ms) - t0 ))
}

"$STACK" net clear >/dev/null
base="$(ping_ms "$RP")" || fail "PING through the redis proxy"
ok "baseline PING through the proxy: ${base} ms"

"$STACK" net latency redis 400 >/dev/null || fail "net latency"
"$STACK" net list | grep -q 'lab_latency_down' || fail "net list does not show the latency toxic"
slow="$(ping_ms "$RP")" || fail "PING with latency"
[ "$slow" -ge 400 ] || fail "PING took ${slow} ms with 400 ms latency"
direct="$(ping_ms "$RD")"
[ "$direct" -lt 400 ] || fail "the direct port is slowed too (${direct} ms)"
"$STACK" net latency redis 300 200 >/dev/null || fail "net latency with jitter"
j="$(ping_ms "$RP")" || fail "PING with jitter"
[ "$j" -ge 100 ] || fail "PING took ${j} ms with 300±200 ms latency"
"$STACK" net clear redis >/dev/null
fast="$(ping_ms "$RP")"
[ "$fast" -lt 300 ] || fail "latency not cleared (${fast} ms)"
ok "latency: ${slow} ms with +400 ms (direct port ${direct} ms), ${j} ms with 300±200, ${fast} ms after clear"

timeout 5 redis-cli -h 127.0.0.1 -p "$RD" set "$key" "$(head -c 100000 /dev/zero | tr '\0' x)" >/dev/null
"$STACK" net bandwidth redis 20 >/dev/null || fail "net bandwidth"
t0=$(now_ms)
len="$(timeout 30 redis-cli -h 127.0.0.1 -p "$RP" get "$key" | wc -c)"
took=$(( $(now_ms) - t0 ))
[ "$len" -ge 100000 ] || fail "GET of 100 kB through the throttled proxy returned $len bytes"
[ "$took" -ge 3000 ] || fail "100 kB at 20 KB/s took only ${took} ms"
"$STACK" net clear redis >/dev/null
t0=$(now_ms); timeout 10 redis-cli -h 127.0.0.1 -p "$RP" get "$key" >/dev/null; fast=$(( $(now_ms) - t0 ))
[ "$fast" -lt 2000 ] || fail "bandwidth not cleared (${fast} ms)"
ok "bandwidth: 100 kB at 20 KB/s took ${took} ms, ${fast} ms after clear"

"$STACK" net timeout redis >/dev/null || fail "net timeout"
ping_ms "$RP" 3 >/dev/null && fail "PING answered through a black hole"
"$STACK" net clear redis >/dev/null
ping_ms "$RP" >/dev/null || fail "no PING after clearing the black hole"
ok "timeout: black hole (no answer within 3 s); answers after clear"

"$STACK" net reset redis >/dev/null || fail "net reset"
out="$(timeout 5 redis-cli -h 127.0.0.1 -p "$RP" ping 2>&1 || true)"
[ "$out" != PONG ] || fail "PING answered although connections are reset"
"$STACK" net clear redis >/dev/null
ping_ms "$RP" >/dev/null || fail "no PING after clearing the reset"
ok "reset: '$(tr '\n' ' ' <<<"$out" | cut -c1-60)'; answers after clear"

"$STACK" net down redis >/dev/null || fail "net down"
out="$(timeout 5 redis-cli -h 127.0.0.1 -p "$RP" ping 2>&1 || true)"
grep -qi 'refused' <<<"$out" || fail "expected connection refused with the proxy down, got: $out"
"$STACK" net up redis >/dev/null
ping_ms "$RP" >/dev/null || fail "no PING after net up"
ok "down: connection refused; up: answers"

mq() { local t0; t0=$(now_ms); mariadb --no-defaults -h 127.0.0.1 -P "$LAB_MYSQL_PROXIED_PORT" -u lab -plab --connect-timeout=5 -N -e 'SELECT 1' >/dev/null || return 1; echo $(( $(now_ms) - t0 )); }
"$STACK" net latency mysql 300 >/dev/null
m="$(mq)" || fail "query through the mysql proxy with latency"
[ "$m" -ge 300 ] || fail "MariaDB through +300 ms took ${m} ms"
"$STACK" net clear mysql >/dev/null
ok "mysql proxy: +300 ms latency -> ${m} ms for connect+query"

rq() { curl -s -m 10 -o /dev/null -w '%{time_total}' "$LAB_REGISTRY_PROXIED_URL/subjects"; }
"$STACK" net latency registry 300 >/dev/null
rt="$(rq)"; rt_ms="$(awk -v t="$rt" 'BEGIN{printf "%d", t*1000}')"
[ "$rt_ms" -ge 300 ] || fail "registry through +300 ms took ${rt_ms} ms"
"$STACK" net clear registry >/dev/null
ok "registry proxy: +300 ms latency -> ${rt_ms} ms per request"

"$STACK" net timeout kafka >/dev/null || fail "net timeout kafka"
if echo x | timeout 20 kcat -P -b "$LAB_KAFKA_PROXIED_BOOTSTRAP" -t __stacktest_none -X message.timeout.ms=3000 \
     -X socket.timeout.ms=2000 2>/dev/null; then fail "produced through black-holed Kafka proxies"; fi
kcat -L -b "$LAB_KAFKA_BOOTSTRAP" -m 5 >/dev/null || fail "direct Kafka listeners affected by the proxies' fault"
"$STACK" net clear kafka >/dev/null
kcat -L -b "$LAB_KAFKA_PROXIED_BOOTSTRAP" -m 10 | grep -q "broker . at" || fail "no metadata through the proxies after clear"
ok "kafka proxies black-holed: proxied clients cut off, direct ones not; clear restores"

"$STACK" net clear >/dev/null
[ "$("$STACK" net list | grep -c 'lab_')" = 0 ] || fail "toxics left after net clear"
ok "net clear: no toxics left"
