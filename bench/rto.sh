#!/usr/bin/env bash
# RTO of `phoenix drill runbooks/dr-failover.yaml` against the seed's serial pipeline
# (bench/serial_failover.sh) doing the same work on the drill's targets, in one sitting, on
# one sandbox loaded with a production-sized dataset (bench/bigdata.py): RUNS rounds of, in turn,
#   A  DRILL=1 bench/serial_failover.sh: the seed's Jenkins stages one after the other, on the
#      drill's database, container, record, namespace and workspace
#   B  phoenix drill runbooks/dr-failover.yaml (params as scripts/drill.sh builds them; the
#      drill's overlay picks its targets; a fresh state directory each run); its teardown runs
#      after the RTO's end and is not counted
#   C  the same drill killed with SIGKILL at B's midpoint (half of B's median RTO so far, or
#      KILL_AFTER seconds: not of its wall time, which ends with the teardown), then
#      `phoenix resume RUN` to the end
#   D  (only if VARIANTS names it) the same, killed at a quarter of B's median RTO (KILL_AFTER_D)
#   E  (only if VARIANTS names it) the same, killed RESTORE_KILL_DELAY seconds (default 5)
#      after replicate_db's pg_restore started: the dump is finished, and the resume restores
#      it without dumping again (postgres.replicate's `reuse_dump`)
# with the drill's side reset before each run: the drill database dropped and made again, the
# drill container deleted, the drill record back on the primary's address, the stand-ins'
# state (provisioned, deployed) removed. Every run is checked (phoenix: the drill succeeded,
# replicate_db and sync_storage verified their copies — the teardown then removes them; the
# script: its own verification, then rows and objects on the drill's side).
# RTO = from the command's start to the first verification step passing (A: its /health check;
# B–E: the earliest `finished_at` of the verify_* steps in `phoenix status --output json`; the
# drill's own measured RTO from `phoenix drills --output json` is recorded next to it).
# The load averages (uptime) are recorded before and after each run: other work on the
# machine is reported, not prevented. Results: one JSON line per run in OUT/results.jsonl,
# summarized by bench/rto_report.py.
#
# usage: bench/rto.sh [SANDBOX_DIR]   an up and loaded sandbox (else one is brought up in OUT,
#        loaded with bench/bigdata.py, and brought down at the end)
#        env: RUNS (3), VARIANTS ("a b c": their order in a round; d, e as above), FIRST_ROUND (1), RESTORE_KILL_DELAY (5),
#        KILL_AFTER, KILL_AFTER_D (seconds; needed when C or D runs before any B), PHOENIX (target/release/phoenix), OUT (/tmp/phoenix-rto.XXXX, kept:
#        results and logs), PHOENIX_VENV, PHOENIX_AZURITE (as scripts/sandbox.py)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-3}
PHOENIX=${PHOENIX:-$root/target/release/phoenix}
out=${OUT:-$(mktemp -d /tmp/phoenix-rto.XXXX)}
mkdir -p "$out"
venv=${PHOENIX_VENV:-$root/.tools/venv}
export PHOENIX_VENV=$venv
pg_bin=/usr/lib/postgresql/15/bin
sandbox() { python3 "$root/scripts/sandbox.py" "$@"; }
now() { date +%s%N; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# shellcheck disable=SC2329 # called by the EXIT trap
cleanup() {
  [ -z "${last_container:-}" ] || python3 "$root/bench/azblob.py" delete "$azure" "$last_container" 2>/dev/null || true
  # A sandbox of our own goes, and its data (~11 GB after a sitting: three clusters, WAL, Azurite).
  [ -z "${own_sb:-}" ] || { sandbox down "$sb" >/dev/null 2>&1 || true; rm -rf "$sb/pg" "$sb/azurite" "$sb/work"; }
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${1:-}" ]; then
  sb=$(cd "$1" && pwd)
else
  sb=$out/sandbox own_sb=1
  sandbox up "$sb"
  "$venv/bin/python" "$root/bench/bigdata.py" "$sb" | tee "$out/bigdata.json"
fi

# The sandbox's parameters, as scripts/demo.sh builds them.
eval "$(python3 - "$sb" <<'PY'
import json, shlex, sys
d = sys.argv[1]
p, s = json.load(open(f"{d}/params.json")), json.load(open(f"{d}/sandbox.json"))
for k, v in p["env"].items():
    print(f"export {k}={shlex.quote(v)}")
dr = p["dr"]
# As scripts/drill.sh builds them; the drill's overlay (record, container, namespace…) wins.
drill = {"zone_id": dr["zone_id"], "dr_site_url": dr["azure_site"], "tools_dir": dr["tools_dir"], "terraform_dir": dr["work_dir"],
         "aws_endpoint_url": dr["aws_endpoint_url"], "bucket": dr["bucket"], "container": dr["container"],
         "verify_tables": dr["verify_tables"], "force": True}
print("DRILL=(" + " ".join("--param " + shlex.quote(f"{k}={json.dumps(v) if isinstance(v, (list, dict, bool)) else v}") for k, v in drill.items()) + ")")
print(f"azure={shlex.quote(dr['azure_blob_endpoint'])} moto={shlex.quote(dr['aws_endpoint_url'])} bucket={dr['bucket']}")
print(f"zone={dr['zone_id']} record=drill-app.example.com container=drill-assets")
PY
)"

drill_db=${PHOENIX_DRILL_TARGET_DSN##*/}
psql_azure() { "$pg_bin/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "${PHOENIX_DRILL_TARGET_DSN%/*}/postgres" -c "$1"; }
reset_dr() { # the drill's database, container, record and stand-ins, as before any drill
  psql_azure "DROP DATABASE IF EXISTS $drill_db WITH (FORCE)"
  psql_azure "CHECKPOINT"
  psql_azure "CREATE DATABASE $drill_db"
  last_container=$container
  python3 "$root/bench/azblob.py" delete "$azure" "$container"
  rm -f "$sb/state/azure-provisioned" "$sb/state"/deployed-*
  env -u AWS_CA_BUNDLE "$venv/bin/python" - "$moto" "$zone" "$record" <<'PY'
import sys, boto3
moto, zone, record = sys.argv[1:]
r53 = boto3.client("route53", region_name="us-east-1", endpoint_url=moto, aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
    "Name": record, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "10.0.1.10"}]}}]})
PY
  sync
}
check_dr() { # the serial script's work: rows and objects on the drill's side, services deployed
  local a b
  a=$("$pg_bin/psql" -X -A -t -q -d "$PHOENIX_SOURCE_DSN" -c "SELECT (SELECT count(*) FROM customers) || ' ' || (SELECT count(*) FROM orders)")
  b=$("$pg_bin/psql" -X -A -t -q -d "$PHOENIX_DRILL_TARGET_DSN" -c "SELECT (SELECT count(*) FROM customers) || ' ' || (SELECT count(*) FROM orders)")
  [ "$a" = "$b" ] || { echo "rto: the drill database has $b rows (customers orders), the source $a" >&2; exit 1; }
  env -u AWS_CA_BUNDLE "$venv/bin/python" "$root/bench/seed_copy.py" verify "$moto" "$azure" "$bucket" "$container"
  [ -e "$sb/state/deployed-service-a" ] && [ -e "$sb/state/deployed-service-b" ] || { echo "rto: the services were not deployed" >&2; exit 1; }
}
check_drill() { # state: the drill succeeded, its copies were verified before the teardown removed them
  "$PHOENIX" --state "$1" status --output json | python3 -c '
import json, sys
s = json.load(sys.stdin)
steps = {x["id"]: x for x in s["steps"]} if isinstance(s.get("steps"), list) else s.get("steps", {})
bad = [k for k in ("replicate_db", "sync_storage") if (steps.get(k) or {}).get("status") != "succeeded"]
rep = (steps.get("replicate_db") or {}).get("outputs") or {}
if s.get("status") != "succeeded" or bad or rep.get("verified") is not True:
    status, verified = s.get("status"), rep.get("verified")
    sys.exit(f"rto: the drill did not succeed: status {status}, not succeeded: {bad}, replicate_db verified: {verified}")
print(json.dumps({"dump_reused": rep.get("dump_reused"), "snapshot_at": rep.get("snapshot_at")}))'
}
drill_measured() { # state: the drill's own RTO and RPO, as `phoenix drills --output json` gives them
  "$PHOENIX" --state "$1" drills --output json 2>/dev/null | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    print("{}"); sys.exit()
rows = d.get("drills") or []
r = rows[0] if rows else {}
m = r.get("measure") or {}
print(json.dumps({"drill_rto_s": m.get("rto_seconds"), "drill_rpo_s": m.get("rpo_seconds"), "teardown": r.get("teardown")}))'
}
merge() { python3 -c 'import json, sys; a = {}; [a.update(json.loads(x)) for x in sys.argv[1:]]; print(json.dumps(a))' "$@"; }
# A phoenix run's record, as one JSON object: step start/end times from its status.
phoenix_record() { # state variant round t0 t1 load0 load1 [extra json]
  local extra=${8:-'{}'}
  "$PHOENIX" --state "$1" status --output json | python3 "$root/bench/rto_report.py" record "$2" "$3" "$4" "$5" "$6" "$7" "$extra"
}

run_a() { # round
  local t0 t1 l0
  reset_dr
  l0=$(load)
  t0=$(now)
  DRILL=1 DB_JOBS=2 bash "$root/bench/serial_failover.sh" "$sb" "$container" >"$out/a$1.stages" 2>"$out/a$1.log" ||
    { echo "rto: the serial script failed (round $1):" >&2; tail -20 "$out/a$1.log" >&2; exit 1; }
  t1=$(now)
  check_dr
  python3 "$root/bench/rto_report.py" serial A "$1" "$t0" "$t1" "$l0" "$(load)" <"$out/a$1.stages" >>"$out/results.jsonl"
}
run_b() { # round
  local st=$out/state-b$1 t0 t1 l0
  reset_dr
  rm -rf "$st"
  l0=$(load)
  t0=$(now)
  "$PHOENIX" --state "$st" drill "$root/runbooks/dr-failover.yaml" "${DRILL[@]}" --no-wait </dev/null >"$out/b$1.log" 2>&1 ||
    { echo "rto: phoenix drill failed (round $1):" >&2; tail -20 "$out/b$1.log" >&2; exit 1; }
  t1=$(now)
  local checked
  checked=$(check_drill "$st")
  phoenix_record "$st" B "$1" "$t0" "$t1" "$l0" "$(load)" "$(merge "$checked" "$(drill_measured "$st")")" >>"$out/results.jsonl"
  rm -rf "$st"
}
frac_rto() { # fraction: of B's median RTO so far, in seconds
  python3 -c 'import json, statistics, sys
b = [json.loads(l)["rto_s"] for l in open(sys.argv[2]) if json.loads(l)["variant"] == "B"]
if not b:
    sys.exit("rto: no B run yet: set KILL_AFTER / KILL_AFTER_D")
print(round(float(sys.argv[1]) * statistics.median(b), 2))' "$1" "$out/results.jsonl"
}
run_d() { run_c "$1" D; }
run_e() { run_c "$1" E; }
# Waits (bounded) until replicate_db's pg_restore runs from the kept dump, then RESTORE_KILL_DELAY more.
in_restore() {
  local i
  for i in $(seq 1 3600); do
    pgrep -f "pg_restore .*dumps/replicate_db" >/dev/null && { sleep "${RESTORE_KILL_DELAY:-5}"; echo "restore+${RESTORE_KILL_DELAY:-5}"; return; }
    sleep 0.5
  done
  echo "rto: replicate_db's pg_restore never started" >&2
  exit 1
}
run_c() { # round [variant: C, D]
  local v=${2:-C} st t0 t1 l0 pid half kids alive run
  local l=${v,,}
  st=$out/state-$l$1
  # A fraction of B's median RTO, not of its wall time: a drill's teardown comes after the RTO.
  case $v in
    C) half=${KILL_AFTER:-$(frac_rto 0.5)} ;;
    D) half=${KILL_AFTER_D:-$(frac_rto 0.25)} ;;
    E) half=0 ;;
  esac
  reset_dr
  rm -rf "$st"
  l0=$(load)
  t0=$(now)
  "$PHOENIX" --state "$st" drill "$root/runbooks/dr-failover.yaml" "${DRILL[@]}" --no-wait </dev/null >"$out/$l$1.log" 2>&1 &
  pid=$!
  if [ "$v" = E ]; then in_restore >/dev/null; half=$(python3 -c "import sys; print(round(($(now) - $t0) / 1e9, 2))"); else sleep "$half"; fi
  kids=$(pgrep -P "$pid" | tr '\n' ' ' || true)
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local tk
  tk=$(now)
  alive=0
  for k in $kids; do kill -0 "$k" 2>/dev/null && alive=$((alive + 1)); done
  run=$("$PHOENIX" --state "$st" runs --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["id"])')
  "$PHOENIX" --state "$st" status --output json >"$out/$l$1.at-kill.json"
  "$PHOENIX" --state "$st" resume "$run" --no-wait </dev/null >>"$out/$l$1.log" 2>&1 ||
    { echo "rto: phoenix resume failed (round $1):" >&2; tail -20 "$out/$l$1.log" >&2; exit 1; }
  t1=$(now)
  local checked
  checked=$(check_drill "$st")
  phoenix_record "$st" "$v" "$1" "$t0" "$t1" "$l0" "$(load)" "$(merge "$checked" "$(drill_measured "$st")" \
    "{\"kill_after_s\": $half, \"killed_ns\": $tk, \"children_at_kill\": $(echo "$kids" | wc -w), \"children_alive_after\": $alive, \"at_kill\": \"$out/$l$1.at-kill.json\"}")" >>"$out/results.jsonl"
  rm -rf "$st"
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
{
  echo "# RTO: phoenix drill dr-failover vs the seed's serial pipeline on the drill's targets: $(nproc) cores, $cpu, $(free -g | awk '/Mem:/ {print $2}') GiB, kernel $(uname -r)"
  echo "# $(date -u +%FT%TZ); $("$PHOENIX" --version); $("$pg_bin/postgres" --version); load $(load)"
  echo "# dataset: $(cat "$out/bigdata.json" 2>/dev/null || echo "sandbox $sb (loaded beforehand)")"
} | tee "$out/header"
: >"$out/results.jsonl"
first=${FIRST_ROUND:-1}
for i in $(seq "$first" $((first + runs - 1))); do
  for v in ${VARIANTS:-a b c}; do
    "run_$v" "$i"
    echo "# round $i $v: $(tail -1 "$out/results.jsonl" | python3 -c 'import json,sys; r = json.load(sys.stdin); print("RTO %.1f s, wall %.1f s, load %s → %s" % (r["rto_s"], r["wall_s"], r["load_before"], r["load_after"]))')" >&2
  done
done
echo "# $(date -u +%FT%TZ); load $(load)" | tee -a "$out/header"
python3 "$root/bench/rto_report.py" report <"$out/results.jsonl" | tee "$out/report.txt"
echo "# results and logs in $out" >&2
