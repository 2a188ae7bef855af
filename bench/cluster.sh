#!/usr/bin/env bash
# The cluster's benchmarks (issue 16), in one sitting, on a 3-member etcd on loopback
# (Debian's /usr/bin/etcd, heartbeat 50 ms, election timeout 500 ms, the members' data dirs
# under one scratch dir on the same disk as sled's state):
#   floor     8 KiB write + fdatasync in the scratch dir, 500 times, in place and appended
#   txn       one small fenced etcd transaction (compare the leader key's create revision +
#             put, the shape of Phoenix's commits) TXNS times over one keep-alive connection
#             to the gateway, then a serializable and a linearizable read on it: median and
#             p95, on the raft leader's member and on a follower's
#   w3        W3 (STEPS no-op steps in a chain, `phoenix run`) on sled and on etcd, one warm-up
#             then N runs of each, alternating, every etcd run under a fresh prefix: ms/step,
#             the CPU of phoenix, its peak RSS, etcd's write txns and reads per run
#   takeover  NODES `phoenix serve` nodes, ha.lease_ttl each of TTLS; ROUNDS times: SIGKILL the
#             leader, time until another node's /api/v1/cluster says "leader": true (polled
#             every 50 ms), restart the killed node; p50 and p95. Then (first TTL only) a W3
#             run started through the leader's API, and every node's peak RSS (VmHWM).
# usage: bench/cluster.sh [floor|txn|w3|takeover ...]   (default: all four, in that order)
#   env: N (5), STEPS (1000), TXNS (1000), ROUNDS (20), NODES (3), TTLS ("10 2"),
#        PHOENIX (default: target/release/phoenix, built here), BENCH_TMP (/tmp), KEEP=1 keeps
#        the scratch dir (logs, etcd's data).
# Loopback only; every process it starts is stopped on exit (also on Ctrl-C or an error).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/bench/stores.sh" # median, max, now
N=${N:-5} STEPS=${STEPS:-1000} TXNS=${TXNS:-1000} ROUNDS=${ROUNDS:-20} NODES=${NODES:-3} TTLS=${TTLS:-10 2}
what=${*:-floor txn w3 takeover}
if [ -z "${PHOENIX:-}" ]; then
  (cd "$root" && cargo build --release --quiet)
  PHOENIX=$root/target/release/phoenix
fi
command -v etcd >/dev/null || { echo "etcd is missing: sudo apt-get install etcd-server (or scripts/install-deps.sh)" >&2; exit 1; }
mkdir -p "${BENCH_TMP:-/tmp}"
tmp=$(mktemp -d "${BENCH_TMP:-/tmp}/phoenix-cluster.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${KEEP:-}" = 1 ]; then echo "# kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
TOKEN=oncall-token-0123456789
p95() { sort -n | awk '{ v[NR] = $1 } END { i = int(NR * 0.95 + 0.999999); if (i < 1) i = 1; print v[i] }'; }
# ports K: K distinct free loopback ports below the ephemeral range (where outgoing
# connections take theirs), held together while picked so none comes out twice.
ports() {
  python3 - "$1" <<'PY'
import random, socket, sys
held = []
while len(held) < int(sys.argv[1]):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", random.randrange(20000, 32000)))
    except OSError:
        continue
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
PY
}

