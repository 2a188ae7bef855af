//! The sled backend, with a write-ahead log in front of it.
//!
//! A checkpoint must be on stable storage before the engine acts on it. sled's own `flush`
//! writes its buffers and waits on `sync_file_range` (which neither syncs metadata nor
//! flushes the drive's cache, so an `fdatasync` has to follow it): two waits and a sealed
//! buffer per commit, most of a step's cost. Instead every commit is one record in
//! `STATE/wal` ([`super::wal`]) and a durable commit is one `fdatasync` of that file.
//!
//! sled is written only when the log is full, when the store is closed, and when a crashed
//! store is opened: then everything the log holds goes to sled as one batch, sled is
//! flushed (and its file synced), and the log starts a new round. Until then the committed
//! entries are kept in memory, in front of sled, and reads look there first. sled never
//! writes on its own (its timed flush is off), so a crash can interrupt sled's writes only
//! inside that rare flush, and the log, still whole, is replayed over whatever sled kept.
//! (A write-ahead log in front of a sled that wrote on its own schedule was tried first:
//! sled 0.34 then failed to reopen after a kill -9 in about 1 of 600 crash trials.)
//!
//! Every commit, and the check of its conditions, happens under the log's lock: a
//! compare-and-set sees no other commit between its check and its write. A failed sync (of
//! the log, or of sled at a checkpoint) poisons the store: it takes no more writes, and a
//! close leaves the log for the next open to replay. Values go to sled in pieces small
//! enough that sled never writes them to its unsynced blob files ([`super::sled_pieces`]).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::{Mutex, RwLock};

use super::kv::{Cond, Entry, Kv, Ops};
use super::sled_lock::{self, Released};
use super::wal::Wal;
use super::{dirs, sled_pieces as pieces};

/// The log's default size: past it, sled takes what the log holds and the log starts again.
/// `PHOENIX_STATE_LOG_BYTES` changes it (4 KiB to 16 MiB: the entries of a round are held in
/// memory until sled takes them); the crash test uses a small log so
/// that its crashes also land in sled's writes.
const LOG_BYTES: u64 = 64 << 10;

/// A sled tree as a [`Kv`].
pub struct SledKv {
    db: sled::Db,
    /// sled's log file, synced after sled's flush.
    data: Option<File>,
    wal: Mutex<Wal>,
    /// What the log's round holds that sled does not yet: a put, or a delete (`None`).
    recent: RwLock<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
    /// Last, so that it is dropped after sled: a close returns once sled's lock is let go.
    _released: Released,
}

/// Why the store could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Another process holds the store (a run in progress, or `phoenix serve`).
    Locked,
    /// Anything else.
    Other(String),
}

