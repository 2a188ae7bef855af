//! For the span tests: an OpenTelemetry pipeline into memory installed for the current
//! thread, a one-request HTTP server on 127.0.0.1 that keeps what it was sent, and the check
//! that a secret is in no span in any spelling.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt;

/// Spans exported into memory while it lives (this thread only: `#[tokio::test]` runs on one).
pub(crate) struct Traces {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
    _guard: DefaultGuard,
}

/// Installs the pipeline, at `level` (`info` or `debug`).
pub(crate) fn install(level: tracing::Level) -> Traces {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("t"));
    let filter = tracing_subscriber::filter::LevelFilter::from_level(level);
    let guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer).with(filter));
    Traces { exporter, provider, _guard: guard }
}

impl Traces {
    /// Every span ended so far.
    pub(crate) fn spans(&self) -> Vec<SpanData> {
        let _ = self.provider.force_flush();
        self.exporter.get_finished_spans().expect("the in-memory exporter answers")
    }
    /// The one ended span named `name` (its OpenTelemetry name).
    pub(crate) fn one(&self, name: &str) -> SpanData {
        let all = self.spans();
        let found: Vec<_> = all.iter().filter(|s| s.name == name).cloned().collect();
        assert_eq!(found.len(), 1, "spans named {name:?} among {:?}", all.iter().map(|s| &s.name).collect::<Vec<_>>());
        found.into_iter().next().expect("one")
    }
}

/// A span's attributes as text.
pub(crate) fn attrs(span: &SpanData) -> BTreeMap<String, String> {
    span.attributes.iter().map(|kv| (kv.key.to_string(), kv.value.to_string())).collect()
}

/// Fails if `secret`, as written, base64-encoded or percent-encoded, is in any span's name,
/// attributes, events or status.
pub(crate) fn assert_no_secret(spans: &[SpanData], secret: &str) {
    let forms = [secret.to_string(), base64(secret.as_bytes()), percent(secret)];
    for span in spans {
        let text = format!("{} {:?} {:?} {:?}", span.name, span.attributes, span.events, span.status);
        for form in &forms {
            assert!(!text.contains(form.as_str()), "span {:?} holds the secret ({form}): {text}", span.name);
        }
    }
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..=c.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// What a [`serve_once`] server was sent: the request line and the headers (lower-case names).
#[derive(Debug, Default, Clone)]
pub(crate) struct Received {
    pub(crate) line: String,
    pub(crate) headers: BTreeMap<String, String>,
}

/// What a stand-in answers: status, extra headers, body.
pub(crate) type Answer = (u16, Vec<(&'static str, String)>, String);

/// A server on 127.0.0.1 that answers each request with `status` and `body` and keeps what
/// it was sent; its base URL (`http://127.0.0.1:PORT`).
pub(crate) async fn serve(status: u16, body: &'static str) -> (String, Arc<Mutex<Vec<Received>>>) {
    serve_with(move |_| (status, vec![], body.to_string())).await
}

/// A server on 127.0.0.1 that answers each request as `answer` says (one request per
/// connection) and keeps what it was sent; its base URL.
pub(crate) async fn serve_with(answer: impl Fn(&Received) -> Answer + Send + Sync + 'static) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let keep = keep.clone();
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 16384];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_default() + 4;
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                let mut lines = head.split("\r\n");
                let mut got = Received { line: lines.next().unwrap_or_default().to_string(), ..Received::default() };
                for l in lines.take_while(|l| !l.is_empty()) {
                    if let Some((k, v)) = l.split_once(':') {
                        got.headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let length = got.headers.get("content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
                while buf.len() < end + length {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let (status, headers, body) = answer(&got);
                keep.lock().expect("not poisoned").push(got);
                let mut reply = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n", body.len());
                for (k, v) in headers {
                    reply += &format!("{k}: {v}\r\n");
                }
                reply += "\r\n";
                reply += &body;
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    (url, seen)
}

/// A context for running an action in a test (its log lines are dropped).
pub(crate) fn ctx() -> crate::ActionCtx {
    let (log, _) = tokio::sync::mpsc::unbounded_channel();
    crate::ActionCtx {
        run_id: "r1".into(),
        step_id: "s1".into(),
        cancel: tokio_util::sync::CancellationToken::new(),
        grace: std::time::Duration::from_secs(1),
        log,
        pace: Arc::new(tokio::sync::Semaphore::new(crate::PACE_LINES)),
        work_dir: std::env::temp_dir(),
        env_remove: Arc::from(Vec::<String>::new()),
        fence: 0,
        read_only: false,
    }
}
