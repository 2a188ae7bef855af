//! Files a runbook names at run time (a child runbook, a prompt template) stay inside the
//! runbook's own directory: a param cannot point a step at `/etc/passwd`, at
//! `../../elsewhere/evil.yaml`, or through a symlink that leaves the directory. Under
//! `phoenix serve` that directory is the server's runbooks directory.

use std::path::{Component, Path, PathBuf};

use crate::runbook::Runbook;

/// The directory files named by `rb` must stay in.
pub(crate) fn root_of(rb: &Runbook) -> PathBuf {
    match rb.file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `rel`, relative to `root`, as a canonical path inside `root`; else why not, in words
/// an operator can act on. `what` names the file (`the child runbook`).
pub(crate) fn inside(root: &Path, rel: &str, what: &str) -> Result<PathBuf, String> {
    if let Some(e) = escapes(root, rel, what) {
        return Err(e);
    }
    let joined = root.join(rel);
    joined.canonicalize().map_err(|e| format!("{what} `{rel}`: cannot read {}: {e}", joined.display()))
}

/// Why `rel` is not a file inside `root` (absolute, empty, `..` past the top, a symlink
/// out), if it is not; a file that does not exist yet is not a reason.
pub(crate) fn escapes(root: &Path, rel: &str, what: &str) -> Option<String> {
    let fix = format!("name a file of {} with a path relative to it, such as `dr-failover.yaml`", root.display());
    if rel.is_empty() {
        return Some(format!("{what} is empty; {fix}"));
    }
    if Path::new(rel).is_absolute() {
        return Some(format!("{what} `{rel}` is an absolute path, which could be any file of this machine; {fix}"));
    }
    let mut depth = 0usize;
    for c in Path::new(rel).components() {
        match c {
            Component::ParentDir if depth == 0 => {
                return Some(format!(
                    "{what} `{rel}` leaves {} through `..`; files a runbook names stay in its directory: {fix}",
                    root.display()
                ));
            }
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    let (Ok(top), Ok(path)) = (root.canonicalize(), root.join(rel).canonicalize()) else { return None };
    (!path.starts_with(&top)).then(|| {
        format!(
            "{what} `{rel}` leaves {} through a symlink (to {}); files a runbook names stay in its directory: {fix}",
            root.display(),
            path.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_absolute_paths_dot_dot_and_symlinks_out() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("runbooks");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("child.yaml"), "x").unwrap();
        std::fs::write(root.join("sub/c.yaml"), "x").unwrap();
        std::fs::write(dir.path().join("evil.yaml"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path().join("evil.yaml"), root.join("link.yaml")).unwrap();
        std::os::unix::fs::symlink(root.join("child.yaml"), root.join("alias.yaml")).unwrap();

        assert!(inside(&root, "child.yaml", "f").unwrap().ends_with("runbooks/child.yaml"));
        assert!(inside(&root, "sub/../sub/c.yaml", "f").is_ok());
        assert!(inside(&root, "alias.yaml", "f").is_ok(), "a symlink that stays inside is fine");
        let abs = dir.path().join("evil.yaml");
        assert!(inside(&root, abs.to_str().unwrap(), "f").unwrap_err().contains("absolute path"));
        assert!(inside(&root, "../evil.yaml", "f").unwrap_err().contains("leaves"));
        assert!(inside(&root, "link.yaml", "f").unwrap_err().contains("leaves"));
        assert!(inside(&root, "", "f").unwrap_err().contains("empty"));
        assert!(inside(&root, "missing.yaml", "f").unwrap_err().contains("cannot read"));
    }
}
