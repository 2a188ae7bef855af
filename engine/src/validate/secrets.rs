//! `secrets:`: exactly one source each, the settings that go with it, and hosts that are
//! hosts.

use crate::diag::{Code, Diagnostic};
use crate::runbook::raw::{RawRunbook, RawSecret};
use crate::yaml::Path;

pub(super) fn check(raw: &RawRunbook, out: &mut Vec<Diagnostic>) {
    for (name, s) in &raw.secrets {
        let path = Path::root().key("secrets").key(name);
        source(name, s, &path, out);
        for (i, host) in s.hosts.iter().flatten().enumerate() {
            if let Some(why) = bad_host(host) {
                out.push(
                    Diagnostic::new(Code::InvalidValue, path.key("hosts").index(i), format!("`{host}` is not a host: {why}"))
                        .help("write a host name or address alone, with a port if only that port is meant: `api.openai.com`, `*.example.com`, `127.0.0.1:8080`"),
                );
            }
        }
    }
}

/// Exactly one of `env`, `file`, `aws_secretsmanager`, `exec`, and only the settings of the
/// one given.
fn source(name: &str, s: &RawSecret, path: &Path, out: &mut Vec<Diagnostic>) {
    let given: Vec<&str> = [
        ("env", s.env.is_some()),
        ("file", s.file.is_some()),
        ("aws_secretsmanager", s.aws_secretsmanager.is_some()),
        ("exec", s.exec.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, on)| on.then_some(k))
    .collect();
    match given.as_slice() {
        [] => out.push(Diagnostic::new(Code::SecretSource, path.clone(), format!("secret `{name}` has no source")).help(format!(
            "add `env: {}`, `file: /run/secrets/{name}`, `aws_secretsmanager: prod/{name}` or `exec: [vault, kv, get, -field={name}, secret/…]`",
            name.to_ascii_uppercase()
        ))),
        [_] => {}
        many => out.push(
            Diagnostic::new(Code::SecretSource, path.clone(), format!("secret `{name}` names {} sources: {}", many.len(), many.join(", ")))
                .help("keep one source"),
        ),
    }
    if s.env.as_deref() == Some("") {
        out.push(Diagnostic::new(Code::SecretSource, path.key("env"), "the variable name is empty"));
    }
    if s.aws_secretsmanager.as_deref() == Some("") {
        out.push(
            Diagnostic::new(Code::SecretSource, path.key("aws_secretsmanager"), "the secret's name is empty").help("give its name or ARN"),
        );
    }
    let aws_only = [
        ("key", s.key.is_some()),
        ("region", s.region.is_some()),
        ("endpoint_url", s.endpoint_url.is_some()),
        ("profile", s.profile.is_some()),
    ];
    for (k, _) in aws_only.iter().filter(|(_, on)| *on) {
        if s.aws_secretsmanager.is_none() {
            out.push(
                Diagnostic::new(
                    Code::SecretSource,
                    path.key(*k),
                    format!("`{k}` goes with `aws_secretsmanager`, which secret `{name}` does not use").as_str(),
                )
                .help(format!("remove `{k}`")),
            );
        }
    }
    if let Some(url) = s.endpoint_url.as_deref().filter(|u| !u.starts_with("http://") && !u.starts_with("https://")) {
        out.push(
            Diagnostic::new(Code::InvalidValue, path.key("endpoint_url"), format!("`{url}` is not an http(s) URL"))
                .help("e.g. `https://vpce-….secretsmanager.eu-west-1.vpce.amazonaws.com`"),
        );
    }
    if s.timeout.is_some() && s.aws_secretsmanager.is_none() && s.exec.is_none() {
        out.push(
            Diagnostic::new(Code::SecretSource, path.key("timeout"), "`timeout` goes with `aws_secretsmanager` or `exec`")
                .help("an environment variable or a file is read at once: remove `timeout`"),
        );
    }
    if s.timeout.is_some_and(|t| t.0.is_zero()) {
        out.push(Diagnostic::new(Code::InvalidValue, path.key("timeout"), "the timeout is zero").help("e.g. `timeout: 10s`"));
    }
    if let Some(argv) = &s.exec {
        if argv.first().is_none_or(|p| p.trim().is_empty()) {
            out.push(
                Diagnostic::new(Code::SecretSource, path.key("exec"), "the command is empty")
                    .help("write it as a list: `[vault, kv, get, -field=password, secret/db]`"),
            );
        }
        for (i, a) in argv.iter().enumerate() {
            if a.contains("{{") || a.contains("{%") {
                out.push(
                    Diagnostic::new(
                        Code::SecretSource,
                        path.key("exec").index(i),
                        "a secret's command is not a template: it runs before any step, as written",
                    )
                    .help("write the argument as it is; put what changes in the command's own configuration"),
                );
            }
        }
    }
}

/// Why a `secrets.*.hosts` entry is not `host`, `host:port`, `*.domain` or `[v6]:port`.
fn bad_host(h: &str) -> Option<&'static str> {
    if h.is_empty() {
        return Some("it is empty");
    }
    if h.contains("://") {
        return Some("it is a URL; the scheme and path are not part of a host");
    }
    if h.chars().any(|c| c.is_whitespace() || "/?#@\\".contains(c)) {
        return Some("it holds a character no host has");
    }
    let wildcard = h.strip_prefix("*.").is_some_and(|rest| !rest.contains('*'));
    if h.contains('*') && !wildcard {
        return Some("`*` may only begin it, as in `*.example.com`");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_hosts() {
        for ok in ["api.openai.com", "*.example.com", "127.0.0.1:8080", "[::1]:80", "localhost"] {
            assert_eq!(bad_host(ok), None, "{ok}");
        }
        for bad in ["", "https://api.openai.com", "a.com/v1", "a*.com", "*.*.com", "user@host"] {
            assert!(bad_host(bad).is_some(), "{bad}");
        }
    }
}
