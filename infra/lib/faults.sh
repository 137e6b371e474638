# shellcheck shell=bash
# Fault commands: process faults on one part (kill|stop|start|pause|resume) and network faults
# through Toxiproxy (net ...). Each prints what it did; each verb has an inverse:
#   kill, stop -> start      pause -> resume      net <toxic> -> net clear      net down -> net up

# cmd_fault KIND VERB [N]
cmd_fault() {
  local kind="$1" verb="${2:-}" n="${3:-}" part
  case "$kind" in
    kafka)   [[ "$n" =~ ^[1-3]$ ]] || die "usage: infra/stack.sh kafka kill|stop|start|pause|resume N   (N = 1..3)"; part="kafka$n" ;;
    cluster) [[ "$n" =~ ^[1-6]$ ]] || die "usage: infra/stack.sh cluster kill|stop|start|pause|resume N   (N = 1..6, port 1700N)"; part="cluster$n" ;;
    *) part="$kind" ;;
  esac
  case "$verb" in
    kill)   fault_kill "$part" ;;
    stop)   fault_stop "$part" ;;
    start)  fault_start "$part" ;;
    pause)  fault_pause "$part" ;;
    resume) fault_resume "$part" ;;
    *) die "unknown verb '$verb' (kill|stop|start|pause|resume)" ;;
  esac
}

fault_kill() {
  local part="$1" pid
  pid="$(part_pid "$part")" || { say "$part is not running"; return 0; }
  kill -KILL "$pid"
  wait_gone "$pid" 10 || die "$part (pid $pid) survived SIGKILL"
  rm -f "$(pid_file "$part")"
  say "$part killed (SIGKILL pid $pid)"
}

fault_stop() {
  local part="$1" pid t0
  pid="$(part_pid "$part")" || { say "$part is not running"; return 0; }
  t0="$(now_ms)"
  stop_part "$part" 60
  say "$part stopped (SIGTERM pid $pid, exited after $(( $(now_ms) - t0 )) ms)"
}

# Start one part and wait until it serves again (for a Kafka broker: registered in the metadata;
# for a cluster node: it answers and sees cluster_state:ok).
fault_start() {
  local part="$1" t0 pid
  t0="$(now_ms)"
  if pid="$(part_pid "$part")" && ! is_paused "$pid"; then
    say "$part already running (pid $pid)"
  else
    if [ "$part" = mysql-exporter ] || [ "$part" = registry ] || [[ "$part" == kafka* ]]; then
      install_all >/dev/null
    fi
    ensure_part "$part"
  fi
  part_ready "$part" || die "$part did not become healthy (log: $(part_log "$part"))"
  say "$part started (pid $(part_pid "$part"), healthy after $(( $(now_ms) - t0 )) ms)"
}

fault_pause() {
  local part="$1" pid
  pid="$(part_pid "$part")" || die "$part is not running"
  kill -STOP "$pid"
  wait_until 5 "$part to stop (SIGSTOP)" is_paused "$pid" || die "$part did not pause"
  say "$part paused (SIGSTOP pid $pid)"
}

fault_resume() {
  local part="$1" pid t0
  pid="$(part_pid "$part")" || die "$part is not running"
  t0="$(now_ms)"
  kill -CONT "$pid"
  wait_part "$part" "$(part_wait_secs "$part")" || die "$part did not become healthy after SIGCONT"
  say "$part resumed (SIGCONT pid $pid, healthy after $(( $(now_ms) - t0 )) ms)"
}

# ===== network faults via Toxiproxy =============================================================
toxi() {  # toxi METHOD PATH [JSON]
  local method="$1" path="$2" body="${3:-}" out code
  out="$(mktemp)"
  if [ -n "$body" ]; then
    code="$(curl -s -m 5 -o "$out" -w '%{http_code}' -X "$method" -H 'Content-Type: application/json' --data "$body" "$LAB_TOXIPROXY_URL$path")" || code=000
  else
    code="$(curl -s -m 5 -o "$out" -w '%{http_code}' -X "$method" "$LAB_TOXIPROXY_URL$path")" || code=000
  fi
  if [ "${code:0:1}" != 2 ]; then
    echo "toxiproxy $method $path -> HTTP $code: $(cat "$out")" >&2; rm -f "$out"; return 1
  fi
  cat "$out"; rm -f "$out"
}

