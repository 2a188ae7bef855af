//! A driver rebuilt from what the store holds: the records of every plan (pending ones made
//! for steps without), `for_each` items, the template context, the channel.

use super::*;

pub(super) fn item_id(step: &str, i: usize) -> String {
    format!("{step}[{i}]")
}

impl Driver {
    pub(crate) fn new(
        engine: Engine,
        rb: Arc<Runbook>,
        run: RunRecord,
        records: Vec<StepRecord>,
        no_wait: bool,
        attempt: u32,
    ) -> Result<Self, RunError> {
        let store = engine.inner.store.clone();
        let (seq_e, seq_l) = store.next_seqs(&run.id)?;
        let redactor = Arc::new(RwLock::new(Redactor::default()));
        let mut by_id: HashMap<String, StepRecord> = records.into_iter().map(|r| (r.id.clone(), r)).collect();
        let take = |plan: &Plan, kind: PlanKind, by_id: &mut HashMap<String, StepRecord>| -> Vec<StepRecord> {
            plan.steps.iter().map(|s| by_id.remove(&s.id).unwrap_or_else(|| StepRecord::pending(&s.id, kind, &s.fingerprint))).collect()
        };
        let main = take(&rb.main, PlanKind::Main, &mut by_id);
        let fail = take(&rb.on_failure, PlanKind::OnFailure, &mut by_id);
        let abort = take(&rb.on_abort, PlanKind::OnAbort, &mut by_id);
        // A drill's teardown records exist from its start; a production run has none.
        let teardown = if run.drill { take(&rb.teardown, PlanKind::Teardown, &mut by_id) } else { Vec::new() };
        let mut items: HashMap<(PlanKind, usize), Vec<StepRecord>> = HashMap::new();
        for (kind, plan, recs) in
            [(PlanKind::Main, &rb.main, &main), (PlanKind::OnFailure, &rb.on_failure, &fail), (PlanKind::OnAbort, &rb.on_abort, &abort)]
                .into_iter()
                .chain(run.drill.then_some((PlanKind::Teardown, &rb.teardown, &teardown)))
        {
            for (i, r) in recs.iter().enumerate() {
                if let Some(n) = r.items {
                    let list = (0..n)
                        .map(|j| {
                            by_id
                                .remove(&item_id(&plan.steps[i].id, j))
                                .unwrap_or_else(|| StepRecord::pending(item_id(&plan.steps[i].id, j), kind, ""))
                        })
                        .collect();
                    items.insert((kind, i), list);
                }
            }
        }
        let dry_run = engine.inner.dry_run.load(std::sync::atomic::Ordering::SeqCst);
        let mut run_v = prepare::run_value(&rb, &run.id, run.started_at, attempt, dry_run);
        run_v["fence"] = engine.fence().into();
        let ctx = Context {
            params: to_mj(&run.params),
            vars: to_mj(&run.vars),
            run: run_v,
            secrets: Arc::new(Secrets::new(&rb, redactor.clone())),
            steps: Arc::default(),
        };
        for r in main.iter().chain(&fail).chain(&abort).chain(&teardown) {
            if r.status.is_done() {
                ctx.steps.set(&r.id, &step_view(r));
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let cancel_all = engine.inner.shutdown.child_token();
        let phase = if run.ending.is_some() {
            PlanKind::Teardown
        } else if fail.iter().any(|r| r.status != StepStatus::Pending && r.status != StepStatus::Skipped) && run.status == RunStatus::Failed
        {
            PlanKind::OnFailure
        } else {
            PlanKind::Main
        };
        Ok(Driver {
            engine,
            rb,
            run,
            main,
            fail,
            abort,
            teardown,
            no_teardown: Plan::default(),
            aborting: None,
            items,
            lists: HashMap::new(),
            ctx,
            redactor,
            batch: Batch::default(),
            durable: false,
            seq_e,
            seq_l,
            kept: HashMap::new(),
            running: HashMap::new(),
            tx,
            rx,
            phase,
            stopping: None,
            no_wait,
            acks: Vec::new(),
            replies: Vec::new(),
            waiting: HashSet::new(),
            halted: Vec::new(),
            halted_units: HashSet::new(),
            cancel_all,
            pending_spawn: Vec::new(),
            frontier: schedule::Frontier::default(),
            abandoned: None,
            guard: invariants::Guard::default(),
        })
        .map(|mut d| {
            d.frontier = schedule::Frontier::build(&d);
            d
        })
    }
}
