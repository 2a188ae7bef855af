#!/usr/bin/env python3
"""Loads a sandbox that is up (scripts/sandbox.py up DIR) with a production-sized dataset, for
bench/rto.sh: the failover then moves what a real one would, not the demo's 22,000 rows.

  database  rows added to the tables dr-failover verifies (customers, orders) on the AWS
            primary with INSERT … SELECT FROM generate_series (one statement each, no row
            by row), until pg_database_size('app') is at least DB_BYTES (default 1 GiB).
            customers get an address-sized text column's worth of name (md5 text, which
            does not compress: the dump is as large as the data), orders stay as they are.
  objects   OBJECTS (default 10,000) more objects in s3://prod-assets (moto), put with boto3
            from 8 threads. Sizes, chosen to look like an application's assets: 88% small
            (2–32 KiB: JSON, thumbnails), 11% medium (64–512 KiB: images), 1% large
            (1–4 MiB: documents, bundles). Deterministic (seeded): the same sizes each time,
            766 MB (731 MiB) for 10,000. Bodies are random bytes (no compression helps anyone).

usage: .tools/venv/bin/python bench/bigdata.py DIR   (a Python with boto3)   env: DB_BYTES, OBJECTS
Prints what it loaded. Idempotent enough for a benchmark: run it once per sandbox.
"""

import json
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DB_BYTES = int(os.environ.get("DB_BYTES", str(1 << 30)))
OBJECTS = int(os.environ.get("OBJECTS", "10000"))


def psql(port, sql, password, db="app"):
    out = subprocess.run(
        [PG_BIN / "psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", db, "-c", sql],
        capture_output=True, text=True, env={**os.environ, "PGPASSWORD": password},
    )
    if out.returncode != 0:
        sys.exit(f"bigdata: psql failed on {sql[:60]!r}:\n{out.stderr}")
    return out.stdout.strip()


def load_database(cfg, password):
    port = cfg["ports"]["pg_aws"]
    t0 = time.time()
    # Batches of 1 M customers (~210 B a row) and 2 M orders (~70 B a row, two indexes), until
    # the database is large enough. Ids continue after the sandbox's own rows.
    while int(psql(port, "SELECT pg_database_size('app')", password)) < DB_BYTES:
        psql(port, """
            INSERT INTO customers (id, name)
              SELECT g, 'customer ' || g || ' ' || md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) || md5((g * 31)::text)
              FROM generate_series((SELECT max(id) + 1 FROM customers), (SELECT max(id) + 1000000 FROM customers)) g;
            INSERT INTO orders (customer_id, total, status)
              SELECT 1 + g % 2000, (g % 99991) / 10.0, CASE WHEN g % 5 = 0 THEN 'open' ELSE 'shipped' END
              FROM generate_series(1, 2000000) g;
        """, password)
    for table in ["customers", "orders"]:
        psql(port, f"VACUUM ANALYZE {table}", password)
    size = int(psql(port, "SELECT pg_database_size('app')", password))
    rows = psql(port, "SELECT (SELECT count(*) FROM customers) || ' ' || (SELECT count(*) FROM orders)", password).split()
    return {"db_bytes": size, "customers": int(rows[0]), "orders": int(rows[1]), "db_seconds": round(time.time() - t0, 1)}


def object_sizes(n):
    rng = random.Random(18)
    sizes = []
    for _ in range(n):
        r = rng.random()
        if r < 0.88:
            sizes.append(rng.randint(2 << 10, 32 << 10))
        elif r < 0.99:
            sizes.append(rng.randint(64 << 10, 512 << 10))
        else:
            sizes.append(rng.randint(1 << 20, 4 << 20))
    return sizes


def load_objects(cfg, bucket):
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=cfg["moto"], aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
    sizes = object_sizes(OBJECTS)
    pool = os.urandom(4 << 20)
    t0 = time.time()

    def put(i):
        size = sizes[i]
        start = (i * 7919) % (len(pool) - size + 1)
        s3.put_object(Bucket=bucket, Key=f"bulk/{i // 500:03d}/asset-{i:05d}.bin", Body=pool[start:start + size])

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(put, range(OBJECTS)))
    return {"objects_added": OBJECTS, "objects_bytes": sum(sizes), "objects_seconds": round(time.time() - t0, 1)}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = Path(sys.argv[1]).resolve()
    cfg = json.loads((d / "sandbox.json").read_text())
    params = json.loads((d / "params.json").read_text())
    password = params["env"]["PHOENIX_SOURCE_DSN"].split(":")[2].split("@")[0]
    with ThreadPoolExecutor(2) as ex:
        db = ex.submit(load_database, cfg, password)
        objs = ex.submit(load_objects, cfg, params["dr"]["bucket"])
        result = {**db.result(), **objs.result()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
