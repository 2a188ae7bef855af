"""The moto server (real AWS wire protocols, in memory) with two test-only routes.

moto's EKS node groups are always ACTIVE and every answer is immediate, so this wraps
moto's own server application (as `moto_server` builds it) and adds:

  POST /phoenix-test/eks    {"region", "cluster", "nodegroups": {name: status}}
       creates the cluster and node groups through the EKS API, then sets each status
       (and a health issue for those not ACTIVE) in moto's backend.
  POST /phoenix-test/delay  {"seconds": s}   every later AWS answer waits s seconds.

For the data actions (s3.*, route53.*), which the product never creates a bucket or a
zone for, and to make Route 53 changes slower than moto's (always INSYNC):

  POST /phoenix-test/s3-bucket      {"region", "bucket"}  creates the bucket.
  POST /phoenix-test/s3-objects     {"bucket", "prefix", "count", "size"}  puts that many objects.
  POST /phoenix-test/eks-status     {"region", "cluster", "nodegroup", "status"}  one node group's status.
  POST /phoenix-test/route53-zone   {"name"}  creates a hosted zone; answers its id.
  POST /phoenix-test/s3-uploads     {"region", "bucket"}  answers how many multipart uploads
                                    are started and not completed or aborted.
  POST /phoenix-test/secret         {"region", "name", "value"}  creates a Secrets Manager secret.
  POST /phoenix-test/route53-pending {"polls": n}  changes are PENDING, and so are the next
       n GetChange answers (n < 0: every one of them).

Everything else is moto. Listens on 127.0.0.1 on a free port and prints it on stdout.
"""

import json
import sys
import threading
import time

import boto3
from moto.core import DEFAULT_ACCOUNT_ID
from moto.eks.models import eks_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

delay = {"seconds": 0.0}
port = {}


def seed_eks(spec):
    region, cluster = spec["region"], spec["cluster"]
    eks = boto3.client(
        "eks",
        region_name=region,
        endpoint_url=f"http://127.0.0.1:{port['n']}",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    account = DEFAULT_ACCOUNT_ID
    eks.create_cluster(
        name=cluster,
        roleArn=f"arn:aws:iam::{account}:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-0001"]},
    )
    for name, status in spec["nodegroups"].items():
        eks.create_nodegroup(
            clusterName=cluster,
            nodegroupName=name,
            nodeRole=f"arn:aws:iam::{account}:role/node",
            subnets=["subnet-0001"],
        )
        group = eks_backends[account][region].clusters[cluster].nodegroups[name]
        group.status = status
        if status != "ACTIVE":
            group.health = {"issues": [{"code": "AsgInstanceLaunchFailures", "message": "test: instances fail to launch", "resourceIds": []}]}


pending = {"polls": 0}


def client(service, region="us-east-1"):
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=f"http://127.0.0.1:{port['n']}",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def seed_bucket(spec):
    region = spec.get("region", "us-east-1")
    args = {"Bucket": spec["bucket"]}
    if region != "us-east-1":
        args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    client("s3", region).create_bucket(**args)


def seed_zone(spec):
    zone = client("route53").create_hosted_zone(Name=spec["name"], CallerReference=f"phoenix-{time.time()}")
    return zone["HostedZone"]["Id"].removeprefix("/hostedzone/")


def seed_objects(spec):
    """`count` objects of `size` bytes (the last byte varies) under `prefix`."""
    s3 = client("s3", spec.get("region", "us-east-1"))
    for i in range(int(spec["count"])):
        body = (b"x" * max(int(spec["size"]) - 8, 0)) + f"{i:08d}".encode()
        s3.put_object(Bucket=spec["bucket"], Key=f"{spec.get('prefix', '')}object-{i:05d}", Body=body)


def set_nodegroup(spec):
    group = eks_backends[DEFAULT_ACCOUNT_ID][spec["region"]].clusters[spec["cluster"]].nodegroups[spec["nodegroup"]]
    group.status = spec["status"]
    issues = [] if spec["status"] == "ACTIVE" else [{"code": "AsgInstanceLaunchFailures", "message": "instances fail to launch", "resourceIds": []}]
    group.health = {"issues": issues}


def data_route(path, body):
    """A test route for the data actions; its answer's text."""
    if path == "/phoenix-test/s3-bucket":
        seed_bucket(body)
    elif path == "/phoenix-test/s3-objects":
        seed_objects(body)
    elif path == "/phoenix-test/eks-status":
        set_nodegroup(body)
    elif path == "/phoenix-test/route53-zone":
        return seed_zone(body)
    elif path == "/phoenix-test/s3-uploads":
        uploads = client("s3", body.get("region", "us-east-1")).list_multipart_uploads(Bucket=body["bucket"])
        return str(len(uploads.get("Uploads", [])))
    elif path == "/phoenix-test/route53-pending":
        pending["polls"] = int(body["polls"])
    elif path == "/phoenix-test/secret":
        client("secretsmanager", body.get("region", "us-east-1")).create_secret(Name=body["name"], SecretString=body["value"])
    return "ok"


def pending_change(moto, environ, start_response, count):
    """moto's ChangeResourceRecordSets or GetChange answer, with its status PENDING."""
    if count and pending["polls"] > 0:
        pending["polls"] -= 1
    answered = {}
    body = b"".join(moto(environ, lambda status, headers, exc_info=None: answered.update(status=status, headers=headers)))
    body = body.replace(b"<Status>INSYNC</Status>", b"<Status>PENDING</Status>")
    headers = [(k, v) for k, v in answered["headers"] if k.lower() != "content-length"]
    start_response(answered["status"], headers + [("Content-Length", str(len(body)))])
    return [body]


def main():
    moto = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path in ("/phoenix-test/s3-bucket", "/phoenix-test/s3-objects", "/phoenix-test/eks-status", "/phoenix-test/route53-zone", "/phoenix-test/route53-pending", "/phoenix-test/s3-uploads", "/phoenix-test/secret"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                answer = data_route(path, json.loads(environ["wsgi.input"].read(length) or b"{}")).encode()
                start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(answer)))])
                return [answer]
            except Exception as e:  # the test shows what went wrong
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
                return [repr(e).encode()]
        change = environ.get("REQUEST_METHOD") == "POST" and path.rstrip("/").endswith("/rrset")
        if pending["polls"] and (change or (environ.get("REQUEST_METHOD") == "GET" and "/change/" in path)):
            return pending_change(moto, environ, start_response, count=not change)
        if path.startswith("/phoenix-test/"):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            try:
                if path == "/phoenix-test/eks":
                    seed_eks(body)
                elif path == "/phoenix-test/delay":
                    delay["seconds"] = float(body["seconds"])
                else:
                    raise ValueError(f"no test route {path}")
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"ok"]
            except Exception as e:  # the test shows what went wrong
                start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
                return [repr(e).encode()]
        if delay["seconds"]:
            time.sleep(delay["seconds"])
        return moto(environ, start_response)

    # A port on the command line (the sandbox): run until killed. Without one (a test): a free
    # port, printed, and stop when the test (our parent) closes stdin, even if it was killed.
    fixed = len(sys.argv) > 1
    server = make_server("127.0.0.1", int(sys.argv[1]) if fixed else 0, app, threaded=True)
    port["n"] = server.server_port
    print(server.server_port, flush=True)
    if not fixed:
        threading.Thread(target=lambda: (sys.stdin.read(), server.shutdown()), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
