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
        self.evaluations += 1;
        self.last_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    }

    /// The text exposition format (version 0.0.4).
    pub(crate) fn render(&self) -> String {
        let rb = label(&self.runbook);
        let mut o = String::new();
        let family = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(&mut o, "phoenix_health_evaluations_total", "counter", "Evaluations of the runbook's signals.");
        let _ = writeln!(o, "phoenix_health_evaluations_total{{runbook=\"{rb}\"}} {}", self.evaluations);
        let Some(score) = &self.score else { return o };
        family(&mut o, "phoenix_health_last_evaluation_timestamp_seconds", "gauge", "When the last evaluation ended.");
        let _ = writeln!(o, "phoenix_health_last_evaluation_timestamp_seconds{{runbook=\"{rb}\"}} {}", self.last_at);
        family(&mut o, "phoenix_health_score", "gauge", "The sum of the signals' weights.");
        let _ = writeln!(o, "phoenix_health_score{{runbook=\"{rb}\"}} {}", score["total"].as_f64().unwrap_or(0.0));
        let signals = score["signals"].as_object().cloned().unwrap_or_default();
        family(&mut o, "phoenix_health_signal_weight", "gauge", "Each signal's weight in the score.");
        for (name, s) in &signals {
            let _ = writeln!(
                o,
                "phoenix_health_signal_weight{{runbook=\"{rb}\",signal=\"{}\"}} {}",
                label(name),
                s["weight"].as_f64().unwrap_or(0.0)
            );
        }
        family(&mut o, "phoenix_health_signal_up", "gauge", "1 if the signal's probe succeeded.");
        for (name, s) in &signals {
            let up = u8::from(s["status"] == "succeeded");
            let _ = writeln!(o, "phoenix_health_signal_up{{runbook=\"{rb}\",signal=\"{}\"}} {up}", label(name));
        }
        for (metric, key, help) in [
            ("phoenix_health_level", "level", "1 for the confirmed level (after `for`), 0 for the others."),
            ("phoenix_health_raw_level", "raw_level", "1 for the level the score alone gives, 0 for the others."),
        ] {
            family(&mut o, metric, "gauge", help);
            for l in &self.levels {
                let _ = writeln!(o, "{metric}{{runbook=\"{rb}\",level=\"{}\"}} {}", label(l), u8::from(score[key] == l.as_str()));
            }
        }
        o
    }
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
                    ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics.lock().expect("metrics").render())
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
