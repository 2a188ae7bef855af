//! Moving the data: pg_dump streamed into pg_restore through Phoenix (bytes counted as they
//! pass), or staged in a temporary directory (parallel jobs), in a kept file, or in object
//! storage (S3, Azure Blob, or both in turn as the seed does).

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, ChildStdout};

use super::command::{Format, Invocation, Job};
use super::group::{Exit, Group};
use super::input::{ObjectUrl, Store};
use super::kept::{Found, Kept, Manifest, now_ms};
use crate::azure::session::Session;
use crate::size::format_bytes as human;
use crate::storage::side::{Chunks, Side};
use crate::storage::{Kind, Location};
use crate::{ActionCtx, ActionError, Stream};

/// How often a long copy says how far it got.
const PROGRESS: Duration = Duration::from_secs(10);
/// How many stderr lines of each program the error message quotes (outputs keep more).
const QUOTED_LINES: usize = 6;

/// pg_dump's custom format piped into pg_restore; the bytes that passed.
pub(crate) async fn stream(ctx: &ActionCtx, job: &Job<'_>) -> Result<u64, ActionError> {
    let (dump, restore) = (job.dump(Format::Custom, None), job.restore(None));
    announce(ctx, &[&dump, &restore]);
    let mut group = group_for(job);
    // pg_restore first: it leads the group and waits for its input.
    let restore_in = group.spawn(ctx, &restore, |c| {
        c.stdin(std::process::Stdio::piped());
    })?;
    let restore_in = restore_in.stdin.take().expect("stdin is piped");
    let dump_out = group.spawn(ctx, &dump, |c| {
        c.stdout(std::process::Stdio::piped());
    })?;
    let dump_out = dump_out.stdout.take().expect("stdout is piped");
    let bytes = Arc::new(AtomicU64::new(0));
    let copying = tokio::spawn(pipe(dump_out, restore_in, Arc::clone(&bytes), ctx.clone()));
    let exits = match group.wait(ctx).await {
        Ok(exits) => exits,
        Err(how) => {
            copying.abort();
            return Err(ActionError::Cancelled(how));
        }
    };
    let piped = copying.await.unwrap_or_else(|e| Err(format!("the copy failed: {e}")));
    let bytes = bytes.load(Ordering::Relaxed);
    if exits.iter().all(Exit::ok) && piped.is_ok() {
        return Ok(bytes);
    }
    Err(failure(job, &exits, piped.err(), bytes))
}

/// A dump that was written (or found finished) and restored.
pub(crate) struct Dumped {
    /// The dump's size.
    pub(crate) bytes: u64,
    /// When pg_dump started (its snapshot), in milliseconds since the epoch.
    pub(crate) snapshot_at: u64,
    /// Whether an earlier attempt's finished dump was restored instead of dumping again.
    pub(crate) reused: bool,
    /// The kept dump, to forget once the target is verified.
    pub(crate) kept: Option<Kept>,
}

/// pg_dump `--format=directory --jobs N` into `dumps/<step>` under the run's work directory,
/// sealed by its manifest, then pg_restore `--jobs N` from it. The dump stays until the step
/// verified the target ([`Kept`]): an attempt after a crash or a failed restore reuses it.
pub(crate) async fn through_directory(ctx: &ActionCtx, job: &Job<'_>) -> Result<Dumped, ActionError> {
    let step: String = ctx.step_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    let parent = ctx.work_dir.join("dumps");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&parent)
        .map_err(|e| io_failure(&format!("creating {}", parent.display()), &e))?;
    let kept = Kept::at(parent.join(step));
    let dump = job.dump(Format::Directory, Some(&kept.dump));
    let (snapshot_at, reused) = match kept.examine(ctx, &job.source.described, &dump.display(), job.reuse) {
        Found::Reuse(m) => (m.snapshot_at, true),
        Found::Redo => {
            let snapshot_at = now_ms();
            run_one(ctx, job, &dump).await?;
            seal(ctx, job, &kept, &dump, snapshot_at)?;
            (snapshot_at, false)
        }
    };
    let bytes = size_of(&kept.dump);
    if !reused {
        ctx.log(Stream::Info, format!("dumped {} into {}", human(bytes), kept.dump.display()));
    }
    run_one(ctx, job, &job.restore(Some(&kept.dump))).await?;
    Ok(Dumped { bytes, snapshot_at, reused, kept: Some(kept) })
}

