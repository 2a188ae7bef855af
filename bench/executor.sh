#!/usr/bin/env bash
# The executor's benchmarks, side by side with the peers in one sitting (shared/bench):
#   W1 1,000 `exec true` steps in a chain, W2 1,000 in a fan-out (2 at once), W3 1,000
#   no-op steps in a chain (the engine's own cost per step, checkpoints included), W4 a
#   chain killed with SIGKILL at step 500 and resumed; then the resume of a run with
#   10,000 finished steps; then the no-op fan-out (bench/noop_fanout.sh, against doit); then
#   the physical floors (process spawn, fsync).
# usage: bench/executor.sh [PEER...]   (default: bash make doit phoenix)
#   env: N (runs per workload, 5), PHOENIX (default target/release/phoenix), BENCH_TMP
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_BENCH:-$root/../shared/bench}
export PHOENIX=${PHOENIX:-$root/target/release/phoenix}
[ -x "$PHOENIX" ] || (cd "$root" && cargo build --release)
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%FT%TZ)"
for peer in ${*:-bash make doit phoenix}; do
  (cd "$shared" && ./run.sh "$peer")
done
"$root/bench/resume_10k.sh"
"$root/bench/noop_fanout.sh"
(cd "$shared" && ./floors.sh) 2>&1
