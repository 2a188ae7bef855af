//! A local HTTP server whose every answer a test scripts, and which records every request:
//! the stand-in for services that cannot run here (an LLM API, AWS Health), speaking their
//! real wire formats as the test writes them. Listens on a free 127.0.0.1 port.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as received.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub(crate) method: String,
    /// The path with its query string.
    pub(crate) path: String,
    /// Header names in lower case.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("the request body is not JSON ({e}): {}", self.text()))
    }
}

/// How to answer.
pub(crate) enum Reply {
    /// This status, content type application/json, and body.
    Json(u16, String),
    /// This status, these headers (a content type among them) and body.
    Raw(u16, Vec<(&'static str, String)>, Vec<u8>),
    /// Read the request, never answer (for timeouts).
    Hang,
}

type Handler = dyn Fn(&Request, usize) -> Reply + Send + Sync;

/// The server; lives as long as the test process.
pub(crate) struct Scripted {
    port: u16,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Scripted {
    /// Answers each request with `handler(request, how many came before it)`.
    pub(crate) fn start(handler: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = listener.local_addr().expect("bound").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (handler, seen) = (handler.clone(), seen.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &*handler, &seen);
                });
            }
        });
        Scripted { port, requests }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far.
    pub(crate) fn requests(&self) -> Vec<Request> {
        self.requests.lock().expect("requests").clone()
    }
}

fn serve(stream: TcpStream, handler: &Handler, seen: &Mutex<Vec<Request>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or_default().to_string(), parts.next().unwrap_or_default().to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim_end().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let request = Request { method, path, headers, body };
    let n = {
        let mut seen = seen.lock().expect("requests");
        seen.push(request.clone());
        seen.len() - 1
    };
    let (code, headers, body) = match handler(&request, n) {
        Reply::Json(code, body) => (code, vec![("Content-Type", "application/json".to_string())], body.into_bytes()),
        Reply::Raw(code, headers, body) => (code, headers, body),
        Reply::Hang => {
            std::thread::sleep(Duration::from_secs(600));
            return Ok(());
        }
    };
    let mut head = format!("HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        head += &format!("{k}: {v}\r\n");
    }
    let mut out = stream;
    out.write_all(format!("{head}\r\n").as_bytes())?;
    out.write_all(&body)?;
    out.flush()
}
