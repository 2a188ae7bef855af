//! `phoenix validate`: the corpus of broken runbooks in `tests/cases/invalid`, the valid ones
//! in `tests/cases/valid`, the text and JSON formats, and the diagnostic codes' docs.
//!
//! Each invalid case starts with comment lines saying what must be reported:
//!
//! ```text
//! # expect: PHX0203 12:13 steps.switch_dns.needs[0] is not a step of this runbook
//! #   help: did you mean `approve_dns`?
//! ```
//!
//! that is the code, line:column, YAML path and a substring of the message (and, on an
//! optional `help:` line under it, a substring of the help). The set of diagnostics
//! `phoenix validate --output json` reports for the file must be exactly the expected set.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use phoenix_engine::Code;
use serde_json::Value;

use crate::support::{Test, repo_root};

/// A diagnostic a case file expects.
#[derive(Debug, Clone)]
struct Expect {
    code: String,
    line: u64,
    column: u64,
    path: String,
    message: String,
    help: Option<String>,
}

/// A diagnostic as `--output json` reports it.
#[derive(Debug, Clone)]
struct Reported {
    code: String,
    line: Option<u64>,
    column: Option<u64>,
    path: String,
    message: String,
    help: Option<String>,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "# expect: {} {}:{} {} {}", self.code, self.line, self.column, self.path, self.message)?;
        if let Some(h) = &self.help {
            write!(f, "\n#   help: {h}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Reported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pos = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
        write!(f, "# expect: {} {}:{} {} {}", self.code, pos(self.line), pos(self.column), self.path, self.message)?;
        if let Some(h) = &self.help {
            write!(f, "\n#   (help: {h})")?;
        }
        Ok(())
    }
}

impl Expect {
    fn matches(&self, r: &Reported) -> bool {
        r.code == self.code
            && r.line == Some(self.line)
            && r.column == Some(self.column)
            && r.path == self.path
            && r.message.contains(&self.message)
            && self.help.as_ref().is_none_or(|h| r.help.as_ref().is_some_and(|rh| rh.contains(h.as_str())))
    }
}

/// Reads the `# expect:` and `#   help:` lines of a case.
fn expectations(file: &Path, text: &str) -> Vec<Expect> {
    let mut out: Vec<Expect> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let Some(comment) = line.strip_prefix('#') else { continue };
        let comment = comment.trim_start();
        let at = || format!("{}:{}", file.display(), n + 1);
        if let Some(rest) = comment.strip_prefix("expect:") {
            let mut parts = rest.trim().splitn(4, ' ');
            let (Some(code), Some(pos), Some(path), Some(message)) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
                panic!("{}: write `# expect: CODE LINE:COL PATH MESSAGE`", at());
            };
            let (l, c) = pos.split_once(':').unwrap_or_else(|| panic!("{}: `{pos}` is not LINE:COL", at()));
            let number = |s: &str| s.parse::<u64>().unwrap_or_else(|_| panic!("{}: `{s}` is not a number", at()));
            assert!(code.starts_with("PHX"), "{}: `{code}` is not a diagnostic code", at());
            out.push(Expect {
                code: code.to_string(),
                line: number(l),
                column: number(c),
                path: path.to_string(),
                message: message.trim().to_string(),
                help: None,
            });
        } else if let Some(rest) = comment.strip_prefix("help:") {
            let last = out.last_mut().unwrap_or_else(|| panic!("{}: a `help:` line belongs under an `expect:` line", at()));
            last.help = Some(rest.trim().to_string());
        }
    }
    out
}

fn reported(json: &Value) -> Vec<Reported> {
    let diags = json["files"][0]["diagnostics"].as_array().expect("a diagnostics list");
    diags
        .iter()
        .map(|d| Reported {
            code: d["code"].as_str().expect("a code").to_string(),
            line: d["line"].as_u64(),
            column: d["column"].as_u64(),
            path: d["path"].as_str().expect("a path").to_string(),
            message: d["message"].as_str().expect("a message").to_string(),
            help: d["help"].as_str().map(str::to_string),
        })
        .collect()
}

