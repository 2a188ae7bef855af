//! `serve.yaml`: which runbooks may run, who may do what, where alerts go, what is watched.
//! Read with the runbook loader's diagnostics; every reference (runbook files, token sources,
//! matchers, templates) is checked before the server listens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use phoenix_engine::Runbook;
use phoenix_plugins::duration::Dur;
use serde::Deserialize;

use super::alerts::Matcher;
use super::auth::{Right, Token};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    /// The directory of the runbooks that may run (relative to the config file).
    #[serde(default)]
    runbooks: Option<PathBuf>,
    /// Bearer tokens; none at all: one is made at start and printed (loopback only).
    #[serde(default)]
    tokens: Option<Vec<RawToken>>,
    #[serde(default)]
    alerts: RawAlerts,
    #[serde(default)]
    watch: Vec<RawWatch>,
    /// Request bodies above this many bytes are refused (`1MiB`, `64KiB`, or a number).
    #[serde(default)]
    max_body: Option<serde_json::Value>,
    /// Host names clients reach the server by, besides `localhost` and IP addresses.
    #[serde(default)]
    allowed_hosts: Vec<String>,
    /// Local users (name or uid) and the operator names each may act as over the control
    /// socket (`phoenix approve --as NAME`), besides its own.
    #[serde(default)]
    socket_users: BTreeMap<String, Vec<String>>,
    /// Where runs are stored (`sled`, `etcd://…`, `etcds://…` over TLS); `--store` and `PHOENIX_STORE` win.
    #[serde(default)]
    store: Option<String>,
    /// The cluster's settings (with an etcd store).
    #[serde(default)]
    ha: RawHa,
    /// Where the server's spans go (OTLP over HTTP); `PHOENIX_OTLP_ENDPOINT` wins.
    #[serde(default)]
    otlp: Option<RawOtlp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOtlp {
    /// `http://collector:4318` (`/v1/traces` is added) or the full URL of the traces path.
    endpoint: String,
    /// Sent with every export (an API key, a tenant). Never logged.
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHa {
    /// This node's name (unique in the cluster); the host name by default.
    #[serde(default)]
    node: Option<String>,
    /// The URL other nodes forward writes to; `http://LISTEN` by default.
    #[serde(default)]
    advertise: Option<String>,
    /// The leader's lease: a dead leader is replaced this long after it stopped renewing.
    #[serde(default)]
    lease_ttl: Option<Dur>,
}

/// The cluster's settings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ha {
    pub(crate) node: Option<String>,
    pub(crate) advertise: Option<String>,
    pub(crate) lease_ttl: Option<std::time::Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    file: Option<PathBuf>,
    rights: Vec<Right>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    #[serde(default)]
    routes: Vec<RawRoute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default)]
    matchers: Vec<String>,
    runbook: String,
    #[serde(default)]
    params: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatch {
    runbook: String,
    every: Dur,
    #[serde(default)]
    cooldown: Option<Dur>,
    #[serde(default)]
    params: BTreeMap<String, String>,
}

/// An alert route.
pub(crate) struct Route {
    /// `routes[N]`, naming it in the store and in errors.
    pub(crate) name: String,
    pub(crate) matchers: Vec<Matcher>,
    pub(crate) runbook: Arc<Runbook>,
    /// Templates over the alert.
    pub(crate) params: BTreeMap<String, String>,
}

/// A health runbook evaluated in the server.
pub(crate) struct Watch {
    pub(crate) runbook: Arc<Runbook>,
    pub(crate) every: std::time::Duration,
    pub(crate) cooldown: Option<std::time::Duration>,
    pub(crate) params: Vec<(String, String)>,
}

/// The checked configuration.
pub(crate) struct Config {
    pub(crate) runbooks: PathBuf,
    /// `None` or empty: the server makes one token at start.
    pub(crate) tokens: Option<Vec<Token>>,
    /// Host names besides `localhost` and IP addresses (DNS rebinding, `guard.rs`).
    pub(crate) allowed_hosts: Vec<String>,
    /// User (name or uid) → the names it may act as over the socket.
    pub(crate) socket_users: BTreeMap<String, Vec<String>>,
    pub(crate) routes: Vec<Route>,
    pub(crate) watch: Vec<Watch>,
    pub(crate) max_body: usize,
    /// `store:`, if given.
    pub(crate) store: Option<String>,
    pub(crate) ha: Ha,
    /// `otlp:`, if given.
    pub(crate) otlp: Option<crate::telemetry::Otlp>,
}

