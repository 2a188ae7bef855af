//! A cluster's store over TLS (`etcds://…?ca=…&cert=…&key=…`): members that demand a client
//! certificate, a run stored there, `phoenix cluster status`, and a `serve` node leading on
//! it; a URL whose TLS part cannot be right is refused before anything runs.

use phoenix_engine::state::EtcdCluster;

use crate::process;
use crate::support::Test;

const TWO: &str = "version: 1\nname: two\nsteps:\n  a: { uses: exec, with: { script: \"echo a >> ledger\" } }\n  b: { needs: [a], uses: exec, with: { script: \"echo b >> ledger\" } }\n";

#[test]
fn a_run_and_the_cluster_live_on_etcd_over_tls() {
    let etcd = EtcdCluster::start_tls(1);
    let url = etcd.url("tls/");
    let out = Test::new().file("r.yaml", TWO).args(["--store", &url, "run", "r.yaml"]).run().success();
    assert_eq!(process::lines(&out.path().join("ledger")), ["a", "b"]);
    let runs = process::json(&out.state_dir(), &["--store", &url, "runs"]);
    assert_eq!(runs["runs"][0]["status"], "succeeded", "{runs:#}");
    out.then().args(["--store", &url, "cluster", "status"]).run().stdout_contains("etcd");

    // Without the client certificate the members refuse, and the operator is told it is TLS.
    let ca = etcd.tls_file("ca.pem").display().to_string();
    let hosts = url.split('/').nth(2).unwrap();
    Test::new()
        .file("r.yaml", TWO)
        .args(["--store", &format!("etcds://{hosts}/tls/?ca={ca}"), "run", "r.yaml"])
        .run()
        .code(1)
        .stderr_contains("TLS: ");
}

#[test]
fn a_tls_store_url_that_cannot_be_right_is_refused_before_anything_runs() {
    for (url, says) in [
        ("etcds://127.0.0.1:2379?cert=/c.pem", "give both cert= and key="),
        ("etcd://127.0.0.1:2379?ca=/ca.pem", "write etcds://"),
        ("etcds://127.0.0.1:2379?cacert=/ca.pem", "the settings are ca, cert and key"),
    ] {
        let out = Test::new().file("r.yaml", TWO).args(["--store", url, "run", "r.yaml"]).run().code(2).stderr_contains(says);
        assert!(!out.path().join("ledger").exists());
    }
}

/// Two serve nodes on a TLS store: one leads, a run started on it goes through, and when the
/// leader is killed the other takes over (the election and its lease speak TLS too).
#[test]
fn serve_nodes_elect_and_take_over_on_a_tls_store() {
    let mut c = crate::cluster_support::Cluster::start_on(EtcdCluster::start_tls(1), 2, &[("two.yaml", TWO)]);
    let leader = c.leader();
    let id = c.start_run(leader, "two");
    c.wait_status(&id, "succeeded");
    c.kill(leader);
    let other = 1 - leader;
    crate::process::wait_for("the other node to lead", std::time::Duration::from_secs(60), || c.leader_now() == Some(other));
}
