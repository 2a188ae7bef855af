//! The step lifecycle: one transition table. Every status change goes through [`check`].

use crate::state::StepStatus::{self, *};

/// Whether a step may go from `from` to `to`.
pub fn allowed(from: StepStatus, to: StepStatus) -> bool {
    matches!(
        (from, to),
        (Pending, Running | Skipped | UpstreamFailed | Waiting | Cancelled)
            | (Running, Succeeded | Failed | Running | Waiting | Cancelled)
            | (Waiting, Succeeded | Failed | Cancelled | Waiting)
            // Resume: failed, cancelled, skipped-for-a-need, upstream-failed and crashed
            // (running) steps run again; an edited runbook may send a changed succeeded step back too.
            | (Failed | Cancelled | Skipped | UpstreamFailed | Running | Succeeded, Pending)
    )
}

/// Whether an operator may count a step as done (`phoenix resume --skip`) from `from`: only
/// a step whose effect is uncertain — found running after a crash, or stopped mid-way while
/// not idempotent (`uncertain`: a failure or a cancel recorded as such). The one way a step
/// reaches `succeeded` without succeeding, and only by a person's word.
pub fn operator_done(from: StepStatus, uncertain: bool) -> bool {
    from == Running || (uncertain && matches!(from, Failed | Cancelled))
}

/// Checks an operator's `--skip` (see [`operator_done`]).
pub fn check_operator_done(step: &str, from: StepStatus, uncertain: bool) -> Result<(), IllegalTransition> {
    if operator_done(from, uncertain) { Ok(()) } else { Err(IllegalTransition { step: step.to_string(), from, to: Succeeded }) }
}

/// An illegal transition: a bug in the engine, reported rather than silently applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal step transition for `{step}`: {from:?} -> {to:?}")]
pub struct IllegalTransition {
    /// The step.
    pub step: String,
    /// Its state.
    pub from: StepStatus,
    /// The state asked for.
    pub to: StepStatus,
}

/// Checks a transition.
pub fn check(step: &str, from: StepStatus, to: StepStatus) -> Result<(), IllegalTransition> {
    if allowed(from, to) { Ok(()) } else { Err(IllegalTransition { step: step.to_string(), from, to }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [StepStatus; 8] = [Pending, Running, Succeeded, Failed, Skipped, Waiting, Cancelled, UpstreamFailed];

    #[test]
    fn the_table() {
        let legal: Vec<(StepStatus, StepStatus)> =
            ALL.iter().flat_map(|&a| ALL.iter().map(move |&b| (a, b))).filter(|&(a, b)| allowed(a, b)).collect();
        let expected = [
            (Pending, Running),
            (Pending, Skipped),
            (Pending, Waiting),
            (Pending, Cancelled),
            (Pending, UpstreamFailed),
            (Running, Pending),
            (Running, Running),
            (Running, Succeeded),
            (Running, Failed),
            (Running, Waiting),
            (Running, Cancelled),
            (Succeeded, Pending),
            (Failed, Pending),
            (Skipped, Pending),
            (Waiting, Succeeded),
            (Waiting, Failed),
            (Waiting, Waiting),
            (Waiting, Cancelled),
            (Cancelled, Pending),
            (UpstreamFailed, Pending),
        ];
        assert_eq!(legal, expected);
        // A finished step never runs again without going back to pending first.
        for done in [Succeeded, Failed, Skipped, Cancelled, UpstreamFailed] {
            assert!(!allowed(done, Running), "{done:?} -> Running");
            assert!(!allowed(done, Waiting), "{done:?} -> Waiting");
        }
        // Nothing jumps to success without running or being approved.
        assert!(!allowed(Pending, Succeeded));
        assert!(!allowed(Pending, Failed));
        // Not running for a failed need is decided before a step starts, never after.
        for from in [Running, Waiting, Succeeded, Failed, Skipped, Cancelled] {
            assert!(!allowed(from, UpstreamFailed), "{from:?} -> UpstreamFailed");
        }
        assert!(!allowed(UpstreamFailed, Succeeded) && !allowed(UpstreamFailed, Skipped));
        assert!(check("x", Succeeded, Failed).is_err());
        assert!(check("x", Waiting, Succeeded).is_ok());
    }

    #[test]
    fn an_operator_counts_as_done_only_a_step_whose_effect_is_uncertain() {
        let by_word: Vec<(StepStatus, bool)> =
            ALL.iter().flat_map(|&a| [false, true].map(move |u| (a, u))).filter(|&(a, u)| operator_done(a, u)).collect();
        assert_eq!(by_word, [(Running, false), (Running, true), (Failed, true), (Cancelled, true)]);
        // A plain failure or cancel is not the operator's to call done: it runs again.
        assert!(check_operator_done("x", Failed, false).is_err());
        assert!(check_operator_done("x", Cancelled, false).is_err());
        assert!(check_operator_done("x", Skipped, true).is_err());
        assert!(check_operator_done("x", Cancelled, true).is_ok());
    }
}
