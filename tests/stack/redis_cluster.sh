#!/usr/bin/env bash
# Redis Cluster: 3 masters + 3 replicas covering all slots; keys spread over all masters with
# MOVED redirects followed; a killed master is replaced by its replica and rejoins as a replica
# when started; pause/resume and stop/start of a node.
source "$(dirname "$0")/lib.sh"
IFS=, read -r -a seeds <<<"$LAB_REDIS_CLUSTER_SEEDS"
port_of() { echo "${1##*:}"; }
c() { timeout 5 redis-cli -h 127.0.0.1 -p "$@"; }
node_of_port() { local i; for i in "${!seeds[@]}"; do [ "$(port_of "${seeds[$i]}")" = "$1" ] && echo $((i + 1)); done; return 0; }
# the port of a seed that answers, other than $1 if given (a killed node may be any of them)
live_seed() {
  local s
  for s in "${seeds[@]}"; do
    [ "$(port_of "$s")" = "${1:-}" ] && continue
    [ "$(c "$(port_of "$s")" ping 2>/dev/null)" = PONG ] && { port_of "$s"; return 0; }
  done
  return 1
}
# masters that serve slots: a restarted old master shows as a slotless master in the others' view
# until gossip tells them it has become a replica, so it is not counted
masters() { c "$(live_seed)" cluster nodes | awk '$3 ~ /master/ && $3 !~ /fail/ && NF >= 9 {split($2,a,"@"); split(a[1],b,":"); print b[2]}' | sort; }
three_masters() { [ "$(masters | wc -l)" = 3 ]; }
# cluster_state ok on every node and every replica's link to its master up: a replica that was
# just started answers and reports ok before its first sync, and promoting it would lose the keys
cluster_ok_everywhere() {
  local s info
  for s in "${seeds[@]}"; do
    c "$(port_of "$s")" cluster info | tr -d '\r' | grep -qx cluster_state:ok || return 1
    info="$(c "$(port_of "$s")" info replication | tr -d '\r')"
    grep -qx role:slave <<<"$info" && ! grep -qx master_link_status:up <<<"$info" && return 1
  done
  timeout 10 redis-cli --cluster check "127.0.0.1:$(live_seed)" | grep -q 'All 16384 slots covered'
}
prefix="stacktest:$RUN"
on_exit "for i in \$(seq 1 300); do echo DEL $prefix:\$i; done | timeout 20 redis-cli -c -h 127.0.0.1 -p ${seeds[0]##*:}"
for i in 1 2 3 4 5 6; do on_exit "'$STACK' cluster start $i"; on_exit "'$STACK' cluster resume $i"; done

eventually 30 "cluster ok, every replica in sync" cluster_ok_everywhere
[ "$(masters | wc -l)" = 3 ] || fail "expected 3 masters, got $(masters | tr '\n' ' ')"
[ "$(c "$(port_of "${seeds[0]}")" cluster nodes | grep -c slave)" = 3 ] || fail "expected 3 replicas"
ok "cluster ok: 3 masters ($(masters | tr '\n' ' ')) + 3 replicas, all slots covered"

n=300
for i in $(seq 1 $n); do echo "SET $prefix:$i $i"; done | redis-cli -c -h 127.0.0.1 -p "$(port_of "${seeds[0]}")" >/dev/null \
  || fail "SET through the cluster"
total=0
for m in $(masters); do
  cnt="$(timeout 10 redis-cli -h 127.0.0.1 -p "$m" --scan --pattern "$prefix:*" | wc -l)"
  [ "$cnt" -gt 0 ] || fail "master :$m holds none of the keys"
  total=$((total + cnt))
done
[ "$total" = "$n" ] || fail "masters hold $total keys, expected $n"
for i in 1 77 150 299; do
  [ "$(redis-cli -c -h 127.0.0.1 -p "$(port_of "${seeds[5]}")" get "$prefix:$i")" = "$i" ] || fail "GET $prefix:$i via ${seeds[5]}"
done
ok "$n keys spread over all 3 masters; reads through another seed follow redirects"

key="$prefix:1"
slot="$(c "$(port_of "${seeds[0]}")" cluster keyslot "$key")"
# the master holding keys of SLOT, other than $1 if given
slot_owner() {
  local m
  for m in $(masters); do
    [ "$m" = "${1:-}" ] && continue
    [ "$(c "$m" cluster countkeysinslot "$slot")" -gt 0 ] && { echo "$m"; return 0; }
  done
  return 1
}
owner="$(slot_owner)"
[ -n "$owner" ] || fail "no master holds slot $slot"
other="$(masters | grep -vx "$owner" | head -n1)"
reply="$(c "$other" get "$key")"
[[ "$reply" == MOVED* ]] || fail "GET on a non-owner without -c did not answer MOVED: $reply"
ok "slot $slot of $key is on :$owner; :$other answers '$reply'"

victim="$(node_of_port "$owner")"
pid="$(part_pid "cluster$victim")"
"$STACK" cluster kill "$victim" || fail "cluster kill $victim"
gone "$pid" || fail "node $victim alive after kill"
expect_status_names "cluster$victim" down
eventually 30 "a replica takes over slot $slot" slot_owner "$owner"
eventually 30 "GET $key served again" bash -c "[ \"\$(timeout 5 redis-cli -c -h 127.0.0.1 -p $(live_seed "$owner") get '$key')\" = 1 ]"
ok "master :$owner killed: its replica was promoted and serves slot $slot"

"$STACK" cluster start "$victim" || fail "cluster start $victim"
eventually 30 "node $victim rejoins as a replica" bash -c "timeout 5 redis-cli -h 127.0.0.1 -p $owner role | head -n1 | grep -qx slave"
eventually 30 "cluster ok everywhere" cluster_ok_everywhere
eventually 30 "3 masters serving slots after the restart" three_masters
ok "start: node $victim back as a replica, cluster ok"

# Back to the roles the stack was created with, so what runs next (the experiments) finds the
# cluster as a fresh stack has it: the old master takes over again (a coordinated failover).
c "$owner" cluster failover >/dev/null || fail "CLUSTER FAILOVER on :$owner"
eventually 30 "node $victim master again" bash -c "timeout 5 redis-cli -h 127.0.0.1 -p $owner role | head -n1 | grep -qx master"
eventually 30 "cluster ok everywhere after the failback" cluster_ok_everywhere
eventually 30 "3 masters serving slots after the failback" three_masters
ok "failback: node $victim master again"

replica_port="$(c "$(port_of "${seeds[0]}")" cluster nodes | awk '$3 ~ /slave/ {split($2,a,"@"); split(a[1],b,":"); print b[2]; exit}')"
r="$(node_of_port "$replica_port")"
pid="$(part_pid "cluster$r")"
"$STACK" cluster pause "$r" || fail "cluster pause $r"
[ "$(proc_state "$pid")" = T ] || fail "node $r not stopped"
[ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$replica_port" ping 2>/dev/null)" = PONG ] && fail "paused node answered"
"$STACK" cluster resume "$r" || fail "cluster resume $r"
eventually 30 "cluster ok after resume" cluster_ok_everywhere
ok "pause/resume of replica node $r"

"$STACK" cluster stop "$r" || fail "cluster stop $r"
expect_status_names "cluster$r" down
"$STACK" cluster start "$r" || fail "cluster start $r"
eventually 30 "cluster ok after stop/start" cluster_ok_everywhere
[ "$(redis-cli -c -h 127.0.0.1 -p "$(port_of "${seeds[0]}")" get "$prefix:150")" = 150 ] || fail "data lost"
expect_status_ok
ok "stop/start of node $r; data intact"
