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

pub use delete::{BlobDelete, BlobDeleteInput};
pub use get::{BlobGet, BlobGetInput};
pub use list::{BlobList, BlobListInput};
pub use put::{BlobPut, BlobPutInput};
pub use settings::AzureSettings;

use serde_json::Value;

use crate::Issue;

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
