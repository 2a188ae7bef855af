#!/usr/bin/env bash
# The no-op fan-out of issue 3: one root, STEPS (1,000) independent `noop` steps needing it,
# one join needing them all. The engine's own cost per step when steps can share a
# checkpoint, side by side with doit running the same shape of Python no-op tasks (its
# parallel runner, `-n PAR`), in one sitting. Phoenix runs it with `max_parallel` PAR (2,
# as doit) and with the default (8). Uses shared/bench's timer and doit's venv there.
# usage: bench/noop_fanout.sh        env: N (runs, 5), STEPS, PAR (2), PHOENIX, BENCH_TMP
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_BENCH:-$root/../shared/bench}
. "$shared/lib.sh"
PHOENIX=${PHOENIX:-$root/target/release/phoenix}
[ -x "$PHOENIX" ] || (cd "$root" && cargo build --release)
ensure_venv doit 'doit==0.37.0'
dir=$BENCH_TMP/noop-fanout
mkdir -p "$dir"

runbook() {  # runbook MAX_PARALLEL: the fan-out, one flow mapping per step
  echo "version: 1"
  echo "name: bench-noop-fanout"
  [ -n "$1" ] && echo "max_parallel: $1"
  echo "steps:"
  echo "  root: {uses: noop}"
  for ((i = 0; i < STEPS; i++)); do echo "  s$i: {needs: [root], uses: noop}"; done
  printf '  join: {uses: noop, needs: ['
  for ((i = 0; i < STEPS; i++)); do printf '%ss%d' "$([ $i -gt 0 ] && echo ', ')" "$i"; done
  echo ']}'
}
runbook "$PAR" >"$dir/par.yaml"
runbook "" >"$dir/default.yaml"
cat >"$dir/dodo.py" <<'PY'
import os
from doit.tools import run_once
STEPS = int(os.environ.get("STEPS", 1000))
DOIT_CONFIG = {"default_tasks": ["join"]}
def noop():
    return None
def task_wf():
    base = {"actions": [noop], "verbosity": 0, "uptodate": [run_once]}
    yield {"basename": "root", "task_dep": [], **base}
    for i in range(STEPS):
        yield {"basename": f"s{i}", "task_dep": ["root"], **base}
    yield {"basename": "join", "task_dep": [f"s{i}" for i in range(STEPS)], **base}
PY

echo "# no-op fan-out: $(date -u +%FT%TZ), $(nproc) cores, STEPS=$STEPS PAR=$PAR; wall min/median/max"
time_it() {  # time_it LABEL CMD...
  python3 "$shared/benchtime.py" -n "${N:-5}" --steps $((STEPS + 2)) --label "$1" --log "$dir/$1.log" -- "${@:2}" \
    || echo "  ($1: a run failed, see $dir/$1.log)"
}
time_it "doit -n $PAR" bash -c "rm -rf '$dir/doit' && mkdir -p '$dir/doit' && '$VENV/bin/doit' -f '$dir/dodo.py' --db-file '$dir/doit/doit.db' --backend dbm -n $PAR -P thread"
time_it "phoenix max_parallel $PAR" bash -c "rm -rf '$dir/state' && '$PHOENIX' --state '$dir/state' run '$dir/par.yaml'"
time_it "phoenix default (8)" bash -c "rm -rf '$dir/state' && '$PHOENIX' --state '$dir/state' run '$dir/default.yaml'"
