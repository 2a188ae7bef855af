//! Directories that survive a power loss: a new file or directory is durable only once the
//! directory holding its name is synced too (`fsync` of a file does not record its name).

use std::io;
use std::path::Path;

/// Creates `dir` and any missing parents, private to this user (0700, as `mkdir -p -m 700`),
/// syncing the parent of each directory it created.
pub fn create_durable(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.as_os_str().is_empty() && !d.exists()).collect();
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    // Top down: a name is recorded once its parent is.
    for d in missing.iter().rev() {
        sync(d.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))?;
    }
    Ok(())
}

/// Syncs a directory: the names created, renamed or removed in it are on stable storage.
pub(super) fn sync(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #[test]
    fn creates_every_missing_level() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/c");
        super::create_durable(&dir).unwrap();
        assert!(dir.is_dir());
        super::create_durable(&dir).unwrap();
    }
}
