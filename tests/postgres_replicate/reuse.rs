//! `postgres.replicate` keeps a finished dump across attempts: Phoenix SIGKILLed during the
//! restore, then `phoenix resume`, restores the same dump without running pg_dump again;
//! a dump without its manifest (pg_dump did not finish), one older than `reuse_dump`, one of
//! another source, or any with `reuse_dump: 0s` is deleted and dumped again.
//!
//! pg_dump and pg_restore are wrappers in a `pg_bin` directory: pg_dump counts its runs in a
//! file (but `--version`), then runs the real one; each can SIGKILL Phoenix (its parent) once, at a set point.

use super::*;

/// A `pg_bin` directory: `pg_dump` (but `--version`) appends a line to `dumps.count` and runs the real one, then
/// SIGKILLs Phoenix on its first run when `kill_after_dump` (after cutting the dump short);
/// `pg_restore` SIGKILLs Phoenix on its first run when `kill_in_restore`, else runs the real one.
fn wrappers(dir: &std::path::Path, kill_after_dump: bool, kill_in_restore: bool) -> std::path::PathBuf {
    let bin = dir.join("pgbin");
    std::fs::create_dir_all(&bin).unwrap();
    let count = dir.join("dumps.count");
    let once = |name: &str| dir.join(format!("{name}.killed"));
    let after_dump = if kill_after_dump {
        // The dump is complete on disk but cut short, and pg_dump never reports its exit.
        format!(
            "if [ ! -e {flag} ]; then touch {flag}; for f in \"$out\"/*.dat.gz \"$out\"/*.dat; do [ -f \"$f\" ] && : > \"$f\"; done; kill -9 $PPID; exit 1; fi\n",
            flag = once("pg_dump").display()
        )
    } else {
        String::new()
    };
    let dump = format!(
        "#!/bin/sh\n[ \"$1\" = --version ] && exec pg_dump --version\necho run >> {count}\nout=''\nfor a in \"$@\"; do case \"$a\" in --file=*) out=\"${{a#--file=}}\";; esac; done\npg_dump \"$@\" || exit $?\n{after_dump}exit 0\n",
        count = count.display()
    );
    let restore = if kill_in_restore {
        format!(
            "#!/bin/sh\n[ \"$1\" = --version ] && exec pg_restore --version\nif [ ! -e {flag} ]; then touch {flag}; kill -9 $PPID; exit 1; fi\nexec pg_restore \"$@\"\n",
            flag = once("pg_restore").display()
        )
    } else {
        "#!/bin/sh\nexec pg_restore \"$@\"\n".to_string()
    };
    for (name, text) in [("pg_dump", dump), ("pg_restore", restore)] {
        let p = bin.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

fn dumps(dir: &std::path::Path) -> usize {
    std::fs::read_to_string(dir.join("dumps.count")).unwrap_or_default().lines().count()
}

/// Runs the runbook (its `copy` step with `with`) until Phoenix is SIGKILLed by a wrapper,
/// then edits the kept manifest with `tamper`, then resumes; the resume's output and status.
fn crash_then_resume(
    source: &Postgres,
    target: &Postgres,
    with: &str,
    kill_after_dump: bool,
    tamper: impl FnOnce(&mut Value),
) -> (Output, Value, usize) {
    let t = Test::new();
    let bin = wrappers(t.path(), kill_after_dump, !kill_after_dump);
    let yaml = runbook(&format!("      pg_bin: {}\n      jobs: 2\n      verify_tables: {VERIFY}\n{with}", bin.display()));
    let out = t.file("r.yaml", yaml).args(["run", "r.yaml"]).env("SOURCE_DSN", source.dsn()).env("TARGET_DSN", target.dsn()).run();
    assert_eq!(out.exit_code(), None, "Phoenix was SIGKILLed by a wrapper:\n{}", out.stderr());
    let run_id = process::latest_run(&out.state_dir());
    let manifest = out.state_dir().join("work").join(&run_id).join("dumps/copy.manifest.json");
    if manifest.exists() {
        let mut m: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
        tamper(&mut m);
        std::fs::write(&manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    }
    let resumed = out.then().args(["resume", &run_id]).run().success();
    let s = process::status(&out.state_dir(), &run_id);
    let n = dumps(out.path());
    (resumed, s, n)
}

#[test]
fn a_crash_during_the_restore_resumes_with_the_finished_dump_without_dumping_again() {
    let (source, target) = (Postgres::primary(), Postgres::primary());
    seed(&source);
    stale(&target);
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let (out, s, n) = crash_then_resume(&source, &target, "", false, |_| {});
    assert_eq!(n, 1, "pg_dump ran once: the resume restored the finished dump");
    let outputs = &step(&s, "copy")["outputs"];
    assert_eq!(outputs["dump_reused"], true, "{outputs:#}");
    assert_eq!(outputs["verified"], true, "{outputs:#}");
    let snapshot = outputs["snapshot_at"].as_u64().expect("snapshot_at");
    assert!(snapshot >= before, "the snapshot is the first attempt's pg_dump start: {snapshot} < {before}");
    assert_same(&source, &target);
    assert!(logs(&out, "copy").contains("restoring the dump an earlier attempt finished"), "{}", logs(&out, "copy"));
    let work = out.state_dir().join("work").join(process::latest_run(&out.state_dir()));
    let left: Vec<_> = std::fs::read_dir(&work).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
    assert!(left.is_empty(), "the dump is removed once the target is verified: {left:?}");
}

#[test]
fn reuse_dump_0s_dumps_again_after_a_crash() {
    let (source, target) = (Postgres::primary(), Postgres::primary());
    seed(&source);
    let (_, s, n) = crash_then_resume(&source, &target, "      reuse_dump: 0s\n", false, |_| {});
    assert_eq!(n, 2, "reuse_dump: 0s never restores an earlier attempt's dump");
    assert_eq!(step(&s, "copy")["outputs"]["dump_reused"], false);
    assert_same(&source, &target);
}

#[test]
fn a_dump_cut_short_by_a_crash_has_no_manifest_and_is_dumped_again() {
    let (source, target) = (Postgres::primary(), Postgres::primary());
    seed(&source);
    let (out, s, n) = crash_then_resume(&source, &target, "", true, |_| {});
    assert_eq!(n, 2, "the dump without a manifest is never restored");
    let outputs = &step(&s, "copy")["outputs"];
    assert_eq!(outputs["dump_reused"], false, "{outputs:#}");
    assert_eq!(outputs["verified"], true, "{outputs:#}");
    assert_same(&source, &target);
    assert!(logs(&out, "copy").contains("has no manifest (pg_dump did not finish); it was deleted"), "{}", logs(&out, "copy"));
}

#[test]
fn a_dump_older_than_reuse_dump_or_of_another_source_is_dumped_again() {
    let (source, target) = (Postgres::primary(), Postgres::primary());
    seed(&source);
    let two_hours_ago = |m: &mut Value| {
        let at = m["snapshot_at"].as_u64().unwrap();
        m["snapshot_at"] = json!(at - 2 * 3600 * 1000);
    };
    let (out, s, n) = crash_then_resume(&source, &target, "      reuse_dump: 1h\n", false, two_hours_ago);
    assert_eq!(n, 2, "a dump older than reuse_dump is dumped again");
    assert_eq!(step(&s, "copy")["outputs"]["dump_reused"], false);
    assert!(logs(&out, "copy").contains("not younger than reuse_dump (1h)"), "{}", logs(&out, "copy"));
    assert_same(&source, &target);

    let target2 = Postgres::primary();
    let elsewhere = |m: &mut Value| m["source"] = json!("postgres@10.9.9.9:5432/other");
    let (out, s, n) = crash_then_resume(&source, &target2, "", false, elsewhere);
    assert_eq!(n, 2, "a dump of another source is never restored");
    assert_eq!(step(&s, "copy")["outputs"]["dump_reused"], false);
    assert!(logs(&out, "copy").contains("is of another source (postgres@10.9.9.9:5432/other"), "{}", logs(&out, "copy"));
    assert_same(&source, &target2);
}
