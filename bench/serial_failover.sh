#!/usr/bin/env bash
# The seed's Jenkins pipeline (its "DR: …" stages, ../shared/seed) as the plain serial shell
# script it amounts to, against a sandbox that is up (scripts/sandbox.py up DIR) and the same
# targets as runbooks/dr-failover.yaml. One stage after the other, as Jenkins ran them:
#   replicate_db.sh   pg_dump -Fc to a file → upload to S3 → copy to Azure Blob → download →
#                     pg_restore --clean --if-exists (-j DB_JOBS, phoenix's default 2: the seed
#                     restored with one job; a custom-format dump itself cannot be parallel)
#                     → row counts
#   sync_s3.sh        list the bucket, copy each object S3 → Azure Blob in turn, list the
#                     container (bench/seed_copy.py: the seed's per-object loop in one process)
#   Provision Azure   terraform init, plan, apply -auto-approve (the sandbox's stand-ins)
#   Deploy Services   helm install service-a, service-b; kubectl rollout status of each
#   switch_dns.sh     aws route53 list-resource-record-sets, then change-resource-record-sets
#                     UPSERT to the DR site's address (from terraform output); the seed then
#                     slept 60 s for propagation: SEED_DNS_WAIT seconds here (default 0)
#   verify            the DR site's /health (curl, 200: the first verification passing), the
#                     row counts on both sides, the container's blob count against the bucket's
# Prints one line per stage: "stage NAME START_NS END_NS" (date +%s%N), then "rto_end END_NS"
# where the first verification passed. Exits non-zero as soon as a stage fails.
#
# With DRILL=1 it does the same work on the targets `phoenix drill runbooks/dr-failover.yaml`
# uses (its `drill.params`): the drill database (PHOENIX_DRILL_TARGET_DSN), the container
# drill-assets, the record drill-app.example.com, the namespace and terraform workspace `drill`.
#
# usage: bench/serial_failover.sh SANDBOX_DIR [CONTAINER]   (CONTAINER: default dr-assets, or drill-assets with DRILL=1)
#        env: DRILL, DB_JOBS (2), SEED_DNS_WAIT (0), PG_BIN, PHOENIX_VENV (the venv with boto3),
#        SCRATCH (where the dump goes; default a temporary directory, removed)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sb=$(cd "$1" && pwd)
pg_bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
venv=${PHOENIX_VENV:-$root/.tools/venv}
jobs=${DB_JOBS:-2}
scratch=${SCRATCH:-$(mktemp -d /tmp/phoenix-serial.XXXX)}
[ -n "${SCRATCH:-}" ] || trap 'rm -rf "$scratch"' EXIT

eval "$(python3 - "$sb" "${2:-}" "${DRILL:-}" <<'PY'
import json, shlex, sys
d, drill = sys.argv[1], sys.argv[3] == "1"
p, s = json.load(open(f"{d}/params.json")), json.load(open(f"{d}/sandbox.json"))
dr = p["dr"]
for k, v in {"src": p["env"]["PHOENIX_SOURCE_DSN"], "dst": p["env"]["PHOENIX_DRILL_TARGET_DSN" if drill else "PHOENIX_TARGET_DSN"],
             "moto": dr["aws_endpoint_url"], "azure": dr["azure_blob_endpoint"], "bucket": dr["bucket"],
             "container": sys.argv[2] or ("drill-assets" if drill else dr["container"]),
             "zone": dr["zone_id"], "record": "drill-app.example.com" if drill else dr["record"], "tools": dr["tools_dir"], "tfdir": dr["work_dir"],
             "site": dr["azure_site"], "tables": " ".join(dr["verify_tables"]), "ns": "drill" if drill else "default",
             "workspace": "drill" if drill else "default"}.items():
    print(f"{k}={shlex.quote(v)}")
PY
)"
export TF_WORKSPACE=$workspace
export AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox AWS_DEFAULT_REGION=us-east-1
py() { env -u AWS_CA_BUNDLE "$venv/bin/python" "$root/bench/seed_copy.py" "$@"; }
count_rows() { # dsn → "n n …" for the verified tables
  local t sql=""
  for t in $tables; do sql="$sql${sql:+ || ' ' || }(SELECT count(*) FROM $t)"; done
  "$pg_bin/psql" -X -A -t -q -v ON_ERROR_STOP=1 -d "$1" -c "SELECT $sql"
}
stage() { # name cmd… : runs it (its output to stderr), prints its times, stops the script if it fails
  local name=$1 s e
  shift
  s=$(date +%s%N)
  "$@" >&2 || { echo "serial: stage $name failed" >&2; exit 1; }
  e=$(date +%s%N)
  echo "stage $name $s $e"
}

# replicate_db.sh
stage db_dump "$pg_bin/pg_dump" -Fc -d "$src" -f "$scratch/db_backup.dump"
stage db_transfer py dump "$moto" "$azure" "$scratch/db_backup.dump" "$scratch/restore.dump"
rm -f "$scratch/db_backup.dump"
stage db_restore "$pg_bin/pg_restore" --clean --if-exists --no-owner -j "$jobs" -d "$dst" "$scratch/restore.dump"
rm -f "$scratch/restore.dump"
stage db_count count_rows "$dst"
# sync_s3.sh
stage objects py objects "$moto" "$azure" "$bucket" "$container"
# Provision Azure
stage tf_init bash -c 'cd "$1" && "$2/terraform" init -input=false' _ "$tfdir" "$tools"
stage tf_plan bash -c 'cd "$1" && "$2/terraform" plan -input=false' _ "$tfdir" "$tools"
stage tf_apply bash -c 'cd "$1" && "$2/terraform" apply -auto-approve -input=false' _ "$tfdir" "$tools"
# Deploy Services
for svc in service-a service-b; do
  stage "helm_$svc" "$tools/helm" install "$svc" "k8s/helm/$svc" --kube-context azure-dr --namespace "$ns"
done
for svc in service-a service-b; do
  stage "rollout_$svc" "$tools/kubectl" --context=azure-dr --namespace="$ns" rollout status "deployment/$svc" --timeout=5m
done
# switch_dns.sh
switch_dns() {
  aws --endpoint-url "$moto" route53 list-resource-record-sets --hosted-zone-id "$zone" \
    --query "ResourceRecordSets[?Name=='$record.']" --output json >/dev/null
  local ip
  ip=$(cd "$tfdir" && "$tools/terraform" output -json | python3 -c 'import json,sys; print(json.load(sys.stdin)["lb_ip"]["value"])')
  aws --endpoint-url "$moto" route53 change-resource-record-sets --hosted-zone-id "$zone" --change-batch \
    "{\"Changes\": [{\"Action\": \"UPSERT\", \"ResourceRecordSet\": {\"Name\": \"$record\", \"Type\": \"A\", \"TTL\": 60, \"ResourceRecords\": [{\"Value\": \"$ip\"}]}}]}" >/dev/null
  sleep "${SEED_DNS_WAIT:-0}"
}
stage dns switch_dns
# verify_services.sh, then the data
stage verify_http bash -c '[ "$(curl -s -o /dev/null -w "%{http_code}" --max-time 5 "$1/health")" = 200 ]' _ "$site"
echo "rto_end $(date +%s%N)"
verify_data() {
  local a b
  a=$(count_rows "$src") b=$(count_rows "$dst")
  [ "$a" = "$b" ] || { echo "serial: rows differ: source $a, target $b" >&2; return 1; }
  py verify "$moto" "$azure" "$bucket" "$container"
}
stage verify_data verify_data
