//! The state store's disk fills up during a run: the run stops, the steps it was running are
//! stopped with it (their children too), the error says what happened and how to go on, and
//! once there is space `phoenix resume` finishes the run.
//!
//! The disk is a 4 MiB tmpfs mounted in a mount namespace of the test's own (`unshare`), so
//! it goes away with the test, whatever happens; it needs root, as CI has.

use std::process::Command;

use crate::support::{Test, phoenix_bin};

/// Once `slow` runs, `fill` fills the disk (the first time) and prints enough for the store
/// to need more of it. `slow` leaves a line in `late.txt` when it gets to its end.
const RUNBOOK: &str = r#"version: 1
name: fill
max_parallel: 2
steps:
  slow:
    uses: exec
    with:
      script: |
        touch "$OUT/slow.started"
        sleep 4
        echo late >> "$OUT/late.txt"
  fill:
    uses: exec
    with:
      script: |
        while [ ! -e "$OUT/slow.started" ]; do sleep 0.05; done
        if [ ! -e "$OUT/filled" ]; then
          touch "$OUT/filled"
          head -c 8M /dev/zero > "$DISK/junk" 2>/dev/null || true
        fi
        for i in $(seq 1 300); do printf '%0500d\n' "$i"; done
"#;

/// Runs inside the namespace; every finding goes to a file in `$OUT`.
const SCRIPT: &str = r#"
set -u
mount -t tmpfs -o size=4M tmpfs "$DISK" || exit 97
export PHOENIX_STATE_LOG_BYTES=4096
"$PHOENIX" --state "$DISK/st" run "$OUT/fill.yaml" >"$OUT/run.out" 2>"$OUT/run.err"
echo $? >"$OUT/run.code"
run=$(sed -n 's/.*then: phoenix resume \(.*\)$/\1/p' "$OUT/run.err" | head -n 1)
"$PHOENIX" --state "$DISK/st" status "$run" >"$OUT/full-status.out" 2>"$OUT/full-status.err"
echo $? >"$OUT/full-status.code"
# Longer than `slow` would have taken: had it been left running, it would have written.
sleep 5
[ -e "$OUT/late.txt" ] && cp "$OUT/late.txt" "$OUT/late-before-resume.txt"
rm -f "$DISK/junk"
"$PHOENIX" --state "$DISK/st" resume "$run" >"$OUT/resume.out" 2>"$OUT/resume.err"
echo $? >"$OUT/resume.code"
"$PHOENIX" --state "$DISK/st" status "$run" --output json >"$OUT/status.json" 2>&1
exit 0
"#;

#[test]
fn a_full_disk_stops_the_run_and_its_steps_and_resume_finishes_it() {
    let t = Test::new().file("fill.yaml", RUNBOOK).file("disk/.keep", "");
    let out_dir = t.path().to_path_buf();
    let disk = out_dir.join("disk");
    let status = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", SCRIPT])
        .env("PHOENIX", phoenix_bin())
        .env("OUT", &out_dir)
        .env("DISK", &disk)
        .env("NO_COLOR", "1")
        .status()
        .expect("unshare (util-linux) runs");
    assert_ne!(status.code(), Some(97), "mounting a tmpfs needs root (CI runs as root)");
    assert!(status.success(), "the script ran: {status}");
    let read = |f: &str| std::fs::read_to_string(out_dir.join(f)).unwrap_or_default();

    let err = read("run.err");
    assert_eq!(read("run.code").trim(), "1", "{err}");
    assert!(err.contains("error: state store: No space left on device"), "the system's words, not a debug dump:\n{err}");
    assert!(err.contains("so run ") && err.contains("stopped, and so did the steps it was running"), "{err}");
    assert!(err.contains("■ slow interrupted: the script was stopped (SIGTERM)"), "slow was stopped, not abandoned:\n{err}");
    assert_eq!(read("late-before-resume.txt"), "", "nothing of `slow` ran on after phoenix stopped");

    // Even reading the store needs space (sled writes as it opens): said so, and how to go on.
    let full = read("full-status.err");
    assert_eq!(read("full-status.code").trim(), "1", "{full}");
    assert!(full.contains("is full: free space on it") && full.contains("nothing was changed"), "{full}");

    assert_eq!(read("resume.code").trim(), "0", "{}", read("resume.err"));
    assert_eq!(read("late.txt"), "late\n", "`slow` ran to its end once, on resume");
    let s: serde_json::Value = serde_json::from_str(&read("status.json")).expect("status JSON");
    assert_eq!(s["status"], "succeeded", "{s:#}");
}
