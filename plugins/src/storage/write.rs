//! Writing an object to a side from a stream of chunks: in one request up to `SINGLE_PUT`,
//! else as S3 multipart parts or Azure blocks, holding at most the part being filled and the
//! one being sent; hashed on the way (MD5) and checked against the source's when known.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::CompletedPart;
use azure_core::request_options::Metadata;
use azure_storage_blobs::blob::{BlobBlockType, BlockList};
use azure_storage_blobs::prelude::{BlobClient, BlockId, Hash};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use md5::{Digest, Md5};

use super::side::{AZURE_BLOCK, Chunks, S3_PART, SINGLE_PUT, Side, TAG_AZURE, TAG_S3};
use crate::ActionCtx;
use crate::aws::MultipartUpload;

impl Side {
    /// The most a copy to this side holds in memory: the part being filled and the one being
    /// sent.
    pub(crate) fn buffer_bound(&self, size: u64) -> u64 {
        if size <= SINGLE_PUT as u64 { size } else { 2 * self.part() as u64 }
    }

    fn part(&self) -> usize {
        match self {
            Side::S3 { .. } => S3_PART,
            Side::Azure { .. } => AZURE_BLOCK,
        }
    }

    /// Writes `key` from `chunks` (of `size` bytes in all), tagged with the source's ETag.
    /// When the source's MD5 is known (`expected`), what was read must hash to it, or nothing
    /// is committed. Returns the content's MD5.
    pub(crate) async fn write(
        &self,
        ctx: &ActionCtx,
        key: &str,
        size: u64,
        mut chunks: Chunks,
        source_tag: &str,
        expected: Option<[u8; 16]>,
    ) -> Result<[u8; 16], String> {
        let full = self.full(key);
        let part = self.part();
        let check = |digest: [u8; 16]| match expected {
            Some(e) if e != digest => Err(format!(
                "the bytes read hash to MD5 {} but the source's is {}: changed or corrupted in transit, not written",
                hex(&digest),
                hex(&e)
            )),
            _ => Ok(digest),
        };
        let mut md5 = Md5::new();
        // Small objects: one request with the content's MD5, checked by the service. When the
        // source's MD5 is known, that is the one sent: the service then checks what it received
        // against the source itself, and there is nothing to hash here.
        if size as usize <= SINGLE_PUT {
            let mut buf = BytesMut::with_capacity(size as usize);
            while let Some(c) = chunks.next().await {
                buf.extend_from_slice(&c?);
            }
            let body = buf.freeze();
            let (body, digest) = match expected {
                Some(e) => (body, e),
                None => {
                    let (md5, body) = hash(md5, body).await;
                    (body, check(md5.finalize().into())?)
                }
            };
            return self.put_whole(ctx, &full, body, digest, source_tag).await.map(|()| digest);
        }
        let mut parts = Parts::start(self, &full, source_tag).await?;
        let mut buf = BytesMut::with_capacity(part);
        loop {
            let next = chunks.next().await.transpose();
            let next = match next {
                Ok(n) => n,
                Err(e) => {
                    parts.abort().await;
                    return Err(e);
                }
            };
            let mut rest = next.clone().unwrap_or_default();
            // Fill parts exactly; a full one is sent at once, the next starts empty.
            while !rest.is_empty() || (next.is_none() && !buf.is_empty()) {
                let take = rest.len().min(part - buf.len());
                buf.extend_from_slice(&rest.split_to(take));
                if buf.len() < part && next.is_some() {
                    continue;
                }
                let piece = std::mem::replace(&mut buf, BytesMut::with_capacity(part)).freeze();
                let (m, piece) = hash(md5, piece).await;
                md5 = m;
                if let Err(e) = parts.send(self, ctx, &full, piece).await {
                    parts.abort().await;
                    return Err(e);
                }
            }
            if next.is_none() {
                break;
            }
        }
        let digest = match check(md5.finalize().into()) {
            Ok(d) => d,
            Err(e) => {
                parts.abort().await;
                return Err(e);
            }
        };
        parts.finish(self, ctx, &full, digest, source_tag).await.map(|()| digest)
    }

