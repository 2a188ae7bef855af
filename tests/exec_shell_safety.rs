//! Shell safety in `exec`: a param never injects a command into a script or an argv; every
//! value of a script reaches bash as an environment variable behind a reference quoted for
//! where it stands; a place where no reference keeps a value data is refused at load; and
//! `| safe` pastes text as it is on purpose. (More payloads: `attacks::shell`.)

use crate::process::{self, lines, step};
use crate::support::{Output, Test};

fn status(out: &Output) -> serde_json::Value {
    process::status(&out.state_dir(), &process::latest_run(&out.state_dir()))
}

/// Quoted, it is a harmless string; pasted into a script unquoted it runs `touch pwned1`,
/// and pasted between naive single quotes it runs `touch pwned2`.
const EVIL: &str = "$(touch pwned1)'; touch pwned2; echo '";

#[test]
fn a_param_never_injects_a_command_into_a_script_or_an_argv() {
    let out = Test::new()
        .file(
            "r.yaml",
            r#"version: 1
name: quoting
params:
  evil: { type: string }
steps:
  script:
    uses: exec
    with: { script: "printf '%s' {{ params.evil }} > script.out" }
  argv:
    uses: exec
    with: { cmd: [printf, "%s", "{{ params.evil }}"] }
  in_env:
    uses: exec
    with:
      env: { EVIL: "{{ params.evil }}" }
      script: printf '%s' "$EVIL" > env.out
  in_text:
    uses: exec
    with: { script: "echo before-{{ params.evil }}-after > text.out" }
"#,
        )
        .args(["run", "r.yaml", "--param", &format!("evil={EVIL}")])
        .run()
        .success();
    for f in ["pwned1", "pwned2"] {
        assert!(!out.path().join(f).exists(), "the param ran a command: {f} exists");
    }
    assert_eq!(std::fs::read_to_string(out.path().join("script.out")).unwrap(), EVIL);
    assert_eq!(std::fs::read_to_string(out.path().join("env.out")).unwrap(), EVIL);
    assert_eq!(lines(&out.path().join("text.out")), [format!("before-{EVIL}-after")]);
    assert_eq!(step(&status(&out), "argv")["outputs"]["stdout"], EVIL);
}

/// Worse still: double quotes, backquotes, backslashes, and a line that would end a
/// here-document.
const EVIL_EVERYWHERE: &str = "a \"$(touch pwned1)\" `touch pwned2` \\\" ' \\$HOME\nEOF\ntouch pwned3";

#[test]
fn a_value_is_data_wherever_it_stands_in_the_script() {
    // What people write: bare, in double quotes, in single quotes, in `$( )`, in comments,
    // in here-documents. bash must read the value back exactly, and run none of it.
    let yaml = r#"version: 1
name: quoting
params:
  evil: { type: string }
steps:
  s:
    uses: exec
    with:
      script: |
        printf '%s' {{ params.evil }} > bare.out
        printf '%s' "{{ params.evil }}" > double.out
        printf '%s' 'x{{ params.evil }}x' > single.out
        printf '%s' "$(printf '%s' {{ params.evil }})" > command.out
        printf '%s' "in $(printf '%s' "{{ params.evil }}") too" > nested.out
        # a comment quoting {{ params.evil }}
        cat > heredoc.out <<END
        {{ params.evil }}
        END
"#;
    // A line `END` in the value no longer ends the here-document: bash finds the delimiter
    // in the script's text, where the value is only `${PHX_V…}` (it used to fail the step).
    let evil = EVIL_EVERYWHERE.replace("\nEOF", "\nEND");
    let out = Test::new().file("r.yaml", yaml).args(["run", "r.yaml", "--param", &format!("evil={evil}")]).run().success();
    for f in ["pwned1", "pwned2", "pwned3"] {
        assert!(!out.path().join(f).exists(), "the param ran a command: {f} exists");
    }
    let read = |f: &str| std::fs::read_to_string(out.path().join(f)).unwrap();
    assert_eq!(read("bare.out"), evil);
    assert_eq!(read("double.out"), evil);
    assert_eq!(read("single.out"), format!("x{evil}x"));
    assert_eq!(read("command.out"), evil);
    assert_eq!(read("nested.out"), format!("in {evil} too"));
    assert_eq!(read("heredoc.out"), format!("{evil}\n"));
    // What ran is on record: the script with its references, and each value beside it.
    let s = status(&out);
    let inputs = &step(&s, "s")["inputs"];
    assert!(inputs["script"].as_str().unwrap().contains("printf '%s' \"${PHX_V1}\" > bare.out"), "{inputs:#}");
    assert_eq!(inputs["env"]["PHX_V1"], evil.as_str(), "{inputs:#}");
    let run = process::latest_run(&out.state_dir());
    let md = out.then().args(["report", &run, "--format", "md"]).run().success().stdout().to_string();
    // The report names the script by its first line and lists the values its references stood for.
    assert!(md.contains("${PHX_V1}\" > bare.out") && md.contains("PHX_V1 = a ") && md.contains("touch pwned1"), "{md}");
}

