//! What a drill must not touch: the targets of its mutating steps, as resolved for the
//! drill, checked against the runbook's `protect` list and against what the same steps
//! resolve to without the drill's overlay (production). Pure: it looks nothing up.
//!
//! Matching (see docs/runbooks.md, "What a drill must not touch"):
//! - against production, targets are compared whole ([`Target`]'s constructors already put
//!   names in one spelling: DNS names in lower case without the final dot, and so on);
//! - against `protect`, an entry is read in one spelling (trimmed, lower case, without a final
//!   `.` or `/`) and compared with every spelling of a target: a DNS name; a bucket
//!   (`prod-assets`, `s3://prod-assets`); a container (`dr-assets`, `azblob://dr-assets`,
//!   `ACCOUNT/dr-assets`); a database (`host/db` for any port, `host:port/db`, or a whole DSN,
//!   whose password is never shown); a release (`namespace/release`,
//!   `context/namespace/release`); a namespace (`namespace`, `context/namespace`; `kubectl -A`
//!   changes every namespace, so any entry that could name one matches it); a Terraform
//!   directory (its absolute path, or one starting with `./` or `../` from where phoenix
//!   runs); an HTTP endpoint (`host`,
//!   `host/path`). Case is ignored everywhere, so a database or a path that differs from a
//!   protected one only in case is refused too: the mistake is on the safe side.
//! - Hosts match exactly as written: `localhost` is not `127.0.0.1`, and no name is resolved
//!   (what a name resolves to may change, and a check that looked it up would not be pure).
//!   Write `protect` in the spelling the runbook's production params use; the comparison with
//!   production uses the runbook's own spelling, so an overlay that forgot to change a DSN is
//!   caught whatever the spelling.

use std::fmt;

use phoenix_plugins::Target;

/// The targets one step changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepTargets {
    /// The step's id (with `[i]` for a `for_each` item).
    pub step: String,
    /// What it changes.
    pub targets: Vec<Target>,
}

/// Why a drill may not touch a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// An entry of `protect` names it; `entry` is the spelling that matched (a DSN's
    /// `host:port/db`, never the DSN itself).
    Protected {
        /// The spelling of the entry that matched.
        entry: String,
    },
    /// Production's resolution of a step (`step`) changes the same target.
    Production {
        /// The step whose production target it is.
        step: String,
    },
}

/// A target of a drill step that the drill must not touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    /// The drill's step.
    pub step: String,
    /// What it would change.
    pub target: Target,
    /// Why it must not.
    pub why: Why,
}

impl fmt::Display for Collision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.why {
            Why::Protected { entry } => write!(f, "step `{}` would change {}, which is in `protect` (`{entry}`)", self.step, self.target),
            Why::Production { step } if *step == self.step => {
                write!(f, "step `{}` would change {}, which is what production resolves to", self.step, self.target)
            }
            Why::Production { step } => {
                write!(f, "step `{}` would change {}, which is what production resolves to (in step `{step}`)", self.step, self.target)
            }
        }
    }
}

/// Every target of `drill` that is in `protect` or that a step of `production` changes, in
/// the order of `drill`'s steps and targets; empty when the drill may run. `protect` is the
/// rendered list (it may hold a secret DSN: only its `host:port/db` is ever reported).
pub fn collisions(drill: &[StepTargets], production: &[StepTargets], protect: &[String]) -> Vec<Collision> {
    let entries: Vec<String> = protect.iter().flat_map(|e| spellings_of_entry(e)).filter(|e| !e.is_empty()).collect();
    let mut out = Vec::new();
    for step in drill {
        for target in &step.targets {
            let names = spellings(target);
            if let Some(entry) = entries.iter().find(|e| names.contains(e) || every_namespace_holds(target, e)) {
                out.push(Collision { step: step.step.clone(), target: target.clone(), why: Why::Protected { entry: entry.clone() } });
            }
            if let Some(prod) = production.iter().find(|p| p.targets.contains(target)) {
                out.push(Collision { step: step.step.clone(), target: target.clone(), why: Why::Production { step: prod.step.clone() } });
            }
        }
    }
    out
}

/// One spelling: trimmed, lower case, without a final `.` or `/`.
fn norm(text: &str) -> String {
    text.trim().trim_end_matches(['.', '/']).to_lowercase()
}

/// What an entry of `protect` may be spelled as: a DSN becomes `host:port/db` for each of
/// its hosts (never the DSN: it may hold a password); a path is made absolute as a Terraform
/// directory would be; anything else is itself.
fn spellings_of_entry(entry: &str) -> Vec<String> {
    let e = entry.trim();
    let dsn = e.starts_with("postgres://") || e.starts_with("postgresql://") || (e.contains('=') && e.contains("dbname"));
    if dsn {
        return phoenix_plugins::postgres::dsn_targets(e)
            .iter()
            .filter_map(|t| match t {
                Target::Database { host, port, dbname } => Some(norm(&format!("{host}:{port}/{dbname}"))),
                _ => None,
            })
            .collect();
    }
    let mut out = vec![norm(e)];
    if e.starts_with('/') || e.starts_with("./") || e.starts_with("../") {
        if let Target::TerraformDir { dir, .. } = Target::terraform_dir(e, "") {
            out.push(norm(&dir));
        }
    }
    out
}

/// Whether `target` changes every namespace of a context (`kubectl … -A`) and `entry` could
/// name a namespace of it: a bare DNS label (`prod`), or `context/label` of that context.
/// (A bucket named like a namespace refuses too: on the safe side.)
fn every_namespace_holds(target: &Target, entry: &str) -> bool {
    let Target::KubeNamespace { context, namespace } = target else { return false };
    let label = |s: &str| !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    namespace == "*"
        && match entry.split_once('/') {
            None => label(entry),
            Some((ctx, ns)) => ctx == norm(context) && label(ns),
        }
}

/// Every spelling of a target that an entry of `protect` may use.
fn spellings(target: &Target) -> Vec<String> {
    let joined = |parts: &[&str]| norm(&parts.join("/"));
    match target {
        Target::DnsRecord { name, .. } => vec![norm(name)],
        Target::S3Bucket { bucket } => vec![norm(bucket), norm(&format!("s3://{bucket}"))],
        Target::BlobContainer { account, container, .. } => {
            let mut v = vec![norm(container), norm(&format!("azblob://{container}"))];
            if !account.is_empty() {
                v.push(joined(&[account, container]));
            }
            v
        }
        Target::Database { host, port, dbname } => vec![norm(&format!("{host}:{port}/{dbname}")), joined(&[host, dbname])],
        Target::HelmRelease { context, namespace, release } => {
            let mut v = vec![joined(&[namespace, release])];
            if !context.is_empty() {
                v.push(joined(&[context, namespace, release]));
            }
            v
        }
        Target::KubeNamespace { context, namespace } => {
            let mut v = vec![norm(namespace)];
            if !context.is_empty() {
                v.push(joined(&[context, namespace]));
            }
            v.retain(|s| !s.is_empty());
            v
        }
        Target::TerraformDir { dir, .. } => vec![norm(dir)],
        Target::HttpEndpoint { host, path, .. } => vec![norm(host), norm(&format!("{host}{path}"))],
    }
}

#[cfg(test)]
#[path = "protect_tests.rs"]
mod tests;
