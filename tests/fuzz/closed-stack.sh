# Sourced by tests/fuzz/run.sh and tests/crash/run.sh: writes a server config (--config) whose
# stack endpoints all point at a closed loopback port, so the runs these tests queue end at
# preflight in milliseconds (inconclusive, parts unreachable) and never reach the shared stack;
# the fault script is /bin/false, so no run can kill or pause a part of it either.
#   closed_stack_config FILE
closed_stack_config() {
  local port=1  # tcpmux: nothing listens there (checked below), connect() is refused at once
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "127.0.0.1:$port answers: cannot build a closed stack config" >&2; return 1
  fi
  cat >"$1" <<JSON
{"stack": {
  "kafka_bootstrap": "127.0.0.1:$port",
  "registry_url": "http://127.0.0.1:$port/apis/ccompat/v7",
  "mysql_host": "127.0.0.1", "mysql_port": $port,
  "redis_host": "127.0.0.1", "redis_port": $port,
  "redis_cluster_seeds": ["127.0.0.1:$port"],
  "toxiproxy_url": "http://127.0.0.1:$port",
  "stack_script": "/bin/false",
  "role_binary": "/bin/false"
}}
JSON
}