# --- etcd: 3 members on loopback -------------------------------------------------------------
etcd_client=() etcd_pids=()
etcd_start() {
  local p names=(m0 m1 m2) initial="" i
  read -ra p <<<"$(ports 6)"
  for i in 0 1 2; do initial+="${initial:+,}${names[$i]}=http://127.0.0.1:${p[$((2 * i + 1))]}"; done
  for i in 0 1 2; do
    local client=http://127.0.0.1:${p[$((2 * i))]} peer=http://127.0.0.1:${p[$((2 * i + 1))]}
    etcd --name "${names[$i]}" --data-dir "$tmp/etcd/${names[$i]}" \
      --listen-client-urls "$client" --advertise-client-urls "$client" \
      --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
      --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token "bench-$$" \
      --heartbeat-interval 50 --election-timeout 500 --logger zap --log-level warn \
      >"$tmp/etcd-${names[$i]}.log" 2>&1 &
    pids+=($!) etcd_pids+=($!)
    etcd_client+=("${p[$((2 * i))]}")
  done
  for i in 0 1 2; do
    for _ in $(seq 1200); do
      curl -s --max-time 1 "http://127.0.0.1:${etcd_client[$i]}/health" | grep -q '"health":"true"' && continue 2
      kill -0 "${etcd_pids[$i]}" 2>/dev/null || { echo "etcd member $i exited:" >&2; tail -5 "$tmp/etcd-m$i.log" >&2; exit 1; }
      sleep 0.1
    done
    echo "etcd member $i is not healthy after 120 s: $tmp/etcd-m$i.log" >&2; exit 1
  done
  echo "# etcd $(etcd --version | awk '/etcd Version/ {print $3}'): 3 members on 127.0.0.1:${etcd_client[*]}, data in $tmp/etcd ($(df --output=source "$tmp" | tail -1), $(findmnt -no FSTYPE -T "$tmp"))"
}
store_url() { # PREFIX
  local hosts="" c
  for c in "${etcd_client[@]}"; do hosts+="${hosts:+,}127.0.0.1:$c"; done
  echo "etcd://$hosts/$1"
}
etcd_rev() { # etcd's current revision (one more per transaction that writes)
  curl -s --max-time 5 -X POST -d '{"key":"AA==","limit":"1"}' "http://127.0.0.1:${etcd_client[0]}/v3/kv/range" | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])'
}
etcd_ranges() { # the reads (Range calls) member m0 has answered: Phoenix's first endpoint
  curl -s --max-time 5 "http://127.0.0.1:${etcd_client[0]}/metrics" | awk '/^grpc_server_handled_total.*grpc_method="Range"/ { n += $2 } END { print n + 0 }'
}
raft_leader() { # the index of the member that leads raft now
  python3 - "${etcd_client[@]}" <<'PY'
import json, sys, urllib.request
for i, port in enumerate(sys.argv[1:]):
    st = json.load(urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/v3/maintenance/status", b"{}"), timeout=5))
    if st["leader"] == st["header"]["member_id"]:
        print(i)
PY
}

# --- txn: one fenced transaction, TXNS times ---------------------------------------------------
txn_latency() { # PORT LABEL: prints "LABEL median_ms p95_ms" for the txn, a serializable read, a linearizable read
  python3 - "$1" "$TXNS" "$2" <<'PY'
import base64, http.client, json, sys, time
port, n, label = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
b64 = lambda s: base64.b64encode(s.encode()).decode()
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
def call(path, body):
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        sys.exit(f"{path} on 127.0.0.1:{port}: HTTP {r.status} {data[:300]!r}")
    return json.loads(data)
fence = f"/bench-txn/{label}/leader"
rev = call("/v3/kv/put", {"key": b64(fence), "value": b64("node-a")})["header"]["revision"]
value = b64(json.dumps({"step": "s0", "status": "succeeded", "attempt": 1, "at": "2026-12-06T07:00:00.000000Z", "outputs": {}}))
def timed(what, request):
    lat = []
    for i in range(n + 50):  # the first 50: warm-up
        t = time.perf_counter_ns()
        request(i)
        if i >= 50:
            lat.append((time.perf_counter_ns() - t) / 1e6)
    lat.sort()
    return f"{lat[len(lat) // 2]:.3f} {lat[min(len(lat) - 1, int(len(lat) * 0.95 + 0.999999) - 1)]:.3f}"
def txn(i):
    a = call("/v3/kv/txn", {
        "compare": [{"target": "CREATE", "result": "EQUAL", "key": b64(fence), "createRevision": rev}],
        "success": [{"requestPut": {"key": b64(f"/bench-txn/{label}/step/{i % 1000}"), "value": value}}],
    })
    if not a.get("succeeded"):
        sys.exit(f"txn {i}: the fence compare failed: {a}")
print(f"{label} {timed('txn', txn)}", end="")
# The same connection's cost without raft (a serializable read: this member answers alone)
# and with raft but no disk write (a linearizable read: a ReadIndex round to the raft leader).
print(" " + timed("serializable", lambda i: call("/v3/kv/range", {"key": b64(fence), "serializable": True})), end="")
print(" " + timed("linearizable", lambda i: call("/v3/kv/range", {"key": b64(fence)})))
PY
}
bench_txn() {
  local leader follower
  leader=$(raft_leader)
  follower=$([ "$leader" = 0 ] && echo 1 || echo 0) # m0: Phoenix's first endpoint, measured either way
  echo "## txn: one fenced txn (compare create_revision + put of a ~110-byte value), $TXNS times after 50 warm-up, one keep-alive connection"
  echo "# member  txn_median_ms txn_p95_ms  serializable_read_median p95  linearizable_read_median p95"
  txn_latency "${etcd_client[$leader]}" "raft-leader(m$leader)" | tee "$tmp/txn-leader"
  txn_latency "${etcd_client[$follower]}" "raft-follower(m$follower)" | tee "$tmp/txn-follower"
  txn_first=$(awk '{print $2}' "$tmp/txn-$([ "$leader" = 0 ] && echo leader || echo follower)")
}

# --- w3: the no-op chain on sled and on etcd ---------------------------------------------------
timed() { # OUT_PREFIX CMD...: runs CMD; wall ms to OUT_PREFIX.ms, "peak_RSS_KiB cpu_s" to OUT_PREFIX.rss
  local out=$1 t0 t1
  shift
  t0=$(now)
  /usr/bin/time -f "%M %U %S" -o "$out.rss" "$@" >"$out.log" 2>&1 || { echo "failed ($*):" >&2; tail -20 "$out.log" >&2; exit 1; }
  t1=$(now)
  echo $(((t1 - t0) / 1000)) | awk '{ printf "%.1f\n", $1 / 1000 }' >"$out.ms"
}
cpu() { awk '{ printf "%.2f", $2 + $3 }' "$1.rss"; }
bench_w3() {
  mkdir -p "$tmp/w3"
  echo "## w3: $STEPS no-op steps in a chain, 1 warm-up + $N runs per store, alternating; sled in $tmp/w3/sled-*"
  local i
  for i in $(seq 0 "$N"); do
    timed "$tmp/w3/sled-$i" "$PHOENIX" --state "$tmp/w3/sled-$i.state" run "$tmp/w3.yaml"
    r0=$(etcd_rev) q0=$(etcd_ranges)
    timed "$tmp/w3/etcd-$i" "$PHOENIX" --state "$tmp/w3/etcd-$i.state" --store "$(store_url "bench-w3-$$-$i")" run "$tmp/w3.yaml"
    echo "# run $i$([ "$i" = 0 ] && echo ' (warm-up)'): sled $(cat "$tmp/w3/sled-$i.ms") ms (cpu $(cpu "$tmp/w3/sled-$i") s), etcd $(cat "$tmp/w3/etcd-$i.ms") ms (cpu $(cpu "$tmp/w3/etcd-$i") s, $(($(etcd_rev) - r0)) write txns, $(($(etcd_ranges) - q0)) ranges)"
  done
  local s e
  for s in sled etcd; do
    e=$(for i in $(seq 1 "$N"); do cat "$tmp/w3/$s-$i.ms"; done | median)
    eval "w3_$s=$e"
    echo "w3 $s: median $e ms = $(awk -v m="$e" -v n="$STEPS" 'BEGIN { printf "%.3f", m / n }') ms/step, cpu $(for i in $(seq 1 "$N"); do cpu "$tmp/w3/$s-$i"; echo; done | median) s, peak RSS $(for i in $(seq 1 "$N"); do cut -d" " -f1 "$tmp/w3/$s-$i.rss"; done | max | awk '{ printf "%.1f MiB", $1 / 1024 }')"
  done
  echo "w3 etcd/sled: $(awk -v a="$w3_etcd" -v b="$w3_sled" 'BEGIN { printf "%.1f×", a / b }')"
  if [ -n "${txn_first:-}" ]; then
    echo "w3 etcd per step / one txn (first endpoint, median $txn_first ms): $(awk -v m="$w3_etcd" -v n="$STEPS" -v t="$txn_first" 'BEGIN { printf "%.2f× (target ≤ 2×)", m / n / t }')"
  fi
}

# --- takeover: SIGKILL the leader, ROUNDS times --------------------------------------------------
node_port=() node_pid=()
node_start() { # K TTL PREFIX
  local k=$1 dir=$tmp/nodes/n$1
  mkdir -p "$dir/runbooks"
  cp "$tmp/w3.yaml" "$dir/runbooks/w3.yaml"
  cat >"$dir/serve.yaml" <<YAML
runbooks: runbooks
tokens:
  - { name: oncall, env: T_ONCALL, rights: [read, run, approve] }
ha: { lease_ttl: ${2}s }
YAML
  (cd "$dir" && T_ONCALL=$TOKEN exec "$PHOENIX" --state "$dir/state" --store "$(store_url "$3")" serve \
    --listen "127.0.0.1:${node_port[$k]}" --config serve.yaml --node "n$k" --advertise "http://127.0.0.1:${node_port[$k]}") \
    >>"$dir/out.log" 2>&1 &
  node_pid[k]=$!
  pids+=($!)
  for _ in $(seq 1200); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:${node_port[$k]}/healthz" && return 0
    kill -0 "${node_pid[$k]}" 2>/dev/null || { echo "node n$k exited:" >&2; tail -20 "$dir/out.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "node n$k does not answer /healthz after 120 s: $dir/out.log" >&2; exit 1
}
# leader_poll T0_NS PORT...: polls each node's /api/v1/cluster every 50 ms until one says
# "leader": true; prints "ms_since_T0 node fencing_token". Gives up after 120 s.
leader_poll() {
  python3 - "$TOKEN" "$@" <<'PY'
import http.client, json, sys, time
token, t0, ports = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
end = time.monotonic() + 120
while time.monotonic() < end:
    for p in ports:
        try:
            c = http.client.HTTPConnection("127.0.0.1", int(p), timeout=1)
            c.request("GET", "/api/v1/cluster", headers={"Authorization": "Bearer " + token})
            v = json.loads(c.getresponse().read())
            c.close()
        except (OSError, ValueError, http.client.HTTPException):
            continue
        if v.get("leader") is True:
            print(f"{(time.time_ns() - t0) / 1e6:.0f} {v['node']} {(v.get('current') or {}).get('token')}")
            sys.exit(0)
    time.sleep(0.05)
sys.exit("no node became leader within 120 s")
PY
}
leader_index() { # the index of the node whose /api/v1/cluster says it leads
  local k
  for k in "${!node_port[@]}"; do
    curl -s --max-time 1 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:${node_port[$k]}/api/v1/cluster" | grep -q '"leader":true' && { echo "$k"; return; }
  done
  return 1
}
vmhwm() { awk '/VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$1/status"; }
bench_takeover_ttl() { # TTL
  local ttl=$1 prefix=bench-ha-$$-$1 k round t0 others res times=()
  read -ra node_port <<<"$(ports "$NODES")"
  for k in $(seq 0 $((NODES - 1))); do node_start "$k" "$ttl" "$prefix"; done
  leader_poll "$(now)" "${node_port[@]}" >/dev/null
  echo "## takeover, lease_ttl ${ttl}s, $NODES nodes, $ROUNDS rounds"
  echo "# round killed new_leader fencing_token ms"
  for round in $(seq 1 "$ROUNDS"); do
    k=$(leader_index) || { echo "no node leads before round $round" >&2; exit 1; }
    others=()
    for o in "${!node_port[@]}"; do [ "$o" = "$k" ] || others+=("${node_port[$o]}"); done
    t0=$(now)
    { # bash's "Killed" notice for the node goes to /dev/null; the poller's errors to a file
      kill -9 "${node_pid[$k]}"
      res=$(leader_poll "$t0" "${others[@]}" 2>"$tmp/poll.err") || res=
      wait "${node_pid[$k]}" || true
    } 2>/dev/null
    [ -n "$res" ] || { cat "$tmp/poll.err" >&2; exit 1; }
    echo "$round n$k $(echo "$res" | awk '{print $2, $3, $1}')"
    times+=("$(echo "$res" | awk '{print $1}')")
    node_start "$k" "$ttl" "$prefix"
  done
  local p50 p95v
  p50=$(printf '%s\n' "${times[@]}" | median)
  p95v=$(printf '%s\n' "${times[@]}" | p95)
  echo "takeover ttl ${ttl}s: p50 $p50 ms, p95 $p95v ms, max $(printf '%s\n' "${times[@]}" | max) ms (target p95 ≤ $((ttl * 1000 + 2000)) ms: $([ "${p95v%.*}" -le $((ttl * 1000 + 2000)) ] && echo met || echo NOT met))"
  k=$(leader_index)
  for o in "${!node_port[@]}"; do echo "# rss after the rounds: n$o $([ "$o" = "$k" ] && echo leader || echo follower) VmHWM $(vmhwm "${node_pid[$o]}")"; done
  if [ "$ttl" = "${TTLS%% *}" ]; then bench_serve_w3 "$k"; fi
  for o in "${!node_port[@]}"; do kill "${node_pid[$o]}" 2>/dev/null || true; wait "${node_pid[$o]}" 2>/dev/null || true; done
}
bench_serve_w3() { # LEADER: a W3 run started through the leader's API, then every node's peak RSS
  local k=$1 id st r0 q0 v
  r0=$(etcd_rev) q0=$(etcd_ranges)
  id=$(curl -s --max-time 30 -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"runbook":"w3"}' "http://127.0.0.1:${node_port[$k]}/api/v1/runs" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  # Polled once a second: a GET of a run reads all of it (1,000 steps, its events) from etcd,
  # so polling faster would load the leader it measures. The time is the run's own.
  for _ in $(seq 600); do
    sleep 1
    v=$(curl -s --max-time 10 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:${node_port[$k]}/api/v1/runs/$id")
    st=$(echo "$v" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("status"))')
    case $st in succeeded) break ;; running | pending | None) ;; *) echo "the W3 run $id ended $st" >&2; exit 1 ;; esac
  done
  [ "$st" = succeeded ] || { echo "the W3 run $id did not finish in 600 s" >&2; exit 1; }
  echo "serve w3 on n$k (leader): $(echo "$v" | python3 -c '
import json, sys
from datetime import datetime
v, n = json.load(sys.stdin), int(sys.argv[1])
ms = (datetime.fromisoformat(v["finished_at"]) - datetime.fromisoformat(v["started_at"])).total_seconds() * 1000
print(f"{ms:.0f} ms started_at..finished_at, {ms / n:.3f} ms/step", end="")' "$STEPS"), $(($(etcd_rev) - r0)) write txns, $(($(etcd_ranges) - q0)) ranges on m0 (the bench's GETs included)"
  for o in "${!node_port[@]}"; do echo "rss after serve w3: n$o $([ "$o" = "$k" ] && echo leader || echo follower) VmHWM $(vmhwm "${node_pid[$o]}")"; done
}

