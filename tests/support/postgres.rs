//! Real PostgreSQL 15 for tests: a primary and, on request, a streaming standby made with
//! `pg_basebackup -R`, each on a free loopback port, in a temporary directory owned by the
//! `postgres` user (PostgreSQL refuses to run as root), with their sockets in it. Every test
//! gets its own clusters, so tests run in parallel; Drop stops and removes them.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// Where Debian's `postgresql-15` puts its programs.
const BIN: &str = "/usr/lib/postgresql/15/bin";

fn bin(name: &str) -> PathBuf {
    let path = Path::new(BIN).join(name);
    assert!(
        path.exists(),
        "PostgreSQL 15 is not installed ({} is missing); `make test` installs it (scripts/install-deps.sh), \
         or run `apt-get install postgresql-15`",
        path.display()
    );
    path
}

/// Runs a PostgreSQL program as the `postgres` user; panics with its output if it fails.
fn as_postgres(program: &str, args: &[&str]) -> Output {
    Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(bin(program))
        .args(args)
        .current_dir("/")
        .output()
        .unwrap_or_else(|e| panic!("runuser {program}: {e}"))
}

fn check(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A port nobody listens on right now (another process may take it; starts retry).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a free loopback port").local_addr().unwrap().port()
}

/// One running server.
struct Server {
    data: PathBuf,
    port: u16,
    log: PathBuf,
}

/// A primary and maybe a standby, removed on Drop.
pub(crate) struct Postgres {
    dir: TempDir,
    primary: Server,
    standby: Option<Server>,
}

impl Postgres {
    /// A primary only.
    pub(crate) fn primary() -> Postgres {
        let dir = tempfile::Builder::new().prefix("phoenix-pg-").tempdir().expect("a temporary directory");
        let chown = Command::new("chown").args(["postgres:postgres"]).arg(dir.path()).status().expect("chown runs");
        assert!(chown.success(), "chown the cluster directory to postgres");
        let data = dir.path().join("primary");
        let out = as_postgres("initdb", &["-D", path(&data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"]);
        check("initdb", &out);
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nwal_level = replica\nmax_wal_senders = 5\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nshared_buffers = 16MB\nmax_connections = 30\n\
             log_min_messages = warning\n",
            dir.path().display()
        );
        append(&data.join("postgresql.conf"), &conf);
        append(&data.join("pg_hba.conf"), "host replication all 127.0.0.1/32 trust\n");
        let primary = start(&data, dir.path().join("primary.log"));
        Postgres { dir, primary, standby: None }
    }

    /// A primary and a streaming standby that has replayed a first write.
    pub(crate) fn with_standby() -> Postgres {
        let mut pg = Postgres::primary();
        let data = pg.dir.path().join("standby");
        let port = pg.primary.port.to_string();
        let out = as_postgres(
            "pg_basebackup",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-D", path(&data), "-R", "-X", "stream", "-c", "fast", "--no-sync"],
        );
        check("pg_basebackup", &out);
        pg.standby = Some(start(&data, pg.dir.path().join("standby.log")));
        // Something replayed, so that pg_last_xact_replay_timestamp() is set.
        pg.sql("CREATE TABLE phoenix_fixture (id serial PRIMARY KEY, at timestamptz DEFAULT now())");
        pg.wait_replayed();
        pg
    }

    /// The primary's DSN (TCP, user postgres, trust: any password is accepted).
    pub(crate) fn dsn(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.primary.port)
    }

    /// The standby's DSN.
    pub(crate) fn standby_dsn(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.standby().port)
    }

    /// The primary's port.
    pub(crate) fn port(&self) -> u16 {
        self.primary.port
    }

    fn standby(&self) -> &Server {
        self.standby.as_ref().expect("this cluster has no standby: use Postgres::with_standby()")
    }

    /// Runs SQL on the primary through psql; its output, unaligned, one row per line.
    pub(crate) fn sql(&self, query: &str) -> String {
        psql(self.dir.path(), self.primary.port, query)
    }

    /// Runs SQL on the standby.
    pub(crate) fn standby_sql(&self, query: &str) -> String {
        psql(self.dir.path(), self.standby().port, query)
    }

    /// Stops replay on the standby (WAL is still received).
    pub(crate) fn pause_replay(&self) {
        self.standby_sql("SELECT pg_wal_replay_pause()");
        wait("replay to pause", || self.standby_sql("SELECT pg_get_wal_replay_pause_state()") == "paused");
    }

    /// Resumes replay on the standby.
    pub(crate) fn resume_replay(&self) {
        self.standby_sql("SELECT pg_wal_replay_resume()");
    }

