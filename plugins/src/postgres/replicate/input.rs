//! `postgres.replicate`'s `with`: the typed input, where the dump is staged (`via`), and the
//! checks `phoenix validate` runs on it before anything starts.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::super::{check_dsn_at, dsn, is_template};
use crate::duration::Dur;
use crate::{At, Issue};

/// `postgres.replicate`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplicateInput {
    /// The database copied from: `postgresql://user:password@host:5432/db` or
    /// `host=… user=… password=…` (usually a template of a secret).
    pub source: String,
    /// The database restored into (it must exist). Objects in the dump replace theirs
    /// (`pg_restore --clean --if-exists --no-owner`); other objects are left alone.
    pub target: String,
    /// Where the dump is staged: `{ file: PATH }` dumps to that file (kept) and restores from
    /// it; `s3://bucket/key` or `azblob://container/blob` uploads it there and restores from
    /// what the store holds; a list (`[s3://…, azblob://…]`) is the seed's path: each object
    /// is copied to the next, and the last one is restored. Without `via`, the dump streams
    /// straight into the restore.
    #[serde(default)]
    pub via: Option<Via>,
    /// S3's settings for staging (endpoint, region, credentials); default: the environment.
    #[serde(default)]
    pub s3: crate::aws::S3Settings,
    /// Azure's settings for staging (connection string, account…); default: the environment.
    #[serde(default)]
    pub azure: crate::azure::AzureSettings,
    /// Parallel jobs (default 1). Above 1, pg_dump writes the directory format into a
    /// temporary directory with this many jobs and pg_restore reads it with as many; with
    /// `via: { file }` only the restore runs in parallel.
    #[serde(default)]
    pub jobs: Option<u32>,
    /// Tables (`orders`, `sales.orders`, `'"Mixed"'`) whose rows are counted on both sides
    /// after the restore; a difference fails the step (retryable) naming the table and both counts.
    #[serde(default)]
    pub verify_tables: Vec<String>,
    /// Copy only these schemas (pg_dump `--schema` patterns).
    #[serde(default)]
    pub schemas: Vec<String>,
    /// Copy only these tables (pg_dump `--table` patterns).
    #[serde(default)]
    pub tables: Vec<String>,
    /// More pg_dump arguments, as an argv list (no shell): `[--exclude-table=audit_*, --no-comments]`.
    #[serde(default)]
    pub extra_args: Vec<String>,
    /// More pg_restore arguments, as an argv list (no shell): `[--no-privileges, --exit-on-error]`.
    #[serde(default)]
    pub restore_args: Vec<String>,
    /// The directory holding pg_dump and pg_restore; else the first directory on `$PATH` with
    /// both, else the newest `/usr/lib/postgresql/*/bin`.
    #[serde(default)]
    pub pg_bin: Option<String>,
    /// How long each connection may take to open (default 5s, else the DSN's own
    /// `connect_timeout`); also given to pg_dump and pg_restore.
    #[serde(default)]
    pub connect_timeout: Option<Dur>,
    /// With a dump on disk (`jobs` > 1, or `via: { file }`): how old a dump that an earlier
    /// attempt of this step finished (pg_dump exited 0) may be for a retry or a resume to
    /// restore it instead of dumping again (default 30m; `0s` always dumps again). Outputs
    /// `dump_reused` and `snapshot_at` say which dump the target holds.
    #[serde(default)]
    pub reuse_dump: Option<Dur>,
}

/// `reuse_dump` when it is not given.
pub(crate) const REUSE_DUMP: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Where the dump is staged between pg_dump and pg_restore.
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum Via {
    /// A file on this machine.
    File(ViaFile),
    /// Object storage: `s3://bucket/key` or `azblob://container/blob`.
    Url(String),
    /// Objects the dump passes through in turn: `[s3://…, azblob://…]`.
    Urls(Vec<String>),
}

/// `via: { file: PATH }`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ViaFile {
    /// The dump file (custom format), relative to the working directory; written as
    /// `PATH.partial` (mode 0600) and renamed once complete; kept after the restore.
    pub file: String,
}

