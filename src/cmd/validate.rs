//! `phoenix validate FILE...`

use std::path::PathBuf;

use phoenix_engine::{Loaded, load_file};
use serde_json::json;

use crate::cli::Output;
use crate::exit::Exit;

/// Exit 2 when a file has an error, or with `strict` a warning; warnings are printed always.
pub(crate) fn run(files: &[PathBuf], strict: bool, out: Output) -> Exit {
    let loaded: Vec<Loaded> = files.iter().map(|f| load_file(f)).collect();
    let ok = loaded.iter().all(|l| l.runbook.is_some() && (!strict || l.warnings.is_empty()));
    report(&loaded, out);
    if strict && out == Output::Text {
        for l in loaded.iter().filter(|l| l.runbook.is_some() && !l.warnings.is_empty()) {
            let n = l.warnings.len();
            eprintln!("error: {} has {n} warning{} and --strict was given\n", l.file, if n == 1 { "" } else { "s" });
        }
    }
    if ok { Exit::Ok } else { Exit::BadInput }
}

/// Prints each file's verdict: diagnostics on stderr (text) or one JSON document on stdout.
pub(crate) fn report(loaded: &[Loaded], out: Output) {
    match out {
        Output::Json => {
            let files: Vec<_> = loaded
                .iter()
                .map(|l| {
                    json!({
                        "file": l.file,
                        "valid": l.runbook.is_some(),
                        "steps": l.runbook.as_ref().map(|r| r.main.steps.len()),
                        "diagnostics": l.diagnostics,
                        "warnings": l.warnings,
                    })
                })
                .collect();
            let errors: usize = loaded.iter().map(|l| l.diagnostics.len()).sum();
            println!("{}", serde_json::to_string_pretty(&json!({ "valid": errors == 0, "errors": errors, "files": files })).expect("JSON"));
        }
        Output::Text => {
            for l in loaded {
                match &l.runbook {
                    Some(rb) => {
                        let signals = if rb.signals.is_empty() { String::new() } else { format!(", {} signals", rb.signals.len()) };
                        let actions = rb.main.steps.iter().filter(|s| s.role == phoenix_engine::runbook::Role::Action).count();
                        println!("ok  {}: `{}`, {} steps{signals}", l.file, rb.name, actions);
                        for w in &l.warnings {
                            eprint!("{}", w.render(Some(&l.source)));
                        }
                    }
                    None => {
                        eprint!("{}", l.render());
                        let n = l.diagnostics.len();
                        eprintln!("\nerror: {} has {n} error{}; nothing was run\n", l.file, if n == 1 { "" } else { "s" });
                    }
                }
            }
        }
    }
}
