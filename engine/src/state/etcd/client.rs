//! A synchronous etcd v3 client over etcd's JSON gateway, usable from a plain thread or from
//! inside a tokio runtime of either flavor.
//!
//! The HTTP client runs on a thread of its own with a current-thread runtime; a caller sends
//! its request over a channel and waits for the answer on a `std::sync::mpsc` channel (inside
//! `block_in_place` on a multi-thread runtime, so the runtime's other tasks go on). A request
//! that cannot connect, times out, or meets a member without a leader goes to the next
//! endpoint; the endpoint that answered last is tried first next time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use super::wire::{self, b64, int, uint};

/// A handle on an etcd cluster; cheap to clone.
#[derive(Clone)]
pub struct Etcd {
    shared: Arc<Shared>,
}

struct Shared {
    endpoints: Vec<String>,
    timeout: Duration,
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

/// A key, its value and its revisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub lease: i64,
}

/// A condition of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key was created at this revision (`0`: the key is absent).
    CreateRevision(Vec<u8>, i64),
    /// The key holds exactly this value.
    Value(Vec<u8>, Vec<u8>),
}

/// An operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    Put { key: Vec<u8>, value: Vec<u8>, lease: i64 },
    Delete(Vec<u8>),
    Get(Vec<u8>),
}

/// A transaction: if every comparison holds, `success` is applied, else `failure`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    pub compare: Vec<Compare>,
    pub success: Vec<TxnOp>,
    pub failure: Vec<TxnOp>,
}

/// What a transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResponse {
    pub succeeded: bool,
    pub revision: i64,
    /// One per Get of the branch taken, in order.
    pub gets: Vec<Option<KeyValue>>,
}

/// A member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: u64,
    pub name: String,
    pub client_urls: Vec<String>,
}

/// What one member says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStatus {
    pub endpoint: String,
    pub version: String,
    pub member_id: u64,
    pub leader_id: u64,
    pub raft_term: u64,
    pub db_size: u64,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtcdError {
    /// No member answered in time, or none with a quorum behind it.
    #[error("etcd is unavailable: {0}")]
    Unavailable(String),
    /// etcd answered with an error: a request too large, too many operations, a bad request.
    #[error("etcd refused the request: {0}")]
    Rejected(String),
}

struct Job {
    /// One endpoint only, or every endpoint in turn (`None`).
    only: Option<String>,
    path: &'static str,
    body: Value,
    timeout: Duration,
    reply: std::sync::mpsc::Sender<Result<Answered, EtcdError>>,
}

/// An answer, and whether another member failed this request first (it may have applied it).
struct Answered {
    value: Value,
    failed_over: bool,
}

impl Etcd {
    /// A client of these endpoints (`http://127.0.0.1:2379`); etcd need not be up yet.
    pub fn connect(endpoints: Vec<String>, request_timeout: Duration) -> Result<Etcd, String> {
        Etcd::connect_tls(endpoints, None, request_timeout)
    }