    /// Waits until the standby has replayed everything the primary has written so far.
    pub(crate) fn wait_replayed(&self) {
        let target = self.sql("SELECT pg_current_wal_lsn()");
        let query = format!("SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn");
        wait(&format!("the standby to replay up to {target}"), || self.standby_sql(&query) == "t");
    }

    /// A superuser that must give its password over TCP (scram-sha-256 from 127.0.0.1, a
    /// rule placed before the fixture's `trust` ones); its DSN, password included.
    pub(crate) fn password_role(&self, role: &str, password: &str) -> String {
        self.sql(&format!("SET password_encryption = 'scram-sha-256'; CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{password}'"));
        let hba = self.primary.data.join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba).unwrap_or_else(|e| panic!("{}: {e}", hba.display()));
        // Rewritten in place: the file keeps its owner (postgres).
        std::fs::write(&hba, format!("host all {role} 127.0.0.1/32 scram-sha-256\n{rules}")).expect("write pg_hba.conf");
        self.sql("SELECT pg_reload_conf()");
        wait(&format!("{role} to need its password"), || {
            let out = Command::new(bin("psql"))
                .args(["-X", "-w", "-h", "127.0.0.1", "-p", &self.primary.port.to_string(), "-U", role, "-d", "postgres", "-c", "SELECT 1"])
                .env_remove("PGPASSWORD")
                .output()
                .expect("psql runs");
            !out.status.success()
        });
        format!("postgresql://{role}:{password}@127.0.0.1:{}/postgres", self.primary.port)
    }

    /// Holds an ACCESS EXCLUSIVE lock on `table` (the primary's) in an open transaction until
    /// the returned guard is dropped, so that anything reading it waits; returns once granted.
    pub(crate) fn hold_lock(&self, table: &str) -> Held {
        use std::io::Write;
        let mut child = Command::new(bin("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "postgres", "-h"])
            .arg(self.dir.path())
            .args(["-p", &self.primary.port.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("psql runs");
        let mut stdin = child.stdin.take().expect("piped stdin");
        writeln!(stdin, "BEGIN;\nLOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;").expect("write to psql");
        let held =
            format!("SELECT count(*) FROM pg_locks WHERE relation = '{table}'::regclass AND mode = 'AccessExclusiveLock' AND granted");
        wait(&format!("the lock on {table}"), || self.sql(&held) == "1");
        Held { child, _stdin: stdin }
    }

    /// Waits until the standby has received everything the primary has written so far.
    pub(crate) fn wait_received(&self) {
        let target = self.sql("SELECT pg_current_wal_lsn()");
        let query = format!("SELECT pg_last_wal_receive_lsn() >= '{target}'::pg_lsn");
        wait(&format!("the standby to receive up to {target}"), || self.standby_sql(&query) == "t");
    }
}

/// A transaction holding a lock, in a psql session that ends on Drop.
pub(crate) struct Held {
    child: std::process::Child,
    _stdin: std::process::ChildStdin,
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        for server in self.standby.iter().chain([&self.primary]) {
            let _ = as_postgres("pg_ctl", &["-D", path(&server.data), "-m", "immediate", "-w", "stop"]);
        }
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

fn append(file: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    f.write_all(text.as_bytes()).expect("append to a PostgreSQL config file");
}

/// Starts a server on a free port; a port taken in between (tests run in parallel) is
/// retried with another.
fn start(data: &Path, log: PathBuf) -> Server {
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        append(&data.join("postgresql.conf"), &format!("port = {port}\n"));
        let out = as_postgres("pg_ctl", &["-D", path(data), "-l", path(&log), "-w", "-t", "60", "start"]);
        if out.status.success() {
            return Server { data: data.to_path_buf(), port, log };
        }
        last = format!("{}\n{}", String::from_utf8_lossy(&out.stderr), std::fs::read_to_string(&log).unwrap_or_default());
        if !last.contains("could not bind") && !last.contains("already in use") {
            break;
        }
    }
    panic!("PostgreSQL did not start in {}:\n{last}", data.display());
}

fn psql(socket_dir: &Path, port: u16, query: &str) -> String {
    let out = Command::new(bin("psql"))
        .args(["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", "postgres", "-h"])
        .arg(socket_dir)
        .args(["-p", &port.to_string(), "-c", query])
        .output()
        .expect("psql runs");
    check(&format!("psql -c {query:?}"), &out);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Polls `cond` every 50 ms (a guard of 60 s against a hang, not a speed check).
pub(crate) fn wait(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(60), "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