/// Read by hand so that a wrong `via` gets a sentence, not "did not match any variant".
impl<'de> Deserialize<'de> for Via {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match v {
            Value::String(s) => Ok(Via::Url(s)),
            Value::Array(a) => a
                .into_iter()
                .map(|x| x.as_str().map(str::to_string).ok_or_else(|| serde::de::Error::custom("`via` lists URLs (text)")))
                .collect::<Result<_, _>>()
                .map(Via::Urls),
            Value::Object(_) => serde_json::from_value(v).map(Via::File).map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!("`via` is `{{ file: PATH }}`, a URL or a list of URLs, not `{other}`"))),
        }
    }
}

/// Object storage that could hold the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Store {
    S3,
    AzureBlob,
}

/// `s3://bucket/key` or `azblob://container/blob`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectUrl {
    pub(crate) store: Store,
    pub(crate) bucket: String,
    pub(crate) key: String,
}

impl std::fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.store {
            Store::S3 => "s3",
            Store::AzureBlob => "azblob",
        };
        write!(f, "{scheme}://{}/{}", self.bucket, self.key)
    }
}

/// Where a run puts the dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Staging {
    /// Straight from pg_dump into pg_restore, through Phoenix (custom format).
    Stream,
    /// A temporary directory under the run's work_dir (directory format), removed after.
    Directory,
    /// A file that is kept (custom format).
    File(PathBuf),
    /// Objects in object storage, in the order the dump passes through them.
    Object(Vec<ObjectUrl>),
}

impl Via {
    /// The staging this `via` asks for, or why it cannot be read.
    pub(crate) fn staging(&self) -> Result<Staging, String> {
        match self {
            Via::File(f) if f.file.trim().is_empty() => Err("`via.file` is empty".into()),
            Via::File(f) => Ok(Staging::File(PathBuf::from(&f.file))),
            Via::Url(url) => parse_url(url).map(|u| Staging::Object(vec![u])),
            Via::Urls(urls) if urls.is_empty() => Err("`via` lists no URL".into()),
            Via::Urls(urls) => urls.iter().map(|u| parse_url(u)).collect::<Result<_, _>>().map(Staging::Object),
        }
    }
}

fn parse_url(url: &str) -> Result<ObjectUrl, String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!("`{url}` is not a staging URL: write `via: {{ file: {url} }}` to stage the dump in a file"));
    };
    let store = match scheme {
        "s3" => Store::S3,
        "azblob" => Store::AzureBlob,
        other => {
            return Err(format!("`{other}://` is not a staging scheme: use `s3://`, `azblob://` or `via: {{ file: PATH }}`"));
        }
    };
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() || key.trim_matches('/').is_empty() {
        return Err(format!("`{url}` needs a bucket (or container) and an object name: `{scheme}://bucket/path/db.dump`"));
    }
    Ok(ObjectUrl { store, bucket: bucket.to_string(), key: key.to_string() })
}

impl ReplicateInput {
    /// How this run stages the dump; the refusals a rendered input can still hit.
    pub(crate) fn staging(&self) -> Result<Staging, String> {
        if self.jobs == Some(0) {
            return Err("`jobs` must be at least 1".into());
        }
        for (key, list) in self.lists() {
            if list.iter().any(|t| t.trim().is_empty()) {
                return Err(format!("`{key}` holds an empty name"));
            }
        }
        for (key, args, tool) in [("extra_args", &self.extra_args, Tool::Dump), ("restore_args", &self.restore_args, Tool::Restore)] {
            if let Some(why) = args.iter().find_map(|a| reserved(a, tool)) {
                return Err(format!("`{key}`: {why}"));
            }
        }
        match &self.via {
            Some(via) => via.staging(),
            None if self.jobs.unwrap_or(1) > 1 => Ok(Staging::Directory),
            None => Ok(Staging::Stream),
        }
    }

    /// The lists of names, by key.
    fn lists(&self) -> [(&'static str, &Vec<String>); 3] {
        [("verify_tables", &self.verify_tables), ("schemas", &self.schemas), ("tables", &self.tables)]
    }
}

/// Which program an argument list goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Dump,
    Restore,
}

