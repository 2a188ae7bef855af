//! What a step changes, as data: the DNS record, bucket, container, database, release,
//! namespace, Terraform directory or HTTP endpoint an action acts on ([`Target`]). A drill
//! compares the targets of its steps with what production resolves to and with its
//! `protect` list before anything runs.
//!
//! A target never holds a credential: a database is its host, port and name (never the user
//! or password of its DSN), a container its endpoint's host and account (never a key or SAS),
//! an HTTP endpoint its method, host and path (never the query or the user info).

use std::fmt;

use serde::{Deserialize, Serialize};

/// One thing a step changes. Built through the constructors, which put names in one
/// spelling (lower case, no final dot), so two targets compare equal when they name the
/// same thing the same way.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A DNS record in a Route 53 hosted zone.
    DnsRecord {
        /// The hosted zone's id, without `/hostedzone/`.
        zone: String,
        /// The record's name: lower case, no final dot, escapes decoded.
        name: String,
        /// The record type, upper case.
        #[serde(rename = "type")]
        rtype: String,
    },
    /// An S3 bucket.
    S3Bucket {
        /// The bucket's name.
        bucket: String,
    },
    /// An Azure Blob Storage container.
    BlobContainer {
        /// The blob endpoint's host (and port, when it is not the scheme's), lower case;
        /// empty when it could not be resolved.
        host: String,
        /// The storage account; empty when it could not be resolved.
        account: String,
        /// The container.
        container: String,
    },
    /// A PostgreSQL database.
    Database {
        /// The host (lower case) or Unix socket directory.
        host: String,
        /// The port.
        port: u16,
        /// The database's name.
        dbname: String,
    },
    /// A Helm release.
    HelmRelease {
        /// The kube context; empty for the kubeconfig's current one.
        context: String,
        /// The namespace; empty for the context's default.
        namespace: String,
        /// The release.
        release: String,
    },
    /// A Kubernetes namespace that `kubectl` changes something in.
    KubeNamespace {
        /// The kube context; empty for the kubeconfig's current one.
        context: String,
        /// The namespace; empty for the context's default.
        namespace: String,
    },
    /// A Terraform root module and workspace (where its state is).
    TerraformDir {
        /// The directory, absolute and without `.` or `..`.
        dir: String,
        /// The workspace (`TF_WORKSPACE` in the step's `env`); empty for the selected one.
        workspace: String,
    },
    /// An HTTP endpoint sent a request other than GET, HEAD or OPTIONS.
    HttpEndpoint {
        /// The method, upper case.
        method: String,
        /// The host (and port, when it is not the scheme's), lower case.
        host: String,
        /// The path (no query, no fragment).
        path: String,
    },
}

impl Target {
    /// A DNS record: the zone without `/hostedzone/`, the name in lower case without its
    /// final dot (Route 53's `\052` escapes decoded), the type in upper case.
    pub fn dns(zone: &str, name: &str, rtype: &str) -> Target {
        let zone = zone.trim();
        Target::DnsRecord {
            zone: zone.strip_prefix("/hostedzone/").unwrap_or(zone).to_string(),
            name: dns_name(name),
            rtype: rtype.trim().to_ascii_uppercase(),
        }
    }

    /// An S3 bucket (an `s3://` prefix and a path after the name are dropped).
    pub fn s3_bucket(bucket: &str) -> Target {
        Target::S3Bucket { bucket: root_of(bucket, "s3://") }
    }

    /// An Azure container at an endpoint (its URL; only the host and port are kept).
    pub fn blob_container(endpoint: &str, account: &str, container: &str) -> Target {
        Target::BlobContainer { host: url_host(endpoint), account: account.trim().to_string(), container: root_of(container, "azblob://") }
    }

    /// A database.
    pub fn database(host: &str, port: u16, dbname: &str) -> Target {
        Target::Database { host: host.trim().to_ascii_lowercase(), port, dbname: dbname.to_string() }
    }

    /// A Helm release.
    pub fn helm_release(context: &str, namespace: &str, release: &str) -> Target {
        Target::HelmRelease { context: context.to_string(), namespace: namespace.to_string(), release: release.to_string() }
    }

    /// A Kubernetes namespace.
    pub fn kube_namespace(context: &str, namespace: &str) -> Target {
        Target::KubeNamespace { context: context.to_string(), namespace: namespace.to_string() }
    }

    /// A Terraform directory, made absolute (relative to the directory phoenix runs in, as
    /// the step's process would see it) and cleaned of `.` and `..` without touching the disk.
    pub fn terraform_dir(dir: &str, workspace: &str) -> Target {
        Target::TerraformDir { dir: absolute(dir), workspace: workspace.trim().to_string() }
    }

    /// An HTTP request to `url` (its query, fragment and user info are dropped).
    pub fn http_endpoint(method: &str, url: &str) -> Target {
        let (host, path) = match reqwest::Url::parse(url.trim()) {
            Ok(u) => (host_port(&u), u.path().to_string()),
            Err(_) => (String::new(), String::new()),
        };
        Target::HttpEndpoint { method: method.trim().to_ascii_uppercase(), host, path }
    }

    /// The kind's name, as in the serialized form (`dns_record`, `database`…).
    pub fn kind(&self) -> &'static str {
        match self {
            Target::DnsRecord { .. } => "dns_record",
            Target::S3Bucket { .. } => "s3_bucket",
            Target::BlobContainer { .. } => "blob_container",
            Target::Database { .. } => "database",
            Target::HelmRelease { .. } => "helm_release",
            Target::KubeNamespace { .. } => "kube_namespace",
            Target::TerraformDir { .. } => "terraform_dir",
            Target::HttpEndpoint { .. } => "http_endpoint",
        }
    }
}

