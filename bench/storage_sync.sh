#!/usr/bin/env bash
# storage.sync against rclone, side by side in one sitting: S3 (the moto server) to Azure Blob
# (Azurite), both on 127.0.0.1. Two datasets, SMALL (1,000 × 4 KiB objects) and LARGE
# (20 × 8 MiB). For each, RUNS times and each tool in turn, into a fresh container:
#   - the first sync: `phoenix run` of a one-step storage.sync runbook (concurrency 16), the
#     same with `verify: false` (no second listing of the destination: what that costs), and
#     `rclone sync --checksum --transfers 16 --checkers 16`;
#   - the container's blobs counted (count and bytes must match the source's, else it stops);
#   - a second sync with nothing changed (it must copy nothing: Phoenix's `copied` output,
#     rclone's `Copied` log lines).
# Wall time and CPU time (median) and peak RSS (/usr/bin/time %M, the largest of the runs) of
# each. moto and Azurite share the 2 cores with the tool measured: the CPU time is the tool's own.
# Then Phoenix's phases (listing, copying, verifying) from its step log, for one more run.
# A benchmark, not a test: it prints figures (and stops if a copy is incomplete). Record them
# in docs/benchmarks.md.
#
# usage: bench/storage_sync.sh     env: PHOENIX (default target/release/phoenix, built here),
#        RUNS (3), CONCURRENCY (16), SMALL ("1000 4096"), LARGE ("20 8388608"),
#        KEEP=1 keeps the temporary directory
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-3}
conc=${CONCURRENCY:-16}
read -r small_n small_size <<<"${SMALL:-1000 4096}"
read -r large_n large_size <<<"${LARGE:-20 8388608}"
tmp=$(mktemp -d /tmp/phoenix-bench-storage.XXXX)
# shellcheck source=bench/stores.sh
. "$root/bench/stores.sh"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "# kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