#[test]
fn a_template_where_no_quoting_is_safe_is_refused_at_load() {
    let out = Test::new()
        .file(
            "r.yaml",
            "version: 1\nname: q\nparams:\n  v: { type: string }\nsteps:\n  s:\n    uses: exec\n    with:\n      script: |\n        echo ${NAME:-{{ params.v }}}\n",
        )
        .args(["run", "r.yaml", "--param", "v=x"])
        .run()
        .code(2);
    let err = out.stderr();
    assert!(
        err.contains("PHX0707")
            && err.contains("at line 1, column 14 of the script stands inside `${…}`")
            && err.contains("steps.s.with.script"),
        "{err}"
    );
    assert!(!out.state_dir().exists() || process::json(&out.state_dir(), &["runs"])["runs"].as_array().is_none_or(|r| r.is_empty()));
}

#[test]
fn safe_marks_a_value_as_shell_text_on_purpose() {
    // The control for the test above: unquoted, the same value does run.
    let out = Test::new()
        .file(
            "r.yaml",
            "version: 1\nname: unsafe\nparams:\n  evil: { type: string }\nsteps:\n  s:\n    uses: exec\n    with: { script: \"echo {{ params.evil | safe }}\" }\n",
        )
        .args(["run", "r.yaml", "--param", &format!("evil={EVIL}")])
        .run()
        .success();
    assert!(out.path().join("pwned1").exists(), "`| safe` should paste the text as it is");
}

#[test]
fn two_tags_that_spell_a_heredoc_delimiter_do_not_end_it() {
    // Before: each half was escaped on its own, the line read `EOF` to bash, the here-document
    // ended there, and the next value ran as a command. Now bash sees `${PHX_V1}${PHX_V2}`.
    let yaml = "version: 1\nname: r\nparams:\n  x: { type: string }\nsteps:\n  s:\n    uses: exec\n    with:\n      script: |\n        cat > out <<EOF\n        {{ params.x[:2] }}{{ params.x[2:3] }}\n        {{ params.x[3:] }}\n        EOF\n";
    let x = "EOF\ntouch pwned";
    let out = Test::new().file("r.yaml", yaml).args(["run", "r.yaml", "--param", &format!("x={x}")]).run();
    assert!(!out.path().join("pwned").exists(), "the value ran as a command");
    let out = out.success();
    assert_eq!(std::fs::read_to_string(out.path().join("out")).unwrap(), "EOF\n\ntouch pwned\n");
}

#[test]
fn arithmetic_on_a_value_is_safe_once_it_is_checked_as_a_number() {
    // The pattern docs/runbooks.md gives: assign, check, then compute. An unchecked
    // `$((n + 1))` would evaluate `a[$(touch pwned)]` and run it: the check stops it.
    let yaml = "version: 1\nname: r\nparams:\n  n: { type: string }\nsteps:\n  s:\n    uses: exec\n    with:\n      script: |\n        n={{ params.n }}\n        [[ $n =~ ^[0-9]+$ ]] || { echo \"not a number: $n\" >&2; exit 2; }\n        echo $((n + 1)) > out\n";
    let out = Test::new().file("r.yaml", yaml).args(["run", "r.yaml", "--param", "n=41"]).run().success();
    assert_eq!(std::fs::read_to_string(out.path().join("out")).unwrap(), "42\n");
    let out = Test::new().file("r.yaml", yaml).args(["run", "r.yaml", "--param", "n=a[$(touch pwned)]"]).run().code(1);
    assert!(!out.path().join("pwned").exists() && !out.path().join("out").exists(), "the value was evaluated");
    assert!(step(&status(&out), "s")["error"].as_str().unwrap().contains("not a number: a[$(touch pwned)]"));
}

#[test]
fn a_secret_in_a_script_is_in_its_environment_not_its_command_line_nor_the_record() {
    // The script checks the value by its hash: the secret's text is nowhere in the script.
    let yaml = r#"version: 1
name: r
secrets:
  token: { env: PHOENIX_TEST_SCRIPT_TOKEN }
steps:
  s:
    uses: exec
    with:
      script: |
        test "$(printf %s {{ secrets.token }} | md5sum | cut -c1-12)" = 9157afae8b12
        if grep -qa "t0ken-""value" /proc/$$/cmdline; then echo "in argv" >&2; exit 1; fi
        echo checked > out
"#;
    let out =
        Test::new().file("r.yaml", yaml).env("PHOENIX_TEST_SCRIPT_TOKEN", "s3cr3t-t0ken-value").args(["run", "r.yaml"]).run().success();
    assert_eq!(std::fs::read_to_string(out.path().join("out")).unwrap(), "checked\n");
    let s = status(&out);
    assert!(!s.to_string().contains("s3cr3t"), "the secret is in the record: {s:#}");
    assert!(step(&s, "s")["inputs"]["env"]["PHX_V1"].is_string(), "the value's place is shown (redacted): {s:#}");
}
