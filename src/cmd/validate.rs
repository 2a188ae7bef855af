//! `phoenix validate FILE...`

use std::path::PathBuf;

use phoenix_engine::{Loaded, load_file};
use serde_json::json;

use crate::cli::Output;
use crate::exit::Exit;

pub(crate) fn run(files: &[PathBuf], out: Output) -> Exit {
    let loaded: Vec<Loaded> = files.iter().map(|f| load_file(f)).collect();
    let ok = loaded.iter().all(|l| l.runbook.is_some());
    report(&loaded, out);
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
                        "warnings": phoenix_engine::never_matching_rules(l),
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
                        // Warnings do not stop a run: the file is valid, and said so first.
                        for w in phoenix_engine::never_matching_rules(l) {
                            eprint!("{}", w.render(Some(&l.source)).replacen("error[", "warning[", 1));
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
