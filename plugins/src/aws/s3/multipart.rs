//! `s3.put` of a file larger than one part: a multipart upload, as the AWS CLI makes one
//! past 8 MiB. Parts are read from the file as they are sent (nothing is buffered whole),
//! four at a time; a part that fails is sent again (three tries, as the AWS CLI's), and an
//! upload that fails or is stopped is aborted, so that no orphaned parts are left billed.

use std::path::Path;

use aws_sdk_s3::Client;
use aws_sdk_s3::operation::abort_multipart_upload::AbortMultipartUploadError;
use aws_sdk_s3::operation::complete_multipart_upload::{CompleteMultipartUploadError, CompleteMultipartUploadOutput};
use aws_sdk_s3::operation::create_multipart_upload::CreateMultipartUploadError;
use aws_sdk_s3::operation::upload_part::UploadPartError;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use futures::{StreamExt, TryStreamExt};

use super::failed;
use crate::aws::call;
use crate::size::format_bytes;
use crate::{ActionCtx, ActionError, Stream};

/// The smallest part, and the file size past which an upload goes in parts.
pub(super) const PART: u64 = 8 << 20;
/// S3's limits: parts per upload, and an object's size.
const MAX_PARTS: u64 = 10_000;
const MAX_OBJECT: u64 = 5 << 40;
/// Parts in flight at once.
const CONCURRENCY: usize = 4;
/// Tries per part (a transient failure of one part does not restart the whole upload).
const PART_TRIES: u32 = 3;

/// The part size for a file of `size` bytes: 8 MiB, or more (in whole MiB) when 10,000
/// parts of 8 MiB would not hold it.
pub(super) fn part_size(size: u64) -> u64 {
    let least = size.div_ceil(MAX_PARTS).div_ceil(1 << 20) << 20;
    least.max(PART)
}

/// What the completed upload reports: the object's ETag and version.
pub(super) struct Uploaded {
    pub(super) etag: Option<String>,
    pub(super) version_id: Option<String>,
    pub(super) parts: u64,
}

/// An S3 multipart upload in progress: the protocol's four calls, for `s3.put` (parts read
/// from a file) and `storage.sync` (parts filled from another store's stream).
pub(crate) struct MultipartUpload {
    client: Client,
    bucket: String,
    key: String,
    id: String,
}

type Sdk<E> = aws_sdk_s3::error::SdkError<E>;

impl MultipartUpload {
    /// Starts an upload to `bucket`/`key`, with the object's Content-Type and one metadata
    /// entry when given.
    pub(crate) async fn start(
        client: &Client,
        bucket: &str,
        key: &str,
        content_type: Option<&str>,
        metadata: Option<(&str, &str)>,
    ) -> Result<MultipartUpload, Sdk<CreateMultipartUploadError>> {
        let mut create = client.create_multipart_upload().bucket(bucket).key(key).set_content_type(content_type.map(str::to_string));
        if let Some((k, v)) = metadata {
            create = create.metadata(k, v);
        }
        let out = create.send().await?;
        let id = out.upload_id().unwrap_or_default().to_string();
        Ok(MultipartUpload { client: client.clone(), bucket: bucket.to_string(), key: key.to_string(), id })
    }

    /// The upload's id, as S3 gave it.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// Sends part `number` (from 1); what completing the upload needs of it.
    pub(crate) async fn part(&self, number: i32, body: ByteStream, len: Option<u64>) -> Result<CompletedPart, Sdk<UploadPartError>> {
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.id)
            .part_number(number)
            .set_content_length(len.map(|n| n as i64))
            .body(body)
            .send()
            .await?;
        Ok(CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(str::to_string)).build())
    }

    /// Makes the object of the parts, in order.
    pub(crate) async fn complete(
        &self,
        parts: Vec<CompletedPart>,
    ) -> Result<CompleteMultipartUploadOutput, Sdk<CompleteMultipartUploadError>> {
        let done = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
        self.client.complete_multipart_upload().bucket(&self.bucket).key(&self.key).upload_id(&self.id).multipart_upload(done).send().await
    }

    /// Drops the parts sent (S3 bills them until the upload is completed or aborted).
    pub(crate) async fn abort(&self) -> Result<(), Sdk<AbortMultipartUploadError>> {
        self.client.abort_multipart_upload().bucket(&self.bucket).key(&self.key).upload_id(&self.id).send().await.map(|_| ())
    }
}

