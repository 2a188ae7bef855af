//! Connection strings: parsed for tokio-postgres, described and redacted for people.

use std::time::Duration;

use tokio_postgres::Config;
use tokio_postgres::config::Host;

/// A parsed connection string that knows how to keep its password out of text.
pub(crate) struct Dsn {
    pub(crate) config: Config,
    /// `user@host:port/dbname`, for messages (never the password).
    pub(crate) described: String,
    secrets: Vec<String>,
}

impl Dsn {
    /// Parses a libpq-style URL (`postgresql://user:pw@host:5432/db?sslmode=disable`) or
    /// key=value string (`host=… port=… user=… password=…`). Errors never hold the password.
    pub(crate) fn parse(text: &str) -> Result<Dsn, String> {
        let secrets = secrets_of(text);
        let scrub = |m: String| redact_all(&m, &secrets);
        check_sslmode(text).map_err(scrub)?;
        let mut config: Config = text.parse().map_err(|e| scrub(format!("`dsn` is not a connection string: {}", chain(&e))))?;
        if config.get_application_name().is_none() {
            config.application_name("phoenix");
        }
        let mut secrets = secrets;
        if let Some(pw) = config.get_password() {
            secrets.push(String::from_utf8_lossy(pw).into_owned());
        }
        secrets.retain(|s| !s.is_empty());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        let described = describe(&config);
        Ok(Dsn { config, described, secrets })
    }

    /// `text` with every form of the password replaced by `***`.
    pub(crate) fn redact(&self, text: &str) -> String {
        redact_all(text, &self.secrets)
    }

    /// What [`Dsn::redact`] does, as a function that owns what it needs (for tasks).
    pub(crate) fn redactor(&self) -> impl Fn(&str) -> String + Send + Sync + 'static {
        let secrets = self.secrets.clone();
        move |text| redact_all(text, &secrets)
    }

    /// The connect timeout: the input's, else the DSN's own `connect_timeout`, else 5s.
    pub(crate) fn connect_timeout(&self, input: Option<Duration>) -> Duration {
        input.or(self.config.get_connect_timeout().copied()).unwrap_or(Duration::from_secs(5))
    }
}

impl std::fmt::Debug for Dsn {
    /// Only the description: a debug print must not leak the password either.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Dsn").field(&self.described).finish()
    }
}

/// The DSN as a runbook may show it (in a dry-run plan): the password replaced by `***`.
pub(crate) fn display(text: &str) -> String {
    redact_all(text, &secrets_of(text))
}

fn redact_all(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s.as_str(), "***");
    }
    out
}

/// The password as written in the text (raw and percent-decoded), found without a full parse
/// so that even a string tokio-postgres rejects can be scrubbed.
fn secrets_of(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let t = text.trim();
    if let Some(rest) = t.strip_prefix("postgresql://").or_else(|| t.strip_prefix("postgres://")) {
        // userinfo ends at the last `@` before the path or query.
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            if let Some((_, pw)) = rest[..at].split_once(':') {
                found.push(pw.to_string());
                found.push(percent_decode(pw));
            }
        }
        if let Some((_, query)) = rest.split_once('?') {
            for pair in query.split('&') {
                if let Some(("password", v)) = pair.split_once('=') {
                    found.push(v.to_string());
                    found.push(percent_decode(v));
                }
            }
        }
    } else {
        let mut rest = t;
        while let Some(i) = rest.find("password") {
            let after = rest[i + "password".len()..].trim_start();
            if let Some(v) = after.strip_prefix('=') {
                let v = v.trim_start();
                let value = if let Some(q) = v.strip_prefix('\'') {
                    let end = q.find('\'').unwrap_or(q.len());
                    q[..end].to_string()
                } else {
                    v.split_whitespace().next().unwrap_or("").to_string()
                };
                found.push(value.replace("\\'", "'").replace("\\\\", "\\"));
                found.push(value);
            }
            rest = &rest[i + "password".len()..];
        }
    }
    found.retain(|s| !s.is_empty());
    found
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// TLS is not wired up yet: say so instead of failing obscurely (or silently going plain).
fn check_sslmode(text: &str) -> Result<(), String> {
    let Some(i) = text.find("sslmode") else { return Ok(()) };
    let after = text[i + "sslmode".len()..].trim_start();
    let Some(v) = after.strip_prefix('=') else { return Ok(()) };
    let mode: String = v.trim_start().trim_start_matches('\'').chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    match mode.as_str() {
        "disable" | "prefer" | "" => Ok(()),
        "allow" => Err("`sslmode=allow` is not supported; use `sslmode=disable` or `prefer`".into()),
        "require" | "verify-ca" | "verify-full" => Err(format!(
            "`sslmode={mode}` asks for TLS, which the postgres actions do not support yet; use `sslmode=disable` or `prefer` (over a trusted network or a tunnel)"
        )),
        other => Err(format!("`sslmode={other}` is not a libpq sslmode (disable, prefer, require, verify-ca, verify-full)")),
    }
}

