//! The sled backend, with a write-ahead log in front of it.
//!
//! A checkpoint must be on stable storage before the engine acts on it. sled's own `flush`
//! writes its buffers and waits on `sync_file_range` (which neither syncs metadata nor
//! flushes the drive's cache, so an `fdatasync` had to follow it): two waits, and most of a
//! step's cost. Instead every batch is written to `STATE/wal` as one checksummed record,
//! and `flush` is one `fdatasync` of that file. The file is allocated ahead (`LOG_BYTES` of
//! zeros, written once) and records overwrite it from the start, so that the sync has no
//! file size or block allocation to record, only the data. sled gets the same batch in
//! memory and writes it out on its own schedule; when the log is full, and when the store is
//! closed, sled is flushed (and synced) and the log starts again at offset 0 under a new
//! epoch, with an end mark written there.
//!
//! Opening replays the log into sled: records are applied in order (a put or delete applied
//! twice ends the same). The log ends at the first record that is empty, cut short, fails
//! its checksum, or carries another epoch than the first (a leftover of an earlier round):
//! a record cut short by a crash was never acknowledged as durable.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;

use super::kv::{Entry, Kv};

/// The log's allocated size; past it, sled is flushed and the log starts again.
const LOG_BYTES: u64 = 1 << 20;
/// A record's header: payload length, checksum, epoch.
const HEADER: usize = 16;

/// A sled tree as a [`Kv`].
pub struct SledKv {
    db: sled::Db,
    /// sled's log file, synced at checkpoints.
    data: Option<File>,
    wal: Mutex<Wal>,
}

struct Wal {
    file: File,
    /// Where the next record goes.
    pos: u64,
    /// This round's epoch: every record carries it.
    epoch: u64,
    /// Written since the last sync.
    unsynced: bool,
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
    let db = sled::Config::new().path(dir.join("db")).cache_capacity(8 << 20).mode(sled::Mode::LowSpace).open().map_err(|e| match &e {
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock") => OpenError::Locked,
        _ => OpenError::Other(e.to_string()),
    })?;
    // sled's lock is held from here on: the log is this process's alone.
    let data = File::open(dir.join("db").join("db")).ok();
    let path = dir.join("wal");
    let other = |e: String| OpenError::Other(format!("the state store's log {}: {e}", path.display()));
    let mut file =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(|e| other(e.to_string()))?;
    // Only as far as the current round goes: the rest of the file is old rounds or zeros.
    let mut bytes = Vec::new();
    (&mut file).take(LOG_BYTES).read_to_end(&mut bytes).map_err(|e| other(e.to_string()))?;
    if (bytes.len() as u64) < LOG_BYTES {
        // Allocated once, with real blocks (a sparse file would allocate them at each sync).
        file.seek(SeekFrom::Start(bytes.len() as u64)).map_err(|e| other(e.to_string()))?;
        let zeros = [0u8; 64 << 10];
        let mut left = LOG_BYTES - bytes.len() as u64;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..n]).map_err(|e| other(e.to_string()))?;
            left -= n as u64;
        }
        file.sync_all().map_err(|e| other(e.to_string()))?;
    }
    let found = records(&bytes);
    let kv = SledKv { db, data, wal: Mutex::new(Wal { file, pos: 0, epoch: 0, unsynced: false }) };
    for ops in &found {
        kv.apply_to_sled(ops.clone()).map_err(other)?;
    }
    // A new round either way: the end mark at offset 0, a new epoch.
    kv.checkpoint(&mut kv.wal.lock().expect("poisoned"), !found.is_empty()).map_err(other)?;
    Ok(kv)
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Locked => f.write_str("the state store is in use by another phoenix process"),
            OpenError::Other(e) => f.write_str(e),
        }
    }
}

