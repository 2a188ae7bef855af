#!/usr/bin/env python3
"""The DR sandbox: everything `runbooks/dr-failover.yaml` acts on, on 127.0.0.1.

  "AWS":   PostgreSQL primary + streaming standby (pg_basebackup -R), the moto server
           (S3, Route 53, EKS, STS), services A and B whose /health can be switched.
  "Azure": PostgreSQL, Azurite (Blob), the DR site's services (healthy once deployed).
  Tools:   stand-ins for terraform, helm and kubectl that record what they were asked and
           "deploy" the Azure services.

usage: sandbox.py up DIR          start everything, seed data, write DIR/sandbox.json
       sandbox.py incident DIR    the seed's scenario: A unhealthy, B degraded, a node group DEGRADED
       sandbox.py heal DIR        back to healthy
       sandbox.py health DIR SERVICE STATUS     one service's /health (a|b: healthy|degraded|unhealthy)
       sandbox.py verify DIR      did rows, objects and the DNS record move? (exit 1 if not)
       sandbox.py down DIR        stop everything (DIR stays, for the logs)

Idempotent: `up` on a running sandbox stops it first. Nothing listens beyond 127.0.0.1.
"""

import json
import os
import shutil
import signal
import random
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
VENV = Path(os.environ.get("PHOENIX_VENV", ROOT / ".tools/venv"))
AZURITE = Path(os.environ.get("PHOENIX_AZURITE", ROOT / ".tools/azurite")) / "node_modules/.bin/azurite-blob"
APP_PASSWORD = "sandbox-app-Pw-4417"
AWS_LB_IP = "10.0.1.10"
AZURE_LB_IP = "20.50.0.10"
REGION = "us-east-1"
BUCKET = "prod-assets"
CONTAINER = "dr-assets"
OBJECTS = int(os.environ.get("SANDBOX_OBJECTS", "300"))
ZONE = "example.com"
RECORD = "app.example.com"
# A drill's targets (`phoenix drill runbooks/dr-failover.yaml`): its own record (pointing at
# the primary, as production's does), its container (made by the drill's sync), its database.
DRILL_RECORD = "drill-app.example.com"
DRILL_DB = "app_drill"
CLUSTER = "cloudphoenix-eks"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, documented by Microsoft).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def log(msg):
    print(f"sandbox: {msg}", file=sys.stderr, flush=True)


_given = set()


def free_port():
    """A free port below the kernel's ephemeral range (ip_local_port_range, 32768 and up).

    The services bind their ports seconds after they are picked (PostgreSQL initializes
    first). A port picked by binding port 0 is an ephemeral one, which the kernel may hand
    meanwhile to another test's `bind(0)` or to an outgoing connection as its source port.
    Below that range only another picker can take it.
    """
    start = 32768
    try:
        start = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    high = start - 1
    low = max(1024, high - 12000)
    for _ in range(1000):
        port = random.randint(low, high)
        if port in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            _given.add(port)
            return port
    raise SystemExit("sandbox: no free port below the ephemeral range")


def wait_for(what, cond, limit=300):
    start = time.time()
    while time.time() - start < limit:
        try:
            if cond():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise SystemExit(f"sandbox: gave up waiting for {what}")


def http_ok(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500
    except Exception:
        return False


def as_postgres(*args, check=True):
    out = subprocess.run(["runuser", "-u", "postgres", "--", *map(str, args)], cwd="/", capture_output=True, text=True)
    if check and out.returncode != 0:
        raise SystemExit(f"sandbox: {' '.join(map(str, args[:2]))} failed:\n{out.stdout}\n{out.stderr}")
    return out


def psql(port, sql, db="postgres"):
    out = subprocess.run(
        [PG_BIN / "psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", db, "-c", sql],
        capture_output=True, text=True, env={**os.environ, "PGPASSWORD": APP_PASSWORD},
    )
    if out.returncode != 0:
        raise SystemExit(f"sandbox: psql failed: {sql[:80]}\n{out.stderr}")
    return out.stdout.strip()


def spawn(d, name, argv, env=None):
    logf = open(d / "logs" / f"{name}.log", "ab")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    return p.pid


def init_cluster(d, name, port, standby_of=None):
    data = d / "pg" / name
    if standby_of:
        as_postgres(PG_BIN / "pg_basebackup", "-h", "127.0.0.1", "-p", standby_of, "-U", "postgres", "-D", data, "-R", "-X", "stream", "--no-sync", "--checkpoint=fast")
        conf = (data / "postgresql.conf").read_text()
        (data / "postgresql.conf").write_text(conf + f"port = {port}\n")
    else:
        as_postgres(PG_BIN / "initdb", "-D", data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
                    "--pwfile", d / "pg" / "pwfile", "--no-sync", "-E", "UTF8", "--locale=C")
        with open(data / "postgresql.conf", "a") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{d / 'pg'}'\n"
                    "wal_level = replica\nmax_wal_senders = 5\nfsync = off\nsynchronous_commit = off\nshared_buffers = 32MB\n")
        # The standby's base backup and stream come from this machine only (first match wins).
        hba = (data / "pg_hba.conf").read_text()
        (data / "pg_hba.conf").write_text("host replication postgres 127.0.0.1/32 trust\n" + hba)
    as_postgres(PG_BIN / "pg_ctl", "-D", data, "-l", d / "pg" / f"{name}.log", "-w", "-t", "300", "start")


