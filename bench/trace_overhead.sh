#!/usr/bin/env bash
# Tracing's cost (issue 19): W3 (STEPS no-op steps in a chain, every transition checkpointed)
# with span export off and on, alternating in one sitting, N runs each; medians and the
# overhead per step. "on" exports every span over OTLP/HTTP to the tests' receiver
# (tests/support/otlp_receiver.py, which decodes each batch with opentelemetry-proto and
# appends it to a file), the batch processor's defaults otherwise.
# usage: bench/trace_overhead.sh            env: N (7), STEPS (1000), PHOENIX, PHOENIX_VENV
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_BENCH:-$root/../shared/bench}
PHOENIX=${PHOENIX:-$root/target/release/phoenix}
venv=${PHOENIX_VENV:-$root/.tools/venv}
N=${N:-7}
export STEPS=${STEPS:-1000}
[ -x "$PHOENIX" ] || { echo "no $PHOENIX: cargo build --release" >&2; exit 1; }
tmp=$(mktemp -d)
rx=
trap '[ -n "$rx" ] && kill "$rx" 2>/dev/null; rm -rf "$tmp"' EXIT
python3 "$shared/peers/phoenix_runbook.py" W3 > "$tmp/w3.yaml"
"$venv/bin/python" "$root/tests/support/otlp_receiver.py" "$tmp/port" "$tmp/spans.jsonl" &
rx=$!
for _ in $(seq 1 300); do [ -s "$tmp/port" ] && break; sleep 0.1; done
endpoint="http://127.0.0.1:$(cat "$tmp/port")"
echo "# $(nproc) cores; $(date -u +%FT%TZ); uptime:$(uptime | sed 's/.*load average/ load average/')"
echo "# $PHOENIX, W3 with STEPS=$STEPS, N=$N each, alternating off/on"
one() { # MODE → wall seconds of one run in a fresh state directory
  local st="$tmp/st-$1-$RANDOM" t0 t1
  t0=$(date +%s.%N)
  if [ "$1" = on ]; then
    PHOENIX_OTLP_ENDPOINT=$endpoint "$PHOENIX" --state "$st" run "$tmp/w3.yaml" >/dev/null 2>&1
  else
    env -u PHOENIX_OTLP_ENDPOINT -u OTEL_EXPORTER_OTLP_ENDPOINT "$PHOENIX" --state "$st" run "$tmp/w3.yaml" >/dev/null 2>&1
  fi
  t1=$(date +%s.%N)
  rm -rf "$st"
  echo "$t1 - $t0" | bc -l
}
one off >/dev/null; one on >/dev/null # warm-up
off=(); on=()
for _ in $(seq 1 "$N"); do
  off+=("$(one off)")
  on+=("$(one on)")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
m_off=$(median "${off[@]}"); m_on=$(median "${on[@]}")
spans=$(wc -l < "$tmp/spans.jsonl")
echo "off: ${off[*]}"
echo "on:  ${on[*]}"
awk -v a="$m_off" -v b="$m_on" -v s="$STEPS" -v sp="$spans" 'BEGIN {
  printf "median off %.3f s, on %.3f s: %+.1f%%; per step %.1f µs off, %.1f µs on (%+.1f µs); %d spans received\n",
    a, b, (b - a) / a * 100, a / s * 1e6, b / s * 1e6, (b - a) / s * 1e6, sp }'