type Ops = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// One record: `len: u32 LE`, `crc32(epoch, payload): u32 LE`, `epoch: u64 LE`, then the
/// payload: per op `key_len: u32`, key, `1` + `value_len: u32` + value for a put, `0` for a
/// delete.
fn encode(ops: &Ops, epoch: u64) -> Vec<u8> {
    let mut payload = Vec::new();
    for (k, v) in ops {
        payload.extend_from_slice(&(k.len() as u32).to_le_bytes());
        payload.extend_from_slice(k);
        match v {
            Some(v) => {
                payload.push(1);
                payload.extend_from_slice(&(v.len() as u32).to_le_bytes());
                payload.extend_from_slice(v);
            }
            None => payload.push(0),
        }
    }
    let mut out = Vec::with_capacity(payload.len() + HEADER);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&checksum(epoch, &payload).to_le_bytes());
    out.extend_from_slice(&epoch.to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

fn checksum(epoch: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&epoch.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// The complete, intact records of the log's current round, in order.
fn records(mut bytes: &[u8]) -> Vec<Ops> {
    let mut out = Vec::new();
    let mut round = None;
    while bytes.len() >= HEADER {
        let len = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
        let epoch = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        let Some(payload) = bytes.get(HEADER..HEADER + len) else { break };
        if len == 0 || checksum(epoch, payload) != crc || *round.get_or_insert(epoch) != epoch {
            break;
        }
        let Some(ops) = decode(payload) else { break };
        out.push(ops);
        bytes = &bytes[HEADER + len..];
    }
    out
}

fn decode(mut p: &[u8]) -> Option<Ops> {
    let mut ops = Vec::new();
    let take = |p: &mut &[u8], n: usize| -> Option<Vec<u8>> {
        let (a, b) = (p.get(..n)?.to_vec(), p.get(n..)?);
        *p = b;
        Some(a)
    };
    while !p.is_empty() {
        let klen = u32::from_le_bytes(take(&mut p, 4)?.try_into().ok()?) as usize;
        let key = take(&mut p, klen)?;
        let value = match take(&mut p, 1)?[0] {
            1 => {
                let vlen = u32::from_le_bytes(take(&mut p, 4)?.try_into().ok()?) as usize;
                Some(take(&mut p, vlen)?)
            }
            0 => None,
            _ => return None,
        };
        ops.push((key, value));
    }
    Some(ops)
}

impl SledKv {
    fn apply_to_sled(&self, ops: Ops) -> Result<(), String> {
        let mut batch = sled::Batch::default();
        for (k, v) in ops {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        self.db.apply_batch(batch).map_err(|e| e.to_string())
    }

    /// Puts everything in sled on stable storage (when `flush_sled`: something was written
    /// since), then starts the log again: an end mark at offset 0, a new epoch.
    fn checkpoint(&self, wal: &mut Wal, flush_sled: bool) -> Result<(), String> {
        if flush_sled {
            self.db.flush().map_err(|e| e.to_string())?;
            if let Some(f) = &self.data {
                f.sync_data().map_err(|e| format!("fdatasync of the store: {e}"))?;
            }
        }
        wal.file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        wal.file.write_all(&[0; HEADER]).map_err(|e| e.to_string())?;
        wal.file.sync_data().map_err(|e| e.to_string())?;
        wal.file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        wal.pos = 0;
        wal.epoch = rand::random();
        wal.unsynced = false;
        Ok(())
    }
}

impl Kv for SledKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.db.get(key).map(|v| v.map(|v| v.to_vec())).map_err(|e| e.to_string())
    }
    fn scan(&self, prefix: &[u8]) -> Result<Vec<Entry>, String> {
        self.db.scan_prefix(prefix).map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(|e| e.to_string())).collect()
    }
    fn last(&self, prefix: &[u8]) -> Result<Option<Entry>, String> {
        match self.db.scan_prefix(prefix).next_back() {
            None => Ok(None),
            Some(r) => r.map(|(k, v)| Some((k.to_vec(), v.to_vec()))).map_err(|e| e.to_string()),
        }
    }
    fn apply(&self, ops: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), String> {
        let mut wal = self.wal.lock().expect("poisoned");
        let size = encode(&ops, 0).len() as u64;
        if wal.pos + size > LOG_BYTES && wal.pos > 0 {
            // Full: what the log holds goes to sled's files first.
            self.checkpoint(&mut wal, true)?;
        }
        // The log first: sled may write the batch out at any time after this. The file's
        // position is the record's place (the log is this process's alone).
        let record = encode(&ops, wal.epoch);
        wal.file.write_all(&record).map_err(|e| format!("writing the state store's log: {e}"))?;
        wal.pos += size;
        wal.unsynced = true;
        self.apply_to_sled(ops)
    }
    fn flush(&self) -> Result<(), String> {
        let mut wal = self.wal.lock().expect("poisoned");
        if wal.unsynced {
            wal.file.sync_data().map_err(|e| format!("fdatasync of the state store's log: {e}"))?;
            wal.unsynced = false;
        }
        Ok(())
    }
}

