#!/usr/bin/env bash
# The stack is up, `up` is idempotent and quick on a running stack, and `env` lists the
# endpoints the lab server and runners are configured with.
source "$(dirname "$0")/lib.sh"

out="$("$STACK" status)" || fail "status exited non-zero: $out"
grep -q '^all 15 parts up$' <<<"$out" || fail "status does not say all parts are up"
ok "status: all 15 parts up"

t0=$(now_ms)
"$STACK" up >/dev/null 2>&1 || fail "a second 'up' on a running stack failed"
took=$(( $(now_ms) - t0 ))
[ "$took" -lt 30000 ] || fail "a second 'up' took ${took} ms"
expect_status_ok
ok "up on a running stack: harmless (${took} ms)"

env_out="$("$STACK" env)"
for expect in \
  'LAB_KAFKA_BOOTSTRAP=127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094' \
  'LAB_REGISTRY_URL=http://127.0.0.1:18091/apis/ccompat/v7' \
  'LAB_MYSQL_HOST=127.0.0.1' 'LAB_MYSQL_PORT=13306' 'LAB_MYSQL_USER=lab' 'LAB_MYSQL_PASSWORD=lab' \
  'LAB_MYSQL_DATABASE=lab' 'LAB_REDIS=127.0.0.1:16379' \
  'LAB_REDIS_CLUSTER_SEEDS=127.0.0.1:17001,127.0.0.1:17002,127.0.0.1:17003,127.0.0.1:17004,127.0.0.1:17005,127.0.0.1:17006' \
  'LAB_TOXIPROXY_URL=http://127.0.0.1:18474' 'LAB_PROMETHEUS_URL=http://127.0.0.1:19090'; do
  if [ -n "${LAB_STACK_ENV:-}" ]; then grep -q "^${expect%%=*}=" <<<"$env_out" || fail "env lacks ${expect%%=*}"
  else grep -qxF "$expect" <<<"$env_out" || fail "env lacks $expect"; fi
done
grep -vqE '^[A-Z_]+=[^ ]+$' <<<"$env_out" && fail "env has a line that is not KEY=VALUE"
ok "env: endpoints listed as KEY=VALUE"
