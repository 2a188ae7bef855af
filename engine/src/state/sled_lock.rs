//! sled's file lock, released for real before a closed store counts as closed.
//!
//! sled takes an exclusive `flock` on its `db` file and lets it go when the last handle on
//! its page cache goes, which can be one of sled's own I/O threads finishing a write after
//! the `Db` was dropped. Under load that thread may run a while later: a store closed and
//! opened again in the same process (a test, `phoenix status` right after a run in one
//! process, `phoenix serve` reopening) found it still locked. So a close waits until the
//! lock can be taken, and an open that finds the lock held by this very process (a handle
//! being closed on another thread) waits for it, both for a bounded time.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a close or an open waits for a lock this process is letting go of.
const PATIENCE: Duration = Duration::from_secs(10);

/// Waits, when dropped, until sled's lock on `file` is free: the last field of a store, so it
/// is dropped after sled.
pub(super) struct Released {
    pub(super) file: PathBuf,
}

impl Drop for Released {
    fn drop(&mut self) {
        wait_free(&self.file, PATIENCE);
    }
}

/// Whether the lock on `file` is free, within `patience`.
pub(super) fn wait_free(file: &Path, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    let mut pause = Duration::from_millis(1);
    loop {
        match File::open(file).map(|f| f.try_lock()) {
            // Taken, and let go at once when `f` closes.
            Ok(Ok(())) => return true,
            Ok(Err(TryLockError::WouldBlock)) if Instant::now() < deadline => {}
            // Gone (the store was removed), or held on.
            _ => return false,
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Whether this process holds the `flock` on `file` (in `/proc/locks`, by inode and pid).
pub(super) fn held_here(file: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(inode) = std::fs::metadata(file).map(|m| m.ino()) else { return false };
    let Ok(locks) = std::fs::read_to_string("/proc/locks") else { return false };
    let pid = std::process::id().to_string();
    locks.lines().any(|line| {
        // `1: FLOCK  ADVISORY  WRITE 4242 08:01:1234567 0 EOF`
        let fields: Vec<&str> = line.split_whitespace().collect();
        fields.get(1) == Some(&"FLOCK")
            && fields.get(4) == Some(&pid.as_str())
            && fields.get(5).and_then(|d| d.rsplit(':').next()) == Some(inode.to_string().as_str())
    })
}

/// Whether the lock on `file`, found held, is free now or once this process has let it go;
/// false when another process holds it, or this one still does after the wait.
pub(super) fn wait_own(file: &Path) -> bool {
    wait_free(file, Duration::ZERO) || (held_here(file) && wait_free(file, PATIENCE))
}
