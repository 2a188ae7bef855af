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
