//! Every runbook the project ships, and every runbook example in its docs, is valid.

use std::path::PathBuf;

use crate::support::{Test, repo_root};

fn runbooks() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(repo_root().join("runbooks")) else { return vec![] };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_runbook_in_runbooks_validates() {
    let files = runbooks();
    assert!(!files.is_empty(), "runbooks/ holds no runbook");
    let out = Test::new().arg("validate").args(&files).run();
    assert_eq!(out.exit_code(), Some(0), "a runbook in runbooks/ does not validate:\n{}", out.stderr());
}

/// A fenced ```yaml block whose first line that is not a comment is `version: 1`.
struct Example {
    doc: String,
    line: usize,
    text: String,
}

fn examples_in(doc: &str, text: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let fence = line.trim_start();
        if !(fence.starts_with("```yaml") || fence.starts_with("```yml")) {
            continue;
        }
        let indent = line.len() - fence.len();
        let body: Vec<&str> = lines.by_ref().map(|(_, l)| l).take_while(|l| !l.trim_start().starts_with("```")).collect();
        let body: Vec<&str> = body.iter().map(|l| l.get(indent..).unwrap_or(l.trim_start())).collect();
        let first = body.iter().map(|l| l.trim()).find(|l| !l.is_empty() && !l.starts_with('#'));
        if first.is_some_and(|l| l.starts_with("version: 1")) {
            out.push(Example { doc: doc.to_string(), line: n + 2, text: body.join("\n") + "\n" });
        }
    }
    out
}

fn doc_examples() -> Vec<Example> {
    let root = repo_root();
    let mut docs: Vec<PathBuf> = vec![root.join("README.md")];
    // docs/*.md and docs/*/*.md (the plugins' pages).
    let mut dirs = vec![root.join("docs")];
    let mut md = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten() {
            let p = entry.expect("a directory entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|e| e == "md") {
                md.push(p);
            }
        }
    }
    md.sort();
    docs.extend(md);
    docs.iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(p).ok()?;
            let name = p.strip_prefix(&root).unwrap_or(p).display().to_string();
            Some(examples_in(&name, &text))
        })
        .flatten()
        .collect()
}

#[test]
fn every_runbook_example_in_the_docs_validates() {
    let examples = doc_examples();
    if examples.is_empty() {
        // Nothing to check yet: README.md and docs/*.md hold no ```yaml block with `version: 1`.
        return;
    }
    let mut failures = Vec::new();
    for ex in &examples {
        let out = Test::new().file("example.yaml", &ex.text).args(["validate", "example.yaml"]).run();
        if out.exit_code() != Some(0) {
            failures.push(format!("{} (the block starting at line {}):\n{}", ex.doc, ex.line, out.stderr()));
        }
    }
    assert!(failures.is_empty(), "runbook examples in the docs do not validate:\n{}", failures.join("\n"));
}

#[test]
fn examples_are_found_in_markdown() {
    let md = "# Doc\n\n```yaml\n# a comment\nversion: 1\nname: x\n```\n\n```yaml\nnot: a runbook\n```\n\n  ```yaml\n  version: 1\n  name: y\n  ```\n";
    let found = examples_in("doc.md", md);
    assert_eq!(found.len(), 2);
    assert_eq!((found[0].line, found[0].text.as_str()), (4, "# a comment\nversion: 1\nname: x\n"));
    assert_eq!(found[1].text, "version: 1\nname: y\n");
}

/// `examples/serve.yaml`, the tour's config, as the server itself loads it (`serve --check`:
/// every runbook it names, its tokens, its routes), and refused when a token is missing.
#[test]
fn the_tours_serve_yaml_loads_with_the_servers_own_loader() {
    let config = repo_root().join("examples").join("serve.yaml");
    let tokens = [("PHOENIX_TOKEN_ONCALL", "oncall-0123456789abcdef"), ("PHOENIX_TOKEN_VIEWER", "viewer-0123456789abcdef")];
    let with_tokens = |t: Test| tokens.iter().fold(t, |t, (k, v)| t.env(k, v));
    let out = with_tokens(Test::new())
        .env("PHOENIX_TOKEN_ALERTMANAGER", "alerts-0123456789abcdef")
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--check")
        .run()
        .success();
    assert!(out.stdout().contains("3 token(s), 1 alert route(s), 1 watched runbook(s)"), "{}", out.stdout());
    // The loader is the real one: a token it cannot read is refused, and nothing listens.
    let out = with_tokens(Test::new()).args(["serve", "--config"]).arg(&config).arg("--check").run().code(2);
    assert!(out.stderr().contains("the environment variable `PHOENIX_TOKEN_ALERTMANAGER` is not set"), "{}", out.stderr());
}
