//! The HTTP client the OTLP exporter posts with: the workspace's reqwest 0.12 (its blocking
//! client, rustls), so opentelemetry-otlp brings no second reqwest or TLS stack. The batch
//! processor exports from a thread of its own, outside any tokio runtime, which the
//! blocking client needs; the client is built there, on first use.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

/// Posts with a bounded timeout: a dead collector costs at most that per batch.
#[derive(Debug)]
pub(crate) struct Blocking {
    client: OnceLock<Result<reqwest::blocking::Client, String>>,
    timeout: Duration,
}

impl Blocking {
    pub(crate) fn new(timeout: Duration) -> Blocking {
        Blocking { client: OnceLock::new(), timeout }
    }
}

#[async_trait::async_trait]
impl HttpClient for Blocking {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self
            .client
            .get_or_init(|| reqwest::blocking::Client::builder().timeout(self.timeout).build().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| HttpError::from(e.clone()))?;
        let (parts, body) = request.into_parts();
        let mut req = client.request(parts.method, parts.uri.to_string()).body(body.to_vec());
        for (name, value) in &parts.headers {
            req = req.header(name, value);
        }
        let resp = req.send()?;
        let mut out = Response::builder().status(resp.status().as_u16());
        for (name, value) in resp.headers() {
            out = out.header(name.as_str(), value.as_bytes());
        }
        let body = resp.bytes()?;
        Ok(out.body(body)?)
    }
}
