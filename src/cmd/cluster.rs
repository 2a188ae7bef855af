//! `phoenix cluster status`: the nodes, the leader with its lease and fencing token, and each
//! etcd member's health, read from etcd itself (no `phoenix serve` needs to answer).
//!
//! Exit 0 when a leader holds and etcd has a quorum, 1 otherwise, 2 for a store URL that is
//! not one. With the embedded store (sled) there is no cluster: one node, exit 0.

use std::time::Duration;

use phoenix_engine::state::{Etcd, EtcdError, EtcdUrl};
use serde::Serialize;
use serde_json::Value;

use crate::cli::Output;
use crate::exit::Exit;

/// How long one etcd request may take before the next member is asked.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// `None` for the embedded store (no URL, or `sled…`); the etcd URL; or what is wrong.
pub(crate) fn parse(url: Option<&str>) -> Result<Option<EtcdUrl>, String> {
    let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else { return Ok(None) };
    if url == "sled" || url.starts_with("sled:") {
        return Ok(None);
    }
    EtcdUrl::parse(url).map(Some).map_err(|e| format!("--store: {e}"))
}

/// The leader as the leader key says, with the key's create revision as its fencing token.
#[derive(Debug, Serialize)]
struct Leader {
    node: String,
    url: String,
    token: i64,
    lease: i64,
    /// Seconds left on the lease, if it is still there.
    ttl: Option<i64>,
}

/// A member of the etcd cluster and what it says of itself.
#[derive(Debug, Serialize)]
struct MemberHealth {
    name: String,
    endpoint: String,
    /// `None` when it answered; else why not.
    error: Option<String>,
    version: Option<String>,
    is_leader: bool,
    raft_term: Option<u64>,
    db_size: Option<u64>,
}

/// Everything `cluster status` says, also as JSON.
#[derive(Debug, Serialize)]
struct Report {
    store: &'static str,
    endpoints: Vec<String>,
    prefix: String,
    leader: Option<Leader>,
    /// Why the leader key could not be read.
    leader_error: Option<String>,
    /// The node keys' JSON (`node`, `url`, `pid`, `host`, `started_at`).
    nodes: Vec<Value>,
    nodes_error: Option<String>,
    members: Vec<MemberHealth>,
    members_error: Option<String>,
    /// Members that answer, out of how many.
    answering: usize,
    quorum: bool,
    /// A leader holds and etcd has a quorum.
    healthy: bool,
}

pub(crate) fn status(store: Option<&str>, json: bool, out: Output) -> Exit {
    let json = json || out == Output::Json;
    let url = match parse(store) {
        Ok(Some(u)) => u,
        Ok(None) => {
            if json {
                println!("{}", serde_json::json!({ "store": "sled", "healthy": true, "nodes": 1 }));
            } else {
                println!("the store is sled (embedded): no cluster; this machine is the only node and always leads");
                println!("  a cluster needs --store etcd://HOST:PORT,… (or PHOENIX_STORE): docs/ha.md");
            }
            return Exit::Ok;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::BadInput;
        }
    };
    let etcd = match Etcd::connect_tls(url.endpoints.clone(), url.tls.as_ref(), REQUEST_TIMEOUT) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::BadInput;
        }
    };
    let report = gather(&etcd, url);
    if json {
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    } else {
        print!("{}", text(&report));
    }
    if report.healthy {
        Exit::Ok
    } else {
        for why in problems(&report) {
            eprintln!("not healthy: {why}");
        }
        Exit::Failed
    }
}

fn gather(etcd: &Etcd, url: EtcdUrl) -> Report {
    let key = |k: &str| format!("{}{k}", url.prefix).into_bytes();
    let (leader, leader_error) = match etcd.get(&key("cluster/leader")) {
        Ok(Some(kv)) => {
            let v: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
            let lease = v["lease"].as_i64().filter(|l| *l != 0).unwrap_or(kv.lease);
            let ttl = if lease == 0 { None } else { etcd.lease_time_to_live(lease).ok().flatten() };
            let s = |f: &str| v[f].as_str().unwrap_or("?").to_string();
            (Some(Leader { node: s("node"), url: s("url"), token: kv.create_revision, lease, ttl }), None)
        }
        Ok(None) => (None, None),
        Err(e) => (None, Some(said(&e))),
    };
    let (nodes, nodes_error) = match &leader_error {
        // The same read would wait as long again for the same answer.
        Some(e) => (Vec::new(), Some(e.clone())),
        None => match etcd.range_prefix(&key("cluster/nodes/")) {
            Ok(kvs) => (kvs.iter().map(|kv| serde_json::from_slice(&kv.value).unwrap_or(Value::Null)).collect(), None),
            Err(e) => (Vec::new(), Some(said(&e))),
        },
    };
    // The members etcd lists, else (no member answers the list) the endpoints given.
    let (listed, members_error) = match etcd.members() {
        Ok(m) if !m.is_empty() => (m.into_iter().map(|m| (m.name, m.client_urls.into_iter().next().unwrap_or_default())).collect(), None),
        Ok(_) => (given(&url.endpoints), None),
        Err(e) => (given(&url.endpoints), Some(said(&e))),
    };
    let mut members: Vec<MemberHealth> = listed.into_iter().map(|(name, endpoint)| health(etcd, name, endpoint)).collect();
    members.sort_by(|a, b| (&a.name, &a.endpoint).cmp(&(&b.name, &b.endpoint)));
    let answering = members.iter().filter(|m| m.error.is_none()).count();
    let quorum = answering > members.len() / 2;
    let healthy = quorum && leader_error.is_none() && leader.as_ref().is_some_and(|l| l.ttl.is_none_or(|t| t > 0));
    Report {
        store: "etcd",
        endpoints: url.endpoints,
        prefix: url.prefix,
        leader,
        leader_error,
        nodes,
        nodes_error,
        members,
        members_error,
        answering,
        quorum,
        healthy,
    }
}