/// pg_dump into `file` (written as `file.partial`, mode 0600, renamed when complete, then
/// sealed by its manifest), pg_restore from it; the file is kept, its manifest is removed once
/// the step verified the target.
pub(crate) async fn through_file(ctx: &ActionCtx, job: &Job<'_>, file: &Path) -> Result<Dumped, ActionError> {
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| io_failure(&format!("creating {}", parent.display()), &e))?;
    }
    let mut partial = file.as_os_str().to_os_string();
    partial.push(".partial");
    let partial = Partial(PathBuf::from(partial));
    let kept = Kept::at(file.to_path_buf());
    let dump = job.dump(Format::Custom, Some(&partial.0));
    let (snapshot_at, reused) = match kept.examine(ctx, &job.source.described, &dump.display(), job.reuse) {
        Found::Reuse(m) => (m.snapshot_at, true),
        Found::Redo => {
            // pg_dump truncates the file it is given and keeps its mode: only its owner reads the dump.
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&partial.0)
                .and_then(|f| f.set_permissions(std::fs::Permissions::from_mode(0o600)))
                .map_err(|e| io_failure(&format!("creating {}", partial.0.display()), &e))?;
            let snapshot_at = now_ms();
            run_one(ctx, job, &dump).await?;
            std::fs::rename(&partial.0, file)
                .map_err(|e| io_failure(&format!("renaming {} to {}", partial.0.display(), file.display()), &e))?;
            seal(ctx, job, &kept, &dump, snapshot_at)?;
            (snapshot_at, false)
        }
    };
    let bytes = size_of(file);
    if !reused {
        ctx.log(Stream::Info, format!("dumped {} into {}", human(bytes), file.display()));
    }
    run_one(ctx, job, &job.restore(Some(file))).await?;
    ctx.log(Stream::Info, format!("kept the dump at {}", file.display()));
    Ok(Dumped { bytes, snapshot_at, reused, kept: Some(kept) })
}

/// Writes the manifest of a dump pg_dump just finished (exit 0).
fn seal(ctx: &ActionCtx, job: &Job<'_>, kept: &Kept, dump: &Invocation, snapshot_at: u64) -> Result<(), ActionError> {
    let manifest = Manifest {
        snapshot_at,
        finished_at: now_ms(),
        source: job.source.described.clone(),
        command: dump.display(),
        run_id: ctx.run_id.clone(),
        step_id: ctx.step_id.clone(),
        files: super::kept::list(&kept.dump),
    };
    kept.seal(&manifest).map_err(|e| io_failure(&format!("writing {}", kept.manifest.display()), &e))
}

/// The seed's path: pg_dump into a scratch file, upload it to the first object, copy each
/// object to the next (S3 → Azure Blob…), download the last, pg_restore from it. The objects
/// are kept (the staged dump, for a later restore or an audit); the scratch files are not.
pub(crate) async fn through_objects(ctx: &ActionCtx, job: &Job<'_>, hops: &[ObjectUrl]) -> Result<u64, ActionError> {
    let scratch = Scratch::create(ctx)?;
    let dump = scratch.path.join("dump");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&dump)
        .map_err(|e| io_failure(&format!("creating {}", dump.display()), &e))?;
    run_one(ctx, job, &job.dump(Format::Custom, Some(&dump))).await?;
    let bytes = size_of(&dump);
    ctx.log(Stream::Info, format!("dumped {}", human(bytes)));
    let failed = |message: String| ActionError::Failed { message, outputs: None, retryable: true, before_effect: false };
    let mut previous: Option<(Side, &ObjectUrl)> = None;
    // Each hop must carry the bytes of the first: what the next store reads hashes the same.
    let mut digest = None;
    for hop in hops {
        let side = side_for(job, hop).await?;
        let chunks = match &previous {
            None => file_chunks(&dump).await.map_err(failed)?,
            Some((from, url)) => from.read(&url.key).await.map_err(failed)?,
        };
        digest = Some(side.write(ctx, &hop.key, bytes, chunks, "pg_dump", digest).await.map_err(failed)?);
        ctx.log(Stream::Info, format!("staged the dump at {hop}"));
        previous = Some((side, hop));
    }
    let (last, url) = previous.ok_or_else(|| ActionError::Input("`via` lists no URL".into()))?;
    let restore = scratch.path.join("restore");
    let chunks = last.read(&url.key).await.map_err(failed)?;
    write_file(&restore, chunks).await.map_err(failed)?;
    ctx.log(Stream::Info, format!("downloaded {url} for the restore"));
    run_one(ctx, job, &job.restore(Some(&restore))).await?;
    Ok(bytes)
}

async fn side_for(job: &Job<'_>, url: &ObjectUrl) -> Result<Side, ActionError> {
    let at = |kind| Location { kind, root: url.bucket.clone(), prefix: String::new() };
    Ok(match url.store {
        Store::S3 => Side::S3 { client: job.input.s3.client(Duration::from_secs(60)).await.map_err(ActionError::Input)?, at: at(Kind::S3) },
        Store::AzureBlob => Side::Azure { session: Session::open(&job.input.azure, None)?, at: at(Kind::Azure) },
    })
}

/// A file as chunks of 1 MiB.
async fn file_chunks(path: &Path) -> Result<Chunks, String> {
    let file = tokio::fs::File::open(path).await.map_err(|e| format!("reading {}: {e}", path.display()))?;
    Ok(Box::pin(futures::stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 1 << 20];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(format!("reading the dump: {e}")), file)),
        }
    })))
}

