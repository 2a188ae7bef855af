//! A Phoenix cluster for tests: a real 3-member etcd (Debian's `etcd-server`) on loopback
//! ports and real `phoenix serve` nodes on it, each in its own directory, and a ledger file
//! the runbooks' steps append to, which proves what ran, how often and under which token.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use phoenix_engine::state::EtcdCluster;
use serde_json::Value;
use tempfile::TempDir;

use crate::process::{signal, wait_for};
use crate::serve_support::{ONCALL, Server, TOKENS};

/// The lease in these tests: short, so that ten takeovers take a minute (the default is
/// 10 s), and long enough that a loaded machine (the whole suite at once) does not make a
/// leader miss its keepalives: a keepalive is sent every TTL/3, and one request may take up to
/// the client's 3 s timeout before it tries the next member.
pub(crate) const TTL: u64 = 6;

/// An etcd cluster, its nodes, and the files they share.
pub(crate) struct Cluster {
    pub(crate) etcd: EtcdCluster,
    pub(crate) url: String,
    pub(crate) dir: TempDir,
    pub(crate) nodes: Vec<Option<Server>>,
    /// A node stopped with SIGSTOP: not asked anything until it continues.
    paused: std::cell::Cell<Option<usize>>,
}

impl Cluster {
    /// etcd with 3 members, and `n` serve nodes named n0…, each with `runbooks` (file name,
    /// text) in its `runbooks/`. `{{LEDGER}}` in a runbook becomes the ledger's path.
    pub(crate) fn start(n: usize, runbooks: &[(&str, &str)]) -> Cluster {
        Cluster::start_on(EtcdCluster::start(3), n, runbooks)
    }

    /// The same on a given etcd cluster (one over TLS, say).
    pub(crate) fn start_on(etcd: EtcdCluster, n: usize, runbooks: &[(&str, &str)]) -> Cluster {
        let dir = tempfile::Builder::new().prefix("phoenix-cluster-").tempdir().expect("a temporary directory");
        let url = etcd.url("phoenix-test/");
        let mut c = Cluster { etcd, url, dir, nodes: Vec::new(), paused: std::cell::Cell::new(None) };
        for i in 0..n {
            let d = c.node_dir(i);
            std::fs::create_dir_all(d.join("runbooks")).unwrap();
            std::fs::write(d.join("serve.yaml"), format!("{TOKENS}ha:\n  lease_ttl: {TTL}s\n")).unwrap();
            for (name, text) in runbooks {
                std::fs::write(d.join("runbooks").join(name), text.replace("{{LEDGER}}", &c.ledger_path().display().to_string())).unwrap();
            }
            c.nodes.push(None);
            c.up(i);
        }
        c
    }