    /// A client of these endpoints over TLS with these files (`https://` endpoints), or
    /// plain with `None`.
    pub fn connect_tls(endpoints: Vec<String>, tls: Option<&super::TlsFiles>, request_timeout: Duration) -> Result<Etcd, String> {
        if endpoints.is_empty() {
            return Err("no etcd endpoint given".into());
        }
        for e in &endpoints {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(format!("the etcd endpoint {e:?} is not a URL: write it as http://HOST:PORT"));
            }
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(request_timeout.min(Duration::from_secs(1)))
            .pool_idle_timeout(Duration::from_secs(30));
        if let Some(files) = tls {
            builder = super::tls::configure(builder, files)?;
        }
        let client = builder.build().map_err(|e| format!("cannot set up the etcd client: {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the etcd client's runtime: {e}"))?;
        let (jobs, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
        let preferred = Arc::new(AtomicUsize::new(0));
        // The endpoint that answered last, tried first.
        let (list, first) = (endpoints.clone(), preferred);
        std::thread::Builder::new()
            .name("etcd-client".into())
            .spawn(move || {
                runtime.block_on(async move {
                    // Ends when every handle is dropped.
                    while let Some(job) = rx.recv().await {
                        let (client, list, first) = (client.clone(), list.clone(), first.clone());
                        tokio::spawn(async move {
                            let answer = run(&client, &list, &first, &job).await;
                            let _ = job.reply.send(answer);
                        });
                    }
                });
            })
            .map_err(|e| format!("cannot start the etcd client's thread: {e}"))?;
        Ok(Etcd { shared: Arc::new(Shared { endpoints, timeout: request_timeout, jobs }) })
    }

    /// The endpoints this client uses.
    pub fn endpoints(&self) -> &[String] {
        &self.shared.endpoints
    }

    fn call(&self, path: &'static str, body: Value) -> Result<Value, EtcdError> {
        Ok(self.call_on(None, path, body, self.shared.timeout)?.value)
    }

    fn call_on(&self, only: Option<String>, path: &'static str, body: Value, timeout: Duration) -> Result<Answered, EtcdError> {
        let (reply, answer) = std::sync::mpsc::channel();
        let gone = || EtcdError::Unavailable("the etcd client's thread has stopped".into());
        self.shared.jobs.send(Job { only, path, body, timeout, reply }).map_err(|_| gone())?;
        let wait = || answer.recv().unwrap_or_else(|_| Err(gone()));
        match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(wait),
            _ => wait(),
        }
    }

    /// The value of a key.
    pub fn get(&self, key: &[u8]) -> Result<Option<KeyValue>, EtcdError> {
        Ok(wire::kvs(&self.call("/v3/kv/range", json!({"key": b64(key)}))?).into_iter().next())
    }

    /// Every key in `[start, end)` at most `limit` (0: all), at `revision` (0: the newest):
    /// the entries, whether there are more, and the revision read.
    pub(crate) fn range(&self, start: &[u8], end: &[u8], limit: i64, revision: i64) -> Result<(Vec<KeyValue>, bool, i64), EtcdError> {
        let body = json!({"key": b64(start), "rangeEnd": b64(end), "limit": limit.to_string(), "revision": revision.to_string()});
        let v = self.call("/v3/kv/range", body)?;
        Ok((wire::kvs(&v), v["more"].as_bool().unwrap_or(false), int(&v["header"]["revision"])))
    }

    /// The last `limit` keys in `[start, end)`, last first, and the revision read.
    pub(crate) fn range_last(&self, start: &[u8], end: &[u8], limit: i64) -> Result<(Vec<KeyValue>, i64), EtcdError> {
        let body =
            json!({"key": b64(start), "rangeEnd": b64(end), "limit": limit.to_string(), "sortOrder": "DESCEND", "sortTarget": "KEY"});
        let v = self.call("/v3/kv/range", body)?;
        Ok((wire::kvs(&v), int(&v["header"]["revision"])))
    }

    /// Every key starting with `prefix`, in key order, read page by page at one revision.
    pub fn range_prefix(&self, prefix: &[u8]) -> Result<Vec<KeyValue>, EtcdError> {
        Ok(self.range_prefix_at(prefix, 0, 64)?.0)
    }

    /// [`Etcd::range_prefix`] at `revision` (0: the newest), `page` keys per request (values
    /// may be 1 MB each: a page is one answer), and the revision read.
    pub(crate) fn range_prefix_at(&self, prefix: &[u8], revision: i64, page: i64) -> Result<(Vec<KeyValue>, i64), EtcdError> {
        let end = wire::prefix_end(prefix);
        let (mut out, mut more, rev) = self.range(prefix, &end, page, revision)?;
        while more {
            let mut from = out.last().map(|kv| kv.key.clone()).unwrap_or_default();
            from.push(0);
            let (next, m, _) = self.range(&from, &end, page, rev)?;
            more = m && !next.is_empty();
            out.extend(next);
        }
        Ok((out, rev))
    }

