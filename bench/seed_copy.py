#!/usr/bin/env python3
"""The seed's two copies, as its scripts do them, for bench/serial_failover.sh: one object at a
time, in one process (the seed ran `aws s3 cp` and `az storage blob upload` once per object,
a process each: this loop is the seed's route without the process start-ups, so it favours
the seed).

usage: seed_copy.py dump MOTO AZURE FILE OUT
           replicate_db.sh's transfers: FILE → s3://backups/db_backup.dump (boto3's
           upload_file, what `aws s3 cp` runs) → azblob://backups/db_backup.dump (streamed,
           4 MiB blocks, as azure-storage-blob's upload_blob does above 64 MiB) → OUT
           (downloaded, what `az storage blob download` does). Prints the bytes.
       seed_copy.py objects MOTO AZURE BUCKET CONTAINER
           sync_s3.sh: list the bucket, then for each object in turn: GET from S3, PUT to the
           container; then list the container (its verification). Prints "OBJECTS BYTES".
MOTO is the S3 endpoint URL, AZURE the account's URL (http://127.0.0.1:PORT/devstoreaccount1).
Azure requests carry an account SAS (bench/azblob.py) over one kept-alive connection, as the
SDK's session does. Exits non-zero on any failed request.
"""

import base64
import http.client
import sys
from pathlib import Path
from urllib.parse import quote, urlparse

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent))
import azblob  # noqa: E402  (the benchmarks' own Azure helpers: the SAS, the listing)

BLOCK = 4 << 20
SINGLE_PUT = 64 << 20


class Azure:
    def __init__(self, account_url):
        u = urlparse(account_url)
        self.host, self.port, self.base = u.hostname, u.port, u.path
        self.sas = azblob.sas()
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def request(self, method, path, query="", body=None, headers=None, ok=(200, 201, 202)):
        url = f"{self.base}/{path}?{query + '&' if query else ''}{self.sas}"
        h = {"x-ms-version": azblob.VERSION, **(headers or {})}
        if body is not None:
            h["Content-Length"] = str(len(body))
        for attempt in range(2):
            try:
                self.conn.request(method, url, body=body, headers=h)
                r = self.conn.getresponse()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                if attempt:
                    raise
        if r.status not in ok:
            sys.exit(f"seed_copy: {method} {path} answered {r.status}: {r.read()[:300]!r}")
        return r

    def create_container(self, container):
        self.request("PUT", container, "restype=container", body=b"", ok=(201, 409)).read()

    def put(self, container, name, data):
        self.request("PUT", f"{container}/{quote(name)}", body=data, headers={"x-ms-blob-type": "BlockBlob"}).read()

    def put_stream(self, container, name, stream):
        ids = []
        while chunk := stream.read(BLOCK):
            block = base64.b64encode(f"{len(ids):08d}".encode()).decode()
            self.request("PUT", f"{container}/{quote(name)}", f"comp=block&blockid={quote(block)}", body=chunk).read()
            ids.append(block)
        xml = "<?xml version='1.0' encoding='utf-8'?><BlockList>" + "".join(f"<Latest>{b}</Latest>" for b in ids) + "</BlockList>"
        self.request("PUT", f"{container}/{quote(name)}", "comp=blocklist", body=xml.encode()).read()


def s3_client(moto):
    return boto3.client("s3", region_name="us-east-1", endpoint_url=moto, aws_access_key_id="sandbox", aws_secret_access_key="sandbox")


def dump(moto, azure_url, file, out):
    s3, az = s3_client(moto), Azure(azure_url)
    try:
        s3.create_bucket(Bucket="backups")
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.upload_file(file, "backups", "db_backup.dump")
    az.create_container("backups")
    body = s3.get_object(Bucket="backups", Key="db_backup.dump")["Body"]
    az.put_stream("backups", "db_backup.dump", body)
    r = az.request("GET", "backups/db_backup.dump")
    n = 0
    with open(out, "wb") as f:
        while chunk := r.read(1 << 20):
            f.write(chunk)
            n += len(chunk)
    print(n)


def objects(moto, azure_url, bucket, container):
    s3, az = s3_client(moto), Azure(azure_url)
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])]
    az.create_container(container)
    total = 0
    for key in keys:
        data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        if len(data) > SINGLE_PUT:
            sys.exit(f"seed_copy: {key} is larger than one request: not emulated")
        az.put(container, key, data)
        total += len(data)
    blobs, size = azblob.count(azure_url, container)
    if (blobs, size) != (len(keys), total):
        sys.exit(f"seed_copy: the container holds {blobs} blobs, {size} bytes; copied {len(keys)}, {total}")
    print(len(keys), total)


def verify(moto, azure_url, bucket, container):
    s3 = s3_client(moto)
    objs = [o for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])]
    want = (len(objs), sum(o["Size"] for o in objs))
    got = azblob.count(azure_url, container)
    if tuple(got) != want:
        sys.exit(f"seed_copy: the container holds {got[0]} blobs, {got[1]} bytes; the bucket {want[0]}, {want[1]}")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "dump" and len(args) == 4:
        dump(*args)
    elif cmd == "objects" and len(args) == 4:
        objects(*args)
    elif cmd == "verify" and len(args) == 4:
        verify(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
