//! Finding pg_dump and pg_restore: `pg_bin`, else `$PATH`, else the newest
//! `/usr/lib/postgresql/*/bin` (where Debian and Ubuntu install every major version).

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;

/// Where Debian's packages put each major version's programs.
const LIB_ROOT: &str = "/usr/lib/postgresql";

/// The two programs, from one directory.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    pub(crate) pg_dump: PathBuf,
    pub(crate) pg_restore: PathBuf,
}

/// Finds the programs for this machine's environment.
pub(crate) fn locate(pg_bin: Option<&str>) -> Result<Tools, String> {
    locate_in(pg_bin.map(Path::new), std::env::var_os("PATH").as_deref(), Path::new(LIB_ROOT))
}

fn locate_in(pg_bin: Option<&Path>, path: Option<&OsStr>, lib_root: &Path) -> Result<Tools, String> {
    if let Some(dir) = pg_bin {
        return in_dir(dir).ok_or_else(|| format!("`pg_bin` ({}) does not hold both pg_dump and pg_restore", dir.display()));
    }
    let on_path = path.into_iter().flat_map(std::env::split_paths);
    if let Some(found) = on_path.filter(|d| !d.as_os_str().is_empty()).find_map(|d| in_dir(&d)) {
        return Ok(found);
    }
    newest_version(lib_root).and_then(|dir| in_dir(&dir)).ok_or_else(|| {
        format!(
            "pg_dump and pg_restore were not found on $PATH or in {}/*/bin: install the PostgreSQL client programs \
             (e.g. `apt-get install postgresql-client`) or point `pg_bin` at them",
            lib_root.display()
        )
    })
}

fn in_dir(dir: &Path) -> Option<Tools> {
    let (dump, restore) = (dir.join("pg_dump"), dir.join("pg_restore"));
    (executable(&dump) && executable(&restore)).then_some(Tools { pg_dump: dump, pg_restore: restore })
}

fn executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `LIB_ROOT/<newest version>/bin`, comparing versions as numbers (`9.6` < `10` < `16`).
fn newest_version(lib_root: &Path) -> Option<PathBuf> {
    let versions = std::fs::read_dir(lib_root).ok()?.flatten().filter_map(|e| {
        let name = e.file_name().to_str()?.to_string();
        let key: Vec<u32> = name.split('.').map(str::parse).collect::<Result<_, _>>().ok()?;
        Some((key, e.path().join("bin")))
    });
    versions.max_by(|a, b| a.0.cmp(&b.0)).map(|(_, bin)| bin)
}

/// `pg_dump (PostgreSQL) 15.8`, or why it could not be asked.
pub(crate) async fn version(program: &Path) -> String {
    let ask = Command::new(program).arg("--version").kill_on_drop(true).output();
    match tokio::time::timeout(Duration::from_secs(10), ask).await {
        Ok(Ok(out)) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Ok(Ok(out)) => format!("{} (its --version failed: {})", program.display(), String::from_utf8_lossy(&out.stderr).trim()),
        Ok(Err(e)) => format!("{} (cannot run it: {e})", program.display()),
        Err(_) => format!("{} (its --version did not answer)", program.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_bin(dir: &Path, names: &[&str]) {
        std::fs::create_dir_all(dir).unwrap();
        for n in names {
            let p = dir.join(n);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[test]
    fn pg_bin_then_path_then_the_newest_library_version() {
        let root = std::env::temp_dir().join(format!("phoenix-tools-{}-{}", std::process::id(), rand::random::<u32>()));
        let lib = root.join("lib");
        for v in ["9.6", "10", "16", "12"] {
            fake_bin(&lib.join(v).join("bin"), &["pg_dump", "pg_restore"]);
        }
        std::fs::create_dir_all(lib.join("notes")).unwrap();
        fake_bin(&root.join("half"), &["pg_dump"]);
        fake_bin(&root.join("both"), &["pg_dump", "pg_restore"]);

        let found = locate_in(None, None, &lib).unwrap();
        assert_eq!(found.pg_dump, lib.join("16/bin/pg_dump"));
        let path = std::env::join_paths([root.join("half"), root.join("both")]).unwrap();
        assert_eq!(locate_in(None, Some(&path), &lib).unwrap().pg_restore, root.join("both/pg_restore"));
        let pinned = lib.join("12/bin");
        assert_eq!(locate_in(Some(&pinned), Some(&path), &lib).unwrap().pg_dump, pinned.join("pg_dump"));
        let err = locate_in(Some(&root.join("half")), None, &lib).unwrap_err();
        assert!(err.contains("does not hold both"), "{err}");
        let err = locate_in(None, None, &root.join("none")).unwrap_err();
        assert!(err.contains("were not found") && err.contains("`pg_bin`"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
