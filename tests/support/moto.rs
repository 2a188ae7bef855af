//! The moto server (AWS's wire protocols, in memory) on a free loopback port, one per test,
//! started from the virtualenv `make deps` creates (`.tools/venv`, or `PHOENIX_VENV`) through
//! `moto_server.py`, which adds test-only routes for what moto cannot do by itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::support::repo_root;

/// A running moto server; stopped when dropped.
pub(crate) struct Moto {
    child: Child,
    port: u16,
}

fn python() -> PathBuf {
    let venv = std::env::var_os("PHOENIX_VENV").map_or_else(|| repo_root().join(".tools/venv"), PathBuf::from);
    let python = venv.join("bin/python");
    assert!(python.exists(), "{} is missing: run `make deps` (it installs moto[server] into {})", python.display(), venv.display());
    python
}

impl Moto {
    pub(crate) fn start() -> Moto {
        let mut child = Command::new(python())
            .arg(repo_root().join("tests/support/moto_server.py"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the moto server");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut line).expect("read moto's port");
        let port = line.trim().parse().unwrap_or_else(|_| panic!("moto_server.py did not print its port (got {line:?})"));
        Moto { child, port }
    }

    /// The endpoint URL for `with: { endpoint_url: … }`.
    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates an EKS cluster whose node groups have these statuses (`ACTIVE`, `DEGRADED`…).
    pub(crate) fn eks_cluster(&self, region: &str, cluster: &str, groups: &[(&str, &str)]) {
        let groups: serde_json::Map<String, serde_json::Value> = groups.iter().map(|(n, s)| (n.to_string(), (*s).into())).collect();
        self.post("/phoenix-test/eks", &serde_json::json!({ "region": region, "cluster": cluster, "nodegroups": groups }));
    }

    /// Makes every later AWS answer wait this long.
    pub(crate) fn delay(&self, seconds: f64) {
        self.post("/phoenix-test/delay", &serde_json::json!({ "seconds": seconds }));
    }

    /// Creates an S3 bucket (the product has no action that creates one).
    pub(crate) fn s3_bucket(&self, region: &str, bucket: &str) {
        self.post("/phoenix-test/s3-bucket", &serde_json::json!({ "region": region, "bucket": bucket }));
    }

    /// Puts `count` objects of `size` bytes under `prefix` (keys `object-00000`…).
    pub(crate) fn s3_objects(&self, bucket: &str, prefix: &str, count: usize, size: usize) {
        self.post("/phoenix-test/s3-objects", &serde_json::json!({ "bucket": bucket, "prefix": prefix, "count": count, "size": size }));
    }

    /// How many multipart uploads to `bucket` are started and neither completed nor aborted.
    pub(crate) fn s3_multipart_uploads(&self, region: &str, bucket: &str) -> usize {
        let n = self.post_for_answer("/phoenix-test/s3-uploads", &serde_json::json!({ "region": region, "bucket": bucket }));
        n.trim().parse().unwrap_or_else(|_| panic!("not a count: {n}"))
    }

    /// Creates a Route 53 hosted zone; its id (without `/hostedzone/`).
    pub(crate) fn route53_zone(&self, name: &str) -> String {
        self.post_for_answer("/phoenix-test/route53-zone", &serde_json::json!({ "name": name }))
    }

    /// Creates a Secrets Manager secret.
    pub(crate) fn secret(&self, region: &str, name: &str, value: &str) {
        self.post("/phoenix-test/secret", &serde_json::json!({ "region": region, "name": name, "value": value }));
    }

    /// Makes the next `polls` GetChange answers PENDING (negative: every one).
    pub(crate) fn route53_pending(&self, polls: i64) {
        self.post("/phoenix-test/route53-pending", &serde_json::json!({ "polls": polls }));
    }

    /// Like `post`, and gives back the answer's body.
    fn post_for_answer(&self, path: &str, body: &serde_json::Value) -> String {
        let body = body.to_string();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        write!(
            stream,
            "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("send to moto");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("moto's answer");
        assert!(answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"), "{path} failed:\n{answer}");
        answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
    }

    fn post(&self, path: &str, body: &serde_json::Value) {
        let body = body.to_string();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        write!(
            stream,
            "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("send to moto");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("moto's answer");
        assert!(answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"), "{path} failed:\n{answer}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
