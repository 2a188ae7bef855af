//! A real etcd cluster on loopback ports, for tests (Debian's `etcd-server`, `/usr/bin/etcd`).
//!
//! Each member has its own data directory under one scratch directory and its own peer and
//! client ports on 127.0.0.1, picked free, below the kernel's ephemeral range (where outgoing
//! connections take their ports) and never twice in this process; a start that loses a port
//! to another process starts again on new ones. Dropping the cluster kills every member and
//! removes the directory.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a member may take to answer before a start or restart gives up. A guard against a
/// hang, not a measure: a loaded machine may be slow.
const WAIT: Duration = Duration::from_secs(120);

/// A running etcd cluster, killed and removed on drop.
pub struct EtcdCluster {
    dir: PathBuf,
    members: Vec<Node>,
    /// Clients speak TLS and must present a certificate (`start_tls`).
    tls: bool,
}

struct Node {
    name: String,
    client: u16,
    peer: u16,
    /// A plain HTTP port for `/health` (etcd's `--listen-metrics-urls`), for a TLS cluster.
    metrics: u16,
    child: Option<Child>,
}

static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A loopback port nobody listens on now, never handed out before by this process.
fn free_port() -> u16 {
    let mut taken = TAKEN.lock().unwrap_or_else(|p| p.into_inner());
    let taken = taken.get_or_insert_with(HashSet::new);
    loop {
        // Below Linux's default ephemeral range (32768-60999).
        let port = rand::random_range(20_000..32_000u16);
        if !taken.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            taken.insert(port);
            return port;
        }
    }
}

impl EtcdCluster {
    /// Starts `members` members and waits until every one says it is healthy.
    pub fn start(members: usize) -> EtcdCluster {
        EtcdCluster::start_with(members, false)
    }

    /// Starts `members` members whose clients must speak TLS with a client certificate, all
    /// signed by a CA made for the cluster ([`EtcdCluster::tls_file`]); `/health` stays plain
    /// on a metrics port, for the harness.
    pub fn start_tls(members: usize) -> EtcdCluster {
        EtcdCluster::start_with(members, true)
    }

    fn start_with(members: usize, tls: bool) -> EtcdCluster {
        assert!(members > 0, "a cluster has at least one member");
        let mut last = String::new();
        for round in 0..5 {
            let dir = std::env::temp_dir().join(format!("phoenix-etcd-{}-{}", std::process::id(), rand::random::<u64>()));
            std::fs::create_dir_all(&dir).expect("a scratch directory for etcd");
            let nodes = (0..members)
                .map(|i| Node { name: format!("m{i}"), client: free_port(), peer: free_port(), metrics: free_port(), child: None })
                .collect();
            if tls {
                make_certificates(&dir);
            }
            let mut cluster = EtcdCluster { dir, members: nodes, tls };
            let token = format!("phoenix-test-{round}-{}", rand::random::<u64>());
            for i in 0..members {
                cluster.spawn(i, &token);
            }
            match cluster.wait_until(|c, i| c.healthy(i)) {
                Ok(()) => return cluster,
                // A port taken by another process between picking and binding: new ports.
                Err(e) => last = e,
            }
        }
        panic!("etcd did not start (5 tries): {last}");
    }

