//! A finished dump kept across attempts: an attempt that dies after pg_dump finished (a
//! failed pg_restore, a crash of Phoenix, then a retry or a resume) restores the same dump
//! instead of dumping the database again.
//!
//! The dump counts as finished only once its manifest exists. The manifest is written last,
//! after pg_dump exited 0, to a temporary name then renamed: a crash inside pg_dump leaves a
//! dump without one, which the next attempt deletes and redoes. It records the snapshot time
//! (pg_dump's start), the source as described (`user@host:port/db`, never the password), the
//! pg_dump command line (without the password), and every file with its size. The next
//! attempt reuses the dump only when all of these still hold and it is younger than
//! `reuse_dump`; otherwise it deletes it. The step removes the manifest once the restore
//! and the verification passed, so a later run never restores an old dump.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::{ActionCtx, Stream};

/// What a finished dump was, written next to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// When pg_dump started (its snapshot), in milliseconds since the epoch.
    pub(crate) snapshot_at: u64,
    /// When pg_dump exited 0, in milliseconds since the epoch.
    pub(crate) finished_at: u64,
    /// The source, `user@host:port/db` (no password).
    pub(crate) source: String,
    /// pg_dump's command line (no password: it goes through the environment).
    pub(crate) command: String,
    /// The run and the step that dumped it.
    pub(crate) run_id: String,
    pub(crate) step_id: String,
    /// Every file of the dump, relative to it, with its size.
    pub(crate) files: Vec<(String, u64)>,
}

/// Where a dump and its manifest live.
pub(crate) struct Kept {
    /// The dump: a directory (directory format) or a file (custom format).
    pub(crate) dump: PathBuf,
    /// `<dump>.manifest.json`, written last.
    pub(crate) manifest: PathBuf,
}

/// What the next attempt makes of a kept dump.
pub(crate) enum Found {
    /// Finished, the same source and command, young enough: restore it.
    Reuse(Manifest),
    /// Nothing there, or something that must be dumped again (deleted already).
    Redo,
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Kept {
    /// The dump at `dump`; its manifest next to it.
    pub(crate) fn at(dump: PathBuf) -> Kept {
        let mut manifest = dump.as_os_str().to_os_string();
        manifest.push(".manifest.json");
        Kept { dump, manifest: PathBuf::from(manifest) }
    }

    /// Reads what an earlier attempt left: the manifest if the dump can be restored again
    /// (`reuse` is `reuse_dump`; zero never reuses), else deletes the dump and its manifest.
    pub(crate) fn examine(&self, ctx: &ActionCtx, source: &str, command: &str, reuse: Duration) -> Found {
        let why = match self.reusable(source, command, reuse) {
            Ok(m) => {
                let age = Duration::from_millis(now_ms().saturating_sub(m.snapshot_at));
                ctx.log(
                    Stream::Info,
                    format!(
                        "restoring the dump an earlier attempt finished at {} ({} old, run {}), without dumping again: \
                         reuse_dump is {}",
                        self.dump.display(),
                        crate::duration::format_duration(Duration::from_secs(age.as_secs())),
                        m.run_id,
                        crate::duration::format_duration(reuse)
                    ),
                );
                return Found::Reuse(m);
            }
            Err(why) => why,
        };
        if self.dump.exists() || self.manifest.exists() {
            self.remove();
            ctx.log(Stream::Info, format!("dumping again: the dump left at {} {why}; it was deleted", self.dump.display()));
        }
        Found::Redo
    }

    fn reusable(&self, source: &str, command: &str, reuse: Duration) -> Result<Manifest, String> {
        let text = match std::fs::read(&self.manifest) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("has no manifest (pg_dump did not finish)".into()),
            Err(e) => return Err(format!("has an unreadable manifest ({e})")),
        };
        let m: Manifest = serde_json::from_slice(&text).map_err(|e| format!("has a manifest that cannot be read ({e})"))?;
        if reuse.is_zero() {
            return Err("is not reused: reuse_dump is 0s".into());
        }
        if m.source != source {
            return Err(format!("is of another source ({}, not {source})", m.source));
        }
        if m.command != command {
            return Err("was taken with another pg_dump command line".into());
        }
        let now = now_ms();
        if m.snapshot_at > now {
            return Err("has a snapshot time in the future (the clock moved back)".into());
        }
        let age = Duration::from_millis(now - m.snapshot_at);
        if age >= reuse {
            return Err(format!(
                "is {} old, not younger than reuse_dump ({})",
                crate::duration::format_duration(Duration::from_secs(age.as_secs())),
                crate::duration::format_duration(reuse)
            ));
        }
        let files = list(&self.dump);
        if files != m.files {
            return Err("no longer holds the files its manifest lists, with their sizes".into());
        }
        Ok(m)
    }

    /// Marks the dump finished: called only after pg_dump exited 0. Writes the manifest to a
    /// temporary name, flushes it, renames it into place and flushes the directory.
    pub(crate) fn seal(&self, manifest: &Manifest) -> std::io::Result<()> {
        let mut tmp = self.manifest.as_os_str().to_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(manifest).map_err(std::io::Error::other)?)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.manifest)?;
        if let Some(parent) = self.manifest.parent() {
            std::fs::File::open(parent)?.sync_all()?;
        }
        Ok(())
    }

    /// Forgets the dump: its manifest first (so that a crash half-way never leaves a
    /// manifest over a partial dump), then the dump.
    pub(crate) fn remove(&self) {
        let _ = std::fs::remove_file(&self.manifest);
        if self.dump.is_dir() {
            let _ = std::fs::remove_dir_all(&self.dump);
        } else {
            let _ = std::fs::remove_file(&self.dump);
        }
    }

    /// Forgets that the dump is finished, keeping its files (`via: { file }` keeps its dump).
    pub(crate) fn unseal(&self) {
        let _ = std::fs::remove_file(&self.manifest);
    }
}

/// Every file under `path` (or `path` itself) relative to it, with its size, sorted.
pub(crate) fn list(path: &Path) -> Vec<(String, u64)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, u64)>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = entry.path();
            match entry.metadata() {
                Ok(m) if m.is_dir() => walk(base, &p, out),
                Ok(m) => out.push((p.strip_prefix(base).unwrap_or(&p).display().to_string(), m.len())),
                Err(_) => {}
            }
        }
    }
    let mut out = vec![];
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => walk(path, path, &mut out),
        Ok(m) => out.push((path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), m.len())),
        Err(_) => {}
    }
    out.sort();
    out
}
