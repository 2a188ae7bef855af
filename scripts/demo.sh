#!/usr/bin/env bash
# The demo: the seed's whole story on this machine, with real services on 127.0.0.1
# (scripts/sandbox.py: PostgreSQL primary + standby as "AWS" and one as "Azure", the moto
# server, Azurite, the services, terraform/helm/kubectl stand-ins).
#   1. the sandbox comes up with data: rows, a few hundred objects, a DNS record
#   2. an incident: `phoenix health` shows the seed's table: a score of 13, dr_failover (held back by its `for: 3`)
#   3. the incident-analysis gate gathers evidence and decides (built-in rules: no LLM here)
#   4. `phoenix run runbooks/dr-failover.yaml`, live; it is killed with SIGKILL mid-way…
#   5. …and `phoenix resume` finishes it without redoing what was done
#   6. verification that the rows, the objects and the DNS record moved; a summary
# usage: scripts/demo.sh   env: PHOENIX (default target/release/phoenix), DEMO_DIR
#        (default target/demo), KEEP=1 leaves the sandbox running
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PHOENIX=${PHOENIX:-$root/target/release/phoenix}
dir=${DEMO_DIR:-$root/target/demo}
state=$dir/phoenix-state
sandbox() { python3 "$root/scripts/sandbox.py" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
[ "${KEEP:-}" = 1 ] || trap 'sandbox down "$dir" >/dev/null 2>&1 || true' EXIT

say "1. The sandbox: 'AWS' and 'Azure' on 127.0.0.1 (a minute or so)"
sandbox up "$dir"
rm -rf "$state"
# The sandbox's parameters: secrets go to the environment, params to --param.
eval "$(python3 - "$dir/params.json" <<'PY'
import json, shlex, sys
p = json.load(open(sys.argv[1]))
for k, v in p["env"].items():
    print(f"export {k}={shlex.quote(v)}")
def args(name, d):
    print(f"{name}=(" + " ".join("--param " + shlex.quote(f"{k}={json.dumps(v) if isinstance(v, (list, dict, bool)) else v}") for k, v in d.items()) + ")")
dr = p["dr"]
failover = {"zone_id": dr["zone_id"], "dr_site_url": dr["azure_site"], "tools_dir": dr["tools_dir"], "terraform_dir": dr["work_dir"],
            "aws_endpoint_url": dr["aws_endpoint_url"], "bucket": dr["bucket"], "container": dr["container"],
            "verify_tables": dr["verify_tables"], "health_params": p["health"]}
args("HEALTH", p["health"])
args("GATE", {**p["analysis"], "level": "dr_failover", "score": 13, "start_failover": False})
args("FAILOVER", failover)
PY
)"
px() { "$PHOENIX" --state "$state" "$@"; }

say "2. An incident: service A unhealthy, B degraded, a node group DEGRADED, the provider's status page red"
sandbox incident "$dir"
say "phoenix health runbooks/health.yaml"
px health "$root/runbooks/health.yaml" "${HEALTH[@]}"
# The score alone says dr_failover; the level itself waits for `for: 3` evaluations in a row
# (this is the second; the failover's own confirmation below is the third).
level=$(px health "$root/runbooks/health.yaml" "${HEALTH[@]}" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["raw_level"])')
[ "$level" = dr_failover ] || { echo "the health score's level is $level, not dr_failover" >&2; exit 1; }

say "3. The incident-analysis gate: evidence, then a decision (no LLM configured: the built-in rules)"
px run "$root/runbooks/incident-analysis.yaml" "${GATE[@]}" >/dev/null 2>&1 || true
gate=$(px runs --output json | python3 -c 'import json,sys; print(next(r["id"] for r in json.load(sys.stdin)["runs"] if r["runbook"] == "incident-analysis"))')
decision=$(px status "$gate" --output json | python3 -c '
import json, sys
s = json.load(sys.stdin)
a = next(x for x in s["steps"] if x["id"] == "analysis")["outputs"]
print(a["recommended_action"], a["confidence"], a["root_cause_category"], "by", a.get("analyzer") or a["source"])
for x in s["steps"]:
    o = x.get("outputs") or {}
    if "available" in o:
        print("   evidence", x["id"] + ":", "available" if o["available"] else "unavailable (" + (o.get("error") or "")[:70] + ")", file=sys.stderr)
print("   rule:", a.get("rule"), "-", a["reasoning"], file=sys.stderr)')
echo "decision: $decision"
case "$decision" in "trigger_dr high"*) ;; *) echo "the gate did not call for DR" >&2; exit 1;; esac

say "4. phoenix run runbooks/dr-failover.yaml: live; killed with SIGKILL once terraform apply runs"
export SANDBOX_PACE=1.5
"$PHOENIX" --state "$state" run "$root/runbooks/dr-failover.yaml" "${FAILOVER[@]}" --no-wait </dev/null &
pid=$!
for _ in $(seq 600); do grep -q "terraform apply" "$dir/tools.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.3
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
run=$(px runs --output json | python3 -c 'import json,sys; print(next(r["id"] for r in json.load(sys.stdin)["runs"] if r["runbook"] == "dr-failover"))')
echo
echo "killed. What the store says (every transition was durable before it happened):"
px status "$run" | sed -n '1,30p'

say "5. phoenix resume $run: finished steps are kept, the step in flight runs again"
px resume "$run"

say "6. Verification: did everything move?"
sandbox verify "$dir"
say "Summary"
px status "$run" --output json | python3 -c "$(cat <<'PY'
import json, sys
s = json.load(sys.stdin)
o = s["outputs"]
print(f"run {s['id']}: {s['status']} after {s['attempt']} attempts (one crash in between)")
print(f"  database: rows {o['rows']}")
print(f"  storage:  {o['objects']} objects, {o['bytes_copied']} bytes copied by the last attempt")
print(f"  DNS:      {o['dns_previous']['values']} -> {o['dns_now']['values']}")
PY
)"
echo
echo "the record: phoenix --state $state logs $run    the sandbox: $dir (KEEP=1 leaves it running)"
