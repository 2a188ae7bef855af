//! The plan an operator confirmed is the plan that runs: a resume whose decisions changed
//! after the plan was shown (the run moved on meanwhile) is refused and writes nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::exec::{Engine, EngineOptions, Outcome, ResumeOptions, Silent, StartOptions};
use crate::state::{MemKv, RunStatus, Store};

#[tokio::test]
async fn a_resume_whose_plan_is_not_the_confirmed_one_writes_nothing() {
    let store = Store::new(Arc::new(MemKv::default())).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let opts = EngineOptions { state_dir: tmp.path().to_path_buf(), grace: Duration::from_secs(1), operator: "test".into() };
    let engine = Engine::new(store.clone(), opts, Arc::new(Silent), CancellationToken::new());
    let text =
        "version: 1\nname: r\nsteps:\n  a: { uses: noop }\n  gate:\n    needs: [a]\n    uses: approval\n    with: { message: go? }\n";
    let rb = Arc::new(crate::runbook::load_str(text, std::path::Path::new("r.yaml")).runbook.expect("valid"));
    let (id, outcome) = engine.start(rb, StartOptions { no_wait: true, ..StartOptions::default() }).await.unwrap();
    assert!(matches!(outcome, Outcome::Halted(_)));
    let events = store.events(&id, 0).unwrap().len();

    let plan = engine.plan_resume(&id, &ResumeOptions { rerun: vec!["a".into()], ..ResumeOptions::default() }).await.unwrap();
    assert!(plan.diff.iter().any(|l| l == "~ a (--rerun: will run again)"), "{plan:?}");
    assert_eq!(store.events(&id, 0).unwrap().len(), events, "planning writes nothing");
    // Confirmed without --rerun: the resume now would not rerun `a`, so it is not what was confirmed.
    let stale = ResumeOptions { no_wait: true, confirmed: Some(plan.confirmed()), ..ResumeOptions::default() };
    let err = engine.resume(&id, stale).await.unwrap_err().to_string();
    assert!(err.contains("changed after its plan was shown") && err.contains("wrote nothing"), "{err}");
    assert_eq!(store.events(&id, 0).unwrap().len(), events);
    assert_eq!(store.run(&id).unwrap().unwrap().attempt, 1);
    assert_eq!(store.run(&id).unwrap().unwrap().status, RunStatus::Halted);
    // The same plan, confirmed, goes ahead.
    let same = ResumeOptions { rerun: vec!["a".into()], no_wait: true, confirmed: Some(plan.confirmed()), ..ResumeOptions::default() };
    assert!(matches!(engine.resume(&id, same).await.unwrap(), Outcome::Halted(_)));
    assert_eq!(store.run(&id).unwrap().unwrap().attempt, 2);
}
