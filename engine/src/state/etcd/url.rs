//! Where an etcd store is: `etcd://HOST:PORT[,HOST:PORT…][/PREFIX]`, or over TLS
//! `etcds://HOST:PORT[,…][/PREFIX][?ca=FILE&cert=FILE&key=FILE]`. One parser for every place
//! that takes the URL (`--store`, `PHOENIX_STORE`, serve.yaml's `store:`, `phoenix cluster
//! status`), so none accepts what another refuses.

use std::path::PathBuf;

/// The TLS files of an `etcds://` store: the CA that signed the members' certificates (else
/// the system's roots), and this client's certificate and key, for members started with
/// `--client-cert-auth`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file of the CA certificate(s) to trust.
    pub ca: Option<PathBuf>,
    /// PEM file of this client's certificate (with `key`).
    pub cert: Option<PathBuf>,
    /// PEM file of this client's private key (with `cert`).
    pub key: Option<PathBuf>,
}

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdUrl {
    /// `http://HOST:PORT` (or `https://` for `etcds://`), one per member given.
    pub endpoints: Vec<String>,
    /// Every key of the store starts with it (`phoenix/` by default).
    pub prefix: String,
    /// Set for `etcds://`.
    pub tls: Option<TlsFiles>,
}

const FORM: &str = "write etcd://HOST:PORT[,HOST:PORT…][/PREFIX], or etcds://…[?ca=FILE&cert=FILE&key=FILE] over TLS";

impl EtcdUrl {
    /// Whether `url` names an etcd store at all (then [`EtcdUrl::parse`] says what is wrong).
    pub fn is_etcd(url: &str) -> bool {
        url.starts_with("etcd://") || url.starts_with("etcds://")
    }

    /// Reads `url`, checking every part without connecting.
    pub fn parse(url: &str) -> Result<EtcdUrl, String> {
        let (rest, scheme) = match (url.strip_prefix("etcd://"), url.strip_prefix("etcds://")) {
            (Some(r), _) => (r, "http"),
            (_, Some(r)) => (r, "https"),
            _ => return Err(format!("the store {url:?} does not start with etcd:// or etcds://: {FORM}")),
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (hosts, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if hosts.is_empty() {
            return Err(format!("the store {url:?} names no etcd member: {FORM}"));
        }
        let mut endpoints = Vec::new();
        for h in hosts.split(',') {
            let (host, port) = h.rsplit_once(':').ok_or_else(|| {
                format!("the etcd member {h:?} in {url:?} has no port: write HOST:PORT (etcd's client port is usually 2379)")
            })?;
            if host.is_empty() || host.contains(|c: char| c.is_whitespace() || "@#?/".contains(c)) {
                return Err(format!("the etcd member {h:?} in {url:?} has no host name before its port"));
            }
            if !port.parse::<u16>().is_ok_and(|p| p > 0) {
                return Err(format!("the port {port:?} of the etcd member {h:?} in {url:?} is not a port number"));
            }
            endpoints.push(format!("{scheme}://{h}"));
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() { "phoenix/".to_string() } else { format!("{prefix}/") };
        let tls = tls_files(url, query, scheme == "https")?;
        Ok(EtcdUrl { endpoints, prefix, tls })
    }
}

/// The `?ca=…&cert=…&key=…` of an `etcds://` URL.
fn tls_files(url: &str, query: &str, tls: bool) -> Result<Option<TlsFiles>, String> {
    let mut files = TlsFiles::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if v.is_empty() {
            return Err(format!("`{k}` in {url:?} names no file: write {k}=/path/to/file.pem"));
        }
        let slot = match k {
            "ca" => &mut files.ca,
            "cert" => &mut files.cert,
            "key" => &mut files.key,
            other => return Err(format!("{url:?} has `{other}=`, which is not a setting: the settings are ca, cert and key (PEM files)")),
        };
        if slot.replace(PathBuf::from(v)).is_some() {
            return Err(format!("`{k}` is given twice in {url:?}"));
        }
    }
    if !tls {
        return match files == TlsFiles::default() {
            true => Ok(None),
            false => Err(format!("{url:?} gives TLS files to a plain etcd:// store: write etcds:// to speak TLS")),
        };
    }
    if files.cert.is_some() != files.key.is_some() {
        return Err(format!(
            "{url:?} gives a client certificate without its key, or a key without its certificate: give both cert= and key="
        ));
    }
    Ok(Some(files))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_tls_urls_read() {
        let u = EtcdUrl::parse("etcd://e1:2379,10.0.0.2:2380/dr/").unwrap();
        assert_eq!(u, EtcdUrl { endpoints: vec!["http://e1:2379".into(), "http://10.0.0.2:2380".into()], prefix: "dr/".into(), tls: None });
        assert_eq!(EtcdUrl::parse("etcd://e1:2379").unwrap().prefix, "phoenix/");
        let u = EtcdUrl::parse("etcds://e1:2379,e2:2379/dr?ca=/etc/ca.pem&cert=/c.pem&key=/k.pem").unwrap();
        assert_eq!(u.endpoints, ["https://e1:2379", "https://e2:2379"]);
        assert_eq!(u.prefix, "dr/");
        let tls = u.tls.unwrap();
        assert_eq!((tls.ca.unwrap(), tls.cert.unwrap(), tls.key.unwrap()), ("/etc/ca.pem".into(), "/c.pem".into(), "/k.pem".into()));
        assert_eq!(EtcdUrl::parse("etcds://e1:2379").unwrap().tls, Some(TlsFiles::default()));
        assert_eq!(EtcdUrl::parse("etcds://e1:2379?ca=/ca.pem").unwrap().prefix, "phoenix/");
    }

    #[test]
    fn every_wrong_part_is_named() {
        for (url, says) in [
            ("http://e1:2379", "does not start with etcd://"),
            ("etcd:///x", "names no etcd member"),
            ("etcd://e1", "\"e1\" in \"etcd://e1\" has no port"),
            ("etcd://e1:2379,e2:http", "the port \"http\" of the etcd member \"e2:http\""),
            ("etcd://:2379", "has no host name"),
            ("etcd://u@e1:2379", "has no host name"),
            ("etcd://e1:0", "is not a port number"),
            ("etcd://e1:2379,", "has no port"),
            ("etcd://e1:2379?ca=/ca.pem", "write etcds://"),
            ("etcds://e1:2379?cert=/c.pem", "give both cert= and key="),
            ("etcds://e1:2379?key=/k.pem", "give both cert= and key="),
            ("etcds://e1:2379?cacert=/ca.pem", "the settings are ca, cert and key"),
            ("etcds://e1:2379?ca=", "names no file"),
            ("etcds://e1:2379?ca=/a&ca=/b", "given twice"),
        ] {
            let e = EtcdUrl::parse(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
        }
    }
}
