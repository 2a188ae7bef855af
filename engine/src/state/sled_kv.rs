//! The sled backend.

use std::path::Path;

use super::kv::{Entry, Kv};

/// A sled tree as a [`Kv`].
pub struct SledKv {
    db: sled::Db,
    /// sled's log file. sled's own flush uses `sync_file_range`, which neither syncs
    /// metadata nor flushes the drive's write cache; an `fdatasync` on the file after it
    /// makes a checkpoint survive a power cut too, not only a crash of the process.
    data: Option<std::fs::File>,
}

/// Why the store could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// Another process holds the store (a run in progress, or `phoenix serve`).
    Locked,
    /// Anything else.
    Other(String),
}

/// Opens (or creates) the store in `dir`. The cache is kept small: runs are small.
pub fn open_sled(dir: &Path) -> Result<SledKv, OpenError> {
    std::fs::create_dir_all(dir).map_err(|e| OpenError::Other(format!("cannot create {}: {e}", dir.display())))?;
    let db = sled::Config::new().path(dir.join("db")).cache_capacity(8 << 20).mode(sled::Mode::LowSpace).open().map_err(|e| match &e {
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock") => OpenError::Locked,
        _ => OpenError::Other(e.to_string()),
    })?;
    let data = std::fs::File::open(dir.join("db").join("db")).ok();
    Ok(SledKv { db, data })
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Locked => f.write_str("the state store is in use by another phoenix process"),
            OpenError::Other(e) => f.write_str(e),
        }
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
        let mut batch = sled::Batch::default();
        for (k, v) in ops {
            match v {
                Some(v) => batch.insert(k, v),
                None => batch.remove(k),
            }
        }
        self.db.apply_batch(batch).map_err(|e| e.to_string())
    }
    fn flush(&self) -> Result<(), String> {
        self.db.flush().map_err(|e| e.to_string())?;
        if let Some(f) = &self.data {
            f.sync_data().map_err(|e| format!("fdatasync of the store: {e}"))?;
        }
        Ok(())
    }
}