    /// Runs a transaction.
    pub fn txn(&self, t: &Txn) -> Result<TxnResponse, EtcdError> {
        let a = wire::txn_answer(&self.call("/v3/kv/txn", wire::txn(t, false))?);
        Ok(TxnResponse { succeeded: a.succeeded, revision: a.revision, gets: a.gets })
    }

    /// Runs a transaction given as the gateway's JSON (for what [`Txn`] has no words for).
    pub(crate) fn txn_json(&self, body: Value) -> Result<wire::TxnAnswer, EtcdError> {
        let answered = self.call_on(None, "/v3/kv/txn", body, self.shared.timeout)?;
        let mut answer = wire::txn_answer(&answered.value);
        answer.uncertain = answered.failed_over;
        Ok(answer)
    }

    /// A new lease of `ttl_secs`; its id.
    pub fn lease_grant(&self, ttl_secs: i64) -> Result<i64, EtcdError> {
        let v = self.call("/v3/lease/grant", json!({"TTL": ttl_secs.to_string()}))?;
        match int(&v["ID"]) {
            0 => Err(EtcdError::Rejected(format!("no lease granted: {}", v["error"].as_str().unwrap_or("etcd gave no id")))),
            id => Ok(id),
        }
    }

    /// Renews a lease: its TTL, or `None` if the lease is gone.
    pub fn lease_keepalive(&self, id: i64) -> Result<Option<i64>, EtcdError> {
        let v = self.call("/v3/lease/keepalive", json!({"ID": id.to_string()}))?;
        Ok(Some(int(&v["result"]["TTL"])).filter(|ttl| *ttl > 0))
    }

    /// Ends a lease, deleting its keys; a lease already gone is not an error.
    pub fn lease_revoke(&self, id: i64) -> Result<(), EtcdError> {
        match self.call("/v3/lease/revoke", json!({"ID": id.to_string()})) {
            Err(EtcdError::Rejected(e)) if e.contains("lease not found") => Ok(()),
            other => other.map(|_| ()),
        }
    }

    /// A lease's remaining TTL, or `None` if it is gone.
    pub fn lease_time_to_live(&self, id: i64) -> Result<Option<i64>, EtcdError> {
        let v = self.call("/v3/lease/timetolive", json!({"ID": id.to_string()}))?;
        Ok(Some(int(&v["TTL"])).filter(|ttl| *ttl >= 0))
    }

    /// The cluster's members.
    pub fn members(&self) -> Result<Vec<Member>, EtcdError> {
        let v = self.call("/v3/cluster/member/list", json!({}))?;
        let strings = |v: &Value| v.as_array().into_iter().flatten().filter_map(|s| s.as_str().map(str::to_string)).collect();
        Ok(v["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| Member {
                id: uint(&m["ID"]),
                name: m["name"].as_str().unwrap_or_default().to_string(),
                client_urls: strings(&m["clientURLs"]),
            })
            .collect())
    }

    /// What the member at `endpoint` (and only it) says of itself; a short timeout.
    pub fn endpoint_status(&self, endpoint: &str) -> Result<EndpointStatus, EtcdError> {
        let timeout = self.shared.timeout.min(Duration::from_secs(2));
        let v = self.call_on(Some(endpoint.to_string()), "/v3/maintenance/status", json!({}), timeout)?.value;
        Ok(EndpointStatus {
            endpoint: endpoint.to_string(),
            version: v["version"].as_str().unwrap_or_default().to_string(),
            member_id: uint(&v["header"]["member_id"]),
            leader_id: uint(&v["leader"]),
            raft_term: uint(&v["raftTerm"]),
            db_size: uint(&v["dbSize"]),
        })
    }
}

/// What went wrong with one endpoint: try the next, or give up.
enum Failure {
    Next(String),
    Rejected(String),
}