impl Config {
    /// No config file: the `runbooks/` directory, no tokens (one is made at start), no routes, nothing watched.
    pub(crate) fn default_in(dir: &Path) -> Config {
        Config {
            runbooks: dir.join("runbooks"),
            tokens: None,
            allowed_hosts: Vec::new(),
            socket_users: BTreeMap::new(),
            routes: Vec::new(),
            watch: Vec::new(),
            max_body: 1 << 20,
            store: None,
            ha: Ha::default(),
            otlp: None,
        }
    }

    /// Reads and checks `file`; every problem found, drawn for a terminal.
    pub(crate) fn load(file: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{}: cannot read the file: {e}", file.display()))?;
        let raw: Raw = phoenix_engine::yaml::load_typed(&text, file)
            .map_err(|diags| diags.iter().map(|d| d.render(Some(&text))).collect::<Vec<_>>().join("\n"))?;
        let base = file.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let mut errors = Vec::new();
        let runbooks = base.join(raw.runbooks.unwrap_or_else(|| PathBuf::from("runbooks")));
        if !runbooks.is_dir() {
            errors.push(format!("runbooks: {} is not a directory", runbooks.display()));
        }
        let tokens = raw.tokens.map(|list| list.into_iter().enumerate().filter_map(|(i, t)| token(i, t, &base, &mut errors)).collect());
        let load = |what: String, name: &str, errors: &mut Vec<String>| match find_runbook(&runbooks, name) {
            Ok(rb) => Some(Arc::new(rb)),
            Err(e) => {
                errors.push(format!("{what}: {e}"));
                None
            }
        };
        let mut routes = Vec::new();
        for (i, r) in raw.alerts.routes.into_iter().enumerate() {
            let name = format!("alerts.routes[{i}]");
            let rb = load(format!("{name}.runbook"), &r.runbook, &mut errors);
            let mut matchers = Vec::new();
            for (j, m) in r.matchers.iter().enumerate() {
                match Matcher::parse(m) {
                    Ok(m) => matchers.push(m),
                    Err(e) => errors.push(format!("{name}.matchers[{j}]: {e}")),
                }
            }
            for (k, t) in &r.params {
                if let Err(e) = super::alerts::check_template(t) {
                    errors.push(format!("{name}.params.{k}: {e}"));
                }
            }
            if let Some(runbook) = rb {
                for k in r.params.keys().filter(|k| !runbook.params.contains_key(*k)) {
                    errors.push(format!("{name}.params.{k}: runbook `{}` has no param `{k}`", runbook.name));
                }
                routes.push(Route { name, matchers, runbook, params: r.params });
            }
        }
        let mut watch = Vec::new();
        for (i, w) in raw.watch.into_iter().enumerate() {
            let Some(runbook) = load(format!("watch[{i}].runbook"), &w.runbook, &mut errors) else { continue };
            if runbook.signals.is_empty() {
                errors.push(format!("watch[{i}].runbook: `{}` has no signals to watch", runbook.name));
            }
            watch.push(Watch { runbook, every: w.every.get(), cooldown: w.cooldown.map(Dur::get), params: w.params.into_iter().collect() });
        }
        let max_body = match raw.max_body.as_ref().map(size) {
            None => 1 << 20,
            Some(Ok(n)) => n,
            Some(Err(e)) => {
                errors.push(format!("max_body: {e}"));
                0
            }
        };
        for (i, h) in raw.allowed_hosts.iter().enumerate() {
            if h.is_empty() || h.contains(['/', ' ', '*']) {
                errors.push(format!("allowed_hosts[{i}]: `{h}` is not a host name such as phoenix.internal (no scheme, path or wildcard)"));
            }
        }
        if let Some(n) = &raw.ha.node {
            if n.is_empty() || !n.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                errors.push(format!("ha.node: `{n}` is not a node name: use letters, digits, `-`, `_` and `.` (such as dr-eu-west-1)"));
            }
        }
        if let Some(a) = &raw.ha.advertise {
            if !(a.starts_with("http://") || a.starts_with("https://")) || a.contains(char::is_whitespace) {
                errors.push(format!(
                    "ha.advertise: `{a}` is not a URL such as http://10.0.1.5:8080 (the address other nodes reach this one by)"
                ));
            }
        }
        let ttl = raw.ha.lease_ttl.map(Dur::get);
        if ttl.is_some_and(|t| t < std::time::Duration::from_secs(2) || t.subsec_nanos() != 0) {
            errors.push("ha.lease_ttl: give whole seconds, at least 2s (etcd leases count in seconds)".into());
        }
        if let Some(o) = &raw.otlp {
            if !(o.endpoint.starts_with("http://") || o.endpoint.starts_with("https://")) || o.endpoint.contains(char::is_whitespace) {
                errors.push(format!("otlp.endpoint: `{}` is not a URL such as http://collector:4318 (OTLP over HTTP)", o.endpoint));
            }
        }
        let ha = Ha { node: raw.ha.node, advertise: raw.ha.advertise, lease_ttl: ttl };
        if errors.is_empty() {
            Ok(Config {
                runbooks,
                tokens,
                allowed_hosts: raw.allowed_hosts,
                socket_users: raw.socket_users,
                routes,
                watch,
                max_body,
                store: raw.store,
                ha,
                otlp: raw.otlp.map(|o| crate::telemetry::Otlp {
                    endpoint: Some(crate::telemetry::traces_url(&o.endpoint)),
                    headers: o.headers.into_iter().collect(),
                }),
            })
        } else {
            Err(errors.iter().map(|e| format!("{}: {e}", file.display())).collect::<Vec<_>>().join("\n"))
        }
    }
}

