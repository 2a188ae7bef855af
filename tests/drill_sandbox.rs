//! `make drill` on the sandbox of real services: `phoenix drill runbooks/dr-failover.yaml`
//! against the drill's targets, its teardown, and production's DNS record, DR container and
//! databases fingerprinted before and after (scripts/drill.sh, scripts/sandbox_fingerprint.py).

use std::process::Command;

use crate::support::{phoenix_bin, repo_root};

#[test]
fn make_drill_rehearses_the_failover_and_leaves_production_byte_for_byte_unchanged() {
    let dir = tempfile::Builder::new().prefix("phoenix-drill-").tempdir().expect("a temporary directory");
    let out = Command::new(repo_root().join("scripts/drill.sh"))
        .env("PHOENIX", phoenix_bin())
        .env("DRILL_DIR", dir.path())
        .env("NO_COLOR", "1")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .expect("bash runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "scripts/drill.sh failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("unchanged: DNS record, DR container, DR and primary databases"), "{stdout}");
    // The drill measured itself and tore down.
    let drills =
        stdout.lines().find(|l| l.split_whitespace().nth(1) == Some("dr-failover")).unwrap_or_else(|| panic!("no drill listed:\n{stdout}"));
    assert!(drills.contains("succeeded") && drills.trim_end().ends_with("succeeded"), "{drills}");
    assert!(stdout.contains("the first passing verification"), "{stdout}");
    assert!(stdout.contains("| RPO | "), "{stdout}");
}
