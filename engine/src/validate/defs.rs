//! One view over the places steps are declared: `signals`, `steps`, `on_failure` and
//! `on_abort`.

use serde_json::Value;

use crate::runbook::raw::{Cond, Needs, RawRetry, RawRunbook};
use crate::yaml::Path;

/// Where a step was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Section {
    Signals,
    Score,
    Steps,
    OnFailure,
    OnAbort,
    Teardown,
}

impl Section {
    pub(crate) fn key(self) -> &'static str {
        match self {
            Section::Signals | Section::Score => "signals",
            Section::Steps => "steps",
            Section::OnFailure => "on_failure",
            Section::OnAbort => "on_abort",
            Section::Teardown => "teardown",
        }
    }
}

/// A step as declared, whatever its section.
#[derive(Debug, Clone)]
pub(crate) struct Def<'a> {
    pub(crate) id: &'a str,
    pub(crate) section: Section,
    pub(crate) uses: &'a str,
    pub(crate) with: Option<&'a Value>,
    pub(crate) needs: Needs,
    pub(crate) when: Option<&'a Cond>,
    pub(crate) for_each: Option<&'a Value>,
    pub(crate) timeout: Option<std::time::Duration>,
    pub(crate) retry: Option<&'a RawRetry>,
    pub(crate) continue_on_error: Option<bool>,
    pub(crate) trigger_rule: crate::runbook::raw::TriggerRule,
    pub(crate) idempotent: Option<bool>,
    pub(crate) effect: Option<phoenix_plugins::Effect>,
    pub(crate) max_parallel: Option<u32>,
    pub(crate) description: Option<&'a str>,
    pub(crate) signal: Option<usize>,
}

impl Def<'_> {
    /// The path of the step's mapping.
    pub(crate) fn path(&self) -> Path {
        match self.section {
            Section::Score => Path::root().key("signals"),
            Section::Teardown => Path::root().key("drill").key("teardown").key(self.id),
            s => Path::root().key(s.key()).key(self.id),
        }
    }
}

pub(crate) const SCORE: &str = "score";
/// The pseudo-action of the implicit `score` step.
pub(crate) const SCORE_ACTION: &str = "score";

/// The main plan's steps in plan order (signals, `score`, steps) and the on_failure steps.
pub(crate) fn defs(raw: &RawRunbook) -> (Vec<Def<'_>>, Vec<Def<'_>>) {
    let mut main = Vec::with_capacity(raw.signals.len() + 1 + raw.steps.len());
    for (i, (id, s)) in raw.signals.iter().enumerate() {
        main.push(Def {
            id,
            section: Section::Signals,
            uses: &s.uses,
            with: s.with.as_ref(),
            needs: Needs::None,
            when: None,
            for_each: None,
            timeout: s.timeout.map(|d| d.get()),
            retry: s.retry.as_ref(),
            continue_on_error: Some(true),
            trigger_rule: Default::default(),
            idempotent: None,
            effect: None,
            max_parallel: None,
            description: s.description.as_deref(),
            signal: Some(i),
        });
    }
    if !raw.signals.is_empty() {
        main.push(Def {
            id: SCORE,
            section: Section::Score,
            uses: SCORE_ACTION,
            with: None,
            needs: Needs::Many(raw.signals.keys().cloned().collect()),
            when: None,
            for_each: None,
            timeout: None,
            retry: None,
            continue_on_error: None,
            // The score counts every probe, whatever happened to it.
            trigger_rule: crate::runbook::raw::TriggerRule::AllDone,
            idempotent: None,
            effect: None,
            max_parallel: None,
            description: Some("sums the signals' weights and picks the level"),
            signal: None,
        });
    }
    main.extend(raw.steps.iter().map(step(Section::Steps)));
    let fail = raw.on_failure.iter().map(step(Section::OnFailure)).collect();
    (main, fail)
}

/// A drill's teardown steps (`drill.teardown`), a plan of their own.
pub(crate) fn teardown_defs(raw: &RawRunbook) -> Vec<Def<'_>> {
    raw.drill.iter().flat_map(|d| d.teardown.iter()).map(step(Section::Teardown)).collect()
}

/// The on_abort steps (`phoenix resume --abort`), a plan of their own.
pub(crate) fn abort_defs(raw: &RawRunbook) -> Vec<Def<'_>> {
    raw.on_abort.iter().map(step(Section::OnAbort)).collect()
}

fn step<'r>(section: Section) -> impl Fn((&'r String, &'r crate::runbook::raw::RawStep)) -> Def<'r> {
    move |(id, s)| Def {
        id: id.as_str(),
        section,
        uses: s.uses.as_str(),
        with: s.with.as_ref(),
        needs: s.needs.clone(),
        when: s.when.as_ref(),
        for_each: s.for_each.as_ref(),
        timeout: s.timeout.map(|d| d.get()),
        retry: s.retry.as_ref(),
        continue_on_error: s.continue_on_error,
        trigger_rule: s.trigger_rule.unwrap_or_default(),
        idempotent: s.idempotent,
        effect: s.effect,
        max_parallel: s.max_parallel,
        description: s.description.as_deref(),
        signal: None,
    }
}