fn token(i: usize, t: RawToken, base: &Path, errors: &mut Vec<String>) -> Option<Token> {
    let at = format!("tokens[{i}] (`{}`)", t.name);
    let value = match (&t.env, &t.file) {
        (Some(var), None) => {
            // The steps' processes do not inherit it (docs/serve.md).
            phoenix_engine::exec::declare_sensitive_env([var.clone()]);
            std::env::var(var).map_err(|_| format!("{at}: the environment variable `{var}` is not set"))
        }
        (None, Some(f)) => {
            let path = base.join(f);
            std::fs::read_to_string(&path).map(|s| s.trim().to_string()).map_err(|e| format!("{at}: cannot read {}: {e}", path.display()))
        }
        _ => Err(format!("{at}: give the token's value with exactly one of `env: VARIABLE` or `file: PATH`")),
    };
    match value {
        Ok(v) if v.len() < 16 => {
            errors.push(format!("{at}: the token is {} characters long; use at least 16 (`openssl rand -hex 32`)", v.len()))
        }
        Ok(_) if t.rights.is_empty() => errors.push(format!("{at}: no rights; give some of {}", Right::ALL.join(", "))),
        Ok(v) => return Some(Token::new(t.name, &v, t.rights)),
        Err(e) => errors.push(e),
    }
    None
}

/// A runbook of the directory by file name (`dr-failover.yaml`, `dr-failover`) or runbook
/// name; never a path outside the directory.
pub(crate) fn find_runbook(dir: &Path, name: &str) -> Result<Runbook, String> {
    if name.is_empty() || name.contains('/') || name.contains('\\') || name.starts_with('.') {
        return Err(format!("`{name}` is not a runbook name: give a file name of {} without a path", dir.display()));
    }
    let candidates = [name.to_string(), format!("{name}.yaml"), format!("{name}.yml")];
    let file = candidates
        .iter()
        .map(|c| dir.join(c))
        .find(|p| p.is_file())
        .or_else(|| list(dir).into_iter().find(|p| phoenix_engine::load_file(p).runbook.is_some_and(|rb| rb.name == name)));
    let Some(file) = file else {
        return Err(format!("no runbook `{name}` in {}", dir.display()));
    };
    let loaded = phoenix_engine::load_file(&file);
    let why = loaded.render();
    loaded.runbook.ok_or_else(|| format!("{} does not validate:\n{why}", file.display()))
}

/// The runbook files of a directory, sorted.
pub(crate) fn list(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    files
}

/// `1MiB`, `64KiB`, `512kB`, or a number of bytes.
fn size(v: &serde_json::Value) -> Result<usize, String> {
    if let Some(n) = v.as_u64() {
        return Ok(n as usize);
    }
    let s = v.as_str().ok_or_else(|| "give a size such as `1MiB` or a number of bytes".to_string())?.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: usize = n.parse().map_err(|_| format!("`{s}` is not a size such as `1MiB`"))?;
    let mul = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" => 1 << 10,
        "kB" => 1000,
        "MiB" | "M" => 1 << 20,
        "MB" => 1_000_000,
        other => return Err(format!("unknown unit `{other}` (B, KiB, MiB)")),
    };
    Ok(n * mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(&serde_json::json!("1MiB")), Ok(1 << 20));
        assert_eq!(size(&serde_json::json!("64 KiB")), Ok(64 << 10));
        assert_eq!(size(&serde_json::json!(100)), Ok(100));
        assert!(size(&serde_json::json!("1GB")).is_err());
    }

    #[test]
    fn runbook_names_never_leave_the_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
        assert!(find_runbook(&dir, "../Cargo.toml").unwrap_err().contains("not a runbook name"));
        assert!(find_runbook(&dir, ".hidden").is_err());
        assert_eq!(find_runbook(&dir, "dr-failover").unwrap().name, "dr-failover");
        assert_eq!(find_runbook(&dir, "health.yaml").unwrap().name, "health");
        assert!(find_runbook(&dir, "nope").unwrap_err().contains("no runbook `nope`"));
    }
}