fn cases(kind: &str) -> Vec<PathBuf> {
    let dir = repo_root().join("tests/cases").join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// What is wrong with one case, or nothing.
fn check_case(file: &Path) -> Option<String> {
    let text = std::fs::read_to_string(file).expect("read the case");
    let name = file.file_name().expect("a file name").to_string_lossy().into_owned();
    let expected = expectations(file, &text);
    if expected.is_empty() {
        return Some(format!("{name}: has no `# expect:` line"));
    }
    let out = Test::new().file(&name, &text).args(["validate", "--output", "json", &name]).run();
    let json = out.stdout_json();
    let mut problems = Vec::new();
    if out.exit_code() != Some(2) {
        problems.push(format!("exit code {:?}, expected 2", out.exit_code()));
    }
    if !out.stderr().is_empty() {
        problems.push(format!("--output json wrote to stderr: {}", out.stderr()));
    }
    let mut unmatched = reported(&json);
    let all = unmatched.clone();
    for e in &expected {
        match unmatched.iter().position(|r| e.matches(r)) {
            Some(i) => {
                unmatched.remove(i);
            }
            None => problems.push(format!("missing:\n{e}")),
        }
    }
    for r in &unmatched {
        problems.push(format!("not expected:\n{r}"));
    }
    if problems.is_empty() {
        return None;
    }
    let all: Vec<String> = all.iter().map(Reported::to_string).collect();
    Some(format!("{name}:\n{}\n--- phoenix reported:\n{}", problems.join("\n"), all.join("\n")))
}

#[test]
fn invalid_runbooks_report_exactly_what_their_header_expects() {
    let failures: Vec<String> = cases("invalid").iter().filter_map(|f| check_case(f)).collect();
    assert!(failures.is_empty(), "{} case(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn the_invalid_corpus_covers_every_code() {
    let files = cases("invalid");
    assert!(files.len() >= 45, "the corpus has {} cases; keep at least 45", files.len());
    let mut seen = BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read the case");
        seen.extend(expectations(f, &text).into_iter().map(|e| e.code));
    }
    // PHX0603, PHX0604, PHX0304 and PHX0305 are warnings (a valid file):
    // a_weight_rule_that_can_never_match_is_a_warning, tests/observer.rs, tests/effects.rs.
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| !matches!(c, Code::Io | Code::NeverMatches | Code::LevelWithoutFor | Code::IdempotentSpelling | Code::Unapproved))
        .map(|c| c.id())
        .filter(|id| !seen.contains(*id))
        .collect();
    assert!(missing.is_empty(), "no case in tests/cases/invalid expects {missing:?}");
    let unknown: Vec<&String> = seen.iter().filter(|id| !Code::ALL.iter().any(|c| c.id() == id.as_str())).collect();
    assert!(unknown.is_empty(), "cases expect codes that do not exist: {unknown:?}");
}

#[test]
fn valid_runbooks_pass() {
    let files = cases("valid");
    assert!(files.len() >= 5, "keep at least 5 valid cases");
    let mut test = Test::new();
    let mut names = Vec::new();
    for f in &files {
        let name = f.file_name().expect("a file name").to_string_lossy().into_owned();
        test = test.file(&name, std::fs::read(f).expect("read the case"));
        names.push(name);
    }
    let out = test.arg("validate").args(&names).run();
    let out = out.success();
    for name in &names {
        assert!(out.stdout().contains(&format!("ok  {name}: ")), "{name} is not reported ok:\n{}", out.stdout());
    }
    let json = out.then().args(["validate", "--output", "json"]).args(&names).run().success().stdout_json();
    assert_eq!(json["valid"], true);
    assert_eq!(json["errors"], 0);
    assert_eq!(json["files"].as_array().map(Vec::len), Some(names.len()));
}

