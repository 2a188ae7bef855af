//! `storage.sync`: object storage to object storage — S3 to Azure Blob for the failover, Azure
//! Blob to S3 for the failback (S3 to S3 and Azure to Azure too) — concurrently, streaming,
//! incrementally and verifiably; and `storage.lag`: what a copy lacks of its source, measured.

mod lag;
pub(crate) mod side;
mod sync;
#[cfg(test)]
mod sync_spans;
mod write;

pub use lag::{StorageLag, StorageLagInput};
pub use sync::{StorageSync, StorageSyncInput};

use serde_json::Value;

use crate::Target;
use crate::azure::AzureSettings;

/// The bucket or container a URL (`s3://bucket/…`, `azblob://container/…`) writes to; an
/// Azure container at the endpoint and account `azure` (`with`'s `azure` settings, a JSON
/// object) resolves to. Nothing for a URL of another kind.
pub(crate) fn location_target(url: &str, azure: Option<&Value>) -> Option<Target> {
    let at = Location::parse(url.trim()).ok()?;
    Some(match at.kind {
        Kind::S3 => Target::s3_bucket(&at.root),
        Kind::Azure => {
            let settings: AzureSettings = azure.and_then(|a| serde_json::from_value(a.clone()).ok()).unwrap_or_default();
            settings.target(&at.root)
        }
    })
}

/// Where objects are: `s3://bucket/prefix` or `azblob://container/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) kind: Kind,
    /// The bucket or container.
    pub(crate) root: String,
    /// The key prefix, empty or ending in `/`.
    pub(crate) prefix: String,
}

/// Which service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    S3,
    Azure,
}

impl Location {
    pub(crate) fn parse(url: &str) -> Result<Location, String> {
        let (kind, rest) = if let Some(r) = url.strip_prefix("s3://") {
            (Kind::S3, r)
        } else if let Some(r) = url.strip_prefix("azblob://") {
            (Kind::Azure, r)
        } else {
            return Err(format!("`{url}` is neither `s3://bucket/prefix` nor `azblob://container/prefix`"));
        };
        let (root, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if root.is_empty() {
            return Err(format!("`{url}` names no bucket or container"));
        }
        let prefix = if prefix.is_empty() || prefix.ends_with('/') { prefix.to_string() } else { format!("{prefix}/") };
        Ok(Location { kind, root: root.to_string(), prefix })
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.kind {
            Kind::S3 => "s3",
            Kind::Azure => "azblob",
        };
        write!(f, "{scheme}://{}/{}", self.root, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let l = Location::parse("s3://prod-assets/img").unwrap();
        assert_eq!((l.kind, l.root.as_str(), l.prefix.as_str()), (Kind::S3, "prod-assets", "img/"));
        let l = Location::parse("azblob://dr").unwrap();
        assert_eq!((l.kind, l.root.as_str(), l.prefix.as_str()), (Kind::Azure, "dr", ""));
        assert!(Location::parse("gs://x").is_err());
        assert!(Location::parse("s3:///x").is_err());
    }

    #[test]
    fn a_sync_changes_its_destination_only() {
        let sync = crate::find("storage.sync").unwrap();
        let with = serde_json::json!({ "from": "azblob://prod-assets", "to": "s3://dr-assets/img", "azure": { "use_emulator": true } });
        assert_eq!(sync.targets(&with), vec![Target::s3_bucket("dr-assets")]);
        let with = serde_json::json!({ "from": "s3://prod-assets", "to": "azblob://dr-assets/img", "azure": { "use_emulator": true } });
        assert_eq!(
            sync.targets(&with),
            vec![Target::blob_container("http://127.0.0.1:10000/devstoreaccount1", "devstoreaccount1", "dr-assets")]
        );
        assert!(sync.targets(&serde_json::json!({ "from": "s3://a", "to": "gs://b" })).is_empty());
    }
}