/// Why an extra argument cannot be given (the action sets it, or it would break the copy).
fn reserved(arg: &str, tool: Tool) -> Option<String> {
    let connection = [("--dbname", "-d"), ("--host", "-h"), ("--port", "-p"), ("--username", "-U")];
    let is =
        |long: &str, short: &str| arg == long || arg.starts_with(&format!("{long}=")) || (!arg.starts_with("--") && arg.starts_with(short));
    if connection.iter().any(|(l, s)| is(l, s)) {
        let from = if tool == Tool::Dump { "source" } else { "target" };
        return Some(format!("`{arg}`: the connection comes from `{from}`"));
    }
    if is("--password", "-W") {
        return Some(format!("`{arg}` would wait for a password at a prompt: put the password in the DSN (a secret)"));
    }
    if is("--jobs", "-j") {
        return Some(format!("`{arg}`: set `jobs` instead"));
    }
    if is("--format", "-F") || is("--file", "-f") {
        return Some(format!("`{arg}`: postgres.replicate chooses the format and file (see `via` and `jobs`)"));
    }
    if tool == Tool::Restore && is("--list", "-l") {
        return Some(format!("`{arg}` would list the archive instead of restoring it"));
    }
    None
}

/// The checks `phoenix validate` runs on the unrendered `with` (templates are skipped).
pub(crate) fn check(with: &Value) -> Vec<Issue> {
    let mut issues = check_dsn_at(with, "source");
    issues.extend(check_dsn_at(with, "target"));
    if let (Some(s), Some(t)) = (literal(with, "source"), literal(with, "target")) {
        if let (Ok(s), Ok(t)) = (dsn::Dsn::parse(s), dsn::Dsn::parse(t)) {
            if same_database(&s, &t) {
                issues.push(
                    Issue::at("target", same_message(&t)).help("`target` must be another database: the restore drops what it replaces"),
                );
            }
        }
    }
    if with.get("jobs").and_then(Value::as_u64) == Some(0) {
        issues.push(
            Issue::at("jobs", "`jobs` must be at least 1")
                .help("1 streams pg_dump into pg_restore; 2 or more dump and restore in parallel through a temporary directory"),
        );
    }
    for key in ["verify_tables", "schemas", "tables"] {
        for (i, item) in with.get(key).and_then(Value::as_array).into_iter().flatten().enumerate() {
            if item.as_str().is_some_and(|s| s.trim().is_empty()) {
                issues.push(Issue {
                    at: vec![At::Key(key.into()), At::Index(i)],
                    message: format!("an empty name in `{key}`"),
                    help: None,
                });
            }
        }
    }
    for (key, tool) in [("extra_args", Tool::Dump), ("restore_args", Tool::Restore)] {
        for (i, arg) in with.get(key).and_then(Value::as_array).into_iter().flatten().enumerate() {
            if let Some(why) = arg.as_str().filter(|a| !is_template(a)).and_then(|a| reserved(a, tool)) {
                issues.push(Issue { at: vec![At::Key(key.into()), At::Index(i)], message: why, help: None });
            }
        }
    }
    if let Some(via) = with.get("via").filter(|v| !v.is_null()) {
        issues.extend(check_via(via));
    }
    if literal(with, "pg_bin").is_some_and(|p| p.trim().is_empty()) {
        issues.push(Issue::at("pg_bin", "`pg_bin` is empty").help("a directory such as /usr/lib/postgresql/16/bin, or leave it out"));
    }
    issues
}

fn check_via(via: &Value) -> Vec<Issue> {
    if via.to_string().contains("{{") {
        return vec![];
    }
    let Ok(via) = serde_json::from_value::<Via>(via.clone()) else { return vec![] }; // the schema reports it
    match via.staging() {
        Ok(_) => vec![],
        Err(e) => vec![Issue::at("via", e)],
    }
}

fn literal<'a>(with: &'a Value, key: &str) -> Option<&'a str> {
    with.get(key).and_then(Value::as_str).filter(|s| !is_template(s))
}

/// Whether two DSNs name the same database on the same server (as written: `localhost` and
/// `127.0.0.1` are not compared).
pub(crate) fn same_database(a: &dsn::Dsn, b: &dsn::Dsn) -> bool {
    let place = |d: &dsn::Dsn| d.described.split_once('@').map_or(d.described.clone(), |(_, p)| p.to_string());
    place(a) == place(b)
}