/// Opens (or creates) the store in `dir`, replaying its write-ahead log. The cache is kept
/// small: runs are small.
pub fn open_sled(dir: &Path) -> Result<SledKv, OpenError> {
    dirs::create_durable(dir).map_err(|e| OpenError::Other(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join("db");
    let locked = |e: &sled::Error| matches!(e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock"));
    let db = match open_repaired(&path) {
        // A store this process is closing on another thread: sled lets its lock go soon.
        Err(e) if locked(&e) && sled_lock::wait_own(&path.join("db")) => open_repaired(&path),
        other => other,
    }
    .map_err(|e| if locked(&e) { OpenError::Locked } else { OpenError::Other(say(e)) })?;
    // sled's lock is held from here on: the log is this process's alone.
    let data = File::open(path.join("db")).ok();
    let lock_file = path.join("db");
    let path = dir.join("wal");
    let other = |e: String| OpenError::Other(format!("the state store's log {}: {e}", path.display()));
    let capacity =
        std::env::var("PHOENIX_STATE_LOG_BYTES").ok().and_then(|v| v.parse().ok()).map_or(LOG_BYTES, |n: u64| n.clamp(4096, 16 << 20));
    let (wal, found) = Wal::open(&path, capacity).map_err(other)?;
    // The names sled and the log may have just created (the log, sled's files and its
    // `blobs` directory, a snapshot sled renamed into place) are durable before any commit.
    for d in [dir.to_path_buf(), dir.join("db"), dir.join("db").join("blobs")] {
        if d.is_dir() {
            dirs::sync(&d).map_err(|e| OpenError::Other(format!("cannot sync the directory {}: {e}", d.display())))?;
        }
    }
    let kv = SledKv { db, data, wal: Mutex::new(wal), recent: RwLock::new(BTreeMap::new()), _released: Released { file: lock_file } };
    {
        let mut recent = kv.recent.write().expect("poisoned");
        for ops in found {
            recent.extend(ops);
        }
    }
    // sled takes what a crash left in the log (a put or delete applied twice ends the same),
    // and a new round starts either way.
    kv.checkpoint(&mut kv.wal.lock().expect("poisoned")).map_err(other)?;
    Ok(kv)
}

/// What sled says went wrong. Its own text for an I/O error is the error's debug form
/// ("IO error: Os { code: 28, kind: StorageFull, .. }"), and an error from its flush comes
/// wrapped in that form again: the system's message is taken out of it.
fn say(e: sled::Error) -> String {
    let sled::Error::Io(io) = e else { return e.to_string() };
    let text = io.to_string();
    match text.split_once("message: \"").and_then(|(_, m)| m.split_once('"')) {
        Some((message, _)) if text.starts_with("Os {") => message.to_string(),
        _ => text,
    }
}

/// Opens sled, repairing first what sled 0.34 cannot read after a kill: two windows ("Read
/// corrupted data at file offset None"), both outside its log (see `repair`).
fn open_repaired(path: &Path) -> sled::Result<sled::Db> {
    match open_db(path) {
        Err(sled::Error::Corruption { at: None, .. }) if repair(path) => open_db(path),
        other => other,
    }
}

fn open_db(path: &Path) -> sled::Result<sled::Db> {
    sled::Config::new().path(path).cache_capacity(8 << 20).mode(sled::Mode::LowSpace).flush_every_ms(None).open()
}

/// Removes what a kill can leave unfinished in sled's directory, outside its log; whether
/// anything was there.
///
/// - sled writes a snapshot at every open, to `snap.*.generating` then renamed, and reads the
///   newest `snap.*` file, unfinished ones included. An unfinished one was never put in place:
///   the snapshot before it and the log still hold everything.
/// - sled writes its settings (`conf`) at a store's first open, in two writes and before any
///   data. With the data file still empty, the store holds nothing yet: the settings are
///   written again.
fn repair(path: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(path) else { return false };
    let empty = std::fs::metadata(path.join("db")).is_ok_and(|m| m.len() == 0);
    let mut removed = false;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if (name.starts_with("snap.") && name.ends_with(".generating")) || (empty && name == "conf") {
            removed |= std::fs::remove_file(entry.path()).is_ok();
        }
    }
    removed
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Locked => f.write_str("the state store is in use by another phoenix process"),
            OpenError::Other(e) => f.write_str(e),
        }
    }
}

impl SledKv {
    /// Everything the log's round holds goes to sled as one batch, onto stable storage, then
    /// the log starts a new round. Until sled has it all, the round stays whole on disk: a
    /// crash in between replays it.
    fn checkpoint(&self, wal: &mut Wal) -> Result<(), String> {
        // Whatever sled may write must be in the log first.
        wal.sync()?;
        let batch = {
            let recent = self.recent.read().expect("poisoned");
            if recent.is_empty() { None } else { Some(self.sled_batch(recent.iter().map(|(k, v)| (k.as_slice(), v.as_deref())))?) }
        };
        if let Some(batch) = batch {
            // Failed half way, sled cannot be trusted to hold what it said it wrote: the
            // store takes no more writes (the log, still whole, is replayed at the next open).
            self.db.apply_batch(batch).map_err(say).and_then(|()| self.flush_sled()).inspect_err(|e| {
                wal.poison(e);
            })?;
        }
        wal.restart()?;
        // sled holds the same values now: readers see no change.
        self.recent.write().expect("poisoned").clear();
        Ok(())
    }

    fn flush_sled(&self) -> Result<(), String> {
        self.db.flush().map_err(say)?;
        if let Some(f) = &self.data {
            f.sync_data().map_err(|e| format!("fdatasync of the store: {e}"))?;
        }
        Ok(())
    }

