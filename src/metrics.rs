//! `phoenix watch --metrics ADDR`: the last evaluation in the Prometheus text exposition
//! format on `GET /metrics`, from a small HTTP/1.1 responder on tokio.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the exporter shows: the runbook's latest score and a count of evaluations.
#[derive(Default)]
pub(crate) struct Metrics {
    runbook: String,
    levels: Vec<String>,
    score: Option<Value>,
    /// The last evaluation that saw production: the level gauges keep it while the
    /// observer is degraded.
    trusted: Option<Value>,
    evaluations: u64,
    last_at: f64,
}

pub(crate) type Shared = Arc<Mutex<Metrics>>;

impl Metrics {
    pub(crate) fn new(runbook: &str, levels: Vec<String>) -> Shared {
        Arc::new(Mutex::new(Metrics { runbook: runbook.to_string(), levels, ..Metrics::default() }))
    }

    /// Records one evaluation's `score` outputs.
    pub(crate) fn record(&mut self, score: &Value) {
        self.score = Some(score.clone());
        if score["degraded"].is_null() {
            self.trusted = Some(score.clone());
        }
        self.evaluations += 1;
        self.last_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    }

    /// This runbook's metric families, in exposition order.
    fn families(&self) -> Vec<Family> {
        let rb = label(&self.runbook);
        let mut out = vec![Family::new(
            "phoenix_health_evaluations_total",
            "counter",
            "Evaluations of the runbook's signals.",
            vec![format!("phoenix_health_evaluations_total{{runbook=\"{rb}\"}} {}", self.evaluations)],
        )];
        let Some(score) = &self.score else { return out };
        let signals = score["signals"].as_object().cloned().unwrap_or_default();
        out.push(Family::new(
            "phoenix_health_last_evaluation_timestamp_seconds",
            "gauge",
            "When the last evaluation ended.",
            vec![format!("phoenix_health_last_evaluation_timestamp_seconds{{runbook=\"{rb}\"}} {}", self.last_at)],
        ));
        out.push(Family::new(
            "phoenix_health_observer_degraded",
            "gauge",
            "1 if the last evaluation is `unknown`: a vantage signal failed, or every signal failed the same way; the score and level gauges keep the last trusted evaluation.",
            vec![format!("phoenix_health_observer_degraded{{runbook=\"{rb}\"}} {}", u8::from(!score["degraded"].is_null()))],
        ));
        let trusted = self.trusted.as_ref();
        if let Some(t) = trusted {
            out.push(Family::new(
                "phoenix_health_score",
                "gauge",
                "The sum of the signals' weights.",
                vec![format!("phoenix_health_score{{runbook=\"{rb}\"}} {}", t["total"].as_f64().unwrap_or(0.0))],
            ));
        }
        out.push(Family::new(
            "phoenix_health_signal_weight",
            "gauge",
            "Each signal's weight in the score.",
            signals
                .iter()
                .map(|(name, s)| {
                    format!(
                        "phoenix_health_signal_weight{{runbook=\"{rb}\",signal=\"{}\"}} {}",
                        label(name),
                        s["weight"].as_f64().unwrap_or(0.0)
                    )
                })
                .collect(),
        ));
        out.push(Family::new(
            "phoenix_health_signal_up",
            "gauge",
            "1 if the signal's probe succeeded.",
            signals
                .iter()
                .map(|(name, s)| {
                    format!(
                        "phoenix_health_signal_up{{runbook=\"{rb}\",signal=\"{}\"}} {}",
                        label(name),
                        u8::from(s["status"] == "succeeded")
                    )
                })
                .collect(),
        ));
        for (metric, key, help) in [
            ("phoenix_health_level", "level", "1 for the confirmed level (after `for`), 0 for the others."),
            ("phoenix_health_raw_level", "raw_level", "1 for the level the score alone gives, 0 for the others."),
        ] {
            let Some(t) = trusted else { break };
            let samples = self
                .levels
                .iter()
                .map(|l| format!("{metric}{{runbook=\"{rb}\",level=\"{}\"}} {}", label(l), u8::from(t[key] == l.as_str())))
                .collect();
            out.push(Family::new(metric, "gauge", help, samples));
        }
        out
    }
}

/// One metric family: its samples follow its HELP and TYPE lines, all together.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: Vec<String>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str, samples: Vec<String>) -> Family {
        Family { name, kind, help, samples }
    }
}

/// The text exposition format (version 0.0.4) of several runbooks' health: each family once,
/// with every runbook's samples under it (a family split in two is invalid OpenMetrics).
pub(crate) fn render(all: &[Shared]) -> String {
    let mut merged: Vec<Family> = Vec::new();
    for m in all {
        for f in m.lock().expect("metrics").families() {
            match merged.iter_mut().find(|e| e.name == f.name) {
                Some(e) => e.samples.extend(f.samples),
                None => merged.push(f),
            }
        }
    }
    let mut o = String::new();
    for f in merged {
        let _ = writeln!(o, "# HELP {} {}\n# TYPE {} {}", f.name, f.help, f.name, f.kind);
        for s in f.samples {
            o.push_str(&s);
            o.push('\n');
        }
    }
    o
}

/// Escapes a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Binds ADDR now (so a bad address is reported at once) and serves until the process ends.
pub(crate) async fn serve(addr: &str, metrics: Shared) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let metrics = metrics.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&head).lines().next().unwrap_or("").to_string();
                let mut parts = line.split_whitespace();
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let (status, ctype, body) = if method == "GET" && path.split('?').next() == Some("/metrics") {
                    ("200 OK", "text/plain; version=0.0.4; charset=utf-8", render(std::slice::from_ref(&metrics)))
                } else {
                    ("404 Not Found", "text/plain; charset=utf-8", "not found: try /metrics\n".to_string())
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(resp.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_is_whole_whatever_the_number_of_runbooks() {
        let levels = vec!["normal".to_string(), "dr".to_string()];
        let a = Metrics::new("eu", levels.clone());
        let b = Metrics::new("us", levels);
        let score = serde_json::json!({
            "total": 3, "level": "dr", "raw_level": "dr",
            "signals": { "db": { "weight": 3, "status": "succeeded" }, "web": { "weight": 0, "status": "failed" } }
        });
        a.lock().unwrap().record(&score);
        b.lock().unwrap().record(&score);
        let text = render(&[a, b]);
        let mut seen = Vec::new();
        let mut current = String::new();
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("# TYPE ") {
                current = name.split(' ').next().unwrap().to_string();
                assert!(!seen.contains(&current), "{current} declared twice:\n{text}");
                seen.push(current.clone());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(name, current, "a sample outside its family:\n{text}");
            }
        }
        assert_eq!(seen.len(), 8, "{text}");
        assert!(text.contains("phoenix_health_score{runbook=\"eu\"} 3\nphoenix_health_score{runbook=\"us\"} 3\n"), "{text}");
        assert!(text.contains("phoenix_health_signal_up{runbook=\"us\",signal=\"web\"} 0"), "{text}");
    }
}