impl Drop for SledKv {
    fn drop(&mut self) {
        // A clean close leaves an empty log; if this fails, the next open replays it.
        if let Ok(mut wal) = self.wal.lock() {
            let dirty = wal.pos > 0;
            let _ = self.checkpoint(&mut wal, dirty);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_torn_tail_ends_the_log() {
        let a: Ops = vec![(b"r/1".to_vec(), Some(b"{}".to_vec())), (b"k/x".to_vec(), None)];
        let b: Ops = vec![(b"e/1/0".to_vec(), Some(vec![0; 300]))];
        let mut log = encode(&a, 7);
        log.extend(encode(&b, 7));
        assert_eq!(records(&log), vec![a.clone(), b.clone()]);
        for cut in 1..encode(&b, 7).len() {
            assert_eq!(records(&log[..log.len() - cut]), vec![a.clone()], "cut {cut}");
        }
        let mut flipped = log.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(records(&flipped), vec![a.clone()]);
        // A leftover of an earlier round after this round's records, zeros, or an end mark.
        let mut stale = encode(&a, 9);
        stale.extend(encode(&b, 8));
        assert_eq!(records(&stale), vec![a.clone()]);
        let mut zeros = encode(&a, 9);
        zeros.extend([0; 64]);
        assert_eq!(records(&zeros), vec![a]);
        assert!(records(&[0; HEADER]).is_empty());
    }

    #[test]
    fn what_was_flushed_survives_without_a_clean_close() {
        let dir = std::env::temp_dir().join(format!("phoenix-wal-{}-{}", std::process::id(), line!()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let kv = open_sled(&dir).unwrap();
            kv.apply(vec![(b"a".to_vec(), Some(b"1".to_vec())), (b"b".to_vec(), Some(b"2".to_vec()))]).unwrap();
            kv.apply(vec![(b"a".to_vec(), None)]).unwrap();
            kv.flush().unwrap();
            // No clean close: the log, not sled's files, must carry these writes.
            assert_eq!(records(&std::fs::read(dir.join("wal")).unwrap()).len(), 2);
            std::mem::forget(kv);
        }
        // sled's lock belongs to the forgotten handle's file: read the log the way a new
        // process would, into a fresh sled.
        let log = std::fs::read(dir.join("wal")).unwrap();
        let fresh = dir.join("replay");
        drop(open_sled(&fresh).unwrap());
        std::fs::write(fresh.join("wal"), &log).unwrap();
        let kv = open_sled(&fresh).unwrap();
        assert_eq!(kv.get(b"a").unwrap(), None);
        assert_eq!(kv.get(b"b").unwrap(), Some(b"2".to_vec()));
        assert!(records(&std::fs::read(fresh.join("wal")).unwrap()).is_empty(), "replayed, then a new round");
        // Past the log's size, sled takes what it holds and the log starts again.
        for i in 0..3000u32 {
            kv.apply(vec![(format!("k{i}").into_bytes(), Some(vec![1; 500]))]).unwrap();
        }
        kv.flush().unwrap();
        assert_eq!(std::fs::metadata(fresh.join("wal")).unwrap().len(), LOG_BYTES, "never grows");
        assert_eq!(kv.get(b"k0").unwrap(), Some(vec![1; 500]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