async fn write_file(path: &Path, mut chunks: Chunks) -> Result<(), String> {
    use futures::StreamExt;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .await
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    while let Some(chunk) = chunks.next().await {
        file.write_all(&chunk?).await.map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    file.flush().await.map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Runs one program in its own group, stopped on cancel.
async fn run_one(ctx: &ActionCtx, job: &Job<'_>, inv: &Invocation) -> Result<(), ActionError> {
    announce(ctx, &[inv]);
    let mut group = group_for(job);
    group.spawn(ctx, inv, |_| {})?;
    let exits = group.wait(ctx).await.map_err(ActionError::Cancelled)?;
    if exits.iter().all(Exit::ok) { Ok(()) } else { Err(failure(job, &exits, None, 0)) }
}

fn group_for(job: &Job<'_>) -> Group {
    let (source, target) = (job.source.redactor(), job.target.redactor());
    Group::new(move |text| target(&source(text)))
}

fn announce(ctx: &ActionCtx, invs: &[&Invocation]) {
    let line = invs.iter().map(|i| i.display()).collect::<Vec<_>>().join(" | ");
    ctx.log(Stream::Info, format!("running {line}"));
}

/// Copies pg_dump's stdout into pg_restore's stdin, counting bytes; closing pg_restore's
/// stdin at the end is what tells it the dump is complete.
async fn pipe(mut from: ChildStdout, mut to: ChildStdin, bytes: Arc<AtomicU64>, ctx: ActionCtx) -> Result<(), String> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut noted = Instant::now();
    loop {
        let n = from.read(&mut buf).await.map_err(|e| format!("reading pg_dump's output: {e}"))?;
        if n == 0 {
            break;
        }
        // An error here is pg_restore gone; dropping `from` then stops pg_dump (EPIPE).
        to.write_all(&buf[..n]).await.map_err(|e| format!("writing to pg_restore: {e}"))?;
        let total = bytes.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if noted.elapsed() >= PROGRESS {
            ctx.log(Stream::Info, format!("streamed {} so far", human(total)));
            noted = Instant::now();
        }
    }
    to.shutdown().await.map_err(|e| format!("closing pg_restore's input: {e}"))
}

/// A failed copy: what each program did, with the end of its stderr, in the message and
/// (longer) in the outputs.
fn failure(job: &Job<'_>, exits: &[Exit], pipe_error: Option<String>, bytes: u64) -> ActionError {
    // In the order the data flows (pg_restore is started first, to lead the group).
    let mut exits: Vec<&Exit> = exits.iter().collect();
    exits.sort_by_key(|e| e.name != "pg_dump");
    let summary = exits.iter().map(|e| e.describe()).collect::<Vec<_>>().join(", ");
    let mut message = format!("copying {} → {} failed: {summary}", job.source.described, job.target.described);
    if let Some(e) = pipe_error.as_ref().filter(|_| exits.iter().all(|e| e.ok())) {
        message += &format!("; {e}");
    }
    let mut outputs = json!({ "bytes": bytes });
    for exit in exits {
        let quoted = exit.stderr.last(QUOTED_LINES);
        if !quoted.is_empty() {
            message += &format!("\n{} stderr:\n  {}", exit.name, quoted.join("\n  "));
        }
        outputs[exit.name] = json!({ "exit_code": exit.code(), "stderr": exit.stderr.text() });
    }
    if let Some(e) = pipe_error {
        outputs["pipe"] = Value::String(e);
    }
    ActionError::Failed { message: job.redact(&message), outputs: Some(outputs), retryable: true, before_effect: false }
}

fn io_failure(what: &str, e: &std::io::Error) -> ActionError {
    ActionError::failed(format!("{what}: {e}"))
}

/// A private temporary directory under the run's work directory, removed on drop.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn create(ctx: &ActionCtx) -> Result<Scratch, ActionError> {
        std::fs::create_dir_all(&ctx.work_dir).map_err(|e| io_failure(&format!("creating {}", ctx.work_dir.display()), &e))?;
        let step: String = ctx.step_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        let prefix = format!("replicate-{step}-");
        // An earlier attempt of this step that died with Phoenix (a crash, then a resume) left
        // its dump behind; its processes were stopped before this attempt began.
        for entry in std::fs::read_dir(&ctx.work_dir).into_iter().flatten().flatten() {
            if entry.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)) && std::fs::remove_dir_all(entry.path()).is_ok() {
                ctx.log(Stream::Info, format!("removed {}, left by an earlier attempt", entry.path().display()));
            }
        }
        let path = ctx.work_dir.join(format!("{prefix}{:08x}", rand::random::<u32>()));
        std::fs::DirBuilder::new().mode(0o700).create(&path).map_err(|e| io_failure(&format!("creating {}", path.display()), &e))?;
        Ok(Scratch { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A `.partial` dump file, removed unless it was renamed into place.
struct Partial(PathBuf);

impl Drop for Partial {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The size of a file, or of every file under a directory.
fn size_of(path: &Path) -> u64 {
    let Ok(meta) = std::fs::metadata(path) else { return 0 };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path).map_or(0, |entries| entries.flatten().map(|e| size_of(&e.path())).sum())
}
