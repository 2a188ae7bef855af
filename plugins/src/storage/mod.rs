//! `storage.sync`: object storage to object storage — S3 to Azure Blob for the failover, Azure
//! Blob to S3 for the failback (S3 to S3 and Azure to Azure too) — concurrently, streaming,
//! incrementally and verifiably.

pub(crate) mod side;
mod sync;
mod write;

pub use sync::{StorageSync, StorageSyncInput};

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
}