    /// The sled batch that writes these puts and deletes, in pieces ([`pieces`]).
    fn sled_batch<'a>(&self, ops: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>) -> Result<sled::Batch, String> {
        let mut batch = sled::Batch::default();
        for (k, v) in ops {
            let old = self.db.get(k).map_err(say)?;
            pieces::put(&mut batch, k, v, old.as_deref());
        }
        Ok(batch)
    }

    /// A value as sled holds it, put together from its pieces.
    fn stored(&self, key: &[u8], v: &[u8]) -> Result<Vec<u8>, String> {
        pieces::value(&self.db, key, v)
    }

    /// The entries of `prefix` in the log's round: a put, or a delete (`None`).
    fn recent_in(recent: &BTreeMap<Vec<u8>, Option<Vec<u8>>>, prefix: &[u8]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        recent.range(prefix.to_vec()..).take_while(|(k, _)| k.starts_with(prefix)).map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

impl Kv for SledKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let recent = self.recent.read().expect("poisoned");
        if let Some(v) = recent.get(key) {
            return Ok(v.clone());
        }
        self.db.get(key).map_err(say)?.map(|v| self.stored(key, &v)).transpose()
    }
    fn scan(&self, prefix: &[u8]) -> Result<Vec<Entry>, String> {
        let recent = self.recent.read().expect("poisoned");
        let newer = Self::recent_in(&recent, prefix);
        let stored = self
            .db
            .scan_prefix(prefix)
            .filter(|r| r.as_ref().map_or(true, |(k, _)| !pieces::is_piece(k)))
            .map(|r| r.map_err(say).and_then(|(k, v)| Ok((k.to_vec(), self.stored(&k, &v)?))));
        if newer.is_empty() {
            return stored.collect();
        }
        let mut merged = BTreeMap::new();
        for entry in stored {
            let (k, v) = entry?;
            merged.insert(k, Some(v));
        }
        merged.extend(newer);
        Ok(merged.into_iter().filter_map(|(k, v)| Some((k, v?))).collect())
    }
    fn last(&self, prefix: &[u8]) -> Result<Option<Entry>, String> {
        let recent = self.recent.read().expect("poisoned");
        let newer = Self::recent_in(&recent, prefix);
        // sled's last entry that the round neither replaced nor deleted.
        let mut stored = None;
        for r in self.db.scan_prefix(prefix).rev() {
            let (k, v) = r.map_err(say)?;
            if !recent.contains_key(k.as_ref()) && !pieces::is_piece(&k) {
                stored = Some((k.to_vec(), self.stored(&k, &v)?));
                break;
            }
        }
        let newest = newer.into_iter().rev().find_map(|(k, v)| Some((k, v?)));
        Ok(match (stored, newest) {
            (Some(a), Some(b)) => Some(if a.0 > b.0 { a } else { b }),
            (a, b) => a.or(b),
        })
    }
    fn commit_if(&self, conds: &[Cond], ops: Ops, durable: bool) -> Result<bool, String> {
        let mut wal = self.wal.lock().expect("poisoned");
        wal.usable()?;
        // Checked under the log's lock, which every write takes: nothing commits in between.
        for c in conds {
            if !c.holds(|k| self.get(k))? {
                return Ok(false);
            }
        }
        if !ops.is_empty() {
            let mut written = wal.append(&ops).map_err(|e| format!("writing the state store's log: {e}"))?;
            if !written && !wal.is_empty() {
                // Full: sled takes what the log holds, and a new round has room.
                self.checkpoint(&mut wal)?;
                written = wal.append(&ops).map_err(|e| format!("writing the state store's log: {e}"))?;
            }
            if !written {
                // Larger than the whole log: straight to sled, flushed (the log is empty).
                // One write per key, the last (as applying them in order would leave it), so that
                // each key's old pieces are counted once.
                let last: BTreeMap<&[u8], Option<&[u8]>> = ops.iter().map(|(k, v)| (k.as_slice(), v.as_deref())).collect();
                let batch = self.sled_batch(last.into_iter())?;
                self.db.apply_batch(batch).map_err(say).and_then(|()| self.flush_sled()).inspect_err(|e| {
                    wal.poison(e);
                })?;
                return Ok(true);
            }
            if durable {
                wal.sync()?;
            }
            self.recent.write().expect("poisoned").extend(ops);
            return Ok(true);
        }
        if durable {
            wal.sync()?;
        }
        Ok(true)
    }
}

impl Drop for SledKv {
    fn drop(&mut self) {
        // A clean close leaves sled whole and the log empty; if this fails, the next open
        // replays the log.
        // After a failed sync nothing more is written: the next open replays the log.
        if let Ok(mut wal) = self.wal.lock() {
            if wal.usable().is_ok() {
                let _ = self.checkpoint(&mut wal);
            }
        }
    }
}

#[cfg(test)]
#[path = "sled_kv_tests.rs"]
mod tests;