    fn initial_cluster(&self) -> String {
        self.members.iter().map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer)).collect::<Vec<_>>().join(",")
    }

    fn spawn(&mut self, i: usize, token: &str) {
        let initial = self.initial_cluster();
        let data = self.dir.join(&self.members[i].name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{}.log", self.members[i].name)))
            .expect("etcd's log file");
        let m = &mut self.members[i];
        let scheme = if self.tls { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{}", m.client);
        let peer = format!("http://127.0.0.1:{}", m.peer);
        let mut cmd = Command::new("etcd");
        if self.tls {
            let f = |name: &str| self.dir.join(name);
            cmd.arg("--cert-file").arg(f("server.pem")).arg("--key-file").arg(f("server.key"));
            cmd.arg("--trusted-ca-file").arg(f("ca.pem")).arg("--client-cert-auth");
            cmd.args(["--listen-metrics-urls", &format!("http://127.0.0.1:{}", m.metrics)]);
        }
        let child = cmd
            .args(["--name", &m.name, "--data-dir"])
            .arg(&data)
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial, "--initial-cluster-state", "new", "--initial-cluster-token", token])
            .args(["--heartbeat-interval", "50", "--election-timeout", "500", "--auto-compaction-retention", "1h"])
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("etcd's log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start etcd (install etcd-server: scripts/install-deps.sh): {e}"));
        m.child = Some(child);
    }

    /// Polls `ready` for every running member until all hold; an error if one exits first.
    fn wait_until(&mut self, ready: impl Fn(&EtcdCluster, usize) -> bool) -> Result<(), String> {
        let start = Instant::now();
        let mut pending: Vec<usize> = (0..self.members.len()).filter(|i| self.members[*i].child.is_some()).collect();
        while !pending.is_empty() {
            for i in &pending {
                if let Some(Ok(Some(status))) = self.members[*i].child.as_mut().map(Child::try_wait) {
                    let log = std::fs::read_to_string(self.dir.join(format!("{}.log", self.members[*i].name))).unwrap_or_default();
                    self.stop_all();
                    return Err(format!("member {i} exited ({status}): {}", tail(&log)));
                }
            }
            pending.retain(|i| !ready(self, *i));
            if start.elapsed() > WAIT {
                self.stop_all();
                return Err(format!("members {pending:?} did not answer within {WAIT:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// The plain port the harness asks `/health` on.
    fn plain(&self, i: usize) -> u16 {
        if self.tls { self.members[i].metrics } else { self.members[i].client }
    }

    fn healthy(&self, i: usize) -> bool {
        http_get(self.plain(i), "/health").is_some_and(|body| body.contains("\"health\":\"true\""))
    }

    fn answers(&self, i: usize) -> bool {
        let path = if self.tls { "/metrics" } else { "/version" };
        http_get(self.plain(i), path).is_some()
    }

    fn stop_all(&mut self) {
        for i in 0..self.members.len() {
            // A paused member is killed too (SIGKILL needs no SIGCONT).
            self.kill(i);
        }
    }

    /// Every member's client URL (`http://127.0.0.1:PORT`, `https://` for a TLS cluster).
    pub fn endpoints(&self) -> Vec<String> {
        let scheme = if self.tls { "https" } else { "http" };
        self.members.iter().map(|m| format!("{scheme}://127.0.0.1:{}", m.client)).collect()
    }

    /// The store URL on this cluster: `etcd://127.0.0.1:A,127.0.0.1:B/prefix`; for a TLS
    /// cluster `etcds://…/prefix?ca=…&cert=…&key=…` with the client's files.
    pub fn url(&self, prefix: &str) -> String {
        let hosts = self.members.iter().map(|m| format!("127.0.0.1:{}", m.client)).collect::<Vec<_>>().join(",");
        let prefix = prefix.trim_start_matches('/');
        if self.tls {
            let f = |n: &str| self.tls_file(n).display().to_string();
            format!("etcds://{hosts}/{prefix}?ca={}&cert={}&key={}", f("ca.pem"), f("client.pem"), f("client.key"))
        } else {
            format!("etcd://{hosts}/{prefix}")
        }
    }

    /// A file of a TLS cluster's: `ca.pem`, `client.pem`, `client.key` (signed by the CA),
    /// `other-ca.pem` (a CA that signed nothing here).
    pub fn tls_file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Kills member `i` with SIGKILL (nothing if it is not running).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops member `i` with SIGSTOP: it holds its connections and answers nothing (a hung
    /// machine, or one cut off), until [`EtcdCluster::resume`].
    pub fn pause(&mut self, i: usize) {
        self.signal(i, nix::sys::signal::Signal::SIGSTOP);
    }

    /// Lets a paused member go on (SIGCONT).
    pub fn resume(&mut self, i: usize) {
        self.signal(i, nix::sys::signal::Signal::SIGCONT);
    }

    fn signal(&self, i: usize, signal: nix::sys::signal::Signal) {
        let child = self.members[i].child.as_ref().unwrap_or_else(|| panic!("etcd member {i} is not running"));
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, signal).unwrap_or_else(|e| panic!("{signal} to etcd member {i}: {e}"));
    }

    /// Starts member `i` again on its data directory and ports; returns once it answers
    /// (healthy only if a quorum is up).
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i, "existing");
        let (start, me) = (Instant::now(), i);
        while !self.answers(me) {
            if let Some(Ok(Some(status))) = self.members[me].child.as_mut().map(Child::try_wait) {
                let log = std::fs::read_to_string(self.dir.join(format!("{}.log", self.members[me].name))).unwrap_or_default();
                panic!("etcd member {me} exited at restart ({status}): {}", tail(&log));
            }
            assert!(start.elapsed() < WAIT, "etcd member {me} did not answer within {WAIT:?} of its restart");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every running member says it is healthy (a quorum is back).
    pub fn wait_healthy(&mut self) {
        self.wait_until(|c, i| c.healthy(i)).unwrap_or_else(|e| panic!("etcd did not become healthy: {e}"));
    }

    /// The scratch directory holding the members' data and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        self.stop_all();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, signed by it, and a
/// second CA that signed nothing, made with `openssl` in `dir`.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().unwrap_or_else(|e| panic!("cannot run openssl: {e}"));
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let key = |name: &str| openssl(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name]);
    for ca in ["ca", "other-ca"] {
        key(&format!("{ca}.key"));
        openssl(&[
            "req",
            "-x509",
            "-new",
            "-key",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN=phoenix test {ca}"),
        ]);
    }
    for (name, ext) in [
        ("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n"),
        ("client", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n"),
    ] {
        key(&format!("{name}.key"));
        openssl(&[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN=phoenix test {name}"),
        ]);
        std::fs::write(dir.join(format!("{name}.ext")), ext).expect("an extension file");
        openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ]);
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

/// The body of `GET path` on a loopback port, if it answered 200 within a second.
fn http_get(port: u16, path: &str) -> Option<String> {
    let timeout = Duration::from_secs(1);
    let mut s = TcpStream::connect_timeout(&(std::net::Ipv4Addr::LOCALHOST, port).into(), timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string()).or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_string()))
}