    pub(crate) fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("n{i}"))
    }

    pub(crate) fn ledger_path(&self) -> PathBuf {
        self.dir.path().join("ledger")
    }

    /// The ledger's lines.
    pub(crate) fn ledger(&self) -> Vec<String> {
        std::fs::read_to_string(self.ledger_path()).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// How many ledger lines start with `prefix`.
    pub(crate) fn count(&self, prefix: &str) -> usize {
        self.ledger().iter().filter(|l| l.starts_with(prefix)).count()
    }

    /// Starts node `i` (again).
    pub(crate) fn up(&mut self, i: usize) {
        let node = format!("n{i}");
        let s = Server::start_with(&self.node_dir(i), &["--store", &self.url, "--node", &node]);
        self.nodes[i] = Some(s);
    }

    pub(crate) fn node(&self, i: usize) -> &Server {
        self.nodes[i].as_ref().expect("node is up")
    }

    /// The index of the node that leads, once one does and every live node knows it (a
    /// follower that has not yet seen the leader answers writes with 503 and Retry-After).
    pub(crate) fn leader(&self) -> usize {
        let mut found = None;
        wait_for("a node to lead, known to all", Duration::from_secs(60), || {
            found = self.leader_now();
            found.is_some_and(|l| {
                let name = format!("n{l}");
                (0..self.nodes.len()).filter(|&i| self.nodes[i].is_some()).all(|i| self.view(i)["current"]["node"] == name.as_str())
            })
        });
        found.unwrap()
    }

    /// The index of the node that says it leads now, if exactly one does.
    pub(crate) fn leader_now(&self) -> Option<usize> {
        self.leader_among(&(0..self.nodes.len()).collect::<Vec<_>>())
    }

    /// The node other than `paused` that leads, once one does (a paused process would not
    /// answer the question).
    pub(crate) fn leader_except(&self, paused: usize) -> usize {
        let others: Vec<usize> = (0..self.nodes.len()).filter(|&i| i != paused).collect();
        let mut found = None;
        wait_for("another node to lead", Duration::from_secs(60), || {
            found = self.leader_among(&others);
            found.is_some()
        });
        found.unwrap()
    }

    fn leader_among(&self, nodes: &[usize]) -> Option<usize> {
        let leaders: Vec<usize> = nodes
            .iter()
            .copied()
            .filter(|&i| self.nodes[i].as_ref().is_some_and(|s| s.call("GET", "/api/v1/cluster", Some(ONCALL), None).1["leader"] == true))
            .collect();
        (leaders.len() == 1).then(|| leaders[0])
    }

    /// What node `i` says of the cluster.
    pub(crate) fn view(&self, i: usize) -> Value {
        self.node(i).call("GET", "/api/v1/cluster", Some(ONCALL), None).1
    }

    /// Starts a run of `runbook` through node `i`; its id.
    pub(crate) fn start_run(&self, i: usize, runbook: &str) -> String {
        let (status, v) = self.node(i).call("POST", "/api/v1/runs", Some(ONCALL), Some(&format!("{{\"runbook\": \"{runbook}\"}}")));
        assert!(status == 202, "start {runbook} through n{i}: {status} {v}");
        v["id"].as_str().expect("a run id").to_string()
    }

    /// SIGKILLs node `i`'s phoenix process alone (its steps' processes live on, as a machine
    /// that lost only its phoenix would leave them).
    pub(crate) fn kill(&mut self, i: usize) {
        let mut s = self.nodes[i].take().expect("node is up");
        s.bg.take().expect("running").kill_alone();
    }

    pub(crate) fn pid(&self, i: usize) -> u32 {
        self.node(i).bg.as_ref().expect("running").pid()
    }

    /// SIGSTOP: a GC pause, or a partition, as the node sees it.
    pub(crate) fn pause(&self, i: usize) {
        self.paused.set(Some(i));
        signal("STOP", &[self.pid(i)]);
    }

    /// SIGCONT.
    pub(crate) fn unpause(&self, i: usize) {
        signal("CONT", &[self.pid(i)]);
        self.paused.set(None);
    }

    pub(crate) fn stdout(&self, i: usize) -> String {
        self.node(i).bg.as_ref().expect("running").stdout_so_far()
    }

    pub(crate) fn stderr(&self, i: usize) -> String {
        self.node(i).bg.as_ref().expect("running").stderr_so_far()
    }

    /// A run's JSON as any live node serves it (not a paused one).
    pub(crate) fn run(&self, id: &str) -> Value {
        let i = (0..self.nodes.len()).find(|&i| self.nodes[i].is_some() && Some(i) != self.paused.get()).expect("a node is up");
        self.node(i).run(id)
    }

    /// Waits until the run is `want` (as read through any live node); on a hang, says what
    /// every node and the run looked like.
    pub(crate) fn wait_status(&self, id: &str, want: &str) -> Value {
        let start = std::time::Instant::now();
        while self.run(id)["status"] != want {
            if start.elapsed() > Duration::from_secs(90) {
                panic!("gave up waiting for run {id} to be {want} after 90s\n{}", self.dump(id));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.run(id)
    }

    /// What the run, its events, the ledger and every node say: for a failure's message.
    pub(crate) fn dump(&self, id: &str) -> String {
        let mut out = format!("run: {}\nledger: {:?}\n", self.run(id), self.ledger());
        if let Some(i) = (0..self.nodes.len()).find(|&i| self.nodes[i].is_some() && Some(i) != self.paused.get()) {
            out.push_str(&format!("logs: {}\n", self.node(i).call("GET", &format!("/api/v1/runs/{id}/logs"), Some(ONCALL), None).1));
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_some() {
                out.push_str(&format!("--- n{i} stdout:\n{}\n--- n{i} stderr:\n{}\n", self.stdout(i), self.stderr(i)));
            }
        }
        out
    }

    /// The ledger's `go` marker, which the test runbooks' `b` waits for.
    pub(crate) fn go(&self) -> PathBuf {
        self.ledger_path().with_extension("go")
    }

    /// A round's start: `b` will wait again; a run of `runbook` through the leader, once its
    /// `b` has started. The leader and the run.
    pub(crate) fn run_to_b(&self, runbook: &str) -> (usize, String) {
        let _ = std::fs::remove_file(self.go());
        let leader = self.leader();
        let id = self.start_run(leader, runbook);
        self.wait_ledger(&format!("b-start {id}"), 1);
        (leader, id)
    }

    /// Waits until the ledger has a line starting with `prefix`.
    pub(crate) fn wait_ledger(&self, prefix: &str, n: usize) {
        wait_for(&format!("{n} ledger line(s) `{prefix}…`"), Duration::from_secs(90), || self.count(prefix) >= n);
    }
}

/// Writes a file (a marker a step waits for).
pub(crate) fn touch(path: &Path) {
    std::fs::write(path, b"").unwrap();
}
