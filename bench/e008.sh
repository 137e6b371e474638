#!/usr/bin/env bash
# E-008 benchmark: runs the cache-stampede experiment (both modes, real MySQL and Redis) REPEAT
# times and prints, per mode, the DB reads MySQL served (db_read_log rows), client p50/p99 and
# errors, and the naive/defended DB-read ratio; then the median and range over the repeats.
#   bench/e008.sh [REPEAT=3] [name=value ...]      e.g. bench/e008.sh 3 clients=200
# Needs lab-run-experiment from a build dir: LAB_BUILD_DIR (default build/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REPEAT="${1:-3}"
shift || true
PARAMS=("$@")
[ ${#PARAMS[@]} -eq 0 ] && PARAMS=(clients=200)
BIN="${LAB_BUILD_DIR:-$ROOT/build}/tests/integration/lab-run-experiment"
[ -x "$BIN" ] || { echo "bench: $BIN missing (cmake --build <dir> --target lab-run-experiment)"; exit 1; }

metric() {  # output mode key
  awk -v mode="  $2:" -v key="$3" 'index($0, mode) == 1 {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) print kv[2] } }' <<<"$1"
}

printf 'E-008 benchmark: %s, %s run(s), %s cores, load average before: %s\n\n' "${PARAMS[*]}" \
  "$REPEAT" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-4s %-8s %9s %8s %9s %9s %7s %10s  %s\n' run mode db_reads requests p50_ms p99_ms errors \
  ratio verdict
RATIOS=()
for run in $(seq "$REPEAT"); do
  out=$("$BIN" E-008 "${PARAMS[@]}" 2>/dev/null)
  verdict=$(sed -n 's/^verdict=\([a-z_]*\).*/\1/p' <<<"$out")
  naive=$(metric "$out" failure db_reads)
  defended=$(metric "$out" success db_reads)
  ratio=$(awk -v a="$naive" -v b="$defended" 'BEGIN{ if (b > 0) printf "%.1f", a/b; else print "inf" }')
  RATIOS+=("$ratio")
  for mode in failure success; do
    printf '%-4s %-8s %9s %8s %9.2f %9.2f %7s %10s  %s\n' "$run" "$mode" \
      "$(metric "$out" "$mode" db_reads)" "$(metric "$out" "$mode" requests)" \
      "$(metric "$out" "$mode" p50_ms)" "$(metric "$out" "$mode" p99_ms)" \
      "$(metric "$out" "$mode" errors)" "$([ "$mode" = success ] && echo "$ratio" || echo -)" \
      "$([ "$mode" = success ] && echo "$verdict" || echo)"
  done
done
printf '\nnaive/defended db_reads ratio over %s run(s): %s (median %s)\n' "$REPEAT" "${RATIOS[*]}" \
  "$(printf '%s\n' "${RATIOS[@]}" | sort -g | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')"
printf 'load average after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