async fn run(client: &reqwest::Client, list: &[String], preferred: &AtomicUsize, job: &Job) -> Result<Answered, EtcdError> {
    if let Some(url) = &job.only {
        return match once(client, url, job).await {
            Ok(value) => Ok(Answered { value, failed_over: false }),
            Err(Failure::Next(e)) => Err(EtcdError::Unavailable(format!("{url}: {e}"))),
            Err(Failure::Rejected(e)) => Err(EtcdError::Rejected(e)),
        };
    }
    let first = preferred.load(Ordering::Relaxed) % list.len();
    let mut failures = Vec::new();
    for i in (0..list.len()).map(|n| (first + n) % list.len()) {
        match once(client, &list[i], job).await {
            Ok(value) => {
                preferred.store(i, Ordering::Relaxed);
                return Ok(Answered { value, failed_over: !failures.is_empty() });
            }
            Err(Failure::Next(e)) => failures.push(format!("{}: {e}", list[i])),
            Err(Failure::Rejected(e)) => return Err(EtcdError::Rejected(e)),
        }
    }
    Err(EtcdError::Unavailable(format!("no member answered with a quorum behind it ({})", failures.join("; "))))
}

async fn once(client: &reqwest::Client, endpoint: &str, job: &Job) -> Result<Value, Failure> {
    let url = format!("{}{}", endpoint.trim_end_matches('/'), job.path);
    let response = client.post(&url).timeout(job.timeout).json(&job.body).send().await.map_err(|e| Failure::Next(say(&e)))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| Failure::Next(say(&e)))?;
    // A stream (lease keepalive) answers one JSON object per line: the first is the answer.
    let v: Value = serde_json::Deserializer::from_str(&text)
        .into_iter()
        .next()
        .and_then(Result::ok)
        .ok_or_else(|| Failure::Next(format!("HTTP {status}, not etcd's JSON: {}", text.chars().take(200).collect::<String>())))?;
    let error = v.get("error").or_else(|| v.get("result").and_then(|r| r.get("error")));
    if let Some(e) = error.filter(|e| !e.is_null()) {
        let message = e.as_str().map(str::to_string).or_else(|| e["message"].as_str().map(str::to_string)).unwrap_or_else(|| e.to_string());
        let code = int(&v["code"]).max(int(&e["grpc_code"]));
        // Unavailable, DeadlineExceeded, Canceled: this member cannot answer now (no leader,
        // no quorum, a leader change); another may.
        let transient = matches!(code, 1 | 4 | 14)
            || ["no leader", "timed out", "leader changed", "too many requests", "not capable", "stopped"]
                .iter()
                .any(|m| message.contains(m));
        return Err(if transient { Failure::Next(message) } else { Failure::Rejected(message) });
    }
    if !status.is_success() {
        return Err(if status.is_server_error() {
            Failure::Next(format!("HTTP {status}"))
        } else {
            Failure::Rejected(format!("HTTP {status}: {text}"))
        });
    }
    Ok(v)
}

fn say(e: &reqwest::Error) -> String {
    // The TLS failure (an unknown CA, a name mismatch, a client certificate asked for) is at
    // the bottom of the chain; "error sending request" alone sends an operator nowhere.
    let mut cause = None;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = Some(s.to_string());
        source = s.source();
    }
    let tls = cause.as_deref().filter(|c| {
        let c = c.to_ascii_lowercase();
        ["certificate", "tls", "handshake", "alert", "invalid peer", "unknownissuer", "badsignature"].iter().any(|m| c.contains(m))
    });
    if let Some(c) = tls {
        format!("TLS: {c} (check the store URL's ca=, cert= and key= files against the members' certificates)")
    } else if e.is_timeout() {
        "no answer in time".into()
    } else if e.is_connect() {
        match cause {
            Some(c) => format!("cannot connect: {c}"),
            None => "cannot connect".into(),
        }
    } else {
        match cause {
            Some(c) if !e.to_string().contains(&c) => format!("{e}: {c}"),
            _ => e.to_string(),
        }
    }
}
