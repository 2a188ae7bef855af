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

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::{Mutex, RwLock};

use super::kv::{Entry, Kv};
use super::wal::{Ops, Wal};

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
    std::fs::create_dir_all(dir).map_err(|e| OpenError::Other(format!("cannot create {}: {e}", dir.display())))?;
    let path = dir.join("db");
    let db = match open_db(&path) {
        // Two windows where sled 0.34 leaves a store it cannot read after a kill ("Read
        // corrupted data at file offset None"), both outside its log: what is left there is
        // removed and sled opened again (see `repair`).
        Err(sled::Error::Corruption { at: None, .. }) if repair(&path) => open_db(&path),
        other => other,
    }
    .map_err(|e| {
        let locked = matches!(&e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock"));
        if locked { OpenError::Locked } else { OpenError::Other(say(e)) }
    })?;
    // sled's lock is held from here on: the log is this process's alone.
    let data = File::open(path.join("db")).ok();
    let path = dir.join("wal");
    let other = |e: String| OpenError::Other(format!("the state store's log {}: {e}", path.display()));
    let capacity =
        std::env::var("PHOENIX_STATE_LOG_BYTES").ok().and_then(|v| v.parse().ok()).map_or(LOG_BYTES, |n: u64| n.clamp(4096, 16 << 20));
    let (wal, found) = Wal::open(&path, capacity).map_err(other)?;
    let kv = SledKv { db, data, wal: Mutex::new(wal), recent: RwLock::new(BTreeMap::new()) };
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
            if recent.is_empty() {
                None
            } else {
                let mut batch = sled::Batch::default();
                for (k, v) in recent.iter() {
                    match v {
                        Some(v) => batch.insert(k.as_slice(), v.as_slice()),
                        None => batch.remove(k.as_slice()),
                    }
                }
                Some(batch)
            }
        };
        if let Some(batch) = batch {
            self.db.apply_batch(batch).map_err(say)?;
            self.flush_sled()?;
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
        self.db.get(key).map(|v| v.map(|v| v.to_vec())).map_err(say)
    }
    fn scan(&self, prefix: &[u8]) -> Result<Vec<Entry>, String> {
        let recent = self.recent.read().expect("poisoned");
        let newer = Self::recent_in(&recent, prefix);
        let stored = self.db.scan_prefix(prefix).map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(say));
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
            if !recent.contains_key(k.as_ref()) {
                stored = Some((k.to_vec(), v.to_vec()));
                break;
            }
        }
        let newest = newer.into_iter().rev().find_map(|(k, v)| Some((k, v?)));
        Ok(match (stored, newest) {
            (Some(a), Some(b)) => Some(if a.0 > b.0 { a } else { b }),
            (a, b) => a.or(b),
        })
    }
    fn apply(&self, ops: Ops) -> Result<(), String> {
        self.commit(ops, false)
    }
    fn commit(&self, ops: Ops, durable: bool) -> Result<(), String> {
        let mut wal = self.wal.lock().expect("poisoned");
        if !ops.is_empty() {
            let mut written = wal.append(&ops).map_err(|e| format!("writing the state store's log: {e}"))?;
            if !written && !wal.is_empty() {
                // Full: sled takes what the log holds, and a new round has room.
                self.checkpoint(&mut wal)?;
                written = wal.append(&ops).map_err(|e| format!("writing the state store's log: {e}"))?;
            }
            if !written {
                // Larger than the whole log: straight to sled, flushed (the log is empty).
                let mut batch = sled::Batch::default();
                for (k, v) in ops {
                    match v {
                        Some(v) => batch.insert(k, v),
                        None => batch.remove(k),
                    }
                }
                self.db.apply_batch(batch).map_err(say)?;
                return self.flush_sled();
            }
            if durable {
                wal.sync().map_err(|e| format!("fdatasync of the state store's log: {e}"))?;
            }
            self.recent.write().expect("poisoned").extend(ops);
            return Ok(());
        }
        if durable { wal.sync().map_err(|e| format!("fdatasync of the state store's log: {e}")) } else { Ok(()) }
    }
    fn flush(&self) -> Result<(), String> {
        self.commit(Vec::new(), true)
    }
}

