//! Secrets from the stores teams keep them in: AWS Secrets Manager (the moto server's, over
//! the real wire protocol) and a command that prints one (`vault kv get`, `op read`…). Each
//! is read when a step first needs it, once a run, never stored, never shown.

use std::os::unix::fs::PermissionsExt;

use crate::aws_data::aws_test;
use crate::moto::Moto;
use crate::process::{self, step};
use crate::support::{Output, Test};

const DSN: &str = "postgres://app:Sup3r-S3cret-dsn-4711@db.internal/app";
const TOKEN: &str = "tok-ABCDEF-987654-plain";

/// No trace of `values` anywhere in the state directory's files.
fn nowhere_in_state(out: &Output, values: &[&str]) {
    for entry in crate::process::files_under(&out.state_dir()) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        for v in values {
            assert!(!bytes.windows(v.len()).any(|w| w == v.as_bytes()), "{v} is in {}", entry.display());
        }
    }
}

#[test]
fn a_secret_from_aws_secrets_manager_is_read_when_needed_and_never_kept() {
    let moto = Moto::start();
    moto.secret("us-east-1", "prod/db", &format!(r#"{{"dsn": "{DSN}", "user": "app"}}"#));
    moto.secret("us-east-1", "prod/token", TOKEN);
    let at = format!("region: us-east-1, endpoint_url: \"{}\"", moto.url());
    let yaml = format!(
        r#"version: 1
name: from-the-store
secrets:
  dsn: {{ aws_secretsmanager: prod/db, key: dsn, {at} }}
  token: {{ aws_secretsmanager: prod/token, {at} }}
  gone: {{ aws_secretsmanager: prod/nothing-here, {at} }}
steps:
  use:
    uses: exec
    with: {{ script: 'printf %s "{{{{ secrets.dsn }}}}" > dsn.out; echo "token={{{{ secrets.token }}}}"' }}
"#
    );
    // `gone` is never needed: not read, so the run does not fail on it.
    let out = aws_test().file("r.yaml", &yaml).args(["run", "r.yaml"]).run().success();
    assert_eq!(std::fs::read_to_string(out.path().join("dsn.out")).unwrap(), DSN);
    let run = process::latest_run(&out.state_dir());
    let logs = out.then().args(["logs", &run]).run().success().stdout().to_string();
    assert!(logs.contains("token=***"), "{logs}");
    let status = out.then().args(["status", &run, "--output", "json"]).run().success().stdout().to_string();
    for v in [DSN, TOKEN] {
        assert!(!logs.contains(v) && !status.contains(v) && !out.stderr().contains(v), "{v} was shown");
    }
    nowhere_in_state(&out, &[DSN, TOKEN, "Sup3r-S3cret"]);
    // With every library's debug and trace lines asked for: the SDK's own logging of the
    // response it read, and the request it signed, say nothing of the values.
    for level in ["debug", "trace"] {
        let out = aws_test().file("r.yaml", &yaml).env("RUST_LOG", level).args(["run", "r.yaml"]).run().success();
        assert!(out.stderr().lines().count() > 10, "RUST_LOG={level} logs: {}", out.stderr());
        for v in [DSN, TOKEN, "Sup3r-S3cret"] {
            assert!(!out.stderr().contains(v) && !out.stdout().contains(v), "RUST_LOG={level} shows {v}");
        }
    }

    // A step that needs one that is not there fails, naming it (and no value).
    let needs_gone = yaml.replace("{{ secrets.token }}", "{{ secrets.gone }}");
    let out = aws_test().file("r.yaml", &needs_gone).args(["run", "r.yaml"]).run().code(1);
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    let error = step(&s, "use")["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("secret `gone`") && error.contains("prod/nothing-here") && error.contains("ResourceNotFound"), "{error}");
    assert!(!out.path().join("dsn.out").exists(), "the step ran without its secret");

    // --dry-run says so before anything runs.
    let dry = aws_test().file("r.yaml", &yaml).args(["run", "r.yaml", "--dry-run"]).run().success();
    assert!(
        dry.stdout().contains("✗ secret `gone`: AWS Secrets Manager in us-east-1 did not give `prod/nothing-here`"),
        "{}",
        dry.stdout()
    );
    assert!(!dry.stdout().contains(DSN) && !dry.stdout().contains(TOKEN), "{}", dry.stdout());
}

#[test]
fn a_secret_from_a_command_is_read_once_a_run_and_only_if_needed() {
    let vault = "#!/bin/sh\necho call >> calls\necho 'v4lue-from-the-vault'\n";
    let never = "#!/bin/sh\ntouch never.ran\necho x\n";
    let yaml = r#"version: 1
name: from-a-command
secrets:
  password: { exec: [./vault.sh], timeout: 5s }
  unused: { exec: [./never.sh] }
steps:
  one:
    uses: exec
    with: { script: 'printf %s "{{ secrets.password }}" > one.out' }
  two:
    needs: [one]
    uses: exec
    with: { script: 'printf %s "{{ secrets.password }}" > two.out' }
"#;
    let t = aws_test().file("r.yaml", yaml).file("vault.sh", vault).file("never.sh", never);
    for f in ["vault.sh", "never.sh"] {
        std::fs::set_permissions(t.path().join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = t.args(["run", "r.yaml"]).run().success();
    for f in ["one.out", "two.out"] {
        assert_eq!(std::fs::read_to_string(out.path().join(f)).unwrap(), "v4lue-from-the-vault");
    }
    assert_eq!(std::fs::read_to_string(out.path().join("calls")).unwrap(), "call\n", "read once for the run");
    assert!(!out.path().join("never.ran").exists(), "a secret no step needs was read");
    nowhere_in_state(&out, &["v4lue-from-the-vault"]);

    // A command that fails fails the step that needs it, with the command and its last words.
    let failing = yaml.replace("[./vault.sh], timeout: 5s", "[sh, -c, 'echo permission denied >&2; exit 3']");
    let out = aws_test().file("r.yaml", &failing).args(["run", "r.yaml"]).run().code(1);
    let s = process::status(&out.state_dir(), &process::latest_run(&out.state_dir()));
    let error = step(&s, "one")["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("secret `password`: `sh -c echo permission denied >&2; exit 3` exited with 3: permission denied"), "{error}");
}

/// A secret that takes its time to read holds up only the step that needs it. The command
/// line drives a run on one thread: read there, the secret would stop every timer and every
/// other step; here `slow`'s secret waits for a file that only `after_a_timer` (which needs a
/// 1 s sleep to end first) writes, so the run ends only if both go on at once.
#[test]
fn a_slow_secret_does_not_hold_up_the_other_steps() {
    let yaml = r#"version: 1
name: slow-secret
secrets:
  token: { exec: [sh, -c, 'for i in $(seq 1 400); do [ -e released ] && cat vault/token && exit 0; sleep 0.05; done; exit 1'], timeout: 30s }
steps:
  slow:
    uses: exec
    with: { script: 'printf %s "{{ secrets.token }}" > slow.out' }
  timer:
    uses: sleep
    with: { duration: 1s }
  after_a_timer:
    needs: [timer]
    uses: exec
    with: { script: touch released }
"#;
    let out = Test::new().file("r.yaml", yaml).file("vault/token", "s3cret-t0ken").args(["run", "r.yaml"]).run().success();
    assert_eq!(std::fs::read_to_string(out.path().join("slow.out")).unwrap(), "s3cret-t0ken");
    nowhere_in_state(&out, &["s3cret-t0ken"]);
}

#[test]
fn a_secret_source_that_cannot_be_right_is_refused_before_anything_runs() {
    let bad = r#"version: 1
name: bad-secrets
secrets:
  two: { env: A, exec: [echo, x] }
  templated: { exec: [vault, read, "{{ params.path }}"] }
  stray_key: { env: B, key: dsn }
  no_source: { description: nothing }
  stray_timeout: { file: /run/secrets/x, timeout: 5s }
steps:
  a: { uses: noop }
"#;
    let out = aws_test().file("r.yaml", bad).args(["validate", "r.yaml"]).run().code(2);
    let text = out.stderr().to_string();
    for said in [
        "secret `two` names 2 sources: env, exec",
        "a secret's command is not a template",
        "`key` goes with `aws_secretsmanager`, which secret `stray_key` does not use",
        "secret `no_source` has no source",
        "`timeout` goes with `aws_secretsmanager` or `exec`",
    ] {
        assert!(text.contains(said), "{said:?} not in:\n{text}");
    }
    assert!(text.contains("r.yaml:4:") && text.contains("PHX0706"), "{text}");
}
