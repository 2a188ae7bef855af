#!/usr/bin/env bash
# The drill: runbooks/drill.yaml on files in a scratch directory (no services needed), killed
# with SIGKILL half-way and resumed. `make drill` runs it; `make demo` runs the real thing.
# What it shows: validation, the plan, live progress, a crash, `phoenix resume` finishing
# without redoing finished work, and the run's record (status, logs, outputs).
# usage: scripts/drill.sh   env: PHOENIX (default target/release/phoenix), KEEP=1 keeps the sandbox
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PHOENIX=${PHOENIX:-$root/target/release/phoenix}
sandbox=$(mktemp -d /tmp/phoenix-demo.XXXX)
[ "${KEEP:-}" = 1 ] || trap 'rm -rf "$sandbox"' EXIT
state=$sandbox/state
px() { "$PHOENIX" --state "$state" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "A sandbox in $sandbox: the 'AWS' side holds a database dump and 6 objects; it is marked down"
mkdir -p "$sandbox/aws/objects"
seq 1 1000 | sed 's/^/INSERT INTO users VALUES (/; s/$/);/' >"$sandbox/aws/db.sql"
for i in 1 2 3 4 5 6; do head -c 4096 /dev/urandom >"$sandbox/aws/objects/object-$i.bin"; done
echo aws >"$sandbox/dns"; touch "$sandbox/aws/DOWN"

say "phoenix validate runbooks/drill.yaml"
px validate "$root/runbooks/drill.yaml"

say "phoenix run --dry-run: the plan, nothing executed"
px run "$root/runbooks/drill.yaml" --param sandbox="$sandbox" --dry-run | head -12
echo "   …"

say "phoenix run: the drill starts; it is killed with SIGKILL after 0.7 s, mid-sync"
"$PHOENIX" --state "$state" run "$root/runbooks/drill.yaml" --param sandbox="$sandbox" --no-wait </dev/null &
pid=$!
sleep 0.7
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
run=$(px runs --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["id"])')
echo "killed (steps that were running go on as orphans; resume runs them again: they are idempotent)"

say "phoenix status $run: what the checkpoint says"
px status "$run"

say "phoenix run again: refused, the lock is held by the unfinished run"
px run "$root/runbooks/drill.yaml" --param sandbox="$sandbox" --no-wait </dev/null || echo "(exit $?: as it should)"

say "phoenix resume $run: finished steps are not run again"
px resume "$run" --no-wait </dev/null

say "phoenix status $run"
px status "$run"

say "Checks"
test "$(cat "$sandbox/dns")" = azure && echo "dns points at the DR site"
test "$(ls "$sandbox/azure/objects" | wc -l)" -eq 6 && echo "6 of 6 objects copied"
cmp -s "$sandbox/aws/db.sql" "$sandbox/azure/db.sql" && echo "database restored ($(wc -l <"$sandbox/azure/db.sql") rows)"
px status "$run" --output json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["status"]=="succeeded", d["status"]; print("run", d["id"], "succeeded; outputs:", json.dumps(d["outputs"]))'
