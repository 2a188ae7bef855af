//! Finding and opening the state directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use phoenix_engine::exec::identity::Peer;
use phoenix_engine::state::{EtcdKv, EtcdUrl};
use phoenix_engine::state::{OpenError, Store, open_sled};

/// `--state`, else `$PHOENIX_STATE` (clap reads it), else `$XDG_STATE_HOME/phoenix`, else
/// `~/.local/state/phoenix`.
pub(crate) fn dir(given: &Option<PathBuf>) -> PathBuf {
    if let Some(d) = given {
        // Absolute: `phoenix resume` may change directory to where the run worked.
        return std::path::absolute(d).unwrap_or_else(|_| d.clone());
    }
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("phoenix");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/state/phoenix")
}

/// Which backend `open` uses: `None` for sled in the state directory, else an etcd URL.
static STORE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
/// Whether a store was named (`--store`, `PHOENIX_STORE`, serve.yaml): then a state
/// directory's mark does not override it.
static CHOSEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// The etcd backend once opened (one client per process, shared by the store and the
/// cluster's election).
static ETCD: std::sync::OnceLock<Arc<EtcdKv>> = std::sync::OnceLock::new();

/// Sets the backend from `--store` / `PHOENIX_STORE` (or serve.yaml's `store:`): `sled`, or
/// `etcd://…`. A URL that cannot be right is refused before anything is opened.
pub(crate) fn choose_store(url: Option<&str>) -> Result<(), String> {
    let chosen = match url.map(str::trim) {
        None | Some("") | Some("sled") => None,
        Some(u) if EtcdUrl::is_etcd(u) => {
            EtcdUrl::parse(u).map_err(|e| format!("--store: {e}"))?;
            Some(u.to_string())
        }
        Some(u) => {
            return Err(format!(
                "--store `{u}` is not a store: use `sled` (the default, in the state directory), etcd://HOST:PORT[,HOST:PORT…][/PREFIX], or etcds://… over TLS"
            ));
        }
    };
    if url.is_some() {
        CHOSEN.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    *STORE.lock().expect("poisoned") = chosen;
    Ok(())
}

/// The file in a state directory that names its etcd store (written by `phoenix serve`).
const STORE_MARK: &str = "store";

/// The store a state directory's mark names.
fn marked_store(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join(STORE_MARK)).ok().map(|s| s.trim().to_string()).filter(|s| EtcdUrl::is_etcd(s))
}

/// Names the etcd store in the state directory, so that `phoenix status --state DIR` on a
/// cluster node's machine reads the cluster's runs.
pub(crate) fn mark_store(dir: &Path, url: &str) {
    if let Err(e) = std::fs::write(dir.join(STORE_MARK), format!("{url}\n")) {
        eprintln!("warning: cannot write {}: {e}; give --store {url} to commands on this machine", dir.join(STORE_MARK).display());
    }
}

/// Whether `--store` or `PHOENIX_STORE` named a store (they win over serve.yaml's).
pub(crate) fn store_named() -> bool {
    CHOSEN.load(std::sync::atomic::Ordering::SeqCst)
}

/// The etcd URL in use, if the store is etcd.
pub(crate) fn etcd_url() -> Option<String> {
    STORE.lock().expect("poisoned").clone()
}

/// The etcd backend, if the store is etcd and was opened by this process.
pub(crate) fn etcd() -> Option<Arc<EtcdKv>> {
    ETCD.get().cloned()
}

fn open_etcd(url: &str) -> Result<Access, String> {
    let kv = match ETCD.get() {
        Some(kv) => kv.clone(),
        None => {
            let kv = Arc::new(EtcdKv::open(url)?);
            ETCD.get_or_init(|| kv).clone()
        }
    };
    Store::new(kv).map(Access::Direct).map_err(|e| e.to_string())
}

/// How the store can be reached.
pub(crate) enum Access {
    /// This process opened it.
    Direct(Store),
    /// Another process owns it and answers on the socket.
    Owner,
}

