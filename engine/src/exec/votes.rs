//! The votes on an approval gate: its policy (`quorum`, `distinct_from_initiator`), which
//! vote is refused, and the tally that decides it. One set of rules for the driver (a run in
//! progress), `phoenix approve` on a halted run, and the page.
//!
//! A halted run's votes wait in the store for the resume, one record per vote under a
//! compare-and-set on its slot: the first in `a/RUN/STEP` (where the single decision always
//! was, so older stores read), the next ones in `a/RUN/STEP/1`, `a/RUN/STEP/2`, … A voter
//! reads every slot before taking the next free one; two votes racing for one slot cannot
//! both commit, and the loser reads again — so the same person never holds two slots, and a
//! quorum reached by one vote is seen by the next.

use serde_json::Value;

use crate::state::{Approval, EventKind, Store, StoreError};

/// How a gate is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Distinct approvals needed (1 or more).
    pub quorum: usize,
    /// Whether who started or resumed the run is refused.
    pub distinct_from_initiator: bool,
}

impl Policy {
    /// As recorded in the step's `inputs` when it started waiting, else as its definition's
    /// `with` states it.
    pub fn of(inputs: Option<&Value>, with: Option<&Value>) -> Policy {
        let get = |k: &str| inputs.and_then(|i| i.get(k)).filter(|v| !v.is_null()).or_else(|| with.and_then(|w| w.get(k)));
        Policy {
            quorum: get("quorum").and_then(Value::as_u64).map_or(1, |q| q.max(1) as usize),
            distinct_from_initiator: get("distinct_from_initiator").and_then(Value::as_bool).unwrap_or(false),
        }
    }

    /// What the step records in its `inputs` beside message and approvers: nothing for the
    /// defaults (one approval, anyone).
    pub fn recorded(&self) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        if self.quorum != 1 {
            out.push(("quorum", Value::from(self.quorum)));
        }
        if self.distinct_from_initiator {
            out.push(("distinct_from_initiator", Value::Bool(true)));
        }
        out
    }
}

/// Where the votes on a gate stand.
#[derive(Debug, Clone, PartialEq)]
pub enum Tally<'a> {
    /// The vote that reached the quorum.
    Approved(&'a Approval),
    /// The first rejection.
    Rejected(&'a Approval),
    /// Still open: approvals so far, and how many more are needed.
    Open {
        /// Approvals so far.
        approvals: usize,
        /// More approvals needed.
        needed: usize,
    },
}

/// Counts votes in order: one rejection rejects at once; the quorum-th approval approves.
pub fn tally(votes: &[Approval], quorum: usize) -> Tally<'_> {
    let mut approvals = 0;
    for v in votes {
        if !v.approved {
            return Tally::Rejected(v);
        }
        approvals += 1;
        if approvals >= quorum {
            return Tally::Approved(v);
        }
    }
    Tally::Open { approvals, needed: quorum.saturating_sub(approvals) }
}

/// Refuses a vote: a second one by the same person (naming the first), or one by who started
/// or resumed the run when the gate asks for someone else. `initiators` are the `by` of the
/// run's starts and resumes.
pub fn refuse(step: &str, votes: &[Approval], by: &str, policy: Policy, initiators: &[String]) -> Result<(), String> {
    if let Some(first) = votes.iter().find(|v| v.by == by) {
        let left = match tally(votes, policy.quorum) {
            Tally::Open { needed, .. } => format!("; {needed} more approval(s) needed from other approvers"),
            _ => String::new(),
        };
        return Err(format!(
            "`{by}` already voted on `{step}`: {}; one vote per person, a second is not recorded{left}",
            crate::exec::decided::describe(first)
        ));
    }
    if policy.distinct_from_initiator {
        if let Some(who) = initiators.iter().find(|i| same_person(by, i)) {
            return Err(format!(
                "`{by}` may not decide on `{step}`: it must be approved by someone other than who started or resumed the run (distinct_from_initiator), and {who} did; ask another approver"
            ));
        }
    }
    Ok(())
}

/// Whether `by` is who a start's `by` names: the name itself, or the name before ` (` (a run
/// an alert started is `token (alert Name)`).
fn same_person(by: &str, initiator: &str) -> bool {
    initiator == by || initiator.split_once(" (").is_some_and(|(name, _)| name == by)
}

