#!/usr/bin/env bash
# postgres.replicate against the seed's route done by hand, side by side in one sitting: a
# ~100 MB database (two tables of generate_series rows with text padding, each with its
# primary key) on one PostgreSQL 15 cluster, copied into an empty database on another, both
# on 127.0.0.1. Each round runs, in turn:
#   phoenix-j1   `phoenix run` of a one-step postgres.replicate runbook, streamed (jobs 1),
#                with verify_tables (both tables counted on both sides afterwards)
#   phoenix-j2   the same with jobs: 2 (a directory dump with 2 jobs, restored with 2)
#   phoenix-via  the seed's route inside Phoenix: `via: [s3://backups/app.dump,
#                azblob://backups/app.dump]` (dump to a scratch file, upload to S3, copy S3 →
#                Azure Blob streamed, download, restore), with the same verification
#   pipe         by hand: pg_dump -Fc | pg_restore --clean --if-exists --no-owner (the floor
#                for phoenix-j1: the same programs, no Phoenix between them)
#   dir-j2       by hand: pg_dump -Fd -j2 to a directory, pg_restore -j2 (the floor for j2)
#   seed         the seed's replicate_db.sh: pg_dump -Fc to a file → upload to S3 (moto,
#                boto3's upload_file, what `aws s3 cp` runs) → copy to Azure Blob (Azurite,
#                rclone copyto) → download (rclone copyto) → pg_restore --clean --if-exists
#                --no-owner → row counts; each stage timed
# Every copy is checked (row counts on the target equal the source's), then the target
# database is dropped and made again, empty, outside the timings. Both clusters run with
# fsync, synchronous_commit and full_page_writes off and max_wal_size 1GB, the same for both.
# A benchmark, not a test: it prints figures. Record them in docs/benchmarks.md.
#
# usage: bench/postgres_replicate.sh   env: PHOENIX (default target/release/phoenix, built
#        here), RUNS (3), ORDERS (rows, 390000), EVENTS (rows, 260000), PG_BIN
#        (/usr/lib/postgresql/15/bin), KEEP=1 keeps the temporary directory
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${RUNS:-3}
orders=${ORDERS:-390000}
events=${EVENTS:-260000}
pg_bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
tmp=$(mktemp -d /tmp/phoenix-bench-pg.XXXX)
# shellcheck source=bench/stores.sh
. "$root/bench/stores.sh"
need_tools "$pg_bin/pg_dump"
chmod 755 "$tmp"
install -d -o postgres -g postgres "$tmp/pg"
pids=()
clusters=()
cleanup() {
  for d in "${clusters[@]}"; do runuser -u postgres -- "$pg_bin/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "# kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ms_since() { echo $((($(now) - $1) / 1000000)); }

cluster() { # name → sets $port (not in a subshell, so the trap knows the cluster); data in $tmp/pg/name
  local d=$tmp/pg/$1
  runuser -u postgres -- "$pg_bin/initdb" -D "$d" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
  port=$(free_port)
  cat >>"$d/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$tmp/pg'
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 1GB
log_min_messages = warning
CONF
  clusters+=("$d")
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$d" -l "$tmp/pg/$1.log" -w -t 60 start >/dev/null
}
sql() { # port db query
  PGOPTIONS='-c client_min_messages=warning' "$pg_bin/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d "$2" -c "$3"
}

cluster source
src=$port
cluster target
dst=$port
src_dsn=postgresql://postgres@127.0.0.1:$src/app
dst_dsn=postgresql://postgres@127.0.0.1:$dst/app

t0=$(now)
sql "$src" postgres "CREATE DATABASE app"
sql "$src" app "
CREATE TABLE orders (id bigint PRIMARY KEY, customer int NOT NULL, placed timestamptz NOT NULL,
                     status text NOT NULL, note text NOT NULL);
INSERT INTO orders SELECT g, g % 50000, timestamptz '2026-01-01' + g * interval '1 second',
       (ARRAY['open', 'paid', 'shipped'])[1 + g % 3], md5(g::text) || md5((-g)::text)
  FROM generate_series(1, $orders) g;
CREATE TABLE events (id bigint PRIMARY KEY, order_id bigint NOT NULL, kind text NOT NULL, payload text NOT NULL);
INSERT INTO events SELECT g, 1 + g % $orders, 'event-' || (g % 7), md5(g || 'e') || ' ' || md5((3 * g)::text)
  FROM generate_series(1, $events) g;"
sql "$src" app "VACUUM ANALYZE"
db_bytes=$(sql "$src" app "SELECT pg_database_size('app')")
echo "# seeded: orders $orders rows, events $events rows; pg_database_size $((db_bytes / 1048576)) MiB in $(ms_since "$t0") ms" >&2
# Warm the source's cache, so that the first variant does not pay for reading it from disk.
"$pg_bin/pg_dump" -Fc -Z0 -d "$src_dsn" >/dev/null

fresh_target() {
  sql "$dst" postgres "DROP DATABASE IF EXISTS app WITH (FORCE)"
  sql "$dst" postgres "CHECKPOINT"
  sql "$dst" postgres "CREATE DATABASE app"
}
check_target() { # variant
  local got
  got=$(sql "$dst" app "SELECT (SELECT count(*) FROM orders) || ' ' || (SELECT count(*) FROM events)")
  [ "$got" = "$orders $events" ] || { echo "$1: the target has $got rows (orders events), expected $orders $events" >&2; exit 1; }
}

# moto (S3) and Azurite (Azure Blob), for the seed's route and phoenix-via.
start_stores
curl -sf -X POST -H 'Content-Type: application/json' -d '{"region": "us-east-1", "bucket": "backups"}' "$moto/phoenix-test/s3-bucket" >/dev/null
"${rclone_cmd[@]}" mkdir az:backups
upload_py='
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
s3.upload_file(sys.argv[2], "backups", "app.dump")'

runbook() { # jobs [via] → file
  local file=$tmp/replicate-j$1${2:+-via}.yaml
  cat >"$file" <<YAML
version: 1
name: bench-replicate
steps:
  replicate:
    uses: postgres.replicate
    with:
      source: "$src_dsn"
      target: "$dst_dsn"
      jobs: $1
      pg_bin: $pg_bin
      verify_tables: [orders, events]
$([ -z "${2:-}" ] || printf '      via:\n        - s3://backups/app.dump\n        - azblob://backups/app.dump')
YAML
  echo "$file"
}

record() { # variant stage ms
  echo "$3" >>"$tmp/times.$1.$2"
}

variant() { # name round
  local v=$1 i=$2 t0 t s
  fresh_target
  case $v in
    phoenix-j1 | phoenix-j2 | phoenix-via)
      local rb state=$tmp/state-$v-$i
      case $v in
        phoenix-via) rb=$(runbook 1 via) ;;
        *) rb=$(runbook "${v#phoenix-j}") ;;
      esac
      t0=$(now)
      /usr/bin/time -f '%M' -o "$tmp/rss.$v.$i" "$PHOENIX" --state "$state" run "$rb" >"$tmp/$v.$i.log" 2>&1 ||
        { echo "$v failed:" >&2; tail -n 30 "$tmp/$v.$i.log" >&2; exit 1; }
      record "$v" total "$(ms_since "$t0")"
      "$PHOENIX" --state "$state" status --output json | python3 -c '