    async fn put_whole(&self, ctx: &ActionCtx, full: &str, body: Bytes, md5: [u8; 16], source_tag: &str) -> Result<(), String> {
        match self {
            Side::S3 { client, at } => client
                .put_object()
                .bucket(&at.root)
                .key(full)
                .content_md5(azure_core::base64::encode(md5))
                .metadata(TAG_S3, source_tag)
                .body(ByteStream::from(body))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("writing s3://{}/{full} failed: {}", at.root, crate::aws::describe(&e))),
            Side::Azure { session, at } => {
                let blob = session.container(&at.root).blob_client(full);
                let put = blob.put_block_blob(body).hash(Hash::MD5(md5)).metadata(metadata(source_tag));
                session
                    .call_ok(ctx, &format!("writing azblob://{}/{full}", at.root), put.into_future())
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// Feeds `piece` to the hash; a large piece on a blocking thread, so that hashing one copy's
/// part does not hold up the others' network traffic on the event loop.
async fn hash(mut md5: Md5, piece: Bytes) -> (Md5, Bytes) {
    if piece.len() < 256 << 10 {
        md5.update(&piece);
        return (md5, piece);
    }
    let keep = piece.clone();
    match tokio::task::spawn_blocking(move || {
        md5.update(&piece);
        md5
    })
    .await
    {
        Ok(m) => (m, keep),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

fn hex(d: &[u8; 16]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn metadata(source_tag: &str) -> Metadata {
    let mut m = Metadata::new();
    m.insert(TAG_AZURE, source_tag.to_string());
    m
}

/// A multipart upload (S3) or a block list (Azure) in progress.
enum Parts {
    S3 { upload: MultipartUpload, done: Vec<CompletedPart> },
    Azure { blob: BlobClient, blocks: BlockList },
}

impl Parts {
    async fn start(side: &Side, full: &str, source_tag: &str) -> Result<Parts, String> {
        match side {
            Side::S3 { client, at } => {
                let upload = MultipartUpload::start(client, &at.root, full, None, Some((TAG_S3, source_tag)))
                    .await
                    .map_err(|e| format!("starting the upload of s3://{}/{full} failed: {}", at.root, crate::aws::describe(&e)))?;
                Ok(Parts::S3 { upload, done: vec![] })
            }
            Side::Azure { session, at } => {
                Ok(Parts::Azure { blob: session.container(&at.root).blob_client(full), blocks: BlockList::default() })
            }
        }
    }

    async fn send(&mut self, side: &Side, ctx: &ActionCtx, full: &str, piece: Bytes) -> Result<(), String> {
        match (self, side) {
            (Parts::S3 { upload, done }, Side::S3 { at, .. }) => {
                let n = done.len() as i32 + 1;
                let part = upload
                    .part(n, ByteStream::from(piece), None)
                    .await
                    .map_err(|e| format!("writing part {n} of s3://{}/{full} failed: {}", at.root, crate::aws::describe(&e)))?;
                done.push(part);
                Ok(())
            }
            (Parts::Azure { blob, blocks }, Side::Azure { session, at }) => {
                // Block ids of one blob must all have the same length.
                let id = BlockId::new(format!("phoenix-{:06}", blocks.blocks.len()).into_bytes());
                let what = format!("writing block {} of azblob://{}/{full}", blocks.blocks.len() + 1, at.root);
                session.call_ok(ctx, &what, blob.put_block(id.clone(), piece).into_future()).await.map_err(|e| e.to_string())?;
                blocks.blocks.push(BlobBlockType::new_uncommitted(id));
                Ok(())
            }
            _ => Err("an upload of one kind sent to the other".into()),
        }
    }

    async fn finish(self, side: &Side, ctx: &ActionCtx, full: &str, md5: [u8; 16], source_tag: &str) -> Result<(), String> {
        match (self, side) {
            (Parts::S3 { upload, done }, Side::S3 { at, .. }) => upload
                .complete(done)
                .await
                .map(|_| ())
                .map_err(|e| format!("completing s3://{}/{full} failed: {}", at.root, crate::aws::describe(&e))),
            (Parts::Azure { blob, blocks }, Side::Azure { session, at }) => {
                let commit = blob.put_block_list(blocks).content_md5(md5).metadata(metadata(source_tag));
                session
                    .call_ok(ctx, &format!("committing azblob://{}/{full}", at.root), commit.into_future())
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            _ => Err("an upload of one kind finished on the other".into()),
        }
    }

    /// Abandons an S3 multipart upload (Azure drops uncommitted blocks by itself).
    async fn abort(&self) {
        if let Parts::S3 { upload, .. } = self {
            let _ = upload.abort().await;
        }
    }
}