def stand_ins(d):
    b = d / "bin"
    b.mkdir(exist_ok=True)
    tools_log = d / "tools.log"
    st = d / "state"
    scripts = {
        "terraform": f"""#!/usr/bin/env bash
# A stand-in for terraform: records what it was asked; `apply` provisions the DR site.
echo "terraform $*" >> {tools_log}
case "$1" in
  init) echo "Terraform has been successfully initialized!";;
  plan) echo "Plan: 3 to add, 0 to change, 0 to destroy.";;
  apply) sleep "${{SANDBOX_PACE:-0.5}}"; touch {st}/azure-provisioned; echo "Apply complete! Resources: 3 added, 0 changed, 0 destroyed.";;
  destroy) rm -f {st}/azure-provisioned {st}/deployed-*; echo "Destroy complete! Resources: 3 destroyed.";;
  output) echo '{{"lb_ip": {{"value": "{AZURE_LB_IP}"}}, "aks_cluster": {{"value": "phoenix-dr"}}}}';;
  *) echo "terraform stand-in: $1 is not emulated" >&2; exit 1;;
esac
""",
        "helm": f"""#!/usr/bin/env bash
# A stand-in for helm: `upgrade --install RELEASE CHART` deploys RELEASE on the DR site.
echo "helm $*" >> {tools_log}
if [ "$1" = upgrade ] || [ "$1" = install ]; then
  [ -e {st}/azure-provisioned ] || {{ echo "Error: Kubernetes cluster unreachable (the DR site is not provisioned)" >&2; exit 1; }}
  release=""; for a in "$@"; do case "$a" in upgrade|install|--*|-*) ;; *) [ -z "$release" ] && release=$a;; esac; done
  sleep "${{SANDBOX_PACE:-0.5}}"; touch "{st}/deployed-$release"; echo "Release \\"$release\\" has been upgraded. Happy Helming!"
elif [ "$1" = uninstall ]; then
  rm -f "{st}/deployed-$2"; echo "release \\"$2\\" uninstalled"
fi
""",
        "kubectl": f"""#!/usr/bin/env bash
# A stand-in for kubectl: rollout status / wait succeed once the deployment is there.
echo "kubectl $*" >> {tools_log}
for a in "$@"; do case "$a" in deployment/*) dep=${{a#deployment/}};; esac; done
case " $* " in
  *" rollout restart "*) echo "deployment.apps/$dep restarted";;
  *" scale "*) touch "{st}/deployed-$dep"; echo "deployment.apps/$dep scaled";;
  *" rollout status "*|*" wait "*) [ -e "{st}/deployed-$dep" ] || {{ echo "error: deployment \\"$dep\\" not found" >&2; exit 1; }}; echo "deployment \\"$dep\\" successfully rolled out";;
  *) echo "kubectl stand-in: not emulated: $*" >&2; exit 1;;
esac
""",
    }
    for name, text in scripts.items():
        (b / name).write_text(text)
        (b / name).chmod(0o755)