/// `docs/diagnostics.md` has one table row per code: `| PHX0203 | UnknownNeed | summary | example |`.
#[test]
fn the_diagnostics_doc_lists_exactly_the_codes() {
    let doc = std::fs::read_to_string(repo_root().join("docs/diagnostics.md")).expect("docs/diagnostics.md");
    let rows: Vec<Vec<String>> = doc
        .lines()
        .filter(|l| l.starts_with("| PHX") || l.starts_with("| `PHX"))
        .map(|l| {
            let l = l.replace("\\|", "\u{0}");
            l.trim().trim_matches('|').split('|').map(|c| c.trim().replace('\u{0}', "|")).collect()
        })
        .collect();
    let documented: Vec<(String, String, String)> =
        rows.iter().map(|r| (r[0].trim_matches('`').to_string(), r[1].trim_matches('`').to_string(), r[2].clone())).collect();
    let actual: Vec<(String, String, String)> =
        Code::ALL.iter().map(|c| (c.id().to_string(), format!("{c:?}"), c.summary().to_string())).collect();
    for (want, got) in actual.iter().zip(&documented) {
        assert_eq!(got, want, "docs/diagnostics.md is out of date (rows must follow Code::ALL, with Code::summary)");
    }
    assert_eq!(documented.len(), actual.len(), "docs/diagnostics.md must list exactly the codes of Code::ALL");
    for r in &rows {
        assert!(r.len() >= 4 && !r[3].is_empty(), "every code needs an example: {r:?}");
    }
}

const NEVER: &str = r#"version: 1
name: never
signals:
  site:
    uses: http
    with: { url: "http://127.0.0.1:9/health" }
    weight:
      - { when: "status == 'failed' and outputs.status == 404", weight: 1 }
      - { when: "status == 'faild'", weight: 2 }
      - { when: "outputs.code == 503", weight: 3 }
      - { weight: 5 }
levels:
  - { name: calm, max: 3 }
  - { name: act }
steps:
  act: { uses: noop, needs: [score] }
"#;

#[test]
fn a_weight_rule_that_can_never_match_is_a_warning() {
    let out = Test::new().file("h.yaml", NEVER).args(["validate", "h.yaml"]).run().success();
    let out = out
        .stdout_contains("ok  h.yaml: `never`")
        .stderr_contains("warning[PHX0603]: this rule compares `status` with 'faild', which a probe never has")
        .stderr_contains("h.yaml:9:")
        .stderr_contains("= help: a probe's status is 'succeeded' or 'failed': write 'failed'")
        .stderr_contains("warning[PHX0603]: `http` has no output `code`")
        .stderr_contains("h.yaml:10:")
        .stderr_lacks("error");
    let json = out.then().args(["validate", "h.yaml", "--output", "json"]).run().success().stdout_json();
    assert_eq!((json["valid"].as_bool(), json["errors"].as_u64()), (Some(true), Some(0)), "{json:#}");
    let warnings = json["files"][0]["warnings"].as_array().unwrap();
    let at: Vec<(&str, &str, u64)> =
        warnings.iter().map(|w| (w["code"].as_str().unwrap(), w["path"].as_str().unwrap(), w["line"].as_u64().unwrap())).collect();
    assert_eq!(at, [("PHX0603", "signals.site.weight[1].when", 9), ("PHX0603", "signals.site.weight[2].when", 10)], "{json:#}");
}

#[test]
fn the_shipped_runbooks_and_valid_cases_have_no_warnings() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join("runbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .chain(cases("valid"))
        .collect();
    files.sort();
    // In place: a runbook may name files beside it.
    let json = Test::new().args(["validate", "--output", "json"]).args(&files).run().success().stdout_json();
    assert_eq!(json["files"].as_array().map(Vec::len), Some(files.len()));
    let warned: Vec<&Value> =
        json["files"].as_array().unwrap().iter().filter(|f| f["warnings"].as_array().is_some_and(|w| !w.is_empty())).collect();
    assert!(warned.is_empty(), "{warned:#?}");
}

mod output;