/// The databases a connection string reaches: one per host (a libpq host list is tried in
/// turn), with its port (the one at the same place in the list, else the only one, else
/// 5432) and the database's name (`dbname`, else, as libpq does, the user's name, else
/// `postgres`). Never the user or the password. Nothing when the text is not a DSN.
pub(crate) fn targets(text: &str) -> Vec<crate::Target> {
    let Ok(c) = text.trim().parse::<Config>() else { return vec![] };
    let dbname = c.get_dbname().or(c.get_user()).unwrap_or("postgres");
    let ports = c.get_ports();
    let mut hosts = host_names(&c);
    if hosts.is_empty() {
        hosts.push("localhost".into());
    }
    hosts
        .iter()
        .enumerate()
        .map(|(i, h)| crate::Target::database(h, ports.get(i).or(ports.first()).copied().unwrap_or(5432), dbname))
        .collect()
}

/// `user@host:port/dbname`.
fn describe(c: &Config) -> String {
    let user = c.get_user().unwrap_or("postgres");
    let ports = c.get_ports();
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                Host::Tcp(h) => h.clone(),
                Host::Unix(p) => p.display().to_string(),
            };
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let hosts = if hosts.is_empty() { "localhost:5432".to_string() } else { hosts.join(",") };
    let db = c.get_dbname().unwrap_or(user);
    format!("{user}@{hosts}/{db}")
}

/// An error and its sources, joined with `: `.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.ends_with(&text) {
            msg = format!("{msg}: {text}");
        }
        source = s.source();
    }
    msg
}

/// A DSN's hosts as libpq writes them: a name or address, or a Unix socket's directory.
pub(crate) fn host_names(c: &Config) -> Vec<String> {
    c.get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(h) => h.clone(),
            Host::Unix(p) => p.display().to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_key_values_lose_their_passwords() {
        for text in [
            "postgresql://phoenix:s3cr%40t@db.example:6432/app?sslmode=disable",
            "host=db.example port=6432 user=phoenix password=s3cr@t dbname=app",
            "host=db.example port=6432 user=phoenix password='s3cr@t' dbname=app",
        ] {
            let dsn = Dsn::parse(text).unwrap();
            assert_eq!(dsn.described, "phoenix@db.example:6432/app");
            assert_eq!(dsn.redact(&format!("failed: {text}")).matches("s3cr").count(), 0, "{text}");
            assert!(!display(text).contains("s3cr"), "{text}");
        }
    }

    #[test]
    fn targets_keep_host_port_and_dbname_never_the_user_or_password() {
        use crate::Target;
        for text in [
            "postgresql://phoenix:s3cr%40t@DB.example:6432/app?sslmode=disable",
            "host=db.example port=6432 user=phoenix password=s3cr@t dbname=app",
            "host=db.example port=6432 user=phoenix password='s3cr@t' dbname=app",
            "postgresql://db.example:6432/app?user=phoenix&password=s3cr%40t",
        ] {
            let t = targets(text);
            assert_eq!(t, vec![Target::database("db.example", 6432, "app")], "{text}");
            let shown = format!("{} {:?} {}", t[0], t[0], serde_json::to_string(&t[0]).unwrap());
            assert!(!shown.contains("s3cr") && !shown.contains("phoenix"), "{shown}");
        }
        // A host list: one database per host; libpq's defaults for what is left out.
        let t = targets("postgresql://u:pw@a:5433,b/app");
        assert_eq!(t, vec![Target::database("a", 5433, "app"), Target::database("b", 5432, "app")]);
        assert_eq!(targets("host=/run/postgresql user=ops"), vec![Target::database("/run/postgresql", 5432, "ops")]);
        assert_eq!(targets("postgresql://"), vec![Target::database("localhost", 5432, "postgres")]);
        assert!(targets("not a dsn at all =").is_empty());
        // The actions read it from their rendered `with`.
        let with = serde_json::json!({ "dsn": "postgresql://u:pw@h:1/d", "sql": "SELECT 1", "source": "postgresql://u:pw@s/x", "target": "postgresql://u:pw@h:1/d", "via": ["s3://stage/dump", "azblob://c1/dump"], "azure": { "use_emulator": true } });
        assert_eq!(crate::find("postgres.query").unwrap().targets(&with), vec![Target::database("h", 1, "d")]);
        let shown: Vec<String> = crate::find("postgres.replicate").unwrap().targets(&with).iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["database d on h:1", "S3 bucket stage", "Azure container c1 at 127.0.0.1:10000 (account devstoreaccount1)"]);
    }

    #[test]
    fn bad_strings_never_echo_the_password() {
        let err = Dsn::parse("postgresql://u:hunter22@host:notaport/db").unwrap_err();
        assert!(!err.contains("hunter22"), "{err}");
        assert!(err.contains("port"), "{err}");
    }

    #[test]
    fn tls_is_refused_clearly() {
        let err = Dsn::parse("postgresql://u@h/db?sslmode=require").unwrap_err();
        assert!(err.contains("do not support yet"), "{err}");
        assert!(Dsn::parse("host=h sslmode=prefer").is_ok());
        assert!(Dsn::parse("host=h sslmode=disable").is_ok());
    }
}
