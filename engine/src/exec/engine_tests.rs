//! The engine's lock and run-record races, played deterministically through stores that
//! make two operations meet at the worst instant.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};

use super::*;
use crate::exec::observer::Silent;
use crate::state::{Cond, Entry, Kv, MemKv, Ops};

/// A store whose first two reads of a lock wait for each other: two starts both see the
/// lock free before either commits, the instant a watch loop and an alert can meet at.
struct Meeting {
    kv: MemKv,
    gate: Barrier,
    waiting: AtomicUsize,
}

impl Kv for Meeting {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        let value = self.kv.get(key)?;
        if key.starts_with(b"k/") && self.waiting.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            self.gate.wait();
        }
        Ok(value)
    }
    fn scan(&self, prefix: &[u8]) -> Result<Vec<Entry>, String> {
        self.kv.scan(prefix)
    }
    fn last(&self, prefix: &[u8]) -> Result<Option<Entry>, String> {
        self.kv.last(prefix)
    }
    fn commit_if(&self, conds: &[Cond], ops: Ops, durable: bool) -> Result<bool, String> {
        self.kv.commit_if(conds, ops, durable)
    }
}

#[test]
fn two_starts_that_both_see_the_lock_free_take_it_once() {
    let kv = Arc::new(Meeting { kv: MemKv::default(), gate: Barrier::new(2), waiting: AtomicUsize::new(2) });
    let store = Store::new(kv).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let opts = EngineOptions { state_dir: tmp.path().to_path_buf(), grace: Duration::from_secs(1), operator: "test".into() };
    let engine = Engine::new(store.clone(), opts, Arc::new(Silent), CancellationToken::new());
    let text = "version: 1\nname: failover\nlock: dr\nsteps:\n  gate:\n    uses: approval\n    with: { message: go? }\n";
    let rb = Arc::new(crate::runbook::load_str(text, std::path::Path::new("failover.yaml")).runbook.expect("valid"));
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (engine, rb, results) = (engine.clone(), rb.clone(), &results);
            s.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                let r = rt.block_on(engine.start(rb, StartOptions { no_wait: true, ..StartOptions::default() }));
                results.lock().unwrap().push(r);
            });
        }
    });
    let results = results.into_inner().unwrap();
    let runs = store.runs().unwrap();
    assert_eq!(runs.len(), 1, "one run recorded, not two: {results:?}");
    let winner = &runs[0].id;
    assert_eq!(store.lock_holder("dr").unwrap().as_ref(), Some(winner));
    let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "{results:?}");
    assert!(matches!(won[0], (id, Outcome::Halted(_)) if id == winner), "{results:?}");
    let lost = results.iter().find_map(|r| r.as_ref().err()).expect("one start refused").to_string();
    assert!(lost.contains(&format!("the lock `dr` is held by run {winner}")), "{lost}");
    assert!(lost.contains(&format!("phoenix resume {winner}")), "{lost}");
}

type Commit = Box<dyn FnOnce(&MemKv) + Send>;

/// A store that runs `meanwhile` once, the first time a run's steps are read: what a
/// cancel committing while a resume stops orphans looks like to the resume.
struct Meanwhile {
    kv: MemKv,
    meanwhile: Mutex<Option<Commit>>,
}

impl Kv for Meanwhile {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, String> {
        self.kv.get(key)
    }
    fn scan(&self, prefix: &[u8]) -> Result<Vec<Entry>, String> {
        if prefix.starts_with(b"s/") {
            if let Some(f) = self.meanwhile.lock().unwrap().take() {
                f(&self.kv);
            }
        }
        self.kv.scan(prefix)
    }
    fn last(&self, prefix: &[u8]) -> Result<Option<Entry>, String> {
        self.kv.last(prefix)
    }
    fn commit_if(&self, conds: &[Cond], ops: Ops, durable: bool) -> Result<bool, String> {
        self.kv.commit_if(conds, ops, durable)
    }
}

#[tokio::test]
async fn a_run_cancelled_while_it_is_being_resumed_stays_cancelled() {
    let kv = Arc::new(Meanwhile { kv: MemKv::default(), meanwhile: Mutex::new(None) });
    let store = Store::new(kv.clone()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let opts = EngineOptions { state_dir: tmp.path().to_path_buf(), grace: Duration::from_secs(1), operator: "test".into() };
    let engine = Engine::new(store.clone(), opts, Arc::new(Silent), CancellationToken::new());
    let text = "version: 1\nname: failover\nlock: dr\nsteps:\n  gate:\n    uses: approval\n    with: { message: go? }\n";
    let rb = Arc::new(crate::runbook::load_str(text, std::path::Path::new("failover.yaml")).runbook.expect("valid"));
    let (id, outcome) = engine.start(rb, StartOptions { no_wait: true, ..StartOptions::default() }).await.unwrap();
    assert!(matches!(outcome, Outcome::Halted(_)));
    // The cancel's commit: the run cancelled, its lock released.
    let run = id.clone();
    *kv.meanwhile.lock().unwrap() = Some(Box::new(move |kv: &MemKv| {
        let k = format!("r/{run}").into_bytes();
        let mut r: serde_json::Value = serde_json::from_slice(&kv.get(&k).unwrap().unwrap()).unwrap();
        r["status"] = "cancelled".into();
        kv.commit(vec![(k, Some(serde_json::to_vec(&r).unwrap())), (b"k/dr".to_vec(), None)], true).unwrap();
    }));
    let err = engine.resume(&id, ResumeOptions { no_wait: true, ..ResumeOptions::default() }).await.unwrap_err().to_string();
    assert!(err.contains(&format!("run {id} changed while it was being resumed (it is cancelled now")), "{err}");
    let after = store.run(&id).unwrap().unwrap();
    assert_eq!(after.status, RunStatus::Cancelled, "not brought back to life");
    assert_eq!(after.attempt, 1);
    assert_eq!(store.lock_holder("dr").unwrap(), None, "and the lock the cancel released stays free");
    assert!(!store.events(&id, 0).unwrap().iter().any(|e| matches!(e.kind, EventKind::RunStarted { attempt: 2, .. })));
    // Without a cancel in between, the same resume goes ahead.
    let text = "version: 1\nname: other\nsteps:\n  gate:\n    uses: approval\n    with: { message: go? }\n";
    let rb = Arc::new(crate::runbook::load_str(text, std::path::Path::new("other.yaml")).runbook.expect("valid"));
    let (id, _) = engine.start(rb, StartOptions { no_wait: true, ..StartOptions::default() }).await.unwrap();
    let again = engine.resume(&id, ResumeOptions { no_wait: true, ..ResumeOptions::default() }).await.unwrap();
    assert!(matches!(again, Outcome::Halted(_)), "{again:?}");
    assert_eq!(store.run(&id).unwrap().unwrap().attempt, 2);
}