/// Uploads the `size` bytes of `path` to `bucket`/`key` in parts.
pub(super) async fn upload(
    ctx: &ActionCtx,
    client: &Client,
    (bucket, key): (&str, &str),
    path: &Path,
    size: u64,
    content_type: &str,
) -> Result<Uploaded, ActionError> {
    let target = super::url(bucket, key);
    if size > MAX_OBJECT {
        return Err(ActionError::Input(format!("{} is {}: an S3 object holds at most 5 TiB", path.display(), format_bytes(size))));
    }
    let part = part_size(size);
    let count = size.div_ceil(part);
    let start = MultipartUpload::start(client, bucket, key, Some(content_type), None);
    let upload = call(ctx, "the upload", start).await?.map_err(|e| failed(&format!("starting the upload of {target}"), &e))?;
    ctx.log(Stream::Info, format!("uploading {} to {target} in {count} parts of {}", format_bytes(size), format_bytes(part)));

    let send = send_parts(ctx, &upload, &target, path, size, part);
    match call(ctx, "the upload", send).await.and_then(|r| r) {
        Ok(uploaded) => Ok(uploaded),
        Err(e) => {
            // Stopped or failed: the parts sent so far are dropped (best effort; S3 also
            // expires incomplete uploads where a lifecycle rule says so).
            if let Err(a) = upload.abort().await {
                ctx.log(
                    Stream::Stderr,
                    format!(
                        "could not abort upload {} of {target}: {}; its parts stay billed until aborted",
                        upload.id(),
                        crate::aws::describe(&a)
                    ),
                );
            }
            Err(e)
        }
    }
}

/// Sends every part, then completes the upload.
async fn send_parts(
    ctx: &ActionCtx,
    upload: &MultipartUpload,
    target: &str,
    path: &Path,
    size: u64,
    part: u64,
) -> Result<Uploaded, ActionError> {
    let count = size.div_ceil(part);
    let mut sent = 0u64;
    let mut next_report = 1u64;
    let mut parts: Vec<CompletedPart> = Vec::with_capacity(count as usize);
    let mut uploads = futures::stream::iter(0..count)
        .map(|i| {
            let offset = i * part;
            let len = part.min(size - offset);
            async move {
                let number = i as i32 + 1;
                let mut tries = 0;
                loop {
                    tries += 1;
                    let body = ByteStream::read_from()
                        .path(path)
                        .offset(offset)
                        .length(Length::Exact(len))
                        .build()
                        .await
                        .map_err(|e| ActionError::Input(format!("cannot read {}: {e}", path.display())))?;
                    match upload.part(number, body, Some(len)).await {
                        Ok(done) => return Ok::<_, ActionError>((done, len)),
                        Err(e) => match failed(&format!("sending part {number} of {count} of {target}"), &e) {
                            ActionError::Failed { message, retryable: true, .. } if tries < PART_TRIES => {
                                ctx.log(Stream::Stderr, format!("{message}; sending it again"));
                                tokio::time::sleep(std::time::Duration::from_secs(1 << (tries - 1))).await;
                            }
                            other => return Err(other),
                        },
                    }
                }
            }
        })
        .buffered(CONCURRENCY);
    while let Some((done, len)) = uploads.try_next().await? {
        parts.push(done);
        sent += len;
        // About ten progress lines, whatever the number of parts.
        if sent * 10 >= next_report * size && sent < size {
            ctx.log(Stream::Info, format!("{} of {} sent ({} parts of {count})", format_bytes(sent), format_bytes(size), parts.len()));
            next_report = sent * 10 / size + 1;
        }
    }
    let complete = upload.complete(parts).await.map_err(|e| failed(&format!("completing the upload of {target}"), &e))?;
    Ok(Uploaded { etag: super::etag(complete.e_tag()), version_id: complete.version_id().map(str::to_string), parts: count })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_8_mib_until_10000_of_them_would_not_hold_the_file() {
        assert_eq!(part_size(9 << 20), 8 << 20);
        assert_eq!(part_size(78 << 30), 8 << 20);
        // 100 GiB in at most 10,000 parts: 11 MiB (10.24 rounded up to whole MiB).
        assert_eq!(part_size(100 << 30), 11 << 20);
        assert!(5u64 << 40 <= part_size(5 << 40) * MAX_PARTS);
    }
}
