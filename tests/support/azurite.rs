//! Azurite's blob service (Azure Blob Storage's emulator) on a free loopback port, one per
//! test, started from the npm package `make deps` installs (`.tools/azurite`, or
//! `PHOENIX_AZURITE`); its data lives in memory (or in a temporary directory for an Azurite
//! too old for `--inMemoryPersistence`), and it is killed when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::postgres::free_port;
use crate::support::repo_root;

/// The emulator's well-known account.
pub(crate) const ACCOUNT: &str = "devstoreaccount1";
/// Its well-known key (published by Microsoft).
pub(crate) const KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A running Azurite blob service; stopped when dropped.
pub(crate) struct Azurite {
    child: Child,
    port: u16,
    _dir: TempDir,
}

fn azurite_blob() -> PathBuf {
    let dir = std::env::var_os("PHOENIX_AZURITE").map_or_else(|| repo_root().join(".tools/azurite"), PathBuf::from);
    let bin = dir.join("node_modules/.bin/azurite-blob");
    assert!(bin.exists(), "{} is missing: run `make deps` (it installs Azurite with npm into {})", bin.display(), dir.display());
    bin
}

/// Whether this Azurite keeps its data in memory when asked (3.28 and later).
fn in_memory() -> bool {
    static IN_MEMORY: OnceLock<bool> = OnceLock::new();
    *IN_MEMORY.get_or_init(|| {
        let help = Command::new(azurite_blob()).arg("--help").output().expect("run azurite-blob --help");
        String::from_utf8_lossy(&help.stdout).contains("--inMemoryPersistence")
    })
}

impl Azurite {
    /// Starts it and waits until it answers HTTP.
    pub(crate) fn start() -> Azurite {
        let dir = tempfile::Builder::new().prefix("phoenix-azurite-").tempdir().expect("a temporary directory");
        let port = free_port();
        let mut cmd = Command::new(azurite_blob());
        cmd.args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args(["--skipApiVersionCheck", "--loose", "--silent", "--disableTelemetry"])
            // Its workspace files, if any, stay in the temporary directory.
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).expect("a log file"));
        if in_memory() {
            cmd.args(["--inMemoryPersistence", "--extentMemoryLimit", "256"]);
        } else {
            cmd.arg("--location").arg(dir.path());
        }
        let child = cmd.spawn().expect("start azurite-blob");
        let mut azurite = Azurite { child, port, _dir: dir };
        azurite.wait_until_it_answers();
        azurite
    }

    fn wait_until_it_answers(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("azurite's status") {
                let log = std::fs::read_to_string(self._dir.path().join("stderr.log")).unwrap_or_default();
                panic!("azurite-blob exited ({status}) before answering:\n{log}");
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut answer = [0u8; 5];
                if s.write_all(b"GET / HTTP/1.0\r\n\r\n").is_ok() && s.read_exact(&mut answer).is_ok() && &answer == b"HTTP/" {
                    return;
                }
            }
            assert!(start.elapsed() < Duration::from_secs(60), "azurite-blob did not answer on port {} within 60s", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The blob endpoint, for `with: { endpoint: … }`.
    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    /// A connection string with the well-known account and key.
    pub(crate) fn connection_string(&self) -> String {
        format!("DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={};", self.endpoint())
    }

    /// An account SAS for the blob service (every permission, until 2099), signed here with
    /// Python's standard library: an implementation independent of the one under test.
    pub(crate) fn account_sas(&self) -> String {
        const SIGN: &str = r#"
import base64, hashlib, hmac, sys
account, key = sys.argv[1], base64.b64decode(sys.argv[2])
sp, ss, srt, se, spr, sv = "rwdlac", "b", "sco", "2099-01-01T00:00:00Z", "https,http", "2019-12-12"
to_sign = "\n".join([account, sp, ss, srt, "", se, "", spr, sv, ""])
sig = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest()).decode()
from urllib.parse import urlencode
print(urlencode({"sv": sv, "ss": ss, "srt": srt, "sp": sp, "se": se, "spr": spr, "sig": sig}))
"#;
        let out = Command::new("python3").args(["-c", SIGN, ACCOUNT, KEY]).output().expect("python3 signs a SAS");
        assert!(out.status.success(), "signing a SAS failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("a SAS is text").trim().to_string()
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
