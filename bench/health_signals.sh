#!/usr/bin/env bash
# One `phoenix health` evaluation of N `http` signals whose server answers each request after
# DELAY seconds (bench/slow_health_server.py, one thread per request): the wall time shows
# whether probes run at once (≈ DELAY) or one after another (≈ N × DELAY). The same with a
# server that answers at once gives the per-signal overhead of probing and scoring.
# A benchmark, not a test: it prints figures and asserts nothing. Record them in
# docs/benchmarks.md.
#
# usage: bench/health_signals.sh     env: PHOENIX (default target/release/phoenix, built here),
#        SIGNALS (200), DELAY (0.1), RUNS (5)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
signals=${SIGNALS:-200}
delay=${DELAY:-0.1}
runs=${RUNS:-5}
if [ -z "${PHOENIX:-}" ]; then
  (cd "$root" && cargo build --release --quiet)
  PHOENIX=$root/target/release/phoenix
fi
tmp=$(mktemp -d /tmp/phoenix-bench-health.XXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

start_server() { # DELAY → sets $port (not in a subshell, so the trap knows the pid)
  python3 "$root/bench/slow_health_server.py" "$1" >"$tmp/port.$1" &
  pids+=($!)
  for _ in $(seq 100); do [ -s "$tmp/port.$1" ] && break; sleep 0.05; done
  port=$(head -1 "$tmp/port.$1")
}

runbook() { # port [count] → a runbook of $signals (or count) http signals against it
  local count=${2:-$signals}
  echo "version: 1"
  echo "name: bench-health"
  echo "signals:"
  for i in $(seq "$count"); do
    cat <<YAML
  s$i:
    uses: http
    with: { url: "http://127.0.0.1:$1/health?s=$i", timeout: 10s }
    weight:
      - { when: "outputs.json.status == 'healthy'", weight: 0 }
      - { weight: 1 }
YAML
  done
  echo "levels:"
  echo "  - { name: ok, max: 0 }"
  echo "  - { name: degraded }"
  echo "steps:"
  echo "  act: { needs: [score], when: \"score.level != 'ok'\", uses: noop }"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

measure() { # file [count] → median wall ms, peak RSS KiB
  local file=$1 count=${2:-$signals} times=() rss=0
  for _ in $(seq "$runs"); do
    local t0 t1 out
    t0=$(date +%s%N)
    out=$(/usr/bin/time -f '%M' "$PHOENIX" --state "$tmp/state" health "$file" --output json 2>&1 >"$tmp/out.json")
    t1=$(date +%s%N)
    python3 - "$tmp/out.json" "$count" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["total"] == 0 and len(s["signals"]) == int(sys.argv[2]), s
PY
    times+=($(((t1 - t0) / 1000000)))
    local r=${out##*$'\n'}
    [ "$r" -gt "$rss" ] && rss=$r
  done
  echo "$(printf '%s\n' "${times[@]}" | median) $rss"
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "# phoenix health, $signals http signals: $(nproc) cores, $cpu; median of $runs runs"
echo "# $("$PHOENIX" --version)"
start_server "$delay"
slow=$port
start_server 0
fast=$port
runbook "$slow" >"$tmp/slow.yaml"
runbook "$fast" >"$tmp/fast.yaml"
runbook "$fast" 1 >"$tmp/one.yaml"
"$PHOENIX" validate "$tmp/slow.yaml" >/dev/null
read -r slow_ms slow_rss < <(measure "$tmp/slow.yaml")
read -r fast_ms fast_rss < <(measure "$tmp/fast.yaml")
read -r one_ms one_rss < <(measure "$tmp/one.yaml" 1)
sequential_ms=$(awk -v n="$signals" -v d="$delay" 'BEGIN { printf "%d", n * d * 1000 }')
printf '%-34s %10s %14s\n' case median_ms peak_RSS_MiB
printf '%-34s %10s %14.1f\n' "answer after ${delay}s" "$slow_ms" "$(echo "$slow_rss / 1024" | bc -l)"
printf '%-34s %10s %14.1f\n' "answer at once" "$fast_ms" "$(echo "$fast_rss / 1024" | bc -l)"
printf '%-34s %10s %14.1f\n' "one signal, answer at once" "$one_ms" "$(echo "$one_rss / 1024" | bc -l)"
printf '%-34s %10s\n' "one after another would take" "$sequential_ms"
awk -v f="$fast_ms" -v o="$one_ms" -v n="$signals" 'BEGIN { printf "per-signal overhead ((at once - one signal) / (N - 1)): %.3f ms\n", (f - o) / (n - 1) }'
