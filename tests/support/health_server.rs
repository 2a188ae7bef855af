//! A health endpoint on a free loopback port whose answer a test can switch while it runs:
//! `{"status": "healthy"|"degraded"|"unhealthy"}`, a bare status code, or no answer at all.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What `GET /health` answers.
#[derive(Clone, Debug)]
pub(crate) enum Answer {
    /// 200 with `{"status": …}`.
    Status(&'static str),
    /// This status code, empty body.
    Code(u16),
    /// Reads the request and never answers (for timeouts).
    Hang,
}

/// The server lives as long as the test process; `set` switches its answer.
pub(crate) struct HealthServer {
    port: u16,
    answer: Arc<Mutex<Answer>>,
}

impl HealthServer {
    pub(crate) fn start(answer: Answer) -> HealthServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
        let port = listener.local_addr().expect("bound").port();
        let answer = Arc::new(Mutex::new(answer));
        let shared = answer.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let now = shared.lock().expect("answer").clone();
                std::thread::spawn(move || {
                    let _ = respond(stream, now);
                });
            }
        });
        HealthServer { port, answer }
    }

    pub(crate) fn set(&self, answer: Answer) {
        *self.answer.lock().expect("answer") = answer;
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/health", self.port)
    }
}

fn respond(stream: TcpStream, answer: Answer) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
    }
    let (code, body) = match answer {
        Answer::Status(s) => (200, format!("{{\"status\":\"{s}\",\"checks\":{{\"database\":\"ok\"}}}}")),
        Answer::Code(c) => (c, String::new()),
        Answer::Hang => {
            std::thread::sleep(Duration::from_secs(30));
            return Ok(());
        }
    };
    let mut w = stream;
    write!(w, "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
    w.flush()
}
