//! `azure_blob.*`: Azure Blob Storage through the Azure SDK for Rust (azure_storage_blobs 0.21).
//!
//! Every action takes the same connection settings ([`AzureSettings`]), flattened into its
//! `with`; what is not set comes from the standard environment
//! (`AZURE_STORAGE_CONNECTION_STRING`, then `AZURE_STORAGE_ACCOUNT` with `AZURE_STORAGE_KEY` or
//! `AZURE_STORAGE_SAS_TOKEN`) as Azure's tools read it.

mod connection;
mod connection_string;
mod delete;
mod get;
mod list;
mod names;
mod put;
pub(crate) mod session;
mod settings;
mod traced;

pub use delete::{BlobDelete, BlobDeleteInput};
pub use get::{BlobGet, BlobGetInput};
pub use list::{BlobList, BlobListInput};
pub use put::{BlobPut, BlobPutInput};
pub use settings::AzureSettings;

use serde_json::Value;

use crate::{Issue, Target};

/// Checks shared by every action: the settings, and `container` by Azure's naming rules.
fn check_common(with: &Value) -> Vec<Issue> {
    let mut issues = settings::check(with);
    match with.get("container").and_then(Value::as_str) {
        Some(c) if c.contains("{{") => {}
        Some(c) => {
            if let Err(e) = names::container(c) {
                issues.push(Issue::at("container", e).help(names::CONTAINER_RULES));
            }
        }
        None => {}
    }
    issues
}

/// The container a put or a delete changes, at the endpoint and account its settings
/// resolve to (from `with` over the environment), from its rendered `with`.
fn container_target(with: &Value) -> Vec<Target> {
    let Some(container) = with.get("container").and_then(Value::as_str).filter(|c| !c.trim().is_empty()) else { return vec![] };
    let settings: AzureSettings = serde_json::from_value(with.clone()).unwrap_or_default();
    vec![settings.target(container)]
}

/// An MD5 digest as Azure shows it (`Content-MD5`: base64).
fn md5_base64(md5: &[u8]) -> String {
    azure_core::base64::encode(md5)
}

/// A blob's URL, percent-encoded (the SDK adds a SAS only to requests, never here).
fn url_of(blob: &azure_storage_blobs::prelude::BlobClient) -> Option<String> {
    blob.url().ok().map(String::from)
}

/// An ETag without the quotes HTTP puts around it (list answers have none; headers do).
fn etag(raw: &str) -> String {
    raw.trim_matches('"').to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_target_is_the_container_at_its_endpoint_without_the_key() {
        let key = "c2VjcmV0LWtleS1mb3ItdGVzdHM=";
        let cs = format!("AccountName=dr;AccountKey={key};BlobEndpoint=http://127.0.0.1:10000/dr");
        let with = json!({ "connection_string": cs, "container": "dr-assets", "name": "x", "body": "y" });
        for name in ["azure_blob.put", "azure_blob.delete"] {
            let targets = crate::find(name).unwrap().targets(&with);
            assert_eq!(targets, vec![Target::blob_container("http://127.0.0.1:10000/dr", "dr", "dr-assets")], "{name}");
            let shown = format!("{} {:?} {}", targets[0], targets[0], serde_json::to_string(&targets[0]).unwrap());
            assert!(!shown.contains(key) && !shown.contains("c2VjcmV0"), "{shown}");
        }
        let with = json!({ "use_emulator": true, "container": "c1" });
        assert_eq!(container_target(&with)[0].to_string(), "Azure container c1 at 127.0.0.1:10000 (account devstoreaccount1)");
    }
}
