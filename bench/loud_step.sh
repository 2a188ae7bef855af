#!/usr/bin/env bash
# One step that prints LINES lines of 72 bytes: what storing its output costs. Beside
# it, the same command with its output to a file (the floor: a log file, as Dagu keeps) and
# through `make`, output to a file too (a runner that stores nothing itself). Phoenix keeps the first 256 KiB and the last 1 MiB of a step's output
# and slows the step down (its pipe fills) while the store is behind, so its peak RSS and the
# store's size should not grow with LINES.
# usage: bench/loud_step.sh [LINES...]   env: PHOENIX (default target/release/phoenix), RUNS (5)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PHOENIX=${PHOENIX:-$root/target/release/phoenix}
runs=${RUNS:-5}
tmp=$(mktemp -d /tmp/phoenix-loud.XXXX); trap 'rm -rf "$tmp"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "# one loud step ($(nproc) cores, $(date -u +%FT%TZ)); median of $runs runs"
printf '%-9s %-12s %9s %9s %11s %12s\n' lines runner wall_s ratio peak_MiB store_MiB
for lines in ${*:-100000 1000000}; do
  cmd="awk 'BEGIN { for (i = 0; i < $lines; i++) print \"a typical line of terraform or aws s3 sync output, of about eighty bytes\" }'"
  printf 'version: 1\nname: loud\nsteps:\n  loud:\n    uses: exec\n    with:\n      script: |\n        %s\n' "$cmd" >"$tmp/loud.yaml"
  printf 'all:\n\t@%s\n' "$cmd" >"$tmp/Makefile"
  declare -A wall=() rss=()
  for r in $(seq 1 "$runs"); do
    /usr/bin/time -f "%e %M" -o "$tmp/t" bash -c "$cmd" >"$tmp/out"; read -r w m <"$tmp/t"; wall[floor]+="$w "; rss[floor]+="$m "
    /usr/bin/time -f "%e %M" -o "$tmp/t" make -s -f "$tmp/Makefile" >"$tmp/out"; read -r w m <"$tmp/t"; wall[make]+="$w "; rss[make]+="$m "
    rm -rf "$tmp/state"
    /usr/bin/time -f "%e %M" -o "$tmp/t" "$PHOENIX" --state "$tmp/state" run "$tmp/loud.yaml" >/dev/null 2>&1; read -r w m <"$tmp/t"; wall[phoenix]+="$w "; rss[phoenix]+="$m "
  done
  store=$(du -sm "$tmp/state" | cut -f1)
  floor=$(echo ${wall[floor]} | tr ' ' '\n' | median)
  for runner in floor make phoenix; do
    w=$(echo ${wall[$runner]} | tr ' ' '\n' | median)
    m=$(echo ${rss[$runner]} | tr ' ' '\n' | median)
    s=-; [ "$runner" = phoenix ] && s=$store
    printf '%-9s %-12s %9s %9s %11s %12s\n' "$lines" "$runner" "$w" "$(awk -v a="$w" -v b="$floor" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')" "$(awk -v k="$m" 'BEGIN {printf "%.1f", k / 1024}')" "$s"
  done
done
