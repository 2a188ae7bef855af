//! How much of a step's output the store keeps: the first 256 KiB and the last 1 MiB of each
//! step, with one line between them saying what was left out; a line longer than 64 KiB
//! is logged cut there, with a note. The terminal and the step's own outputs are not cut.

use std::time::Duration;

use crate::process::{self, Background, step};
use crate::support::Test;

/// A runbook whose step `loud` prints `n` lines of 1,001 bytes ("line 00001 " and 990 zeros),
/// then runs `then` (more script lines, each indented as the script), followed by `more`
/// (more steps).
fn loud(n: usize, then: &str, more: &str) -> String {
    format!(
        r#"version: 1
name: loud
steps:
  loud:
    uses: exec
    with:
      script: |
        for i in $(seq 1 {n}); do printf 'line %05d %0990d\n' "$i" 0; done
{then}{more}"#
    )
}

#[test]
fn the_store_keeps_the_head_and_the_tail_of_a_loud_step_and_says_what_it_left_out() {
    // About 3 MB, then a step after it.
    let after = "  after:\n    needs: [loud]\n    uses: exec\n    with: { cmd: [echo, \"after the loud step\"] }\n";
    let out = Test::new().file("loud.yaml", loud(3000, "", after)).args(["run", "loud.yaml"]).run().success();
    // The terminal got every line.
    assert!(out.stderr().contains("line 01500 "), "the live display shows every line");
    let run = process::latest_run(&out.state_dir());

    let logs = out.then().args(["logs", &run, "loud"]).run().success();
    let lines: Vec<&str> = logs.stdout().lines().filter(|l| l.contains("[loud]")).collect();
    // 261 lines fit in the first 256 KiB, 1,047 in the last 1 MiB; the 1,692 between are
    // left out, and one line says so where they were.
    let (head, tail) = (261, 1047);
    assert_eq!(lines.len(), head + 1 + tail, "head, the note, tail:\n{}", &logs.stdout()[..400]);
    assert!(lines[0].contains("line 00001 "), "{}", lines[0]);
    assert!(lines[head - 1].contains("line 00261 "), "{}", lines[head - 1]);
    assert!(
        lines[head].contains(
            "[phoenix] 1692 line(s) (1.6 MiB) of this step's output left out here: the store keeps the first 256 KiB and the last 1 MiB"
        ),
        "{}",
        lines[head]
    );
    assert!(lines[head + 1].contains("line 01954 "), "{}", lines[head + 1]);
    assert!(lines.last().expect("lines").contains("line 03000 "));

    // The rest of the run is untouched: the next step's line is there, and the step's own
    // stdout output keeps its tail.
    let all = out.then().args(["logs", &run]).run().success();
    assert!(all.stdout().contains("after the loud step"));
    let s = process::status(&out.state_dir(), &run);
    assert!(step(&s, "loud")["outputs"]["stdout"].as_str().expect("stdout").trim_end().ends_with(&format!("line 03000 {:0990}", 0)));
}

#[test]
fn a_line_longer_than_64_kib_is_logged_cut_with_a_note() {
    let rb = r#"version: 1
name: blob
steps:
  blob:
    uses: exec
    with:
      script: |
        head -c 200000 /dev/zero | tr '\0' x
        echo
        echo after the blob
"#;
    let out = Test::new().file("blob.yaml", rb).args(["run", "blob.yaml"]).run().success();
    let run = process::latest_run(&out.state_dir());
    let logs = out.then().args(["logs", &run, "blob"]).run().success();
    let texts: Vec<&str> = logs.stdout().lines().filter_map(|l| l.split_once("[blob] ").map(|(_, t)| t)).collect();
    assert_eq!(texts.len(), 3, "{texts:.80?}");
    assert!(texts[0].len() == 65536 && texts[0].bytes().all(|b| b == b'x'), "the first 64 KiB");
    assert_eq!(texts[1], "[phoenix] the line above went on for 134464 more bytes, left out of the log (a line is logged up to 64 KiB)");
    assert_eq!(texts[2], "after the blob");
    // The step's own output has all of it.
    let s = process::status(&out.state_dir(), &run);
    let stdout = step(&s, "blob")["outputs"]["stdout"].as_str().expect("stdout").to_string();
    assert!(stdout.contains(&format!("{}\nafter the blob", "x".repeat(1000))), "the tail of stdout is whole");
}

#[test]
fn a_secret_cut_in_half_at_64_kib_is_scrubbed_too() {
    // The secret starts 6 bytes before the cut: "s3cr3t" ends the logged part.
    let rb = r#"version: 1
name: cut
secrets:
  token: { env: PHX_TEST_CUT_TOKEN }
steps:
  cut:
    uses: exec
    with:
      script: |
        printf '%065530d%s\n' 0 {{ secrets.token }}
        echo {{ secrets.token }} whole
"#;
    let out = Test::new().file("cut.yaml", rb).env("PHX_TEST_CUT_TOKEN", "s3cr3t-value-123").args(["run", "cut.yaml"]).run().success();
    assert!(!out.stderr().contains("s3cr3t"), "not on the terminal either");
    let run = process::latest_run(&out.state_dir());
    let logs = out.then().args(["logs", &run, "cut"]).run().success();
    assert!(!logs.stdout().contains("s3cr3t"), "no part of the secret is stored");
    let texts: Vec<&str> = logs.stdout().lines().filter_map(|l| l.split_once("[cut] ").map(|(_, t)| t)).collect();
    assert!(texts[0].ends_with("0***") && texts[0].len() == 65530 + 3, "{:?}", &texts[0][65520..]);
    assert_eq!(texts[2], "*** whole");
}

#[test]
fn logs_follow_goes_on_after_lines_were_left_out() {
    // 1,400 lines of 1,001 bytes: more than the store keeps, so lines are being left out
    // by the time the follower catches up; then, on a word from the test, one more, as long,
    // so that one more is left out and the number of lines kept stays the same.
    let then = "        touch printed\n        while [ ! -e go ]; do sleep 0.05; done\n        printf 'the last word %0990d\\n' 0\n";
    let rb = loud(1400, then, "");
    let setup = Test::new().file("loud.yaml", &rb).args(["validate", "loud.yaml"]).run().success();
    let bg = Background::spawn(setup.then().args(["run", "loud.yaml"]).command(), setup.path());
    process::wait_for("the lines to be printed", Duration::from_secs(60), || setup.path().join("printed").exists());
    let run = process::latest_run(&setup.state_dir());
    let follower = Background::spawn(setup.then().args(["logs", &run, "-f"]).command(), setup.path());
    process::wait_for("the follower to catch up", Duration::from_secs(60), || follower.stdout_so_far().contains("line 01400 "));
    std::fs::write(setup.path().join("go"), "").unwrap();
    let end = follower.wait(Duration::from_secs(60));
    assert_eq!(end.code, Some(0), "{}", end.stderr);
    assert!(end.stdout.contains("[loud] the last word"), "a line after the left-out ones is followed too");
    assert_eq!(bg.wait(Duration::from_secs(60)).code, Some(0));
}
