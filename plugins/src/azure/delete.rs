//! `azure_blob.delete`: deletes named blobs, or every blob under a prefix, with their snapshots.
//!
//! A blob that is already gone counts as `missing`, not as a failure: a retried or resumed
//! step finishes the job instead of failing on what its first attempt did.

use futures::{StreamExt, TryStreamExt, stream};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::list::list_all;
use super::session::{Session, error_code};
use super::settings::AzureSettings;
use super::{check_common, names};
use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, At, Capabilities, Effect, Field, Issue, Kind, Plugin, Stream, Target};

/// Deletes blobs.
pub struct BlobDelete;

/// `azure_blob.delete`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct BlobDeleteInput {
    /// The container.
    pub container: String,
    /// The blobs to delete, by name; or `prefix`.
    #[serde(default)]
    pub names: Option<Vec<String>>,
    /// Delete every blob whose name starts with this (not empty); or `names`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// How long each call to Azure may take (default 30s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Which account, and how to authenticate.
    #[serde(flatten)]
    pub azure: AzureSettings,
}

/// How many deletes are in flight at once.
const CONCURRENCY: usize = 8;

impl Plugin for BlobDelete {
    type Input = BlobDeleteInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "azure_blob.delete",
            summary: "Deletes blobs (with their snapshots) from an Azure Blob Storage container, by name or under a prefix.",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "deleted", doc: "how many blobs were deleted" },
                Field { name: "names", doc: "the names deleted, sorted" },
                Field { name: "missing", doc: "names given in `names` that were not there, sorted" },
                Field { name: "container", doc: "the container" },
            ],
            caps: Capabilities { probe: false, effect: Effect::Idempotent, general: false, spawns: false, network: true },
            example: "drop_stale_exports:\n  uses: azure_blob.delete\n  with:\n    connection_string: \"{{ secrets.dr_storage }}\"\n    container: dr-exports\n    prefix: \"tmp/\"",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = check_common(with);
        let has = |k: &str| with.get(k).is_some_and(|v| !v.is_null());
        match (has("names"), has("prefix")) {
            (true, true) => issues.push(Issue::at("prefix", "`azure_blob.delete` takes `names` or `prefix`, not both")),
            (false, false) => issues.push(Issue::at("", "`azure_blob.delete` needs `names` (a list) or `prefix`")),
            _ => {}
        }
        if with.get("prefix").and_then(Value::as_str) == Some("") {
            issues.push(empty_prefix());
        }
        if let Some(list) = with.get("names").and_then(Value::as_array) {
            for (i, n) in list.iter().enumerate() {
                if let Some(Err(e)) = n.as_str().map(|n| names::blob("names[]", n)) {
                    issues.push(Issue { at: vec![At::Key("names".into()), At::Index(i)], message: e, help: None });
                }
            }
        }
        issues
    }

    fn targets(&self, with: &Value) -> Vec<Target> {
        super::container_target(with)
    }
    fn targets_doc(&self) -> &'static str {
        "the container, with the endpoint's host and the account the settings resolve to"
    }

    fn plan(&self, with: &Value) -> String {
        let container = with.get("container").and_then(Value::as_str).unwrap_or("?");
        match (with.get("names").and_then(Value::as_array), with.get("prefix").and_then(Value::as_str)) {
            (Some(list), _) => format!("delete {} blob(s) from Azure container {container}", list.len()),
            (None, Some(p)) => format!("delete every blob under {p} in Azure container {container}"),
            _ => format!("delete blobs from Azure container {container}"),
        }
    }

    async fn run(&self, ctx: &ActionCtx, input: BlobDeleteInput) -> Result<Value, ActionError> {
        names::container(&input.container).map_err(ActionError::Input)?;
        let session = Session::open(&input.azure, input.timeout)?;
        let container = input.container.as_str();
        let targets: Vec<String> = match (input.names, input.prefix) {
            (Some(list), None) => {
                for n in &list {
                    names::blob("names[]", n).map_err(ActionError::Input)?;
                }
                list
            }
            (None, Some(prefix)) if prefix.is_empty() => return Err(ActionError::Input(empty_prefix().message)),
            (None, Some(prefix)) => {
                list_all(ctx, &session, container, Some(&prefix), None, None).await?.blobs.into_iter().map(|b| b.name).collect()
            }
            _ => return Err(ActionError::Input("`azure_blob.delete` takes one of `names` and `prefix`".into())),
        };

        let session = &session;
        let results: Vec<(String, bool)> = stream::iter(targets.into_iter().map(|name| async move {
            let what = format!("deleting blob {name} from container {container}");
            let blob = session.container(container).blob_client(&name);
            match session.call(ctx, &what, blob.delete().into_future()).await? {
                Ok(_) => Ok((name, true)),
                Err(e) if error_code(&e) == Some("BlobNotFound") => Ok((name, false)),
                Err(e) => Err(session.failed(&what, &e)),
            }
        }))
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;

        let (mut deleted, mut missing): (Vec<String>, Vec<String>) = (vec![], vec![]);
        for (name, was_there) in results {
            if was_there { deleted.push(name) } else { missing.push(name) }
        }
        deleted.sort();
        missing.sort();
        ctx.log(Stream::Info, format!("{container}: deleted {} blob(s), {} already gone", deleted.len(), missing.len()));
        Ok(json!({ "container": container, "deleted": deleted.len(), "names": deleted, "missing": missing }))
    }
}

fn empty_prefix() -> Issue {
    Issue::at("prefix", "`prefix` is empty: it would delete every blob in the container")
        .help("name a prefix (`exports/`), or list the blobs to delete in `names`")
}
