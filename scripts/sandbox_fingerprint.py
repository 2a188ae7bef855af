#!/usr/bin/env python3
"""Fingerprints of what a drill must leave untouched in the sandbox: production's DNS record
set, its DR container (every blob's name, size, MD5 and ETag) and its databases (a pg_dump of
the DR database and of the primary, data and schema). One JSON line of SHA-256 sums; equal
before and after a drill means byte-for-byte unchanged.

usage: sandbox_fingerprint.py DIR     (DIR: a sandbox brought up by sandbox.py up)
"""

import hashlib
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sandbox as sb  # noqa: E402


def sha(data):
    return hashlib.sha256(data if isinstance(data, bytes) else data.encode()).hexdigest()


def dump(port):
    out = subprocess.run(
        [sb.PG_BIN / "pg_dump", "--no-owner", "--no-privileges", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "app"],
        capture_output=True, env={**os.environ, "PGPASSWORD": sb.APP_PASSWORD}, check=True,
    )
    # Recent pg_dump fences its output with `\restrict KEY` / `\unrestrict KEY`, a random
    # key per dump: those lines are not the database.
    return b"\n".join(l for l in out.stdout.split(b"\n") if not l.startswith((b"\\restrict ", b"\\unrestrict ")))


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    d = Path(sys.argv[1]).resolve()
    cfg = json.loads((d / "sandbox.json").read_text())
    p = cfg["ports"]
    code = f"""
import boto3, json
kw = dict(region_name="{sb.REGION}", endpoint_url="{cfg['moto']}", aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
rr = boto3.client("route53", **kw).list_resource_record_sets(HostedZoneId="{cfg['zone_id']}")["ResourceRecordSets"]
print(json.dumps([r for r in rr if r["Name"].rstrip(".") == "{sb.RECORD}"], sort_keys=True))
"""
    dns = subprocess.run([sb.VENV / "bin/python", "-c", code], capture_output=True, text=True, check=True).stdout
    url = f"http://127.0.0.1:{p['azurite']}/{sb.ACCOUNT}/{sb.CONTAINER}?restype=container&comp=list&maxresults=5000&{sb.account_sas()}"
    try:
        xml = urllib.request.urlopen(url, timeout=30).read().decode()
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise
        xml = ""  # no container yet (no failover has run): a drill must not make one
    # Names, sizes, MD5s and ETags of every blob, without the listing's volatile parts.
    blobs = re.findall(r"<Name>([^<]+)</Name>.*?<Etag>([^<]+)</Etag>.*?<Content-Length>(\d+)</Content-Length>.*?<Content-MD5>([^<]*)</Content-MD5>", xml, re.S)
    print(json.dumps({
        "dns": sha(dns),
        "container": sha(json.dumps(sorted(blobs))),
        "container_blobs": len(blobs),
        "dr_database": sha(dump(p["pg_azure"])),
        "primary_database": sha(dump(p["pg_aws"])),
    }, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
