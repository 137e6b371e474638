#!/usr/bin/env bash
# Kill the leader of a partition (SIGKILL), keep producing with acks=all, restart it and see it
# rejoin the ISR of every partition. Also: status names the dead broker.
source "$(dirname "$0")/lib.sh"
need_ktool
topic="stacktest-fo-$RUN"
on_exit "'$KTOOL' delete '$topic'"

"$KTOOL" create "$topic" 3 3 >/dev/null || fail "create topic"
eventually 30 "full ISR on $topic" bash -c "[ \$('$KTOOL' describe '$topic' | grep -c 'isr 1,2,3\$') = 3 ]"
victim="$("$KTOOL" describe "$topic" | awk '$2 == 0 {print $4}')"
[[ "$victim" =~ ^[1-3]$ ]] || fail "no leader for partition 0"
on_exit "'$STACK' kafka start $victim"
pid="$(part_pid "kafka$victim")"

"$STACK" kafka kill "$victim" || fail "kafka kill $victim"
gone "$pid" || fail "broker $victim (pid $pid) still alive after kill"
expect_status_names "kafka$victim" down
ok "broker $victim (leader of partition 0) killed, status names it"

t0=$(now_ms)
seq 1 1000 | kcat -P -b "$LAB_KAFKA_BOOTSTRAP" -t "$topic" -X acks=all -X enable.idempotence=true \
  -X message.timeout.ms=60000 || fail "acks=all produce with broker $victim dead"
ok "1000 messages produced with acks=all while broker $victim is dead ($(( $(now_ms) - t0 )) ms, includes leader failover)"

no_victim_in_isr() { ! "$KTOOL" describe "$topic" | grep -E "isr .*$victim" >/dev/null; }
eventually 30 "broker $victim out of every ISR" no_victim_in_isr
ok "ISR shrank to the 2 live brokers"

"$STACK" kafka start "$victim" || fail "kafka start $victim"
eventually 90 "broker $victim back in the ISR of all 3 partitions" \
  bash -c "[ \$('$KTOOL' describe '$topic' | grep -c 'isr 1,2,3\$') = 3 ]"
expect_status_ok
ok "broker $victim restarted and rejoined the ISR"

got="$(timeout 60 kcat -C -b "$LAB_KAFKA_BOOTSTRAP" -t "$topic" -o beginning -e -q -f '%s\n' | sort -n | uniq | wc -l)"
[ "$got" = 1000 ] || fail "read back $got distinct messages, expected 1000"
ok "all 1000 messages readable after the restart"
