//! `phoenix cluster status` against a real 3-member etcd on loopback ports: the leader key
//! and its fencing token, the nodes, each member's health; exit 1 without a leader and
//! without a quorum (two members killed), 2 for a URL that is not one, 0 for sled.

use std::process::{Command, Output};
use std::time::Duration;

use phoenix_engine::state::{Etcd, EtcdCluster, Txn, TxnOp};
use serde_json::{Value, json};

use crate::process::phoenix_bin;

fn status(args: &[&str], store: Option<&str>) -> Output {
    let mut cmd = Command::new(phoenix_bin());
    cmd.args(["cluster", "status"]).args(args).env_remove("PHOENIX_STORE");
    if let Some(s) = store {
        cmd.env("PHOENIX_STORE", s);
    }
    cmd.output().expect("phoenix runs")
}

fn said(o: &Output) -> (Option<i32>, String, String) {
    (o.status.code(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn put(etcd: &Etcd, key: &str, value: Value, lease: i64) {
    let op = TxnOp::Put { key: key.as_bytes().to_vec(), value: value.to_string().into_bytes(), lease };
    assert!(etcd.txn(&Txn { compare: vec![], success: vec![op], failure: vec![] }).unwrap().succeeded);
}

#[test]
fn cluster_status_shows_the_leader_its_token_the_nodes_and_etcd_and_fails_without_a_leader_or_a_quorum() {
    let mut cluster = EtcdCluster::start(3);
    let url = cluster.url("dr");
    let etcd = Etcd::connect(cluster.endpoints(), Duration::from_secs(5)).unwrap();
    for (node, port) in [("node-a", 18080), ("node-b", 18081)] {
        let info = json!({ "node": node, "url": format!("http://127.0.0.1:{port}"), "pid": 4242, "host": format!("host-{node}"), "started_at": "2026-12-06T06:00:00Z" });
        put(&etcd, &format!("dr/cluster/nodes/{node}"), info, 0);
    }

    // Nodes, but nobody leads.
    let (code, out, err) = said(&status(&["--store", &url], None));
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(out.contains("leader none") && out.contains("3 of 3 member(s) answer: quorum"), "{out}");
    assert!(err.contains("not healthy: no node leads"), "{err}");

    let lease = etcd.lease_grant(60).unwrap();
    put(&etcd, "dr/cluster/leader", json!({ "node": "node-a", "url": "http://127.0.0.1:18080", "lease": lease }), lease);
    let token = etcd.get(b"dr/cluster/leader").unwrap().expect("the leader key").create_revision;

    let (code, out, err) = said(&status(&["--store", &url], None));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains(&format!("leader node-a  http://127.0.0.1:18080  fencing token {token}  lease {lease:x} (")), "{out}");
    assert!(
        out.contains("nodes  2\n")
            && out.contains("  node-a  http://127.0.0.1:18080  pid 4242 on host-node-a  since 2026-12-06T06:00:00Z  (leader)"),
        "{out}"
    );
    assert!(out.contains("  node-b  http://127.0.0.1:18081  pid 4242 on host-node-b"), "{out}");
    assert_eq!(out.matches("  ok  v3.").count(), 3, "{out}");
    assert_eq!(out.matches("  leader  raft term").count(), 1, "one etcd leader: {out}");

    // JSON, with the URL from the environment.
    let (code, out, err) = said(&status(&["--json"], Some(&url)));
    assert_eq!(code, Some(0), "{err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!((v["healthy"].clone(), v["quorum"].clone(), v["prefix"].clone()), (json!(true), json!(true), json!("dr/")));
    assert_eq!(v["leader"]["node"], "node-a");
    assert_eq!(v["leader"]["token"], json!(token));
    assert!(v["leader"]["ttl"].as_i64().is_some_and(|t| t > 0 && t <= 60), "{v:#}");
    assert_eq!(v["nodes"].as_array().map(Vec::len), Some(2));
    assert!(
        v["members"].as_array().unwrap().iter().all(|m| m["error"].is_null() && m["version"].as_str().is_some_and(|s| s.starts_with("3."))),
        "{v:#}"
    );

    // Two of three members gone: no quorum, said on stderr, exit 1; the one left still answers.
    cluster.kill(0);
    cluster.kill(1);
    let (code, out, err) = said(&status(&["--store", &url], None));
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(err.contains("not healthy: etcd has no quorum: 1 of 3 member(s) answer, 2 needed"), "{err}");
    assert_eq!(out.matches("  DOWN  ").count(), 2, "{out}");
    assert!(out.contains("1 of 3 member(s) answer: NO QUORUM"), "{out}");
}

#[test]
fn with_sled_there_is_no_cluster_and_a_bad_url_is_exit_2() {
    let (code, out, _) = said(&status(&[], None));
    assert_eq!(code, Some(0));
    assert!(out.contains("the store is sled (embedded): no cluster"), "{out}");
    let (code, _, err) = said(&status(&["--store", "etcd://e1"], None));
    assert_eq!(code, Some(2));
    assert!(err.contains("the etcd member \"e1\" in \"etcd://e1\" has no port"), "{err}");
    let (code, _, err) = said(&status(&[], Some("consul://x:1")));
    assert_eq!(code, Some(2), "{err}");
}
