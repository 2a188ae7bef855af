//! `s3.put` of a file larger than one part: a multipart upload, as the AWS CLI makes one
//! past 8 MiB. Parts are read from the file as they are sent (nothing is buffered whole),
//! four at a time; a part that fails is sent again (three tries, as the AWS CLI's), and an
//! upload that fails or is stopped is aborted, so that no orphaned parts are left billed.

use std::path::Path;

use aws_sdk_s3::Client;
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
    let create = client.create_multipart_upload().bucket(bucket).key(key).content_type(content_type).send();
    let created = call(ctx, "the upload", create).await?.map_err(|e| failed(&format!("starting the upload of {target}"), &e))?;
    let Some(upload_id) = created.upload_id().map(str::to_string) else {
        return Err(ActionError::failed(format!("starting the upload of {target}: S3 returned no upload id")));
    };
    ctx.log(Stream::Info, format!("uploading {} to {target} in {count} parts of {}", format_bytes(size), format_bytes(part)));

    let send = send_parts(ctx, client, (bucket, key, &upload_id), path, size, part);
    match call(ctx, "the upload", send).await.and_then(|r| r) {
        Ok(uploaded) => Ok(uploaded),
        Err(e) => {
            // Stopped or failed: the parts sent so far are dropped (best effort; S3 also
            // expires incomplete uploads where a lifecycle rule says so).
            let abort = client.abort_multipart_upload().bucket(bucket).key(key).upload_id(&upload_id).send().await;
            if let Err(a) = abort {
                ctx.log(
                    Stream::Stderr,
                    format!(
                        "could not abort upload {upload_id} of {target}: {}; its parts stay billed until aborted",
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
    client: &Client,
    (bucket, key, upload_id): (&str, &str, &str),
    path: &Path,
    size: u64,
    part: u64,
) -> Result<Uploaded, ActionError> {
    let target = super::url(bucket, key);
    let count = size.div_ceil(part);
    let mut sent = 0u64;
    let mut next_report = 1u64;
    let mut parts: Vec<CompletedPart> = Vec::with_capacity(count as usize);
    let mut uploads = futures::stream::iter(0..count)
        .map(|i| {
            let offset = i * part;
            let len = part.min(size - offset);
            let target = &target;
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
                    let sent = client
                        .upload_part()
                        .bucket(bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .part_number(number)
                        .content_length(len as i64)
                        .body(body)
                        .send()
                        .await
                        .map_err(|e| failed(&format!("sending part {number} of {count} of {target}"), &e));
                    match sent {
                        Ok(out) => {
                            let done = CompletedPart::builder().part_number(number).set_e_tag(out.e_tag().map(str::to_string));
                            return Ok::<_, ActionError>((done.build(), len));
                        }
                        Err(ActionError::Failed { message, retryable: true, .. }) if tries < PART_TRIES => {
                            ctx.log(Stream::Stderr, format!("{message}; sending it again"));
                            tokio::time::sleep(std::time::Duration::from_secs(1 << (tries - 1))).await;
                        }
                        Err(e) => return Err(e),
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
    let complete = client
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .map_err(|e| failed(&format!("completing the upload of {target}"), &e))?;
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
