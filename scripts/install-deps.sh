#!/usr/bin/env bash
# Installs what building, testing and the demo need on a fresh Debian machine of this kind
# (the Rust toolchain is already there). Idempotent: it installs only what is missing.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1; }
have python3 || need+=(python3)
# The AWS tests run the moto server from a virtualenv (below).
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
have pgrep || need+=(procps)
have curl || need+=(curl)
[ -x /usr/bin/time ] || need+=(time)
# The postgres.* tests start real clusters from these (initdb, pg_ctl, pg_basebackup, psql);
# the package also creates the `postgres` user they run as.
[ -x /usr/lib/postgresql/15/bin/initdb ] && [ -x /usr/lib/postgresql/15/bin/psql ] || need+=(postgresql-15)
# tests/watch.rs has a real Prometheus scrape `phoenix watch --metrics`.
[ -x /usr/bin/prometheus ] || need+=(prometheus)
# tests/page.rs drives the served web page in headless Chromium over the DevTools Protocol.
have chromium || need+=(chromium)
# The etcd store's tests start real 3-member etcd clusters (engine/src/state/etcd/testing.rs).
[ -x /usr/bin/etcd ] || need+=(etcd-server)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# moto[server]: AWS's wire protocols in memory, for the aws.* tests (tests/support/moto.rs).
venv="${PHOENIX_VENV:-$(cd "$(dirname "$0")/.." && pwd)/.tools/venv}"
if ! "$venv/bin/python" -c 'import moto.server, boto3' 2>/dev/null; then
  echo "installing moto[server] into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'moto[server]>=5,<6'
fi
# opentelemetry-proto: the official OTLP messages, decoded by the tests' OTLP receiver
# (tests/support/otlp_receiver.py, tests/tracing.rs).
if ! "$venv/bin/python" -c 'import opentelemetry.proto.collector.trace.v1.trace_service_pb2' 2>/dev/null; then
  echo "installing opentelemetry-proto into $venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check 'opentelemetry-proto>=1.27,<2'
fi
# Azurite: Azure Blob Storage's emulator, for the azure_blob.* tests (tests/support/azurite.rs),
# from npm into .tools/azurite (or PHOENIX_AZURITE); Node.js and npm from Debian if missing.
azurite="${PHOENIX_AZURITE:-$(cd "$(dirname "$0")/.." && pwd)/.tools/azurite}"
if [ ! -x "$azurite/node_modules/.bin/azurite-blob" ]; then
  if ! have npm; then
    echo "installing: nodejs npm" >&2
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  echo "installing azurite into $azurite" >&2
  mkdir -p "$azurite"
  npm install --prefix "$azurite" --no-audit --no-fund --loglevel=error 'azurite@3' >/dev/null
fi
# Crates are fetched by cargo on first build; fetching up front gives one clear failure.
cargo fetch --locked -q 2>/dev/null || cargo fetch -q