/// Opens the store, or finds the process that owns it. The directory is made private first
/// (see [`private`]), and the store's files once sled and the log have created theirs.
pub(crate) fn open(dir: &Path) -> Result<Access, String> {
    private(dir)?;
    // A state directory a cluster node uses names its store: a command given that directory
    // (without --store) reads the cluster's runs, not an empty store of its own.
    if !CHOSEN.load(std::sync::atomic::Ordering::SeqCst) {
        if let Some(url) = marked_store(dir) {
            choose_store(Some(&url)).map_err(|e| format!("{}: {e}", dir.join(STORE_MARK).display()))?;
        }
    }
    // Shared by every node: no process owns it, and conditional commits keep them apart.
    if let Some(url) = etcd_url() {
        return open_etcd(&url);
    }
    // A process holds the store without answering on its socket only for a moment: a
    // `status` or `runs` reading it, or a `run` between opening it and serving the socket.
    // Either way, wait for it rather than fail (an operator typing `phoenix status` while a
    // colleague starts the failover must not make either fail).
    let since = std::time::Instant::now();
    loop {
        match open_sled(dir) {
            Err(OpenError::Locked) if phoenix_engine::exec::control::owner_alive(dir) => return Ok(Access::Owner),
            Err(OpenError::Locked) if since.elapsed() < LOCKED_WAIT => std::thread::sleep(std::time::Duration::from_millis(25)),
            other => return opened(dir, other),
        }
    }
}

/// How long an open waits for a process that holds the store without answering on its
/// socket (a reader, or an owner starting up) before saying so.
const LOCKED_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

fn opened(dir: &Path, result: Result<phoenix_engine::state::SledKv, OpenError>) -> Result<Access, String> {
    match result {
        Ok(kv) => {
            tighten_files(dir);
            Store::new(Arc::new(kv)).map(Access::Direct).map_err(|e| e.to_string())
        }
        Err(OpenError::Locked) => Err(format!(
            "the state store in {} is locked by another process that does not answer: it has held it for {} s; wait for it, or stop it",
            dir.display(),
            LOCKED_WAIT.as_secs()
        )),
        Err(e) => {
            let e = e.to_string();
            if e.contains("No space left on device") {
                // sled writes even to open a store for reading.
                return Err(format!(
                    "{e}\n  the filesystem that holds {} is full: free space on it (`df -h {}`), then run this again; nothing was changed",
                    dir.display(),
                    dir.display()
                ));
            }
            Err(e)
        }
    }
}

/// The state directory holds step outputs, logs, alert payloads and LLM replies: it is
/// created 0700 (missing parents too, as `mkdir -p -m 700`), and an existing one open to
/// others is tightened, with a note. The control socket is bound inside it, so no other
/// user can reach the socket between its bind and its chmod.
fn private(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    if !dir.exists() {
        // 0700, and each new level's name synced into its parent.
        phoenix_engine::state::create_durable(dir).map_err(|e| format!("cannot create the state directory {}: {e}", dir.display()))?;
    }
    let mode = std::fs::metadata(dir).map_err(|e| format!("cannot read the state directory {}: {e}", dir.display()))?.permissions().mode();
    if mode & 0o077 != 0 {
        match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
            Ok(()) => eprintln!(
                "note: the state directory {} was open to other users (mode {:o}); it is now 0700, as it holds outputs, logs and approvals",
                dir.display(),
                mode & 0o777
            ),
            Err(e) => eprintln!(
                "warning: the state directory {} is open to other users (mode {:o}) and could not be made 0700 ({e}); `chmod 700 {}`",
                dir.display(),
                mode & 0o777,
                dir.display()
            ),
        }
    }
    Ok(())
}

/// The store's own files (`wal`, `db/…`; not the steps' `work/`) made 0600 and its
/// directories 0700, whatever umask created them. sled creates some later (a large value's
/// blob file): those stay as the umask made them, inside the private directory.
fn tighten_files(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fn walk(path: &Path, top: bool) {
        let Ok(meta) = std::fs::symlink_metadata(path) else { return };
        let (want, is_dir) = if meta.is_dir() { (0o700, true) } else { (0o600, false) };
        if !meta.file_type().is_symlink() && !top && meta.permissions().mode() & 0o077 != 0 {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.permissions().mode() & want));
        }
        if is_dir {
            for e in std::fs::read_dir(path).into_iter().flatten().flatten() {
                if !(top && e.file_name() == "work") {
                    walk(&e.path(), false);
                }
            }
        }
    }
    walk(dir, true);
}

/// Who is operating: `--as NAME`, else this process's user (its uid's name, not `$USER`,
/// which anyone can set).
pub(crate) fn operator(given: Option<String>) -> String {
    given.unwrap_or_else(|| Peer::me().name)
}

/// The name this process may record as its operator: its user's own, or any for root
/// (`Peer::acts_as`). Over the socket the owner of the store decides instead.
pub(crate) fn claim(given: Option<String>) -> Result<String, String> {
    Peer::me().acts_as(given.as_deref(), &[])
}