hz=$(getconf CLK_TCK)
steal() { awk '/^cpu / { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; } # steal, all (ticks)

need_tools
start_stores

seed() { # path json
  curl -sf -X POST -H 'Content-Type: application/json' -d "$2" "$moto$1" >/dev/null || { echo "seeding $1 $2 failed" >&2; exit 1; }
}
t0=$(now)
seed /phoenix-test/s3-bucket '{"region": "us-east-1", "bucket": "small"}'
seed /phoenix-test/s3-objects "{\"bucket\": \"small\", \"prefix\": \"\", \"count\": $small_n, \"size\": $small_size}"
seed /phoenix-test/s3-bucket '{"region": "us-east-1", "bucket": "large"}'
seed /phoenix-test/s3-objects "{\"bucket\": \"large\", \"prefix\": \"\", \"count\": $large_n, \"size\": $large_size}"
echo "# seeded s3://small ($small_n × $small_size B) and s3://large ($large_n × $large_size B) in $((($(now) - t0) / 1000000)) ms" >&2

runbook() { # bucket container [extra with] → file
  local file=$tmp/$2.yaml
  printf 'version: 1\nname: bench-sync\nsteps:\n  sync:\n    uses: storage.sync\n    with: { from: "s3://%s", to: "azblob://%s", concurrency: %s%s }\n' \
    "$1" "$2" "$conc" "${3:-}" >"$file"
  echo "$file"
}

cpu_ticks() { # pid → its user + system CPU time so far, in clock ticks (threads included)
  awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

timed() { # out-prefix cmd... → "$prefix.res": "wall_ms peak_rss_KiB cpu_ms moto_cpu_ms azurite_cpu_ms"
  local prefix=$1 t0 t1 m0 a0 code=0
  shift
  m0=$(cpu_ticks "$moto_pid") a0=$(cpu_ticks "$azurite_pid")
  t0=$(now)
  /usr/bin/time -f '%M %U %S' -o "$prefix.time" "$@" >"$prefix.log" 2>&1 || code=$?
  t1=$(now)
  if [ "$code" != 0 ]; then echo "failed ($code): $*" >&2; tail -n 30 "$prefix.log" >&2; exit 1; fi
  awk -v ms=$(((t1 - t0) / 1000000)) -v m=$(($(cpu_ticks "$moto_pid") - m0)) -v a=$(($(cpu_ticks "$azurite_pid") - a0)) -v hz="$hz" \
    '{ printf "%d %d %d %d %d\n", ms, $1, ($2 + $3) * 1000, m * 1000 / hz, a * 1000 / hz }' "$prefix.time" >"$prefix.res"
}

phoenix_copied() { # state verified → the sync step's `copied` output (and checks `verified`: true or null)
  "$PHOENIX" --state "$1" status --output json | python3 -c '
import json, sys
s = json.load(sys.stdin)
steps = s["steps"] if isinstance(s["steps"], list) else [dict(v, id=k) for k, v in s["steps"].items()]
o = next(x for x in steps if x.get("id", x.get("name")) == "sync")["outputs"]
assert o["verified"] is {"true": True, "null": None}[sys.argv[1]], o
print(o["copied"])' "$2"
}

check_blobs() { # container count bytes
  local got
  got=$(python3 "$root/bench/azblob.py" count "$endpoint" "$1")
  [ "$got" = "$2 $3" ] || { echo "azblob://$1 holds $got (blobs bytes), expected $2 $3" >&2; exit 1; }
}

one() { # dataset count size tool run → appends "ms rss cpu_ms" lines to $tmp/<dataset>.<tool>.{first,again}
  local ds=$1 n=$2 size=$3 tool=$4 i=$5 c=$ds-$4-$5 p=$tmp/$ds-$4-$5 copied
  python3 "$root/bench/azblob.py" delete "$endpoint" "$c"
  case $tool in
    phoenix | phoenix-noverify)
      local rb state=$tmp/state-$c verified=true extra=
      [ "$tool" = phoenix ] || { verified=null extra=", verify: false"; }
      rb=$(runbook "$ds" "$c" "$extra")
      rm -rf "$state"
      timed "$p.first" "$PHOENIX" --state "$state" run "$rb"
      copied=$(phoenix_copied "$state" "$verified")
      [ "$copied" = "$n" ] || { echo "phoenix copied $copied of $n" >&2; exit 1; }
      check_blobs "$c" "$n" $((n * size))
      timed "$p.again" "$PHOENIX" --state "$state" run "$rb"
      copied=$(phoenix_copied "$state" "$verified")
      [ "$copied" = 0 ] || { echo "phoenix's second sync copied $copied" >&2; exit 1; }
      rm -rf "$state"
      ;;
    rclone)
      local args=(sync "s3:$ds" "az:$c" --checksum --transfers "$conc" --checkers "$conc" -v)
      timed "$p.first" "${rclone_cmd[@]}" "${args[@]}"
      copied=$(grep -c ': Copied (' "$p.first.log" || true)
      [ "$copied" = "$n" ] || { echo "rclone copied $copied of $n" >&2; exit 1; }
      check_blobs "$c" "$n" $((n * size))
      timed "$p.again" "${rclone_cmd[@]}" "${args[@]}"
      copied=$(grep -c ': Copied (' "$p.again.log" || true)
      [ "$copied" = 0 ] || { echo "rclone's second sync copied $copied" >&2; exit 1; }
      ;;
  esac
  for k in first again; do cat "$p.$k.res" >>"$tmp/$ds.$tool.$k"; done
  python3 "$root/bench/azblob.py" delete "$endpoint" "$c"
  echo "# $ds $tool run $i (ms KiB cpu_ms): first $(cat "$p.first.res"), no change $(cat "$p.again.res")" >&2
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "# storage sync S3 (moto) → Azure Blob (Azurite): $(nproc) cores, $cpu, $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%FT%TZ); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $("$PHOENIX" --version); $(rclone version | head -1); Azurite $("$azurite_bin" --version); moto $("$python" -c 'import moto; print(moto.__version__)')"
tools="phoenix phoenix-noverify rclone"
read -r steal0 all0 < <(steal)
echo "# median of $runs runs; concurrency $conc; rclone sync --checksum --transfers $conc --checkers $conc"
for spec in "small $small_n $small_size" "large $large_n $large_size"; do
  read -r ds n size <<<"$spec"
  for i in $(seq "$runs"); do
    for tool in $tools; do one "$ds" "$n" "$size" "$tool" "$i"; done
  done
done

read -r steal1 all1 < <(steal)
col() { cut -d' ' -f"$2" "$1"; }
echo "# CPU time stolen by the hypervisor during the runs: $(awk -v s=$((steal1 - steal0)) -v a=$((all1 - all0)) 'BEGIN { printf "%.1f%%", 100 * s / a }')"
echo "# wall time and CPU time (user + system: the tool's own, and moto's and Azurite's during the first sync): medians"
echo "# peak RSS: the largest of the runs"
printf '\n%-7s %-16s %9s %9s %9s %9s %9s %9s %9s %9s %9s\n' dataset tool first_ms again_ms again/1st cpu1_ms cpu2_ms moto1_ms azur1_ms rss1_MiB rss2_MiB
for ds in small large; do
  for tool in $tools; do
    f=$(col "$tmp/$ds.$tool.first" 1 | median)
    a=$(col "$tmp/$ds.$tool.again" 1 | median)
    c1=$(col "$tmp/$ds.$tool.first" 3 | median)
    c2=$(col "$tmp/$ds.$tool.again" 3 | median)
    r1=$(col "$tmp/$ds.$tool.first" 2 | max)
    r2=$(col "$tmp/$ds.$tool.again" 2 | max)
    m1=$(col "$tmp/$ds.$tool.first" 4 | median)
    a1=$(col "$tmp/$ds.$tool.first" 5 | median)
    echo "$f $a $c1" >"$tmp/$ds.$tool.med"
    awk -v d="$ds" -v t="$tool" -v f="$f" -v a="$a" -v c1="$c1" -v c2="$c2" -v m1="$m1" -v a1="$a1" -v r1="$r1" -v r2="$r2" \
      'BEGIN { printf "%-7s %-16s %9d %9d %8.1f%% %9d %9d %9d %9d %9.1f %9.1f\n", d, t, f, a, 100 * a / f, c1, c2, m1, a1, r1 / 1024, r2 / 1024 }'
  done
  read -r rf ra rc <"$tmp/$ds.rclone.med"
  for tool in phoenix phoenix-noverify; do
    read -r pf pa pc <"$tmp/$ds.$tool.med"
    awk -v d="$ds" -v t="$tool" -v pf="$pf" -v pa="$pa" -v pc="$pc" -v rf="$rf" -v ra="$ra" -v rc="$rc" \
      'BEGIN { printf "%-7s %s/rclone: first sync %.2f× (CPU %.2f×), no-change sync %.2f×\n", d, t, pf / rf, pc / rc, pa / ra }'
  done
done
for ds in small large; do
  echo "# $ds, every run (first: ms rss_KiB cpu_ms moto_ms azurite_ms, no change: the same):"
  for tool in $tools; do
    echo "#   $tool: $(paste -d' ' "$tmp/$ds.$tool.first" "$tmp/$ds.$tool.again" | tr '\n' ';')"
  done
done

# Where Phoenix's time goes: its step log's timestamps (listing ends at the "N objects … to
# copy" line, the last copy at "copied N/N" when logged, the sync at the final line).
echo
echo "# phoenix phases (one more run per dataset, from the step log):"
for spec in "small $small_n" "large $large_n"; do
  read -r ds n <<<"$spec"
  c=$ds-phases
  python3 "$root/bench/azblob.py" delete "$endpoint" "$c"
  rb=$(runbook "$ds" "$c")
  state=$tmp/state-$c
  t0=$(now)
  "$PHOENIX" --state "$state" run "$rb" >/dev/null 2>&1
  t1=$(now)
  run=$("$PHOENIX" --state "$state" runs --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["id"])')
  echo "## $ds: whole command $(((t1 - t0) / 1000000)) ms; step log:"
  "$PHOENIX" --state "$state" logs "$run" sync | sed 's/^/#   /'
  python3 "$root/bench/azblob.py" delete "$endpoint" "$c"
done
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
