//! Attacks: terminal escapes. A step's output, an approval's message and an error reach the
//! operator's terminal with their control characters shown (`^[`), never sent: a step
//! cannot clear the screen, set the window title, fake a prompt or write the clipboard
//! (OSC 52). The store and `--output json` keep the exact bytes.

use std::time::Duration;

use crate::process::{self, Terminal, step, wait_for};
use crate::support::Test;

/// Sets the window title, clears the screen, and writes the clipboard (OSC 52).
const PAYLOAD: &str = "\x1b]0;pwned\x07\x1b[2J\x1b]52;c;cHduZWQ=\x07after";
const SHOWN: &str = "^[]0;pwned^G^[[2J^[]52;c;cHduZWQ=^Gafter";

const LOUD: &str = r#"version: 1
name: loud
steps:
  loud:
    uses: exec
    with: { script: "printf '\\033]0;pwned\\007\\033[2J\\033]52;c;cHduZWQ=\\007after\\n'" }
"#;

fn no_escape_sequence(what: &str, text: &str) {
    assert!(!text.contains("\x1b]") && !text.contains("\x1b[2J") && !text.contains('\x07'), "{what} sends an escape sequence:\n{text:?}");
}

#[test]
fn a_steps_output_reaches_the_captured_output_shown_not_sent() {
    let out = Test::new().file("loud.yaml", LOUD).args(["run", "loud.yaml"]).run().success();
    no_escape_sequence("run", out.stderr());
    assert!(out.stderr().contains(SHOWN), "{}", out.stderr());

    let id = process::latest_run(&out.state_dir());
    let logs = out.then().args(["logs", &id]).run().success();
    assert!(!logs.stdout().contains('\x1b'), "{:?}", logs.stdout());
    assert!(logs.stdout().contains(SHOWN), "{}", logs.stdout());
    // The data stays exact.
    let json = out.then().args(["logs", &id, "--output", "json"]).run().success();
    assert_eq!(json.stdout_json()["lines"][0]["text"], PAYLOAD);
}

#[test]
fn a_steps_output_reaches_a_real_terminal_shown_not_sent() {
    let t = Test::new().file("loud.yaml", LOUD);
    let term = Terminal::start(t.path(), &t.state_dir(), "run loud.yaml");
    let screen_path = term.screen_path();
    assert_eq!(term.wait(), Some(0));
    let screen = String::from_utf8_lossy(&std::fs::read(screen_path).unwrap()).into_owned();
    // Phoenix's own colours are escape sequences (`ESC [ … m`); the step's are not sent.
    no_escape_sequence("the terminal", &screen);
    assert!(screen.contains(SHOWN), "{screen:?}");
}

#[test]
fn an_approval_message_and_an_error_are_shown_not_sent() {
    let rb = r#"version: 1
name: ask
params:
  msg: { type: string }
steps:
  gate:
    uses: approval
    with: { message: "{{ params.msg }}" }
"#;
    let t = Test::new().file("ask.yaml", rb);
    // Nobody to ask: the run halts, having said what it waits for.
    let out = t.args(["run", "ask.yaml", "--param", &format!("msg=fail over?{PAYLOAD}")]).run().code(3);
    no_escape_sequence("run", out.stderr());
    let id = process::run_of(&out.state_dir(), "ask");
    let logs = out.then().args(["logs", &id]).run().success();
    no_escape_sequence("logs", logs.stdout());
    assert!(logs.stdout().contains(&format!("fail over?{SHOWN}")), "{}", logs.stdout());

    let failing = r#"version: 1
name: failing
params:
  msg: { type: string }
steps:
  check:
    uses: assert
    with: { that: "false", message: "{{ params.msg }}" }
"#;
    let out = out.then().file("failing.yaml", failing).args(["run", "failing.yaml", "--param", &format!("msg={PAYLOAD}")]).run().code(1);
    no_escape_sequence("run", out.stderr());
    let id = process::run_of(&out.state_dir(), "failing");
    let status = out.then().args(["status", &id]).run().success();
    no_escape_sequence("status", status.stdout());
    assert!(status.stdout().contains(SHOWN), "{}", status.stdout());
    let s = process::status(&out.state_dir(), &id);
    assert!(step(&s, "check")["error"].as_str().unwrap().starts_with(PAYLOAD), "{s:#}");
}

#[test]
fn an_approval_prompt_on_a_terminal_shows_the_message_not_its_escapes() {
    let rb = "version: 1\nname: ask\nparams:\n  msg: { type: string }\nsteps:\n  gate:\n    uses: approval\n    with: { message: \"{{ params.msg }}\" }\n";
    let t = Test::new().file("ask.yaml", rb);
    // The message travels in a file, so that the shell of script(1) sees no control bytes.
    std::fs::write(t.path().join("msg"), format!("fail over?{PAYLOAD}")).unwrap();
    let mut term = Terminal::start(t.path(), &t.state_dir(), "run ask.yaml --param \"msg=$(cat msg)\"");
    wait_for("the approval prompt", Duration::from_secs(60), || term.screen().contains("[y/N]"));
    term.type_line("n");
    let screen_path = term.screen_path();
    term.wait();
    let screen = String::from_utf8_lossy(&std::fs::read(screen_path).unwrap()).into_owned();
    no_escape_sequence("the prompt", &screen);
    assert!(screen.contains(&format!("fail over?{SHOWN}")), "{screen:?}");
}
