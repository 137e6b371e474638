#!/usr/bin/env bash
# MariaDB as user lab (TCP from 127.0.0.1 and the socket as localhost), the InnoDB settings the
# experiments rely on (short lock wait -> 1205, deadlock -> 1213, durable commits), and
# kill/start (committed rows survive), stop/start, pause/resume, the Toxiproxy route.
source "$(dirname "$0")/lib.sh"
SOCK="$STATE/mysql/mysqld.sock"
db="$LAB_MYSQL_DATABASE"
t="stacktest_$RUN"
q() { mariadb --no-defaults -h "$LAB_MYSQL_HOST" -P "$LAB_MYSQL_PORT" -u "$LAB_MYSQL_USER" -p"$LAB_MYSQL_PASSWORD" \
        --connect-timeout=3 -N -B "$db" -e "$1"; }
on_exit "mariadb --no-defaults -h 127.0.0.1 -P '$LAB_MYSQL_PORT' -u lab -plab '$db' -e 'DROP TABLE IF EXISTS $t'"
on_exit "'$STACK' mysql start"
on_exit "'$STACK' mysql resume"

[ "$(q 'SELECT CURRENT_USER()')" = "lab@127.0.0.1" ] || fail "TCP login as lab"
[ "$(mariadb --no-defaults --socket="$SOCK" -u lab -plab -N -B "$db" -e 'SELECT CURRENT_USER()')" = lab@localhost ] \
  || fail "socket login as lab@localhost"
q 'SELECT VERSION()' | grep -q MariaDB || fail "not MariaDB"
ok "lab/lab logs in over TCP (lab@127.0.0.1) and the socket (lab@localhost): $(q 'SELECT VERSION()')"

vars="$(q "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('innodb_lock_wait_timeout','innodb_deadlock_detect','innodb_flush_log_at_trx_commit','sync_binlog','log_bin','binlog_format','port','bind_address')" | tr '\t' '=' | tr '\n' ' ')"
for want in innodb_lock_wait_timeout=5 innodb_deadlock_detect=ON innodb_flush_log_at_trx_commit=1 sync_binlog=1 \
            log_bin=ON binlog_format=ROW "port=$LAB_MYSQL_PORT" bind_address=127.0.0.1; do
  [[ " $vars" == *" $want "* ]] || fail "expected $want in: $vars"
done
ok "settings: $vars"

q "CREATE TABLE $t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB; INSERT INTO $t VALUES (1,0),(2,0)" || fail "create table"
q "CREATE DATABASE lab_stacktest_$RUN; DROP DATABASE lab_stacktest_$RUN" || fail "lab may not create per-run schemas lab*"
ok "lab creates tables in $db and per-run schemas lab*"

# Lock wait timeout: a second transaction waiting on a held row lock fails with 1205.
( q "BEGIN; SELECT v FROM $t WHERE id=1 FOR UPDATE; DO SLEEP(4); COMMIT" >/dev/null ) &
holder=$!
# The lock is held once the holder's session runs its SLEEP (its own thread in PROCESSLIST).
for _ in $(seq 50); do
  [ "$(q "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'DO SLEEP(4)%'")" = 1 ] && break
  sleep 0.1
done
err="$(q "SET SESSION innodb_lock_wait_timeout=1; UPDATE $t SET v=9 WHERE id=1" 2>&1 || true)"
wait "$holder"
grep -q 'ERROR 1205' <<<"$err" || fail "expected ERROR 1205 lock wait timeout, got: $err"
ok "lock wait timeout -> ERROR 1205"

# Deadlock: two transactions lock rows 1,2 in opposite order; InnoDB kills one with 1213.
a="$(mktemp)"; b="$(mktemp)"
( q "BEGIN; UPDATE $t SET v=1 WHERE id=1; DO SLEEP(1); UPDATE $t SET v=1 WHERE id=2; COMMIT" >"$a" 2>&1 || true ) &
pa=$!
( q "BEGIN; UPDATE $t SET v=2 WHERE id=2; DO SLEEP(1); UPDATE $t SET v=2 WHERE id=1; COMMIT" >"$b" 2>&1 || true ) &
pb=$!
wait "$pa" "$pb"
cat "$a" "$b" | grep -q 'ERROR 1213' || fail "expected one ERROR 1213 deadlock, got: $(cat "$a" "$b")"
rm -f "$a" "$b"
ok "deadlock detected -> ERROR 1213"

q "INSERT INTO $t VALUES (3, 42)" || fail "insert before kill"
pid="$(part_pid mysql)"
"$STACK" mysql kill || fail "mysql kill"
gone "$pid" || fail "mariadbd still alive after kill"
q 'SELECT 1' >/dev/null 2>&1 && fail "MariaDB still answers after kill"
expect_status_names mysql down
"$STACK" mysql start || fail "mysql start"
[ "$(q "SELECT v FROM $t WHERE id=3")" = 42 ] || fail "a committed row was lost across kill -9"
ok "kill (SIGKILL)/start: crash recovery kept the committed row"

pid="$(part_pid mysql)"
"$STACK" mysql pause || fail "mysql pause"
[ "$(proc_state "$pid")" = T ] || fail "mariadbd not stopped"
timeout 5 mariadb --no-defaults -h 127.0.0.1 -P "$LAB_MYSQL_PORT" -u lab -plab --connect-timeout=2 -e 'SELECT 1' >/dev/null 2>&1 \
  && fail "paused MariaDB answered"
"$STACK" mysql resume || fail "mysql resume"
q 'SELECT 1' >/dev/null || fail "MariaDB does not answer after resume"
ok "pause: connections hang; resume: answers again"

clean_before="$(grep -c 'Shutdown complete' "$STATE/mysql/error.log" || true)"
"$STACK" mysql stop || fail "mysql stop"
[ "$(grep -c 'Shutdown complete' "$STATE/mysql/error.log" || true)" -gt "$clean_before" ] || fail "no new 'Shutdown complete' in the error log"
"$STACK" mysql start || fail "mysql start after stop"
[ "$(q "SELECT v FROM $t WHERE id=3")" = 42 ] || fail "row lost across stop/start"
ok "stop (clean shutdown)/start"

[ "$(mariadb --no-defaults -h 127.0.0.1 -P "$LAB_MYSQL_PROXIED_PORT" -u lab -plab --connect-timeout=3 -N -B "$db" -e "SELECT v FROM $t WHERE id=3")" = 42 ] \
  || fail "query through the Toxiproxy route (port $LAB_MYSQL_PROXIED_PORT)"
expect_status_ok
ok "Toxiproxy route :$LAB_MYSQL_PROXIED_PORT works"