fn given(endpoints: &[String]) -> Vec<(String, String)> {
    endpoints.iter().map(|e| (String::new(), e.clone())).collect()
}

fn health(etcd: &Etcd, name: String, endpoint: String) -> MemberHealth {
    match etcd.endpoint_status(&endpoint) {
        Ok(s) => MemberHealth {
            name,
            endpoint,
            error: None,
            version: Some(s.version),
            is_leader: s.leader_id != 0 && s.leader_id == s.member_id,
            raft_term: Some(s.raft_term),
            db_size: Some(s.db_size),
        },
        Err(e) => MemberHealth { name, endpoint, error: Some(said(&e)), version: None, is_leader: false, raft_term: None, db_size: None },
    }
}

fn said(e: &EtcdError) -> String {
    e.to_string()
}

/// Why the cluster is not healthy, one reason a line.
fn problems(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    if !r.quorum {
        let need = r.members.len() / 2 + 1;
        out.push(format!(
            "etcd has no quorum: {} of {} member(s) answer, {need} needed; the leader commits nothing until they are back (docs/ha.md, \"Losing etcd\")",
            r.answering,
            r.members.len()
        ));
    }
    match (&r.leader, &r.leader_error) {
        (_, Some(e)) => out.push(format!("the leader key cannot be read: {e}")),
        (None, None) => out.push("no node leads: no `phoenix serve --store …` holds the leader key now (is one running?)".into()),
        (Some(l), None) if l.ttl.is_some_and(|t| t <= 0) => out.push(format!("the leader {}'s lease {} has run out", l.node, l.lease)),
        _ => {}
    }
    out
}

fn text(r: &Report) -> String {
    let mut o = format!("store  etcd {} (keys under {})\n", r.endpoints.join(","), r.prefix);
    match (&r.leader, &r.leader_error) {
        (Some(l), _) => {
            let ttl = l.ttl.map_or_else(|| "gone".to_string(), |t| format!("{t} s left"));
            o += &format!("leader {}  {}  fencing token {}  lease {:x} ({ttl})\n", l.node, l.url, l.token, l.lease);
        }
        (None, Some(e)) => o += &format!("leader unknown: {e}\n"),
        (None, None) => o += "leader none\n",
    }
    o += &format!("nodes  {}\n", r.nodes.len());
    if let Some(e) = &r.nodes_error {
        o += &format!("  cannot be read: {e}\n");
    }
    let leader = r.leader.as_ref().map(|l| l.node.as_str());
    for n in &r.nodes {
        let s = |f: &str| match &n[f] {
            Value::String(s) => s.clone(),
            Value::Null => "?".into(),
            v => v.to_string(),
        };
        let lead = if leader == n["node"].as_str() { "  (leader)" } else { "" };
        o += &format!("  {}  {}  pid {} on {}  since {}{lead}\n", s("node"), s("url"), s("pid"), s("host"), s("started_at"));
    }
    let state = if r.quorum { "quorum" } else { "NO QUORUM" };
    o += &format!("etcd   {} of {} member(s) answer: {state}\n", r.answering, r.members.len());
    if let Some(e) = &r.members_error {
        o += &format!("  the member list cannot be read ({e}); the endpoints given:\n");
    }
    for m in &r.members {
        let name = if m.name.is_empty() { "?" } else { m.name.as_str() };
        match &m.error {
            None => {
                let role = if m.is_leader { "leader" } else { "follower" };
                let (version, term, db) = (m.version.as_deref().unwrap_or("?"), m.raft_term.unwrap_or(0), m.db_size.unwrap_or(0));
                o += &format!("  {name}  {}  ok  v{version}  {role}  raft term {term}  db {}\n", m.endpoint, size(db));
            }
            Some(e) => o += &format!("  {name}  {}  DOWN  {e}\n", m.endpoint),
        }
    }
    o
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / f64::from(1 << 10)),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert_eq!(parse(None), Ok(None));
        assert_eq!(parse(Some("sled")), Ok(None));
        let u = parse(Some("etcd://10.0.0.1:2379,e2.internal:2379")).unwrap().unwrap();
        assert_eq!(u.endpoints, ["http://10.0.0.1:2379", "http://e2.internal:2379"]);
        assert_eq!(u.prefix, "phoenix/");
        assert_eq!(parse(Some("etcd://127.0.0.1:2379/dr/")).unwrap().unwrap().prefix, "dr/");
        assert!(parse(Some("etcds://127.0.0.1:2379")).unwrap().unwrap().tls.is_some());
        for bad in ["etcd://", "etcd://e1", "etcd://e1:x", "etcd://e1:2379,", "http://e1:2379", "etcd://u@e1:2379", "etcd://e1:0"] {
            assert!(parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