import json, sys
s = json.load(sys.stdin)
steps = s["steps"] if isinstance(s["steps"], list) else [dict(v, id=k) for k, v in s["steps"].items()]
o = next(x for x in steps if x.get("id", x.get("name")) == "replicate")["outputs"]
assert o["verified"] is True, o
print(o["bytes"], o["format"])' >"$tmp/$v.outputs"
      cat "$tmp/rss.$v.$i" >>"$tmp/rss.$v"
      rm -rf "$state"
      ;;
    pipe)
      t0=$(now)
      /usr/bin/time -f '%M' -o "$tmp/rss.$v.$i" bash -c 'set -o pipefail; "$1/pg_dump" -Fc -d "$2" | "$1/pg_restore" --clean --if-exists --no-owner -d "$3"' \
        _ "$pg_bin" "$src_dsn" "$dst_dsn"
      record "$v" total "$(ms_since "$t0")"
      cat "$tmp/rss.$v.$i" >>"$tmp/rss.$v"
      ;;
    dir-j2)
      rm -rf "$tmp/dump.dir"
      t0=$(now)
      "$pg_bin/pg_dump" -Fd -j2 -d "$src_dsn" -f "$tmp/dump.dir"
      t=$(ms_since "$t0")
      record "$v" dump "$t"
      s=$(now)
      "$pg_bin/pg_restore" --clean --if-exists --no-owner -j2 -d "$dst_dsn" "$tmp/dump.dir"
      record "$v" restore "$(ms_since "$s")"
      record "$v" total "$(ms_since "$t0")"
      du -sb "$tmp/dump.dir" | cut -f1 >"$tmp/dir.bytes"
      rm -rf "$tmp/dump.dir"
      ;;
    seed)
      rm -f "$tmp/app.dump" "$tmp/restore.dump"
      t0=$(now)
      s=$(now); "$pg_bin/pg_dump" -Fc -d "$src_dsn" -f "$tmp/app.dump"; record seed "1 pg_dump -Fc to a file" "$(ms_since "$s")"
      s=$(now); env -u AWS_CA_BUNDLE "$python" -c "$upload_py" "$moto" "$tmp/app.dump"; record seed "2 upload to S3 (boto3)" "$(ms_since "$s")"
      s=$(now); "${rclone_cmd[@]}" copyto s3:backups/app.dump az:backups/app.dump; record seed "3 copy S3 to Azure Blob (rclone)" "$(ms_since "$s")"
      s=$(now); "${rclone_cmd[@]}" copyto az:backups/app.dump "$tmp/restore.dump"; record seed "4 download from Azure (rclone)" "$(ms_since "$s")"
      s=$(now); "$pg_bin/pg_restore" --clean --if-exists --no-owner -d "$dst_dsn" "$tmp/restore.dump"; record seed "5 pg_restore from the file" "$(ms_since "$s")"
      s=$(now); sql "$dst" app "SELECT count(*) FROM orders; SELECT count(*) FROM events" >/dev/null; record seed "6 row counts" "$(ms_since "$s")"
      record seed total "$(ms_since "$t0")"
      cmp -s "$tmp/app.dump" "$tmp/restore.dump" || { echo "seed: the downloaded dump differs from the one uploaded" >&2; exit 1; }
      stat -c %s "$tmp/app.dump" >"$tmp/file.bytes"
      rm -f "$tmp/app.dump" "$tmp/restore.dump"
      ;;
  esac
  check_target "$v"
  echo "# round $i $v: $(tail -1 "$tmp/times.$v.total") ms" >&2
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "# postgres.replicate vs by hand: $(nproc) cores, $cpu, $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u +%FT%TZ); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $("$PHOENIX" --version); $("$pg_bin/postgres" --version); $(rclone version | head -1); median of $runs rounds"
echo "# database: orders $orders rows + events $events rows, pg_database_size $((db_bytes / 1048576)) MiB"
variants="phoenix-j1 phoenix-j2 phoenix-via pipe dir-j2 seed"
for i in $(seq "$runs"); do
  for v in $variants; do variant "$v" "$i"; done
