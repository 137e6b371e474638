#!/usr/bin/env bash
# acks=all to an RF=3 topic and read back; the proxied listeners advertise the proxy ports;
# auto topic creation is off.
source "$(dirname "$0")/lib.sh"
need_ktool
topic="stacktest-pc-$RUN"
on_exit "'$KTOOL' delete '$topic'"

"$KTOOL" create "$topic" 3 3 >/dev/null || fail "create topic $topic"
desc="$("$KTOOL" describe "$topic")" || fail "describe $topic"
[ "$(grep -c 'replicas 1,2,3 isr 1,2,3$' <<<"$desc")" = 3 ] || fail "expected 3 partitions with replicas=isr=1,2,3, got: $desc"
ok "topic $topic: 3 partitions, RF 3, full ISR"

n=2000
seq 1 "$n" | kcat -P -b "$LAB_KAFKA_BOOTSTRAP" -t "$topic" -X acks=all -X enable.idempotence=true \
  -X message.timeout.ms=30000 || fail "produce with acks=all"
got="$(timeout 60 kcat -C -b "$LAB_KAFKA_BOOTSTRAP" -t "$topic" -o beginning -e -q -f '%s\n' | sort -n | uniq)"
[ "$(wc -l <<<"$got")" = "$n" ] || fail "read back $(wc -l <<<"$got") distinct messages, expected $n"
[ "$(head -n1 <<<"$got")" = 1 ] && [ "$(tail -n1 <<<"$got")" = "$n" ] || fail "read back the wrong messages"
ok "$n messages produced with acks=all and read back"

md="$(kcat -L -b "$(cut -d, -f1 <<<"$LAB_KAFKA_PROXIED_BOOTSTRAP")" -m 10)" || fail "metadata through the proxy"
for p in $(tr ',' ' ' <<<"$LAB_KAFKA_PROXIED_BOOTSTRAP"); do
  grep -q "at $p" <<<"$md" || fail "metadata via the proxy does not advertise $p: $md"
done
seq 1 100 | kcat -P -b "$LAB_KAFKA_PROXIED_BOOTSTRAP" -t "$topic" -X acks=all -X message.timeout.ms=30000 \
  || fail "produce through the proxies"
ok "proxied bootstrap: brokers advertised at the Toxiproxy ports, produce works"

if echo x | kcat -P -b "$LAB_KAFKA_BOOTSTRAP" -t "stacktest-nosuch-$RUN" -X message.timeout.ms=3000 2>/dev/null; then
  fail "producing to a topic that does not exist succeeded (auto.create.topics.enable should be false)"
fi
kcat -L -b "$LAB_KAFKA_BOOTSTRAP" -t "stacktest-nosuch-$RUN" 2>/dev/null | grep -q 'Broker: Unknown topic' \
  || fail "topic stacktest-nosuch-$RUN exists after a produce"
ok "no auto-created topics"
