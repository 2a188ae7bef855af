#!/usr/bin/env python3
"""bench/rto.sh's bookkeeping: one JSON line per run, and the summary of a sitting.

usage: rto_report.py record VARIANT ROUND T0 T1 LOAD0 LOAD1 EXTRA   < phoenix status --output json
       rto_report.py serial VARIANT ROUND T0 T1 LOAD0 LOAD1         < serial_failover.sh's stage lines
       rto_report.py frac-b F                                       < results.jsonl  (F × B's median wall, s)
       rto_report.py report                                         < results.jsonl
T0, T1: the command's start and end (date +%s%N). A run's line: variant, round, rto_s (T0 → the
first verification passing), wall_s (T0 → T1), steps {id: [start, duration]} in seconds from
T0, the stages (groups of steps, as the seed named them) as [start, end] spans.
"""

import json
import statistics
import sys
from datetime import datetime

# The seed's stages, and the steps of each side that make them up.
STAGES = [
    ("database", ["replicate_db"], ["db_dump", "db_transfer", "db_restore", "db_count"]),
    ("objects", ["sync_storage"], ["objects"]),
    ("terraform", ["tf_init", "tf_apply", "tf_output"], ["tf_init", "tf_plan", "tf_apply"]),
    ("deploy", ["deploy", "rollout"], ["helm_service-a", "helm_service-b", "rollout_service-a", "rollout_service-b"]),
    ("dns", ["switch_dns"], ["dns"]),
    ("verify (first check)", ["verify_http", "verify_db", "verify_storage"], ["verify_http"]),
]


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def spans(steps, phoenix):
    out = {}
    for name, ours, theirs in STAGES:
        names = ours if phoenix else theirs
        got = [v for k, v in steps.items() if any(k == n or k.startswith(n + "[") or k.startswith(n + ".") for n in names)]
        if got:
            out[name] = [min(s for s, _ in got), max(s + d for s, d in got)]
    return out


def record(variant, rnd, t0, t1, l0, l1, extra):
    s = json.load(sys.stdin)
    base = int(t0) / 1e9
    steps = {}
    for x in s["steps"]:
        if x.get("started_at") and x.get("finished_at"):
            steps[x["id"]] = [round(ts(x["started_at"]) - base, 3), round(ts(x["finished_at"]) - ts(x["started_at"]), 3)]
    verified = [ts(x["finished_at"]) for x in s["steps"] if x["id"].startswith("verify") and x["status"] == "succeeded" and x.get("finished_at")]
    if s["status"] != "succeeded" or not verified:
        sys.exit(f"rto_report: run {s['id']} is {s['status']}, verified steps: {len(verified)}")
    r = {"variant": variant, "round": int(rnd), "rto_s": round(min(verified) - base, 3), "wall_s": round((int(t1) - int(t0)) / 1e9, 3),
         "load_before": l0, "load_after": l1, "run": s["id"], "attempt": s["attempt"],
         "run_started_after_s": round(ts(s["started_at"]) - base, 3), "steps": steps, "stages": spans(steps, True), **json.loads(extra)}
    print(json.dumps(r))


def serial(variant, rnd, t0, t1, l0, l1):
    base = int(t0)
    steps, rto = {}, None
    for line in sys.stdin:
        f = line.split()
        if f[0] == "stage":
            steps[f[1]] = [round((int(f[2]) - base) / 1e9, 3), round((int(f[3]) - int(f[2])) / 1e9, 3)]
        elif f[0] == "rto_end":
            rto = round((int(f[1]) - base) / 1e9, 3)
    if rto is None:
        sys.exit("rto_report: the serial script did not reach its verification")
    r = {"variant": variant, "round": int(rnd), "rto_s": rto, "wall_s": round((int(t1) - base) / 1e9, 3),
         "load_before": l0, "load_after": l1, "steps": steps, "stages": spans(steps, False)}
    print(json.dumps(r))


def rows():
    return [json.loads(line) for line in sys.stdin if line.strip()]


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def report():
    rs = rows()
    by = {v: [r for r in rs if r["variant"] == v] for v in "ABCD"}
    label = {"A": "A serial script (the seed's pipeline)", "B": "B phoenix run dr-failover", "C": "C phoenix, SIGKILL at B's midpoint + resume",
             "D": "D phoenix, SIGKILL at a quarter of B + resume"}
    print(f"{'variant':<46} {'RTO median':>11} {'wall median':>12}   RTO of each run (s)")
    for v in "ABCD":
        if by[v]:
            print(f"{label[v]:<46} {med([r['rto_s'] for r in by[v]]):>10.1f}s {med([r['wall_s'] for r in by[v]]):>11.1f}s   "
                  + " ".join(f"{r['rto_s']:.1f}" for r in by[v]))
    a, b, c = (med([r["rto_s"] for r in by[v]]) for v in "ABC")
    print(f"\nratio of the medians: B/A {b / a:.2f}× (target ≤ 0.6)   C/B {c / b:.2f}× (target ≤ 1.1)")
    rounds = sorted({r["round"] for r in rs})
    one = {(r["variant"], r["round"]): r["rto_s"] for r in rs}
    print("ratios within each round: " + "; ".join(
        f"round {n}: " + ", ".join(f"{x}/{y} {one[(x, n)] / one[(y, n)]:.2f}" for x, y in [("B", "A"), ("C", "B"), ("D", "B")] if (x, n) in one and (y, n) in one)
        for n in rounds))
    print("\nper stage, medians: start → end (duration), seconds from the command's start (C, D: a step run")
    print("again after the kill shows its last attempt)")
    for name, _, _ in STAGES:
        cells = []
        for v in "ABCD":
            got = [r["stages"][name] for r in by[v] if name in r["stages"]]
            if got:
                s, e = med([g[0] for g in got]), med([g[1] for g in got])
                cells.append(f"{v} {s:6.1f} → {e:6.1f} ({e - s:5.1f})")
        print(f"  {name:<22} " + "   ".join(cells))
    print("\nthe serial script's own stages (medians, s): " + ", ".join(
        f"{k} {med([r['steps'][k][1] for r in by['A'] if k in r['steps']]):.1f}" for k in (by["A"][0]["steps"] if by["A"] else {})))
    if by["B"]:
        print("phoenix's steps (B, medians, s): " + ", ".join(
            f"{k} {med([r['steps'][k][1] for r in by['B'] if k in r['steps']]):.1f}" for k in by["B"][0]["steps"]))
    for r in by["C"] + by["D"]:
        print(f"{r['variant']} round {r['round']}: killed after {r['kill_after_s']:.1f} s ({r['children_at_kill']} child processes, "
              f"{r['children_alive_after']} still alive after the kill), resumed: RTO {r['rto_s']:.1f} s, attempt {r['attempt']}")
    print("\nload averages (1, 5, 15 min) before → after each run:")
    for r in rs:
        print(f"  {r['variant']}{r['round']}: {r['load_before']} → {r['load_after']}")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "record" and len(args) == 7:
        record(*args)
    elif cmd == "serial" and len(args) == 6:
        serial(*args)
    elif cmd == "frac-b" and len(args) == 1:
        print(f"{med([r['wall_s'] for r in rows() if r['variant'] == 'B']) * float(args[0]):.2f}")
    elif cmd == "report":
        report()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