# PROXY arguments: a proxy name, "kafka" (kafka1..3) or "all".
expand_proxies() {
  case "$1" in
    kafka) echo kafka1 kafka2 kafka3 ;;
    all) echo "${TOXI_PROXIES[*]}" ;;
    *) [[ " ${TOXI_PROXIES[*]} " == *" $1 "* ]] || die "unknown proxy '$1' (${TOXI_PROXIES[*]}, kafka, all)"; echo "$1" ;;
  esac
}

# set_toxic PROXY NAME TYPE STREAM ATTRIBUTES_JSON: replace toxic NAME on PROXY.
set_toxic() {
  local proxy="$1" name="$2" type="$3" stream="$4" attrs="$5"
  toxi DELETE "/proxies/$proxy/toxics/$name" >/dev/null 2>&1 || true
  toxi POST "/proxies/$proxy/toxics" \
    "{\"name\":\"$name\",\"type\":\"$type\",\"stream\":\"$stream\",\"toxicity\":1.0,\"attributes\":$attrs}" >/dev/null
}

is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

cmd_net() {
  local verb="${1:-list}" target="${2:-}" p
  toxiproxy_healthy || die "toxiproxy is not up (infra/stack.sh up)"
  case "$verb" in
    list)
      toxi GET /proxies | jq -r 'to_entries[] | .value | "\(.name)\t\(.listen) -> \(.upstream)\t\(if .enabled then "enabled" else "DISABLED" end)\t\([.toxics[] | "\(.name)(\(.stream)) \(.attributes|tostring)"] | join(", "))"' ;;
    latency)
      local ms="${3:-}" jitter="${4:-0}"
      is_uint "$ms" && is_uint "$jitter" || die "usage: infra/stack.sh net latency PROXY MS [JITTER_MS]"
      for p in $(expand_proxies "$target"); do
        set_toxic "$p" lab_latency_down latency downstream "{\"latency\":$ms,\"jitter\":$jitter}"
        say "net $p: +${ms}ms latency (jitter ${jitter}ms) on every server->client chunk"
      done ;;
    bandwidth)
      local kbps="${3:-}"
      is_uint "$kbps" || die "usage: infra/stack.sh net bandwidth PROXY KBPS   (kilobytes per second)"
      for p in $(expand_proxies "$target"); do
        set_toxic "$p" lab_bandwidth_down bandwidth downstream "{\"rate\":$kbps}"
        set_toxic "$p" lab_bandwidth_up bandwidth upstream "{\"rate\":$kbps}"
        say "net $p: bandwidth limited to ${kbps} KB/s each way"
      done ;;
    timeout)
      local ms="${3:-0}"
      is_uint "$ms" || die "usage: infra/stack.sh net timeout PROXY [MS]   (0 = black hole until cleared)"
      for p in $(expand_proxies "$target"); do
        set_toxic "$p" lab_timeout_up timeout upstream "{\"timeout\":$ms}"
        set_toxic "$p" lab_timeout_down timeout downstream "{\"timeout\":$ms}"
        if [ "$ms" = 0 ]; then say "net $p: black hole (data dropped both ways, connections held open)"
        else say "net $p: data dropped, connections closed after ${ms}ms"; fi
      done ;;
    reset)
      local ms="${3:-0}"
      is_uint "$ms" || die "usage: infra/stack.sh net reset PROXY [MS]"
      for p in $(expand_proxies "$target"); do
        set_toxic "$p" lab_reset_up reset_peer upstream "{\"timeout\":$ms}"
        say "net $p: connections reset (TCP RST) after ${ms}ms"
      done ;;
    down)
      for p in $(expand_proxies "$target"); do
        toxi POST "/proxies/$p" '{"enabled":false}' >/dev/null; say "net $p: proxy disabled (connections refused, open ones closed)"
      done ;;
    up)
      for p in $(expand_proxies "$target"); do
        toxi POST "/proxies/$p" '{"enabled":true}' >/dev/null; say "net $p: proxy enabled"
      done ;;
    clear)
      if [ -z "$target" ]; then
        toxi POST /reset >/dev/null; say "net: all proxies enabled, all toxics removed"
      else
        local t
        for p in $(expand_proxies "$target"); do
          for t in $(toxi GET "/proxies/$p/toxics" | jq -r '.[].name'); do toxi DELETE "/proxies/$p/toxics/$t" >/dev/null; done
          toxi POST "/proxies/$p" '{"enabled":true}' >/dev/null
          say "net $p: toxics removed, proxy enabled"
        done
      fi ;;
    *) die "unknown net verb '$verb' (list|latency|bandwidth|timeout|reset|down|up|clear)" ;;
  esac
}