done

echo
printf '%-12s %-34s %10s   %s\n' variant stage median_ms "every run (ms)"
for v in $variants; do
  for f in "$tmp"/times."$v".*; do
    stage=${f#"$tmp/times.$v."}
    [ "$stage" = total ] && continue
    printf '%-12s %-34s %10s   %s\n' "$v" "$stage" "$(median <"$f")" "$(tr '\n' ' ' <"$f")"
  done
  printf '%-12s %-34s %10s   %s\n' "$v" total "$(median <"$tmp/times.$v.total")" "$(tr '\n' ' ' <"$tmp/times.$v.total")"
done
for v in phoenix-j1 phoenix-j2 phoenix-via pipe; do
  echo "# $v peak RSS (the largest of the command and the children it waited for): $(($(sort -n "$tmp/rss.$v" | tail -1) / 1024)) MiB"
done
echo "# dump sizes: custom format file $(($(cat "$tmp/file.bytes") / 1048576)) MiB; directory (2 jobs) $(($(cat "$tmp/dir.bytes") / 1048576)) MiB; phoenix outputs: j1 $(cat "$tmp/phoenix-j1.outputs"), j2 $(cat "$tmp/phoenix-j2.outputs")"
m() { median <"$tmp/times.$1.total"; }
awk -v p1="$(m phoenix-j1)" -v p2="$(m phoenix-j2)" -v pv="$(m phoenix-via)" -v pipe="$(m pipe)" -v dir="$(m dir-j2)" -v seed="$(m seed)" 'BEGIN {
  printf "ratios: phoenix-j1/seed %.2f×, phoenix-j2/seed %.2f×, phoenix-via/seed %.2f×, phoenix-j1/pipe %.2f×, phoenix-j2/dir-j2 %.2f×\n", p1 / seed, p2 / seed, pv / seed, p1 / pipe, p2 / dir }'
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ)"
