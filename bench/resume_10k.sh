#!/usr/bin/env bash
# Resume of a run with 10,000 finished steps: the time from `phoenix resume` starting to
# its first new step starting, and the whole resume's wall time and peak RSS.
# usage: bench/resume_10k.sh [N_STEPS]   env: PHOENIX (default target/release/phoenix), RUNS (5)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PHOENIX=${PHOENIX:-$root/target/release/phoenix}
n=${1:-10000}; runs=${RUNS:-5}
tmp=$(mktemp -d /tmp/phoenix-resume10k.XXXX); trap 'rm -rf "$tmp"' EXIT
flag=$tmp/crash.flag; marker=$tmp/first-new-step
{
  echo "version: 1"; echo "name: resume-bench"; echo "max_parallel: 1"; echo "steps:"
  echo "  s0: {uses: noop}"
  for i in $(seq 1 $((n - 1))); do echo "  s$i: {uses: noop, needs: [s$((i - 1))]}"; done
  # The last step kills the engine the first time (so the run stops with n finished steps);
  # on resume it is the first new step and records when it started.
  echo "  last: {needs: [s$((n - 1))], uses: exec, with: {script: \"date +%s%N > $marker; if [ -e $flag ]; then rm $flag; kill -9 \$PPID; fi\"}}"
} >"$tmp/rb.yaml"
touch "$flag"
"$PHOENIX" --state "$tmp/crashed" run "$tmp/rb.yaml" >/dev/null 2>&1 || true
id=$("$PHOENIX" --state "$tmp/crashed" runs --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["id"])')
echo "# resume of a run with $n finished steps ($(nproc) cores); run $id"
for r in $(seq 1 "$runs"); do
  rm -rf "$tmp/state"; cp -a "$tmp/crashed" "$tmp/state"; rm -f "$marker"
  t0=$(date +%s%N)
  /usr/bin/time -f "%e %M" -o "$tmp/time" "$PHOENIX" --state "$tmp/state" resume "$id" >/dev/null 2>&1
  first=$(cat "$marker")
  read -r wall rss <"$tmp/time"
  echo "resume $r: first new step after $(( (first - t0) / 1000000 )) ms; whole resume ${wall}s; peak RSS $((rss / 1024)) MiB"
done
