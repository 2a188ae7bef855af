#!/usr/bin/env bash
# How long `phoenix validate` takes, and how much memory, on generated runbooks of 100,
# 1,000 and 10,000 steps (bench/gen_runbook.py: fan-outs and chains, templates reading
# ancestors' outputs, params, vars, secrets, signals). A benchmark, not a test: it prints
# figures and asserts nothing. Record them in docs/benchmarks.md.
#
# usage: bench/validate.sh [N...]     env: PHOENIX (default target/release/phoenix, built
#        here), RUNS (5), SEED (1)
#
# Wall time is hyperfine's median when hyperfine is installed (apt-get install hyperfine),
# otherwise the median of RUNS timed runs; peak RSS is the largest of RUNS runs of
# /usr/bin/time (apt-get install time).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-5}
seed=${SEED:-1}
sizes=("$@")
[ ${#sizes[@]} -eq 0 ] && sizes=(100 1000 10000)

if [ -z "${PHOENIX:-}" ]; then
  (cd "$root" && cargo build --release --quiet)
  PHOENIX=$root/target/release/phoenix
fi
if [ ! -x /usr/bin/time ]; then
  echo "bench/validate.sh needs /usr/bin/time: apt-get install time" >&2
  exit 1
fi
tmp=$(mktemp -d /tmp/phoenix-bench-validate.XXXX)
trap 'rm -rf "$tmp"' EXIT

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
echo "# phoenix validate: $(nproc) cores, $cpu, $mem RAM; $runs runs each; seed $seed"
echo "# $("$PHOENIX" --version)"
printf '%8s %8s %10s %12s %10s\n' steps lines file_KiB median_ms peak_RSS_MiB
for n in "${sizes[@]}"; do
  file=$tmp/bench-$n.yaml
  python3 "$root/bench/gen_runbook.py" "$n" --seed "$seed" >"$file"
  # Every generated runbook must be valid, or the figures would measure error reporting.
  "$PHOENIX" validate "$file" >/dev/null
  rss=0
  walls=()
  for _ in $(seq "$runs"); do
    t0=$(date +%s%N)
    /usr/bin/time -f "%M" -o "$tmp/rss" "$PHOENIX" validate "$file" >/dev/null
    t1=$(date +%s%N)
    walls+=("$(((t1 - t0) / 1000))")
    r=$(tail -1 "$tmp/rss")
    [ "$r" -gt "$rss" ] && rss=$r
  done
  if command -v hyperfine >/dev/null; then
    hyperfine -N --runs "$runs" --warmup 1 --style none --export-json "$tmp/hf.json" "$PHOENIX validate $file" >/dev/null
    ms=$(python3 -c 'import json,sys; print("%.1f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$tmp/hf.json")
  else
    ms=$(printf '%s\n' "${walls[@]}" | median | awk '{ printf "%.1f", $1 / 1000 }')
  fi
  printf '%8d %8d %10d %12s %10.1f\n' "$n" "$(wc -l <"$file")" "$(($(stat -c %s "$file") / 1024))" "$ms" "$(echo "$rss" | awk '{ print $1 / 1024 }')"
done