/// `(current context)` / `(default namespace)` for what a command leaves to kubeconfig.
fn or<'a>(value: &'a str, missing: &'a str) -> &'a str {
    if value.is_empty() { missing } else { value }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::DnsRecord { zone, name, rtype } => write!(f, "DNS {name} {rtype} in zone {zone}"),
            Target::S3Bucket { bucket } => write!(f, "S3 bucket {bucket}"),
            Target::BlobContainer { host, account, container } => {
                write!(f, "Azure container {container} at {} (account {})", or(host, "an unresolved endpoint"), or(account, "unknown"))
            }
            Target::Database { host, port, dbname } => write!(f, "database {dbname} on {host}:{port}"),
            Target::HelmRelease { context, namespace, release } => write!(
                f,
                "Helm release {release} in namespace {} (kube context {})",
                or(namespace, "of the context"),
                or(context, "current")
            ),
            Target::KubeNamespace { context, namespace } => {
                write!(f, "Kubernetes namespace {} (kube context {})", or(namespace, "of the context"), or(context, "current"))
            }
            Target::TerraformDir { dir, workspace } if workspace.is_empty() => write!(f, "Terraform in {dir}"),
            Target::TerraformDir { dir, workspace } => write!(f, "Terraform in {dir} (workspace {workspace})"),
            Target::HttpEndpoint { method, host, path } => write!(f, "HTTP {method} {host}{path}"),
        }
    }
}

/// A DNS name in one spelling: `\ddd` escapes decoded, lower case, no final dot.
pub(crate) fn dns_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.clone().take(3).collect();
            if digits.len() == 3 && digits.chars().all(|d| d.is_digit(8)) {
                if let Some(decoded) = u8::from_str_radix(&digits, 8).ok().map(char::from) {
                    out.push(decoded);
                    chars.nth(2);
                    continue;
                }
            }
        }
        out.push(c);
    }
    out.trim_end_matches('.').to_lowercase()
}

/// The first segment of `text` after an optional scheme (`s3://bucket/key` → `bucket`).
fn root_of(text: &str, scheme: &str) -> String {
    let text = text.trim();
    let rest = text.strip_prefix(scheme).unwrap_or(text);
    rest.split('/').next().unwrap_or_default().to_string()
}

/// `host` or `host:port` (the port only when it is not the scheme's), lower case.
fn host_port(u: &reqwest::Url) -> String {
    let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
    match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

/// The host and port of a URL; empty when it is not one.
fn url_host(url: &str) -> String {
    reqwest::Url::parse(url.trim()).map(|u| host_port(&u)).unwrap_or_default()
}

/// `dir` made absolute against the current directory, `.` and `..` removed lexically.
fn absolute(dir: &str) -> String {
    use std::path::{Component, Path, PathBuf};
    let path = Path::new(dir.trim());
    let joined = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir().unwrap_or_default().join(path) };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_put_in_one_spelling() {
        assert_eq!(Target::dns("/hostedzone/Z1", "App.Example.COM.", "a"), Target::dns("Z1", "app.example.com", "A"));
        assert_eq!(Target::dns("Z1", "\\052.example.com.", "A"), Target::dns("Z1", "*.example.com", "A"));
        assert_eq!(Target::s3_bucket("s3://prod/x/y"), Target::s3_bucket("prod"));
        assert_eq!(
            Target::terraform_dir("/srv/tf/./azure/../aws", ""),
            Target::TerraformDir { dir: "/srv/tf/aws".into(), workspace: "".into() }
        );
        let Target::TerraformDir { dir, .. } = Target::terraform_dir("tf", "") else { unreachable!() };
        assert!(dir.starts_with('/') && dir.ends_with("/tf"), "{dir}");
    }

    #[test]
    fn an_http_endpoint_drops_query_and_user_info() {
        let t = Target::http_endpoint("post", "https://ops:hunter2@API.example.com:8443/v1/failover?token=s3cr3t#x");
        assert_eq!(t, Target::HttpEndpoint { method: "POST".into(), host: "api.example.com:8443".into(), path: "/v1/failover".into() });
        let shown = format!("{t} {t:?} {}", serde_json::to_string(&t).unwrap());
        assert!(!shown.contains("hunter2") && !shown.contains("s3cr3t") && !shown.contains("ops"), "{shown}");
    }

    #[test]
    fn operators_read_each_kind() {
        let shown: Vec<String> = [
            Target::dns("Z123", "app.example.com", "A"),
            Target::s3_bucket("prod-assets"),
            Target::blob_container("http://127.0.0.1:10000/devstoreaccount1", "devstoreaccount1", "dr-assets"),
            Target::database("DB.example.com", 5432, "app"),
            Target::helm_release("east", "prod", "web"),
            Target::kube_namespace("", ""),
            Target::http_endpoint("DELETE", "https://api.example.com/v1/x"),
            Target::terraform_dir("/srv/tf", "drill"),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(
            shown,
            [
                "DNS app.example.com A in zone Z123",
                "S3 bucket prod-assets",
                "Azure container dr-assets at 127.0.0.1:10000 (account devstoreaccount1)",
                "database app on db.example.com:5432",
                "Helm release web in namespace prod (kube context east)",
                "Kubernetes namespace of the context (kube context current)",
                "HTTP DELETE api.example.com/v1/x",
                "Terraform in /srv/tf (workspace drill)",
            ]
        );
        let json = serde_json::to_value(Target::dns("Z1", "a.b", "TXT")).unwrap();
        assert_eq!(json, serde_json::json!({ "kind": "dns_record", "zone": "Z1", "name": "a.b", "type": "TXT" }));
        assert_eq!(serde_json::from_value::<Target>(json).unwrap(), Target::dns("Z1", "a.b", "TXT"));
    }
}
