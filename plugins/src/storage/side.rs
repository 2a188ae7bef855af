//! One side of a sync: an S3 bucket or an Azure container under a prefix. Lists what is there,
//! reads an object as a stream of chunks, deletes; writing is in `write.rs`.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};

use super::{Kind, Location};
use crate::aws::S3Settings;
use crate::azure::AzureSettings;
use crate::azure::session::Session;
use crate::duration::Dur;
use crate::{ActionCtx, ActionError};

/// Where the source's identity is kept on a copy, to know next time that it is current.
/// (Azure metadata names are C# identifiers: no dashes.)
pub(super) const TAG_S3: &str = "phoenix-source-etag";
pub(super) const TAG_AZURE: &str = "phoenix_source_etag";
/// S3 parts (multipart uploads need at least 5 MiB but the last).
pub(super) const S3_PART: usize = 8 << 20;
/// Azure blocks.
pub(super) const AZURE_BLOCK: usize = 4 << 20;
/// Objects up to this size are written in one request (fewer round trips than blocks).
pub(super) const SINGLE_PUT: usize = 8 << 20;

/// An object as a listing shows it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) size: u64,
    /// The service's ETag, unquoted.
    pub(crate) etag: String,
    /// The content's MD5 when the listing tells it (Azure Content-MD5, a single-part S3 ETag).
    pub(crate) md5: Option<[u8; 16]>,
    /// The ETag of the source this object was copied from, when the listing tells it.
    pub(crate) source_tag: Option<String>,
    /// When the service last wrote it, in milliseconds since the Unix epoch (its clock).
    pub(crate) modified_ms: Option<i64>,
}

/// Chunks of an object's content.
pub(crate) type Chunks = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

pub(crate) enum Side {
    S3 { client: aws_sdk_s3::Client, at: Location },
    Azure { session: Session, at: Location },
}

