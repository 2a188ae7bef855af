//! `GET /metrics` of `phoenix serve`: runs by state (from the store), step durations and
//! retries (in this server's lifetime), alerts by outcome, and the watched runbooks' health.
//! The cluster's two (`phoenix_leader{node}`, `phoenix_takeovers_total`) come from its handle.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use phoenix_engine::state::{RunStatus, Store};

/// Upper bounds of the step-duration histogram, in seconds.
const BUCKETS: [f64; 12] = [0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    /// (runbook, step) → durations.
    steps: BTreeMap<(String, String), Histogram>,
    retries: BTreeMap<(String, String), u64>,
    alerts: BTreeMap<String, u64>,
}

/// Counters fed by the observer and the webhook.
#[derive(Default)]
pub(crate) struct RunMetrics {
    inner: Mutex<Inner>,
}

impl RunMetrics {
    pub(crate) fn step_ended(&self, runbook: &str, step: &str, ms: u64) {
        let s = ms as f64 / 1000.0;
        let mut m = self.inner.lock().expect("poisoned");
        let h = m.steps.entry((runbook.to_string(), step.to_string())).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if s <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += s;
    }

    pub(crate) fn retried(&self, runbook: &str, step: &str) {
        *self.inner.lock().expect("poisoned").retries.entry((runbook.to_string(), step.to_string())).or_default() += 1;
    }

    pub(crate) fn alert(&self, outcome: &str, n: u64) {
        *self.inner.lock().expect("poisoned").alerts.entry(outcome.to_string()).or_default() += n;
    }

    /// The exposition text (format 0.0.4), the health metrics of watched runbooks after it.
    pub(crate) fn render(&self, store: &Store, health: &[crate::metrics::Shared]) -> String {
        let mut o = String::new();
        let family = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(&mut o, "phoenix_runs", "gauge", "Runs in the state store by state.");
        let mut by_state: BTreeMap<&str, u64> = RunStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        for r in store.runs().unwrap_or_default() {
            *by_state.entry(r.status.as_str()).or_default() += 1;
        }
        for (state, n) in by_state {
            let _ = writeln!(o, "phoenix_runs{{state=\"{state}\"}} {n}");
        }
        drills(&mut o, store);
        let m = self.inner.lock().expect("poisoned");
        family(&mut o, "phoenix_step_duration_seconds", "histogram", "How long step attempts took (ended in this server's lifetime).");
        for ((rb, step), h) in &m.steps {
            let l = format!("runbook=\"{}\",step=\"{}\"", label(rb), label(step));
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(o, "phoenix_step_duration_seconds_bucket{{{l},le=\"{b}\"}} {}", h.counts[i]);
            }
            let _ = writeln!(o, "phoenix_step_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(o, "phoenix_step_duration_seconds_sum{{{l}}} {}", h.sum);
            let _ = writeln!(o, "phoenix_step_duration_seconds_count{{{l}}} {}", h.count);
        }
        family(&mut o, "phoenix_step_retries_total", "counter", "Step attempts that failed and were retried.");
        for ((rb, step), n) in &m.retries {
            let _ = writeln!(o, "phoenix_step_retries_total{{runbook=\"{}\",step=\"{}\"}} {n}", label(rb), label(step));
        }
        family(&mut o, "phoenix_alerts_total", "counter", "Alertmanager notifications by what became of them.");
        for (outcome, n) in &m.alerts {
            let _ = writeln!(o, "phoenix_alerts_total{{outcome=\"{}\"}} {n}", label(outcome));
        }
        drop(m);
        o.push_str(&crate::metrics::render(health));
        o
    }
}

/// The latest measured drill of each runbook: its RTO and RPO (engine/src/exec/drill_measure.rs).
fn drills(o: &mut String, store: &Store) {
    let runs = phoenix_engine::exec::views::runs(store).map(|v| v["runs"].as_array().cloned().unwrap_or_default()).unwrap_or_default();
    for (name, field, help) in [
        ("phoenix_drill_rto_seconds", "rto_seconds", "The latest drill's RTO: its start to the end of its first passing verification."),
        ("phoenix_drill_rpo_seconds", "rpo_seconds", "The latest drill's RPO: the larger of the replay lag and the oldest missing object."),
    ] {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge");
        let mut seen = std::collections::BTreeSet::new();
        // Newest first: the first measured drill of each runbook is its latest.
        for r in runs.iter().filter(|r| r["drill"] == true) {
            let (Some(rb), Some(v)) = (r["runbook"].as_str(), r["measure"][field].as_f64()) else { continue };
            if seen.insert(rb.to_string()) {
                let _ = writeln!(o, "{name}{{runbook=\"{}\"}} {v}", label(rb));
            }
        }
    }
}

/// This node's place in the cluster: whether it leads, and the takeovers it made.
pub(crate) fn cluster(view: &crate::cluster::ClusterView) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# HELP phoenix_leader Whether this node leads the cluster now (1) or follows (0).\n# TYPE phoenix_leader gauge");
    let _ = writeln!(o, "phoenix_leader{{node=\"{}\"}} {}", label(&view.node), u8::from(view.leader));
    let _ = writeln!(
        o,
        "# HELP phoenix_takeovers_total Times this node took over the lead since it started.\n# TYPE phoenix_takeovers_total counter"
    );
    let _ = writeln!(o, "phoenix_takeovers_total {}", view.takeovers);
    o
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
