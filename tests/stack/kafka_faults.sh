#!/usr/bin/env bash
# kafka stop (graceful: leadership moves away first) / start, and pause (SIGSTOP: the broker drops
# out of the ISR) / resume (SIGCONT: it catches up and rejoins).
source "$(dirname "$0")/lib.sh"
need_ktool
topic="stacktest-kf-$RUN"
n=2
on_exit "'$KTOOL' delete '$topic'"
on_exit "'$STACK' kafka start $n"
on_exit "'$STACK' kafka resume $n"

full_isr() { [ "$("$KTOOL" describe "$topic" | grep -c 'isr 1,2,3$')" = 3 ]; }
not_in_isr() { ! "$KTOOL" describe "$topic" | grep -E "isr .*$n" >/dev/null; }
not_leader() { ! "$KTOOL" describe "$topic" | awk '{print $4}' | grep -qx "$n"; }
produce() { seq 1 "$1" | kcat -P -b "$LAB_KAFKA_BOOTSTRAP" -t "$topic" -X acks=all -X message.timeout.ms=60000; }

"$KTOOL" create "$topic" 3 3 >/dev/null || fail "create topic"
eventually 30 "full ISR" full_isr

pid="$(part_pid "kafka$n")"
done_before="$(cat "$STATE/kafka$n"/logs/server.log* 2>/dev/null | grep -c "BrokerServer id=$n\] shut down completed" || true)"
"$STACK" kafka stop "$n" || fail "kafka stop $n"
gone "$pid" || fail "broker $n still running after stop"
done_after="$(cat "$STATE/kafka$n"/logs/server.log* 2>/dev/null | grep -c "BrokerServer id=$n\] shut down completed" || true)"
[ "$done_after" -gt "$done_before" ] || fail "broker $n's log has no new 'shut down completed' (not a graceful stop)"
eventually 30 "broker $n leads nothing after a graceful stop" not_leader
expect_status_names "kafka$n" down
produce 200 || fail "produce with broker $n stopped"
ok "stop: broker $n shut down gracefully, leads nothing, produce continues"

"$STACK" kafka start "$n" || fail "kafka start $n"
eventually 90 "full ISR after start" full_isr
ok "start: broker $n back in every ISR"

pid="$(part_pid "kafka$n")"
"$STACK" kafka pause "$n" || fail "kafka pause $n"
[ "$(proc_state "$pid")" = T ] || fail "broker $n not stopped (state $(proc_state "$pid"))"
expect_status_names "kafka$n" paused
eventually 45 "paused broker $n out of every ISR" not_in_isr
produce 200 || fail "produce with broker $n paused"
ok "pause: broker $n frozen (SIGSTOP), dropped out of the ISR, produce continues"

"$STACK" kafka resume "$n" || fail "kafka resume $n"
[ "$(proc_state "$pid")" != T ] || fail "broker $n still stopped after resume"
eventually 90 "full ISR after resume" full_isr
expect_status_ok
ok "resume: broker $n running again and back in every ISR"