fn hex_md5(etag: &str) -> Option<[u8; 16]> {
    if etag.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&etag[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl Side {
    /// The side at `url` (`s3://…` or `azblob://…`), with its service's settings.
    pub(crate) async fn open(url: &str, s3: &S3Settings, azure: &AzureSettings, timeout: Duration) -> Result<Side, ActionError> {
        let at = Location::parse(url).map_err(ActionError::Input)?;
        Ok(match at.kind {
            Kind::S3 => Side::S3 { client: s3.client(timeout).await.map_err(ActionError::Input)?, at },
            Kind::Azure => Side::Azure { session: Session::open(azure, Some(Dur(timeout)))?, at },
        })
    }

    /// Whether this side (the destination) holds `dst`, a current copy of the source's
    /// `src`: the same size, and the source's ETag recorded on it at the copy, or the same MD5.
    pub(crate) async fn has_current(&self, key: &str, src: &Entry, dst: Option<&Entry>) -> bool {
        let Some(dst) = dst else { return false };
        if dst.size != src.size {
            return false;
        }
        if dst.source_tag.as_deref() == Some(src.etag.as_str()) {
            return true;
        }
        if src.md5.is_some() && dst.md5 == src.md5 {
            return true;
        }
        // S3 listings carry no metadata: ask for the tag of a same-size object.
        self.kind() == Kind::S3 && dst.source_tag.is_none() && self.source_tag(key).await.as_deref() == Some(src.etag.as_str())
    }

    pub(crate) fn at(&self) -> &Location {
        match self {
            Side::S3 { at, .. } | Side::Azure { at, .. } => at,
        }
    }

    pub(super) fn full(&self, key: &str) -> String {
        format!("{}{key}", self.at().prefix)
    }

    /// Every object under the prefix, by key relative to it.
    pub(crate) async fn list(&self, ctx: &ActionCtx) -> Result<BTreeMap<String, Entry>, String> {
        let at = self.at();
        let mut out = BTreeMap::new();
        match self {
            Side::S3 { client, .. } => {
                let mut pages = client.list_objects_v2().bucket(&at.root).prefix(&at.prefix).into_paginator().send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| format!("listing {at} failed: {}", crate::aws::describe(&e)))?;
                    for o in page.contents() {
                        let (Some(key), Some(size)) = (o.key(), o.size()) else { continue };
                        let etag = o.e_tag().unwrap_or_default().trim_matches('"').to_string();
                        let rel = key.strip_prefix(&at.prefix).unwrap_or(key).to_string();
                        let modified_ms = o.last_modified().and_then(|t| t.to_millis().ok());
                        out.insert(rel, Entry { size: size.max(0) as u64, md5: hex_md5(&etag), etag, source_tag: None, modified_ms });
                    }
                }
            }
            Side::Azure { session, .. } => {
                let mut request = session.container(&at.root).list_blobs().include_metadata(true);
                if !at.prefix.is_empty() {
                    request = request.prefix(at.prefix.clone());
                }
                let mut pages = request.into_stream();
                let what = format!("listing {at}");
                while let Some(page) =
                    session.call_ok(ctx, &what, async { pages.next().await.transpose() }).await.map_err(|e| e.to_string())?
                {
                    for b in page.blobs.blobs() {
                        let rel = b.name.strip_prefix(&at.prefix).unwrap_or(&b.name).to_string();
                        let md5 = b.properties.content_md5.as_ref().map(|m| *m.as_slice());
                        let source_tag = b.metadata.as_ref().and_then(|m| m.get(TAG_AZURE)).cloned();
                        let modified_ms = i64::try_from(b.properties.last_modified.unix_timestamp_nanos() / 1_000_000).ok();
                        let (size, etag) = (b.properties.content_length, b.properties.etag.to_string());
                        out.insert(rel, Entry { size, etag, md5, source_tag, modified_ms });
                    }
                }
            }
        }
        Ok(out)
    }

    /// Makes the destination ready: an Azure container is created when missing (as rclone
    /// does); an S3 bucket must exist (creating one is a decision about region and policy).
    pub(crate) async fn prepare(&self, ctx: &ActionCtx) -> Result<(), String> {
        if let Side::Azure { session, at } = self {
            let what = format!("creating container {}", at.root);
            match session.call(ctx, &what, session.container(&at.root).create().into_future()).await.map_err(|e| e.to_string())? {
                Ok(_) => ctx.log(crate::Stream::Info, format!("created container {}", at.root)),
                Err(e) if crate::azure::session::error_code(&e) == Some("ContainerAlreadyExists") => {}
                Err(e) => return Err(session.failed(&what, &e).to_string()),
            }
        }
        Ok(())
    }

    /// The source tag kept on an object, when the listing does not show it (S3).
    pub(crate) async fn source_tag(&self, key: &str) -> Option<String> {
        match self {
            Side::S3 { client, at } => {
                let head = client.head_object().bucket(&at.root).key(self.full(key)).send().await.ok()?;
                head.metadata().and_then(|m| m.get(TAG_S3)).cloned()
            }
            Side::Azure { .. } => None,
        }
    }

    /// The object's content as chunks.
    pub(crate) async fn read(&self, key: &str) -> Result<Chunks, String> {
        let full = self.full(key);
        match self {
            Side::S3 { client, at } => {
                let out = client
                    .get_object()
                    .bucket(&at.root)
                    .key(&full)
                    .send()
                    .await
                    .map_err(|e| format!("reading s3://{}/{full} failed: {}", at.root, crate::aws::describe(&e)))?;
                let body = out.body;
                Ok(Box::pin(futures::stream::unfold(body, |mut body| async move {
                    body.next().await.map(|r| (r.map_err(|e| format!("reading failed: {e}")), body))
                })))
            }
            Side::Azure { session, at } => {
                let blob = session.container(&at.root).blob_client(&full);
                let pages = blob.get().chunk_size(AZURE_BLOCK as u64).into_stream();
                let what = format!("reading azblob://{}/{full}", at.root);
                Ok(Box::pin(
                    pages
                        .map_err(move |e| format!("{what} failed: {e}"))
                        .and_then(|resp| async move { resp.data.collect().await.map_err(|e| format!("reading failed: {e}")) }),
                ))
            }
        }
    }

    /// Deletes `key`.
    pub(crate) async fn delete(&self, ctx: &ActionCtx, key: &str) -> Result<(), String> {
        let full = self.full(key);
        match self {
            Side::S3 { client, at } => client
                .delete_object()
                .bucket(&at.root)
                .key(&full)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("deleting s3://{}/{full} failed: {}", at.root, crate::aws::describe(&e))),
            Side::Azure { session, at } => {
                let blob = session.container(&at.root).blob_client(&full);
                session
                    .call_ok(ctx, &format!("deleting azblob://{}/{full}", at.root), blob.delete().into_future())
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }

    pub(crate) fn kind(&self) -> Kind {
        self.at().kind
    }
}
