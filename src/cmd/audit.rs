//! `phoenix audit verify RUN` and `phoenix audit export RUN`: a run's event chain checked
//! again from the store, or written out as JSON lines for a SIEM. Both read the store itself
//! (sled in the state directory, or `--store etcd://…`), never a process's answer about it.

use std::io::Write;
use std::path::PathBuf;

use phoenix_engine::state::Store;
use phoenix_engine::state::audit::{self, Verdict};
use serde_json::json;

use super::state::{self, Access};
use crate::cli::Output;
use crate::exit::Exit;

/// Opens the store for reading the chain's bytes, or says why not.
fn open(state_dir: &Option<PathBuf>) -> Result<Store, Exit> {
    let dir = state::dir(state_dir);
    match state::open(&dir) {
        Ok(Access::Direct(store)) => Ok(store),
        Ok(Access::Owner) => {
            eprintln!(
                "error: the state store in {} is in use by a running phoenix (a run or `phoenix serve`); `audit` reads the stored records themselves: run it once that process has stopped, or on a cluster's store with --store etcd://…",
                dir.display()
            );
            Err(Exit::Failed)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(Exit::Failed)
        }
    }
}

fn unknown(run: &str) -> Exit {
    eprintln!("error: no run `{run}` (phoenix runs lists them)");
    Exit::BadInput
}

fn time(at: Option<u64>) -> String {
    at.map_or_else(
        || "time unknown".to_string(),
        |ms| humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)).to_string(),
    )
}

/// The verdict in words: one line for what holds, one for what does not.
fn describe(v: &Verdict) -> (String, Option<String>) {
    let n = v.records;
    let unproven = match v.chained_from {
        Some(0) | None => String::new(),
        Some(k) => format!("; records 0 to {} were written by a phoenix before the chain and prove nothing", k - 1),
    };
    if let Some(b) = &v.broken {
        let kind = b.kind.as_deref().map_or(String::new(), |k| format!(", {}", crate::visible::visible(k)));
        let head = format!("run {}: the chain is broken at record {} ({}{kind})", v.run, b.seq, time(b.at));
        let why = format!(
            "{}\n  records before {} verify{unproven}; compare with an exported copy (phoenix audit export) to see what changed",
            b.what.describe(b.seq),
            b.seq
        );
        return (head, Some(why));
    }
    let line = match (v.chained_from, &v.head) {
        (None, _) => format!(
            "run {}: {n} event records, none chained: written by a phoenix before the chain (store format 2 or older); nothing to verify, and no sign of tampering either",
            v.run
        ),
        (Some(_), Some((seq, hash))) => {
            format!("run {}: {n} event records; the chain is whole up to record {seq}, hash {hash}{unproven}", v.run)
        }
        (Some(_), None) => format!("run {}: {n} event records; the chain is whole{unproven}", v.run),
    };
    (line, None)
}

pub(crate) fn verify(state_dir: &Option<PathBuf>, run: &str, out: Output) -> Exit {
    let store = match open(state_dir) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let v = match audit::verify_run(&store, run) {
        Ok(Some(v)) => v,
        Ok(None) => return unknown(run),
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Failed;
        }
    };
    let (line, why) = describe(&v);
    if out == Output::Json {
        let mut j = serde_json::to_value(&v).expect("verdicts serialize");
        j["whole"] = json!(v.broken.is_none());
        j["chained"] = json!(v.chained_from.is_some());
        j["message"] = json!(why.as_ref().map_or(line.clone(), |w| format!("{line}: {w}")));
        println!("{}", serde_json::to_string_pretty(&j).expect("JSON"));
    } else {
        println!("{line}");
        if let Some(w) = &why {
            println!("  {}", crate::visible::visible(w));
        }
    }
    if v.broken.is_some() { Exit::Failed } else { Exit::Ok }
}

pub(crate) fn export(state_dir: &Option<PathBuf>, run: &str) -> Exit {
    let store = match open(state_dir) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let records = match store.raw_events(run) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Failed;
        }
    };
    if records.is_empty() && !matches!(store.run(run), Ok(Some(_))) {
        return unknown(run);
    }
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    for (seq, bytes) in &records {
        let line = audit::export_line(run, *seq, bytes);
        if writeln!(w, "{line}").is_err() {
            return Exit::Failed;
        }
    }
    if w.flush().is_err() { Exit::Failed } else { Exit::Ok }
}