impl Drop for SledKv {
    fn drop(&mut self) {
        // A clean close leaves sled whole and the log empty; if this fails, the next open
        // replays the log.
        if let Ok(mut wal) = self.wal.lock() {
            let _ = self.checkpoint(&mut wal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &str, v: &str) -> (Vec<u8>, Option<Vec<u8>>) {
        (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()))
    }

    #[test]
    fn reads_see_the_log_in_front_of_sled_and_a_crash_keeps_what_was_synced() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        {
            let kv = open_sled(&dir).unwrap();
            kv.commit(vec![put("p/1", "a"), put("p/2", "b"), put("p/3", "c"), put("q/1", "x")], true).unwrap();
        }
        // Closed cleanly: sled has them. Now newer values in the log, in front of sled.
        let kv = open_sled(&dir).unwrap();
        kv.commit(vec![put("p/2", "B"), (b"p/3".to_vec(), None), put("p/0", "z")], true).unwrap();
        let keys = |es: Vec<Entry>| {
            es.into_iter().map(|(k, v)| format!("{}={}", String::from_utf8_lossy(&k), String::from_utf8_lossy(&v))).collect::<Vec<_>>()
        };
        assert_eq!(keys(kv.scan(b"p/").unwrap()), ["p/0=z", "p/1=a", "p/2=B"]);
        assert_eq!(kv.get(b"p/3").unwrap(), None);
        assert_eq!(kv.get(b"p/2").unwrap(), Some(b"B".to_vec()));
        assert_eq!(kv.last(b"p/").unwrap().map(|(k, _)| k), Some(b"p/2".to_vec()), "p/3 is deleted");
        kv.commit(vec![put("p/9", "n")], true).unwrap();
        assert_eq!(kv.last(b"p/").unwrap().map(|(k, _)| k), Some(b"p/9".to_vec()));
        assert_eq!(kv.last(b"q/").unwrap().map(|(k, _)| k), Some(b"q/1".to_vec()));
        assert_eq!(kv.last(b"z/").unwrap(), None);
        // No clean close: what was synced is in the log only.
        let log = std::fs::read(dir.join("wal")).unwrap();
        let sled_files = dir.join("db");
        std::mem::forget(kv);
        // sled's lock belongs to the forgotten handle: copy the store the way the crash left it.
        let copy = dir.join("copy");
        copy_dir(&sled_files, &copy.join("db"));
        std::fs::write(copy.join("wal"), &log).unwrap();
        let kv = open_sled(&copy).unwrap();
        assert_eq!(keys(kv.scan(b"p/").unwrap()), ["p/0=z", "p/1=a", "p/2=B", "p/9=n"]);
        // Past the log's size, sled takes what it holds and the log starts again.
        for i in 0..3000u32 {
            kv.commit(vec![(format!("k/{i:05}").into_bytes(), Some(vec![1; 500]))], false).unwrap();
        }
        kv.flush().unwrap();
        assert_eq!(std::fs::metadata(copy.join("wal")).unwrap().len(), LOG_BYTES, "never grows");
        assert_eq!(kv.scan(b"k/").unwrap().len(), 3000);
        assert_eq!(kv.get(b"k/00000").unwrap(), Some(vec![1; 500]));
        // A batch larger than the whole log goes to sled directly.
        kv.commit(vec![put("big", &"x".repeat(LOG_BYTES as usize))], true).unwrap();
        assert_eq!(kv.get(b"big").unwrap().map(|v| v.len()), Some(LOG_BYTES as usize));
    }

    #[test]
    fn a_snapshot_that_a_kill_cut_short_is_dropped_and_the_store_opens() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        {
            let kv = open_sled(&dir).unwrap();
            kv.commit(vec![put("run/1", "kept")], true).unwrap();
        }
        // What a kill leaves while sled writes its snapshot at an open: the file it had begun,
        // newer than any finished one.
        let db = dir.join("db");
        std::fs::write(db.join("snap.7FFFFFFFFFFFFFFF.generating"), b"cut").unwrap();
        assert!(matches!(open_db(&db), Err(sled::Error::Corruption { at: None, .. })), "sled alone cannot open it");
        let kv = open_sled(&dir).unwrap();
        assert_eq!(kv.get(b"run/1").unwrap(), Some(b"kept".to_vec()));
        assert!(!db.join("snap.7FFFFFFFFFFFFFFF.generating").exists());
    }

    #[test]
    fn a_configuration_that_a_kill_cut_short_in_a_new_store_is_written_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        // What a kill leaves between sled's two writes of `conf`, at the very first open: the
        // settings without their checksum, and a data file that never got anything.
        let db = dir.join("db");
        std::fs::create_dir_all(&db).unwrap();
        std::fs::write(db.join("conf"), "segment_size: 524288\nuse_compression: false\nversion: 0.34\n").unwrap();
        std::fs::write(db.join("db"), b"").unwrap();
        assert!(open_db(&db).is_err(), "sled alone cannot open it");
        let kv = open_sled(&dir).unwrap();
        kv.commit(vec![put("run/1", "new")], true).unwrap();
        assert_eq!(kv.get(b"run/1").unwrap(), Some(b"new".to_vec()));
    }

    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy_dir(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), target).unwrap();
            }
        }
    }
}