/// Who had started or resumed the run by `at` (a vote's time), from its `run_started`
/// events: a vote cast on a halted run stays counted when its voter resumes the run after.
pub fn initiators(store: &Store, run: &str, at: u64) -> Result<Vec<String>, StoreError> {
    Ok(store
        .events(run, 0)?
        .into_iter()
        .filter(|e| e.at <= at)
        .filter_map(|e| match e.kind {
            EventKind::RunStarted { by, .. } => by,
            _ => None,
        })
        .collect())
}

/// The store step name of a halted run's `n`th waiting vote (see the module's note).
pub fn slot(step: &str, n: usize) -> String {
    if n == 0 { step.to_string() } else { format!("{step}/{n}") }
}

/// The most votes a halted gate's slots are read for: far beyond any approvers list.
const MAX_SLOTS: usize = 1000;

/// The votes recorded on a halted run's gate, waiting for the resume, in order.
pub fn pending(store: &Store, run: &str, step: &str) -> Result<Vec<Approval>, StoreError> {
    let mut out = Vec::new();
    while out.len() < MAX_SLOTS {
        match store.approval(run, &slot(step, out.len()))? {
            Some(a) => out.push(a),
            None => break,
        }
    }
    Ok(out)
}

/// The votes as the page and `status` show them: who, how, when, through what.
pub fn view(votes: &[Approval]) -> Value {
    Value::Array(
        votes
            .iter()
            .map(|v| {
                let at = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(v.at)).to_string();
                serde_json::json!({ "approved": v.approved, "by": v.by, "at": at, "via": v.via, "comment": v.comment })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vote(by: &str, approved: bool) -> Approval {
        Approval { approved, by: by.into(), comment: None, at: 0, via: Some("cli".into()) }
    }

    #[test]
    fn a_quorum_counts_approvals_and_one_rejection_rejects() {
        let (a, b, c) = (vote("alice", true), vote("bob", true), vote("carol", false));
        assert_eq!(tally(&[], 2), Tally::Open { approvals: 0, needed: 2 });
        assert_eq!(tally(std::slice::from_ref(&a), 2), Tally::Open { approvals: 1, needed: 1 });
        assert_eq!(tally(&[a.clone(), b.clone()], 2), Tally::Approved(&b));
        assert_eq!(tally(&[a.clone(), c.clone(), b.clone()], 2), Tally::Rejected(&c));
        assert_eq!(tally(std::slice::from_ref(&a), 1), Tally::Approved(&a));
    }

    #[test]
    fn a_second_vote_and_the_initiators_vote_are_refused() {
        let p = Policy { quorum: 2, distinct_from_initiator: true };
        let votes = [vote("alice", true)];
        let e = refuse("gate", &votes, "alice", p, &[]).unwrap_err();
        assert!(e.contains("`alice` already voted on `gate`: approved by alice") && e.contains("1 more approval(s)"), "{e}");
        let e = refuse("gate", &votes, "bob", p, &["bob".into()]).unwrap_err();
        assert!(e.contains("`bob` may not decide on `gate`") && e.contains("distinct_from_initiator"), "{e}");
        assert!(refuse("gate", &votes, "oncall", p, &["oncall (alert HighErrors)".into()]).is_err());
        assert!(refuse("gate", &votes, "bob", p, &["carol".into(), "bobby".into()]).is_ok());
        assert!(refuse("gate", &votes, "bob", Policy { distinct_from_initiator: false, ..p }, &["bob".into()]).is_ok());
    }

    #[test]
    fn the_policy_is_read_from_what_was_recorded_then_the_definition() {
        let with = json!({ "quorum": 2, "distinct_from_initiator": true });
        assert_eq!(Policy::of(None, Some(&with)), Policy { quorum: 2, distinct_from_initiator: true });
        assert_eq!(Policy::of(Some(&json!({ "quorum": 3 })), Some(&with)).quorum, 3);
        assert_eq!(Policy::of(None, None), Policy { quorum: 1, distinct_from_initiator: false });
        assert!(Policy::of(None, None).recorded().is_empty());
        assert_eq!(slot("gate", 0), "gate");
        assert_eq!(slot("gate", 2), "gate/2");
    }
}
