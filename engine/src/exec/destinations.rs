//! A secret goes only where its runbook says: before an action sends a request, each URL it
//! would send to ([`phoenix_plugins::Action::destinations`]) is checked against every secret
//! the step's `with` uses. A secret with `hosts:` goes to those hosts only; no secret goes
//! over plain `http://` beyond the loopback unless it says `allow_http: true`. A param that
//! points `llm_base_url` at the attacker's server gets a failed step, not the API key.

use serde_json::Value;

use super::context::Secrets;

/// Where a URL goes.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    scheme: String,
    /// Lower-case, without brackets for IPv6.
    host: String,
    port: u16,
}

/// Why the step may not send its request, if it may not. `raw` is the step's unrendered
/// `with`, `with` the rendered one.
pub(crate) fn refusal(action: &dyn phoenix_plugins::Action, raw: &Value, with: &Value, secrets: &Secrets) -> Option<String> {
    let dests = action.destinations(with);
    if dests.is_empty() {
        return None;
    }
    let used = secrets.used_in(raw, with);
    if used.is_empty() {
        return None;
    }
    for (key, url) in &dests {
        let Some(t) = parse(url) else {
            let names = used.iter().map(|(n, _)| format!("`{n}`")).collect::<Vec<_>>().join(", ");
            return Some(format!(
                "with.{key} is not an http(s) URL, and this step sends the secret {names}: nothing was sent; give a URL such as `https://api.example.com`"
            ));
        };
        for (name, spec) in &used {
            if t.scheme != "https" && !(t.scheme == "http" && (spec.allow_http || is_loopback(&t.host))) {
                return Some(format!(
                    "the secret `{name}` would be sent over plain {} to {} (with.{key}): nothing was sent; use https, or declare `allow_http: true` under `secrets.{name}` if this network is trusted",
                    t.scheme, t.host
                ));
            }
            if let Some(hosts) = &spec.hosts {
                if !hosts.iter().any(|h| allows(h, &t)) {
                    let allowed = if hosts.is_empty() { "no host".to_string() } else { hosts.join(", ") };
                    return Some(format!(
                        "the secret `{name}` may be sent to {allowed}, not to {}:{} (with.{key}): nothing was sent; correct the URL, or add the host to `secrets.{name}.hosts` if it is meant",
                        t.host, t.port
                    ));
                }
            }
        }
    }
    None
}

/// A URL's target, or `None` for anything a URL library could read another way than this
/// (backslashes, whitespace, control characters, percent-escapes in the host).
fn parse(url: &str) -> Option<Target> {
    if url.chars().any(|c| c == '\\' || c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => 0,
    };
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = split_port(hostport)?;
    if host.is_empty() || host.contains('%') {
        return None;
    }
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    Some(Target { scheme, host: host.to_ascii_lowercase(), port })
}

/// `host:port`, `[v6]:port`, `host` → (host without brackets, port).
fn split_port(s: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return Some((host, after.strip_prefix(':')));
    }
    Some(match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (s, None),
    })
}

fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether a `hosts:` entry (`host`, `host:port`, `*.domain`, `[v6]:port`) allows `t`.
fn allows(entry: &str, t: &Target) -> bool {
    let Some((host, port)) = split_port(entry) else { return false };
    if port.is_some_and(|p| p.parse::<u16>().ok() != Some(t.port)) {
        return false;
    }
    let host = host.to_ascii_lowercase();
    match host.strip_prefix("*.") {
        Some(domain) => t.host.len() > domain.len() + 1 && t.host.ends_with(&format!(".{domain}")),
        None => host == t.host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_host_entries() {
        let t = parse("https://User:pw@API.example.com/v1?x=1").unwrap();
        assert_eq!(t, Target { scheme: "https".into(), host: "api.example.com".into(), port: 443 });
        assert_eq!(parse("http://[::1]:8080/x").unwrap().host, "::1");
        assert_eq!(parse("http://127.0.0.1:9/x").unwrap().port, 9);
        assert!(parse("api.example.com/v1").is_none());
        assert!(parse("https://evil.net\\@api.example.com/").is_none());
        assert!(parse("https://api.exa\tmple.com/").is_none());
        assert!(parse("https://evil%2enet/").is_none());
        assert!(allows("api.example.com", &t));
        assert!(allows("*.example.com", &t));
        assert!(!allows("*.example.com", &parse("https://example.com").unwrap()));
        assert!(!allows("example.com", &t));
        assert!(!allows("api.example.com:8443", &t));
        assert!(allows("127.0.0.1:9", &parse("http://127.0.0.1:9/").unwrap()));
        assert!(!allows("127.0.0.1:9", &parse("http://127.0.0.1:10/").unwrap()));
        assert!(is_loopback("127.0.0.2") && is_loopback("::1") && !is_loopback("10.0.0.1"));
        // A host that only starts like an allowed one is another host.
        assert!(!allows("api.example.com", &parse("https://api.example.com.evil.net/").unwrap()));
    }
}