def seed_aws(cfg):
    """S3 objects, the DNS record, the EKS cluster: through boto3 against moto."""
    code = f"""
import boto3, json
kw = dict(region_name="{REGION}", endpoint_url="{cfg['moto']}", aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
s3 = boto3.client("s3", **kw)
s3.create_bucket(Bucket="{BUCKET}")
for i in range({OBJECTS}):
    s3.put_object(Bucket="{BUCKET}", Key=f"assets/{{i // 50:02d}}/object-{{i:04d}}.json", Body=json.dumps({{"n": i, "pad": "x" * (i % 97)}}).encode())
r53 = boto3.client("route53", **kw)
zone = r53.create_hosted_zone(Name="{ZONE}", CallerReference="sandbox")["HostedZone"]["Id"].split("/")[-1]
r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={{"Changes": [{{"Action": "UPSERT", "ResourceRecordSet": {{
    "Name": "{RECORD}", "Type": "A", "TTL": 60, "ResourceRecords": [{{"Value": "{AWS_LB_IP}"}}]}}}}]}})
r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={{"Changes": [{{"Action": "UPSERT", "ResourceRecordSet": {{
    "Name": "{DRILL_RECORD}", "Type": "A", "TTL": 60, "ResourceRecords": [{{"Value": "{AWS_LB_IP}"}}]}}}}]}})
print(zone)
"""
    out = subprocess.run([VENV / "bin/python", "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"sandbox: seeding AWS failed:\n{out.stderr}")
    cfg["zone_id"] = out.stdout.strip()
    post(cfg["moto"] + "/phoenix-test/eks", {"region": REGION, "cluster": CLUSTER, "nodegroups": {"ng-a": "ACTIVE", "ng-b": "ACTIVE", "ng-c": "ACTIVE"}})


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read()


def up(d):
    if (d / "sandbox.json").exists():
        down(d, quiet=True)
    for sub in ["pg", "state", "azurite", "work"]:
        shutil.rmtree(d / sub, ignore_errors=True)
    for sub in ["logs", "state", "pg", "azurite", "work"]:
        (d / sub).mkdir(parents=True, exist_ok=True)
    (d / "tools.log").write_text("")
    subprocess.run(["chown", "postgres:postgres", d / "pg"], check=True)
    (d / "pg" / "pwfile").write_text(APP_PASSWORD + "\n")
    subprocess.run(["chown", "postgres:postgres", d / "pg" / "pwfile"], check=True)
    if not (VENV / "bin/python").exists():
        raise SystemExit(f"sandbox: {VENV} is missing: run `make deps`")
    if not AZURITE.exists():
        raise SystemExit(f"sandbox: {AZURITE} is missing: run `make deps`")

    ports = {k: free_port() for k in ["pg_aws", "pg_standby", "pg_azure", "moto", "azurite", "svc_a", "svc_b", "external", "azure_site", "statuspage"]}
    cfg = {"dir": str(d), "ports": ports, "pids": {}}
    log("PostgreSQL: AWS primary, its streaming standby, Azure")
    init_cluster(d, "aws", ports["pg_aws"])
    psql(ports["pg_aws"], "CREATE DATABASE app")
    psql(ports["pg_aws"], """
        CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, created timestamptz DEFAULT now());
        CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int REFERENCES customers(id), total numeric(10,2), status text);
        CREATE INDEX orders_customer ON orders (customer_id);
        CREATE VIEW open_orders AS SELECT * FROM orders WHERE status = 'open';
        INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 2000) g;
        INSERT INTO orders (customer_id, total, status)
          SELECT 1 + g % 2000, (g % 997) / 10.0, CASE WHEN g % 5 = 0 THEN 'open' ELSE 'shipped' END FROM generate_series(1, 20000) g;
    """, db="app")
    init_cluster(d, "aws-standby", ports["pg_standby"], standby_of=str(ports["pg_aws"]))
    init_cluster(d, "azure", ports["pg_azure"])
    psql(ports["pg_azure"], "CREATE DATABASE app")
    psql(ports["pg_azure"], f"CREATE DATABASE {DRILL_DB}")

    log("moto server (S3, Route 53, EKS, STS), Azurite, services")
    cfg["pids"]["moto"] = spawn(d, "moto", [VENV / "bin/python", ROOT / "tests/support/moto_server.py", str(ports["moto"])])
    cfg["pids"]["azurite"] = spawn(d, "azurite", [AZURITE, "--blobHost", "127.0.0.1", "--blobPort", str(ports["azurite"]),
                                                 "--location", d / "azurite", "--silent", "--skipApiVersionCheck", "--loose"])
    cfg["pids"]["services"] = spawn(d, "services", [sys.executable, ROOT / "scripts/sandbox_services.py", d / "state",
                                                   str(ports["svc_a"]), str(ports["svc_b"]), str(ports["external"]), str(ports["azure_site"]), str(ports["statuspage"])])
    for name in ["a", "b"]:
        (d / "state" / f"{name}.status").write_text("healthy")
    (d / "state" / "statuspage.indicator").write_text("none")
    cfg["moto"] = f"http://127.0.0.1:{ports['moto']}"
    wait_for("the moto server", lambda: http_ok(cfg["moto"] + "/moto-api/"))
    wait_for("Azurite", lambda: http_ok(f"http://127.0.0.1:{ports['azurite']}/{ACCOUNT}?comp=list"))
    wait_for("the services", lambda: http_ok(f"http://127.0.0.1:{ports['svc_a']}/health"))
    stand_ins(d)
    seed_aws(cfg)
    write_params(d, cfg)
    (d / "sandbox.json").write_text(json.dumps(cfg, indent=2))
    log(f"up: {OBJECTS} objects in s3://{BUCKET}, 22,000 rows in app, {RECORD} → {AWS_LB_IP}; params in {d}/params.json")


def write_params(d, cfg):
    p = cfg["ports"]
    aws_dsn = f"postgresql://postgres:{APP_PASSWORD}@127.0.0.1:{p['pg_aws']}/app"
    standby_dsn = f"postgresql://postgres:{APP_PASSWORD}@127.0.0.1:{p['pg_standby']}/app"
    azure_dsn = f"postgresql://postgres:{APP_PASSWORD}@127.0.0.1:{p['pg_azure']}/app"
    drill_dsn = f"postgresql://postgres:{APP_PASSWORD}@127.0.0.1:{p['pg_azure']}/{DRILL_DB}"
    azurite = f"http://127.0.0.1:{p['azurite']}/{ACCOUNT}"
    params = {
        "health": {
            "service_a": f"http://127.0.0.1:{p['svc_a']}", "service_b": f"http://127.0.0.1:{p['svc_b']}",
            "external_url": f"http://127.0.0.1:{p['external']}/status/200", "azure_probe": f"http://127.0.0.1:{p['azure_site']}/health",
            # The observer's own reference (health.yaml's vantage signal): the sandbox's
            # always-up endpoint, never an address off this machine.
            "vantage_url": f"http://127.0.0.1:{p['external']}/status/200",
            "eks_cluster": CLUSTER, "region": REGION, "aws_endpoint_url": cfg["moto"],
        },
        # The incident-analysis gate: a status page; Prometheus and Loki are not in the sandbox
        # (closed ports: that evidence is reported unavailable, as it may be in an incident).
        "analysis": {
            "statuspage_url": f"http://127.0.0.1:{p['statuspage']}", "prometheus_url": f"http://127.0.0.1:{free_port()}",
            "loki_url": f"http://127.0.0.1:{free_port()}", "aws_endpoint_url": f"http://127.0.0.1:{free_port()}",
        },
        "dr": {
            "bucket": BUCKET, "container": CONTAINER, "zone_id": cfg.get("zone_id", ""), "record": RECORD,
            "aws_endpoint_url": cfg["moto"], "azure_blob_endpoint": azurite,
            "tools_dir": str(d / "bin"), "work_dir": str(d / "work"),
            "azure_site": f"http://127.0.0.1:{p['azure_site']}", "verify_tables": ["customers", "orders"],
        },
        # Secrets: the environment `phoenix` runs in (the runbooks read them as `secrets`).
        "env": {
            "PHOENIX_REPLICA_DSN": standby_dsn, "PHOENIX_SOURCE_DSN": aws_dsn, "PHOENIX_TARGET_DSN": azure_dsn,
            "PHOENIX_DRILL_TARGET_DSN": drill_dsn,
            "AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox", "AWS_REGION": REGION,
            "AZURE_STORAGE_CONNECTION_STRING": f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={azurite};",
        },
    }
    (d / "params.json").write_text(json.dumps(params, indent=2))


def stopped(pid):
    try:
        os.kill(pid, 0)
        return False
    except ProcessLookupError:
        return True


def down(d, quiet=False):
    cfg = json.loads((d / "sandbox.json").read_text()) if (d / "sandbox.json").exists() else {"pids": {}}
    for name, pid in cfg["pids"].items():
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            continue
        for _ in range(50):
            if stopped(pid):
                break
            time.sleep(0.1)
        else:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for name in ["aws-standby", "aws", "azure"]:
        data = d / "pg" / name
        if (data / "postmaster.pid").exists():
            as_postgres(PG_BIN / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop", check=False)
    (d / "sandbox.json").unlink(missing_ok=True)
    if not quiet:
        log(f"down (logs stay in {d}/logs)")


def set_health(d, service, status):
    (d / "state" / f"{service}.status").write_text(status)


def incident(d):
    cfg = json.loads((d / "sandbox.json").read_text())
    set_health(d, "a", "unhealthy")
    set_health(d, "b", "degraded")
    (d / "state" / "statuspage.indicator").write_text("major")
    # moto cannot degrade a node group; its test route sets the status in moto's backend.
    post(cfg["moto"] + "/phoenix-test/eks-status", {"region": REGION, "cluster": CLUSTER, "nodegroup": "ng-b", "status": "DEGRADED"})
    log("incident: service A unhealthy, service B degraded, node group ng-b DEGRADED, the status page reports a major outage (the DR site is not deployed: its probe fails)")


def heal(d):
    cfg = json.loads((d / "sandbox.json").read_text())
    set_health(d, "a", "healthy")
    set_health(d, "b", "healthy")
    (d / "state" / "statuspage.indicator").write_text("none")
    post(cfg["moto"] + "/phoenix-test/eks-status", {"region": REGION, "cluster": CLUSTER, "nodegroup": "ng-b", "status": "ACTIVE"})


def account_sas():
    """An account SAS for Azurite's blob service, signed with its well-known key."""
    import base64, hashlib, hmac
    from urllib.parse import urlencode
    sp, ss, srt, se, spr, sv = "rl", "b", "sco", "2099-01-01T00:00:00Z", "https,http", "2019-12-12"
    to_sign = "\n".join([ACCOUNT, sp, ss, srt, "", se, "", spr, sv, ""])
    sig = base64.b64encode(hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(), hashlib.sha256).digest()).decode()
    return urlencode({"sv": sv, "ss": ss, "srt": srt, "sp": sp, "se": se, "spr": spr, "sig": sig})


def verify(d):
    """Rows, objects and the DNS record moved: a summary, exit 1 when something did not."""
    cfg = json.loads((d / "sandbox.json").read_text())
    p = cfg["ports"]
    ok = True
    for table in ["customers", "orders"]:
        src, dst = psql(p["pg_aws"], f"SELECT count(*) FROM {table}", "app"), psql(p["pg_azure"], f"SELECT count(*) FROM {table}", "app")
        good = src == dst
        ok &= good
        print(f"{'ok ' if good else 'BAD'} database  {table}: {src} rows on AWS, {dst} on Azure")
    code = f"""
import boto3, sys, urllib.request, re
kw = dict(region_name="{REGION}", endpoint_url="{cfg['moto']}", aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
keys = [o["Key"] for page in boto3.client("s3", **kw).get_paginator("list_objects_v2").paginate(Bucket="{BUCKET}") for o in page.get("Contents", [])]
xml = urllib.request.urlopen("http://127.0.0.1:{p['azurite']}/{ACCOUNT}/{CONTAINER}?restype=container&comp=list&maxresults=5000&{account_sas()}").read().decode()
blobs = re.findall("<Name>([^<]+)</Name>", xml)
rr = boto3.client("route53", **kw).list_resource_record_sets(HostedZoneId="{cfg['zone_id']}")["ResourceRecordSets"]
dns = [r["ResourceRecords"][0]["Value"] for r in rr if r["Name"].rstrip(".") == "{RECORD}" and r["Type"] == "A"]
print(len(keys), len(set(keys) & set(blobs)), dns[0] if dns else "-")
"""
    out = subprocess.run([VENV / "bin/python", "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        print(f"BAD storage/DNS check failed: {out.stderr.strip().splitlines()[-1:]}")
        return 1
    n_s3, n_both, ip = out.stdout.split()
    good = n_s3 == n_both
    ok &= good
    print(f"{'ok ' if good else 'BAD'} storage   {n_s3} objects in s3://{BUCKET}, {n_both} of them in azblob://{CONTAINER}")
    good = ip == AZURE_LB_IP
    ok &= good
    print(f"{'ok ' if good else 'BAD'} dns       {RECORD} → {ip} (Azure is {AZURE_LB_IP})")
    good = http_ok(f"http://127.0.0.1:{p['azure_site']}/health") and urllib.request.urlopen(f"http://127.0.0.1:{p['azure_site']}/health").status == 200
    ok &= good
    print(f"{'ok ' if good else 'BAD'} services  the DR site's services answer healthy")
    return 0 if ok else 1


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, d = sys.argv[1], Path(sys.argv[2]).resolve()
    if cmd == "up":
        d.mkdir(parents=True, exist_ok=True)
        up(d)
    elif cmd == "down":
        down(d)
    elif cmd == "incident":
        incident(d)
    elif cmd == "heal":
        heal(d)
    elif cmd == "health" and len(sys.argv) == 5:
        set_health(d, sys.argv[3], sys.argv[4])
    elif cmd == "verify":
        return verify(d)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
