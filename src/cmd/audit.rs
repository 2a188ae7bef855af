//! `phoenix audit verify RUN` and `phoenix audit export RUN`: a run's event chain checked
//! again from the store, or written out as JSON lines for a SIEM. Both read the stored bytes
//! (sled in the state directory, or `--store etcd://…`); when a running phoenix owns the
//! directory, it hands the bytes over its control socket and they are checked here, never
//! taken on its word.

use std::io::Write;
use std::path::PathBuf;

use phoenix_engine::exec::control;
use phoenix_engine::state::audit::{self, Verdict};
use serde_json::json;

use super::state::{self, Access};
use crate::cli::Output;
use crate::exit::Exit;

/// A run's stored records and chain head: read from the store, or, when a running phoenix
/// owns it, the stored bytes as its control socket hands them over (checked here all the
/// same). `Ok(None)`: no such run.
#[allow(clippy::type_complexity)]
fn chain(state_dir: &Option<PathBuf>, run: &str) -> Result<Option<(Vec<(u64, Vec<u8>)>, Option<Vec<u8>>)>, Exit> {
    let failed = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        Exit::Failed
    };
    let dir = state::dir(state_dir);
    match state::open(&dir) {
        Ok(Access::Direct(store)) => {
            let records = store.raw_events(run).map_err(|e| failed(&e))?;
            let head = store.chain_head(run).map_err(|e| failed(&e))?;
            let known = !records.is_empty() || head.is_some() || store.run(run).map_err(|e| failed(&e))?.is_some();
            Ok(known.then_some((records, head)))
        }
        Ok(Access::Owner) => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            match rt.block_on(control::request(&dir, &json!({ "op": "audit_chain", "run": run }))) {
                Ok(v) => audit::from_raw_chain(&v).map(Some).map_err(|e| failed(&e)),
                Err(e) if e.starts_with("no run") => Ok(None),
                Err(e) => Err(failed(&format!("the phoenix owning {} did not hand over the records: {e}", dir.display()))),
            }
        }
        Err(e) => Err(failed(&e)),
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
    let v = match chain(state_dir, run) {
        Ok(Some((records, head))) => audit::verify(run, &records, head.as_deref()),
        Ok(None) => return unknown(run),
        Err(e) => return e,
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
    let records = match chain(state_dir, run) {
        Ok(Some((records, _))) => records,
        Ok(None) => return unknown(run),
        Err(e) => return e,
    };
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
