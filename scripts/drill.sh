#!/usr/bin/env bash
# The drill: `phoenix drill runbooks/dr-failover.yaml` on the sandbox of real services
# (scripts/sandbox.py): the real failover runbook, against its drill targets (a drill DNS
# record, container, database, namespace and terraform workspace), then its teardown.
# Production's DNS record, DR container and databases are fingerprinted before and after
# (scripts/sandbox_fingerprint.py): the drill fails if any byte of them changed. Prints the
# drill's RTO and RPO. `make drill` runs it.
# usage: scripts/drill.sh   env: PHOENIX (default target/release/phoenix), DRILL_DIR, KEEP=1 keeps the sandbox
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PHOENIX=${PHOENIX:-$root/target/release/phoenix}
dir=${DRILL_DIR:-$(mktemp -d /tmp/phoenix-drill.XXXX)}
state=$dir/phoenix-state
sandbox() { python3 "$root/scripts/sandbox.py" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
[ "${KEEP:-}" = 1 ] || trap 'sandbox down "$dir" >/dev/null 2>&1 || true' EXIT

say "1. The sandbox: 'AWS' and 'Azure' on 127.0.0.1 (a minute or so)"
sandbox up "$dir"
rm -rf "$state"
eval "$(python3 - "$dir/params.json" <<'PY'
import json, shlex, sys
p = json.load(open(sys.argv[1]))
for k, v in p["env"].items():
    print(f"export {k}={shlex.quote(v)}")
dr = p["dr"]
params = {"zone_id": dr["zone_id"], "dr_site_url": dr["azure_site"], "tools_dir": dr["tools_dir"], "terraform_dir": dr["work_dir"],
          "aws_endpoint_url": dr["aws_endpoint_url"], "bucket": dr["bucket"], "container": dr["container"],
          "verify_tables": dr["verify_tables"], "force": True}
print("DRILL=(" + " ".join("--param " + shlex.quote(f"{k}={json.dumps(v) if isinstance(v, (list, dict, bool)) else v}") for k, v in params.items()) + ")")
PY
)"
px() { "$PHOENIX" --state "$state" "$@"; }

say "2. Production, fingerprinted: its DNS record, its DR container, its databases"
before=$(python3 "$root/scripts/sandbox_fingerprint.py" "$dir")
echo "$before"

say "3. phoenix drill runbooks/dr-failover.yaml: the real runbook, the drill's targets"
px drill "$root/runbooks/dr-failover.yaml" "${DRILL[@]}"
run=$(px runs --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["id"])')

say "4. Production afterwards: byte for byte as it was"
after=$(python3 "$root/scripts/sandbox_fingerprint.py" "$dir")
echo "$after"
if [ "$before" != "$after" ]; then
  echo "PRODUCTION CHANGED during the drill: before $before, after $after" >&2
  exit 1
fi
echo "unchanged: DNS record, DR container, DR and primary databases"

say "5. phoenix drills, and the report's Drill section"
px drills
px report "$run" | sed -n '/^## Drill/,/^## Timeline/p' | sed '$d'
