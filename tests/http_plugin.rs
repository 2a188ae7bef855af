//! The `http` plugin through `phoenix run`, against a tiny HTTP/1.1 server on a free
//! loopback port that answers canned responses and counts what it was asked.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::process::{self, step};
use crate::support::{Output, Test};

/// A server on 127.0.0.1:0; it lives as long as the test process.
struct Server {
    port: u16,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(HashMap::new()));
        let counted = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let hits = counted.clone();
                std::thread::spawn(move || {
                    let _ = answer(stream, &hits);
                });
            }
        });
        Server { port, hits }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

fn answer(stream: TcpStream, hits: &Mutex<HashMap<String, usize>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let (code, reason, body) = match path.as_str() {
        "/health" => (200, "OK", json!({"status": "healthy", "version": "1.2.3"}).to_string()),
        "/teapot" => (418, "I'm a teapot", "short and stout".to_string()),
        "/unavailable" => (503, "Service Unavailable", "try later".to_string()),
        "/slow" => {
            std::thread::sleep(Duration::from_secs(5));
            (200, "OK", "too late".to_string())
        }
        "/echo" => (
            200,
            "OK",
            json!({
                "method": method,
                "body": String::from_utf8_lossy(&body),
                "content_type": headers.get("content-type"),
                "token": headers.get("x-token"),
            })
            .to_string(),
        ),
        _ => (404, "Not Found", "no such thing".to_string()),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nX-Served-By: phoenix-test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

fn run(yaml: &str, code: i32) -> (Output, Value) {
    let out = Test::new().file("r.yaml", yaml).args(["run", "r.yaml"]).run().code(code);
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    (out, s)
}

#[test]
fn a_get_gives_status_headers_body_and_json() {
    let srv = Server::start();
    let (_, s) = run(
        &format!(
            r#"version: 1
name: get
steps:
  health:
    uses: http
    with: {{ url: "{}" }}
  use_it:
    needs: [health]
    uses: assert
    with: {{ that: "steps.health.outputs.json.status == 'healthy'" }}
outputs:
  version: "{{{{ steps.health.outputs.json.version }}}}"
  served_by: "{{{{ steps.health.outputs.headers['x-served-by'] }}}}"
"#,
            srv.url("/health")
        ),
        0,
    );
    let o = &step(&s, "health")["outputs"];
    assert_eq!(o["status"], 200);
    assert_eq!(o["json"], json!({"status": "healthy", "version": "1.2.3"}));
    assert_eq!(o["body"], r#"{"status":"healthy","version":"1.2.3"}"#);
    assert_eq!(s["outputs"], json!({"version": "1.2.3", "served_by": "phoenix-test"}));
    assert_eq!(srv.hits("/health"), 1);
}

#[test]
fn expect_status_decides_success() {
    let srv = Server::start();
    let (_, s) = run(
        &format!(
            r#"version: 1
name: statuses
steps:
  expected_teapot:
    uses: http
    with: {{ url: "{teapot}", expect_status: [418] }}
  unexpected_teapot:
    uses: http
    continue_on_error: true
    with: {{ url: "{teapot}" }}
  ok_is_not_expected:
    uses: http
    continue_on_error: true
    with: {{ url: "{health}", expect_status: [204] }}
"#,
            teapot = srv.url("/teapot"),
            health = srv.url("/health")
        ),
        0,
    );
    let good = step(&s, "expected_teapot");
    assert_eq!(good["status"], "succeeded");
    assert_eq!(good["outputs"]["status"], 418);
    assert_eq!(good["outputs"]["body"], "short and stout");
    let bad = step(&s, "unexpected_teapot");
    assert_eq!(bad["status"], "failed");
    assert!(bad["error"].as_str().unwrap().contains("answered 418, expected 2xx"), "{bad:#}");
    assert_eq!(bad["outputs"]["status"], 418, "a failed request keeps what it got");
    assert!(step(&s, "ok_is_not_expected")["error"].as_str().unwrap().contains("answered 200, expected [204]"));
}

#[test]
fn server_errors_are_retried_client_errors_are_not() {
    let srv = Server::start();
    let (_, s) = run(
        &format!(
            r#"version: 1
name: retries
defaults:
  retry: {{ attempts: 3, backoff: fixed, delay: 10ms }}
steps:
  unavailable:
    uses: http
    continue_on_error: true
    with: {{ url: "{}" }}
  missing:
    uses: http
    continue_on_error: true
    with: {{ url: "{}" }}
"#,
            srv.url("/unavailable"),
            srv.url("/nothing-here")
        ),
        0,
    );
    assert_eq!(srv.hits("/unavailable"), 3);
    assert_eq!(step(&s, "unavailable")["attempts"], 3);
    assert_eq!(srv.hits("/nothing-here"), 1, "a 404 will not get better by asking again");
    assert_eq!(step(&s, "missing")["attempts"], 1);
}

#[test]
fn a_slow_server_hits_the_request_timeout() {
    let srv = Server::start();
    let (_, s) = run(
        &format!(
            "version: 1\nname: slow\nsteps:\n  slow:\n    uses: http\n    with: {{ url: \"{}\", timeout: 200ms }}\n",
            srv.url("/slow")
        ),
        1,
    );
    let slow = step(&s, "slow");
    assert_eq!(slow["status"], "failed");
    assert!(slow["error"].as_str().unwrap().contains("timed out"), "{slow:#}");
}

#[test]
fn a_post_sends_json_or_a_body_with_headers() {
    let srv = Server::start();
    let (_, s) = run(
        &format!(
            r#"version: 1
name: post
params:
  who: {{ type: string, default: oncall }}
  count: {{ type: int, default: 2 }}
steps:
  with_json:
    uses: http
    with:
      method: POST
      url: "{echo}"
      headers: {{ X-Token: abc123 }}
      json: {{ text: "paging {{{{ params.who }}}}", count: "{{{{ params.count }}}}" }}
  with_body:
    uses: http
    with: {{ method: put, url: "{echo}", body: "plain words" }}
"#,
            echo = srv.url("/echo")
        ),
        0,
    );
    let got = &step(&s, "with_json")["outputs"]["json"];
    assert_eq!(got["method"], "POST");
    assert_eq!(got["token"], "abc123");
    assert_eq!(got["content_type"], "application/json");
    let sent: Value = serde_json::from_str(got["body"].as_str().unwrap()).unwrap();
    assert_eq!(sent, json!({"text": "paging oncall", "count": 2}));
    let got = &step(&s, "with_body")["outputs"]["json"];
    assert_eq!(got["method"], "PUT");
    assert_eq!(got["body"], "plain words");
}

#[test]
fn a_refused_connection_fails_the_step() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (_, s) =
        run(&format!("version: 1\nname: refused\nsteps:\n  down:\n    uses: http\n    with: {{ url: \"http://127.0.0.1:{port}/\" }}\n"), 1);
    assert!(step(&s, "down")["error"].as_str().unwrap().contains("could not connect"), "{s:#}");
}
