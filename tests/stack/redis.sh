#!/usr/bin/env bash
# Redis standalone: commands over TCP and through Toxiproxy; kill/start (AOF keeps a key written
# over a second before), pause/resume, stop/start; status names the part while it is down.
source "$(dirname "$0")/lib.sh"
P="${LAB_REDIS##*:}"
PP="${LAB_REDIS_PROXIED##*:}"
r() { timeout 5 redis-cli -h 127.0.0.1 -p "$P" "$@"; }
key="stacktest:$RUN"
on_exit "timeout 5 redis-cli -h 127.0.0.1 -p '$P' del '$key'"
on_exit "'$STACK' redis start"
on_exit "'$STACK' redis resume"

[ "$(r ping)" = PONG ] || fail "PING"
[ "$(r set "$key" v1)" = OK ] && [ "$(r get "$key")" = v1 ] || fail "SET/GET"
[ "$(timeout 5 redis-cli -h 127.0.0.1 -p "$PP" get "$key")" = v1 ] || fail "GET through Toxiproxy :$PP"
r info server | grep -q '^redis_version:7\.' || fail "not Redis 7"
ok "SET/GET on :$P and through Toxiproxy :$PP ($(r info server | tr -d '\r' | grep ^redis_version))"

sleep 1.5    # appendfsync everysec
pid="$(part_pid redis)"
"$STACK" redis kill || fail "redis kill"
gone "$pid" || fail "redis still alive after kill"
[ "$(r ping 2>/dev/null)" = PONG ] && fail "redis answers after kill"
expect_status_names redis down
"$STACK" redis start || fail "redis start"
[ "$(r get "$key")" = v1 ] || fail "the key did not survive kill -9 (AOF)"
ok "kill/start: the key survived via the AOF"

pid="$(part_pid redis)"
"$STACK" redis pause || fail "redis pause"
[ "$(proc_state "$pid")" = T ] || fail "redis not stopped"
[ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$P" ping 2>/dev/null)" = PONG ] && fail "paused redis answered"
expect_status_names redis paused
"$STACK" redis resume || fail "redis resume"
[ "$(r ping)" = PONG ] || fail "no PONG after resume"
ok "pause: no answer, status says paused; resume: PONG"

"$STACK" redis stop || fail "redis stop"
expect_status_names redis down
"$STACK" redis start || fail "redis start after stop"
[ "$(r get "$key")" = v1 ] || fail "key lost across stop/start"
expect_status_ok
ok "stop/start: key kept"
