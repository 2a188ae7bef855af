//! Finding and opening the state directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use phoenix_engine::state::{OpenError, Store, open_sled};

/// `--state`, else `$PHOENIX_STATE` (clap reads it), else `$XDG_STATE_HOME/phoenix`, else
/// `~/.local/state/phoenix`.
pub(crate) fn dir(given: &Option<PathBuf>) -> PathBuf {
    if let Some(d) = given {
        // Absolute: `phoenix resume` may change directory to where the run worked.
        return std::path::absolute(d).unwrap_or_else(|_| d.clone());
    }
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("phoenix");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/state/phoenix")
}

/// How the store can be reached.
pub(crate) enum Access {
    /// This process opened it.
    Direct(Store),
    /// Another process owns it and answers on the socket.
    Owner,
}

/// Opens the store, or finds the process that owns it.
pub(crate) fn open(dir: &Path) -> Result<Access, String> {
    match open_sled(dir) {
        Ok(kv) => Store::new(Arc::new(kv)).map(Access::Direct).map_err(|e| e.to_string()),
        Err(OpenError::Locked) => {
            if phoenix_engine::exec::control::owner_alive(dir) {
                Ok(Access::Owner)
            } else {
                Err(format!(
                    "the state store in {} is locked by another process that does not answer; wait for it, or stop it",
                    dir.display()
                ))
            }
        }
        Err(e) => {
            let e = e.to_string();
            if e.contains("No space left on device") {
                // sled writes even to open a store for reading.
                return Err(format!(
                    "{e}\n  the filesystem that holds {} is full: free space on it (`df -h {}`), then run this again; nothing was changed",
                    dir.display(),
                    dir.display()
                ));
            }
            Err(e)
        }
    }
}

/// Who is operating.
pub(crate) fn operator(given: Option<String>) -> String {
    given
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .or_else(|| nix::unistd::User::from_uid(nix::unistd::getuid()).ok().flatten().map(|u| u.name))
        .unwrap_or_else(|| "unknown".into())
}
