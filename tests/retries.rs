//! Retries: attempts counted, delays that back off (fixed, exponential, capped), jitter,
//! and `defaults.retry`; the delays are read from the run's events, never the clock.

use crate::process::{self, lines, step};
use crate::run::{run, status};

#[test]
fn retries_back_off_and_count_attempts() {
    let out = run(r#"version: 1
name: retrying
steps:
  flaky:
    uses: exec
    retry: { attempts: 5, backoff: exponential, delay: 100ms, max_delay: 150ms }
    with:
      script: |
        n=$(( $(cat tries 2>/dev/null || echo 0) + 1 )); echo $n > tries
        [ $n -ge 3 ] || { echo "attempt $n failed" >&2; exit 1; }
"#)
    .success();
    assert_eq!(lines(&out.path().join("tries")), ["3"]);
    let s = status(&out);
    assert_eq!(step(&s, "flaky")["attempts"], 3);
    // The delays the engine chose: 100 ms, then doubled and capped at 150 ms.
    let run = s["id"].as_str().unwrap();
    let logs = process::json(&out.state_dir(), &["logs", run, "flaky"]);
    let retries: Vec<(u64, u64)> = logs["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "retry")
        .map(|e| (e["attempt"].as_u64().unwrap(), e["delay_ms"].as_u64().unwrap()))
        .collect();
    assert_eq!(retries, [(1, 100), (2, 150)]);
    assert!(
        logs["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "retry" && e["error"].as_str().unwrap().contains("attempt 1 failed"))
    );
}

#[test]
fn retries_give_up_after_the_last_attempt() {
    let out = run(r#"version: 1
name: hopeless
defaults:
  retry: { attempts: 2, backoff: fixed, delay: 50ms }
steps:
  never:
    uses: exec
    with: { script: "echo x >> tries; exit 1" }
"#)
    .code(1);
    assert_eq!(lines(&out.path().join("tries")).len(), 2, "`defaults.retry` gives every step two attempts");
    let s = status(&out);
    assert_eq!(step(&s, "never")["attempts"], 2);
    assert_eq!(step(&s, "never")["status"], "failed");
}

#[test]
fn jitter_shortens_delays_by_at_most_its_fraction() {
    let out = run(r#"version: 1
name: jittery
steps:
  never:
    uses: exec
    retry: { attempts: 4, backoff: exponential, delay: 100ms, max_delay: 1s, jitter: 0.5 }
    with: { script: "exit 1" }
"#)
    .code(1);
    let run = process::latest_run(&out.state_dir());
    let logs = process::json(&out.state_dir(), &["logs", &run, "never"]);
    let delays: Vec<u64> =
        logs["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "retry").map(|e| e["delay_ms"].as_u64().unwrap()).collect();
    assert_eq!(delays.len(), 3);
    for (d, base) in delays.iter().zip([100u64, 200, 400]) {
        assert!((base / 2..=base).contains(d), "delay {d} ms for a base of {base} ms with jitter 0.5: {delays:?}");
    }
}
