# Sourced by bench/storage_sync.sh and bench/postgres_replicate.sh: what both need to measure
# against the object stores. Expects `root` (the repository) and `tmp` (a scratch directory)
# and appends the servers' pids to `pids` (the caller's EXIT trap stops them).

python=$root/.tools/venv/bin/python
azurite_bin=$root/.tools/azurite/node_modules/.bin/azurite-blob

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { # url what
  for _ in $(seq 600); do
    curl -s -o /dev/null --max-time 1 "$1" && return 0
    sleep 0.1
  done
  echo "$2 did not answer at $1" >&2; exit 1
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
max() { sort -n | tail -1; }
now() { date +%s%N; }

# The tools: the moto server and Azurite from `make deps`, Debian's rclone, phoenix (built
# here unless PHOENIX names one).
need_tools() {
  for need in "$python" "$azurite_bin" "$@"; do
    [ -x "$need" ] || { echo "$need is missing: run \`make deps\`" >&2; exit 1; }
  done
  if ! command -v rclone >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "# installing rclone (Debian's package)" >&2
      apt-get install -y --no-install-recommends rclone >/dev/null || { apt-get update -qq && apt-get install -y --no-install-recommends rclone >/dev/null; }
    else
      echo "rclone is missing: sudo apt-get install rclone" >&2; exit 1
    fi
  fi
  if [ -z "${PHOENIX:-}" ]; then
    (cd "$root" && cargo build --release --quiet)
    PHOENIX=$root/target/release/phoenix
  fi
}

# Starts the moto server (S3) and Azurite (Azure Blob) on free loopback ports; sets moto,
# endpoint (the Azure account's URL), moto_pid, azurite_pid, rclone_cmd (remotes `s3:` and
# `az:`), and exports the standard environment that points Phoenix's plugins at them.
start_stores() {
  local moto_port az_port
  moto_port=$(free_port)
  AWS_EC2_METADATA_DISABLED=true "$python" "$root/tests/support/moto_server.py" "$moto_port" >"$tmp/moto.log" 2>&1 &
  moto_pid=$!
  pids+=($!)
  az_port=$(free_port)
  mkdir -p "$tmp/azurite"
  (cd "$tmp/azurite" && exec "$azurite_bin" --blobHost 127.0.0.1 --blobPort "$az_port" --location "$tmp/azurite" \
    --silent --skipApiVersionCheck --loose --disableTelemetry) >"$tmp/azurite.log" 2>&1 &
  azurite_pid=$!
  pids+=($!)
  moto=http://127.0.0.1:$moto_port
  endpoint=http://127.0.0.1:$az_port/devstoreaccount1
  wait_http "$moto/moto-api/" "moto"
  wait_http "http://127.0.0.1:$az_port/" "Azurite"
  # rclone: S3 as provider Other, path style; Azure through an account SAS URL (its emulator
  # mode is broken in 1.60). `env -u AWS_CA_BUNDLE`: else its S3 backend fails to start.
  cat >"$tmp/rclone.conf" <<CONF
[s3]
type = s3
provider = Other
access_key_id = testing
secret_access_key = testing
region = us-east-1
endpoint = $moto
force_path_style = true

[az]
type = azureblob
sas_url = $endpoint?$(python3 "$root/bench/azblob.py" sas)
CONF
  rclone_cmd=(env -u AWS_CA_BUNDLE rclone --config "$tmp/rclone.conf")
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_ENDPOINT_URL=$moto
  export AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=$endpoint;"
}