pub(crate) fn same_message(target: &dsn::Dsn) -> String {
    format!("`source` and `target` are the same database ({}): the restore would drop what it copies", target.described)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input(with: Value) -> ReplicateInput {
        let mut base = json!({ "source": "postgresql://u@a/db", "target": "postgresql://u@b/db" });
        base.as_object_mut().unwrap().extend(with.as_object().unwrap().clone());
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn staging_follows_via_and_jobs() {
        assert_eq!(input(json!({})).staging(), Ok(Staging::Stream));
        assert_eq!(input(json!({ "jobs": 1 })).staging(), Ok(Staging::Stream));
        assert_eq!(input(json!({ "jobs": 4 })).staging(), Ok(Staging::Directory));
        assert_eq!(input(json!({ "via": { "file": "x.dump" }, "jobs": 4 })).staging(), Ok(Staging::File("x.dump".into())));
        let s3 = input(json!({ "via": "s3://backups/db/prod.dump" })).staging().unwrap();
        let Staging::Object(urls) = s3 else { panic!("{s3:?}") };
        assert_eq!((urls[0].store, urls[0].bucket.as_str(), urls[0].key.as_str()), (Store::S3, "backups", "db/prod.dump"));
        let seed = input(json!({ "via": ["s3://backups/prod.dump", "azblob://dumps/prod.dump"] })).staging().unwrap();
        let Staging::Object(hops) = seed else { panic!("{seed:?}") };
        assert_eq!(hops.iter().map(ToString::to_string).collect::<Vec<_>>(), ["s3://backups/prod.dump", "azblob://dumps/prod.dump"]);
    }

    #[test]
    fn bad_staging_is_explained() {
        for (with, says) in [
            (json!({ "jobs": 0 }), "at least 1"),
            (json!({ "via": "gs://b/k" }), "`gs://` is not a staging scheme"),
            (json!({ "via": "/tmp/db.dump" }), "via: { file: /tmp/db.dump }"),
            (json!({ "via": "s3://bucket" }), "needs a bucket"),
            (json!({ "via": { "file": " " } }), "`via.file` is empty"),
            (json!({ "verify_tables": ["orders", ""] }), "`verify_tables` holds an empty name"),
            (json!({ "extra_args": ["-Fd"] }), "chooses the format"),
            (json!({ "restore_args": ["--dbname=x"] }), "comes from `target`"),
        ] {
            let err = input(with.clone()).staging().unwrap_err();
            assert!(err.contains(says), "{with}: {err}");
        }
        let via: Result<ReplicateInput, _> = serde_json::from_value(json!({ "source": "", "target": "", "via": 3 }));
        assert!(via.unwrap_err().to_string().contains("`via` is `{ file: PATH }`, a URL or a list of URLs"));
    }

    #[test]
    fn reserved_arguments_name_what_to_do_instead() {
        assert!(reserved("--no-comments", Tool::Dump).is_none());
        assert!(reserved("--exclude-table=audit_*", Tool::Dump).is_none());
        assert!(reserved("-n", Tool::Dump).is_none());
        assert!(reserved("--host=db", Tool::Dump).unwrap().contains("`source`"));
        assert!(reserved("-j4", Tool::Restore).unwrap().contains("`jobs`"));
        assert!(reserved("-W", Tool::Dump).unwrap().contains("prompt"));
        assert!(reserved("--list", Tool::Restore).is_some());
        assert!(reserved("--list", Tool::Dump).is_none());
    }

    #[test]
    fn check_reports_each_problem_where_it_is() {
        let with = json!({
            "source": "postgresql://u:pw@db:5432/app",
            "target": "postgresql://other@db:5432/app",
            "jobs": 0,
            "verify_tables": ["orders", " "],
            "extra_args": ["--format=plain"],
            "via": "ftp://x/y",
        });
        let issues = check(&with);
        let keys: Vec<String> = issues.iter().map(|i| format!("{:?}", i.at)).collect();
        assert_eq!(issues.len(), 5, "{issues:#?}");
        assert!(issues[0].message.contains("same database"), "{issues:#?}");
        assert!(keys.iter().any(|k| k.contains("verify_tables") && k.contains("Index(1)")), "{keys:?}");
        let templated =
            json!({ "source": "{{ secrets.a }}", "target": "{{ secrets.b }}", "via": "{{ vars.via }}", "jobs": "{{ params.jobs }}" });
        assert!(check(&templated).is_empty());
    }
}