# --- floor: one 8 KiB write + fdatasync in the scratch dir (the disk etcd and sled share) ------
bench_floor() {
  python3 - "$tmp" <<'PY'
import os, sys, time
def floor(name, flags, where):
    fd = os.open(os.path.join(sys.argv[1], name), os.O_WRONLY | os.O_CREAT | flags, 0o600)
    buf, lat = b"x" * 8192, []
    for i in range(550):
        t = time.perf_counter_ns()
        os.pwrite(fd, buf, where(i)) if where else os.write(fd, buf)
        os.fdatasync(fd)
        if i >= 50:
            lat.append((time.perf_counter_ns() - t) / 1e6)
    os.close(fd)
    lat.sort()
    return f"median {lat[len(lat) // 2]:.3f} ms, p95 {lat[int(len(lat) * 0.95) - 1]:.3f} ms"
# In place: the file's size never changes after the first pass (etcd's WAL is preallocated).
print("floor: 8 KiB write + fdatasync in place, 500 times:", floor("in-place", 0, lambda i: (i % 64) * 8192))
# Appended: every fdatasync also commits the file's new size (an ext4 journal commit).
print("floor: 8 KiB append + fdatasync, 500 times:", floor("append", os.O_APPEND, None))
PY
}

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r), $(free -g | awk '/Mem:/ {print $2}') GiB, load $(cut -d" " -f1-3 /proc/loadavg); $(date -u +%FT%TZ); phoenix $("$PHOENIX" --version 2>/dev/null | head -1 | awk "{print \$2}") at $(git -C "$root" rev-parse --short HEAD)"
# W3 as ../shared/bench/peers/phoenix_runbook.py writes it: STEPS noop steps, each needing the one before.
{
  printf 'version: 1\nname: bench-w3\nmax_parallel: 1\nsteps:\n  s0: {"uses": "noop"}\n'
  for ((i = 1; i < STEPS; i++)); do printf '  s%d: {"needs": ["s%d"], "uses": "noop"}\n' "$i" $((i - 1)); done
} >"$tmp/w3.yaml"
etcd_start
for w in $what; do
  case $w in
    floor) bench_floor ;;
    txn) bench_txn ;;
    w3) bench_w3 ;;
    takeover)
      for ttl in $TTLS; do bench_takeover_ttl "$ttl"; done ;;
    *) echo "unknown part '$w': floor, txn, w3 or takeover" >&2; exit 2 ;;
  esac
done
