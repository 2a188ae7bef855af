//! What an operator is told about a decided approval: who decided, when, through what and
//! why — when a second decision is refused, in `status`, on the page. One wording for the
//! command line, the control socket and the HTTP API.

use crate::state::Approval;

/// `approved by alice: DNS TTL checked (at 2026-12-06T04:10:00Z, via cli, uid 1000 (alice))`.
pub fn describe(a: &Approval) -> String {
    let verdict = if a.approved { "approved" } else { "rejected" };
    let at = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(a.at));
    let via = a.via.as_deref().map_or(String::new(), |v| format!(", via {v}"));
    let comment = a.comment.as_deref().filter(|c| !c.is_empty()).map_or(String::new(), |c| format!(": {c}"));
    format!("{verdict} by {}{comment} (at {at}{via})", a.by)
}

/// The refusal of a second decision, naming the first.
pub fn already(step: &str, a: &Approval) -> String {
    format!("`{step}` was already {}; a second decision is not recorded", describe(a))
}

/// The `detail` of the operator event `phoenix approve` logs on a halted run: `gate`, or
/// `gate: DNS TTL checked`.
pub fn step_and_comment(step: &str, comment: Option<&str>) -> String {
    comment.filter(|c| !c.is_empty()).map_or_else(|| step.to_string(), |c| format!("{step}: {c}"))
}

/// Whether an operator event's `detail` is about `step` (see [`step_and_comment`]).
pub fn detail_is_step(detail: &str, step: &str) -> bool {
    detail == step || detail.strip_prefix(step).is_some_and(|rest| rest.starts_with(": "))
}

/// The refusal of a step name that is not in the run, with the waiting steps and the
/// closest name among them (or among all steps).
pub fn no_such_step<'a>(run: &str, step: &str, waiting: &[&'a str], all: &[&'a str]) -> String {
    let guess = crate::suggest::did_you_mean(step, waiting.iter().copied())
        .or_else(|| crate::suggest::did_you_mean(step, all.iter().copied()))
        .map_or(String::new(), |c| format!("; did you mean `{c}`?"));
    let asks = if waiting.is_empty() {
        "no step of it waits for approval".to_string()
    } else {
        format!("waiting for approval: {}", waiting.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", "))
    };
    format!("run {run} has no step `{step}` ({asks}){guess}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_first_decision_and_suggests_a_step() {
        let a = Approval {
            approved: true,
            by: "alice".into(),
            comment: Some("DNS TTL checked".into()),
            at: 0,
            via: Some("cli, uid 1000 (alice)".into()),
        };
        assert_eq!(
            already("gate", &a),
            "`gate` was already approved by alice: DNS TTL checked (at 1970-01-01T00:00:00Z, via cli, uid 1000 (alice)); a second decision is not recorded"
        );
        let m = no_such_step("r1", "gaet", &["gate"], &["prepare", "gate"]);
        assert!(m.contains("did you mean `gate`?") && m.contains("waiting for approval: `gate`"), "{m}");
        assert!(!no_such_step("r1", "zzzzzz", &[], &["gate"]).contains("did you mean"));
    }
}
