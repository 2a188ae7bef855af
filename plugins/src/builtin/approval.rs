use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::{ENGINE_CAPS, engine_only};
use crate::{Action, ActionCtx, ActionError, ActionInfo, Field, Issue, Kind, Plugin};

/// Waits for a person to approve or reject.
pub struct Approval;

/// `approval`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalInput {
    /// The question put to the approver.
    pub message: String,
    /// Who may approve (names as given to `phoenix approve --as`, or API token names), or a
    /// template giving them (`"{{ params.approvers }}"`), rendered when the step starts
    /// waiting. Left out: anyone may decide. Empty once rendered: the step fails.
    #[serde(default)]
    pub approvers: Vec<String>,
    /// How many distinct approvers must approve before the step passes (default 1). One
    /// rejection rejects at once, whatever the approvals so far.
    #[serde(default = "one")]
    pub quorum: u32,
    /// Refuses a vote from whoever started or resumed the run (the `--as` name, the API
    /// token's name, the alert route's token): four eyes, not two.
    #[serde(default)]
    pub distinct_from_initiator: bool,
    /// What the step's `timeout` decides when the quorum is not met by then: `reject` (the
    /// only choice: a gate that opens when nobody answers is no gate).
    #[serde(default)]
    pub timeout_decision: TimeoutDecision,
}

/// What a timed-out approval decides.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TimeoutDecision {
    /// The step fails, as if rejected by `timeout`.
    #[default]
    Reject,
}

fn one() -> u32 {
    1
}

impl Plugin for Approval {
    type Input = ApprovalInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "approval",
            summary: "Waits for `phoenix approve RUN STEP` (or --reject) from `quorum` distinct approvers; one rejection, or the step's timeout, rejects it.",
            kind: Kind::Engine,
            outputs: &[
                Field { name: "approved", doc: "true, or the step fails when rejected" },
                Field { name: "by", doc: "who approved" },
                Field { name: "comment", doc: "the approver's comment" },
                Field { name: "at", doc: "when (RFC 3339)" },
                Field { name: "votes", doc: "every vote, in order: approved, by, at, via, comment (`by` is the vote that decided)" },
            ],
            caps: ENGINE_CAPS,
            example: "approve_dns:\n  needs: [replicate_db]\n  uses: approval\n  with: { message: \"Point app.example.com at Azure?\" }\n  timeout: 30m",
        }
    }
    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut out = Vec::new();
        let listed = match with.get("approvers") {
            Some(Value::Array(a)) if a.is_empty() => {
                out.push(
                    Issue::at("approvers", "an empty `approvers` list lets nobody decide")
                        .help("list who may approve, or leave `approvers` out to let anyone who can reach the run decide"),
                );
                None
            }
            // A literal list; a template's length is known only once rendered (checked then).
            Some(Value::Array(a)) if !a.iter().any(|x| x.as_str().is_some_and(|s| s.contains("{{") || s.contains("{%"))) => Some(a.len()),
            _ => None,
        };
        match with.get("quorum") {
            // Not rendered: the number of approvals is policy a reviewer reads in the runbook.
            Some(q) if q.as_u64().is_none() => out.push(
                Issue::at("quorum", format!("`quorum` is {q}, not a whole number written in the runbook"))
                    .help("write how many distinct approvers must approve, e.g. `quorum: 2` (a template is not allowed here)"),
            ),
            Some(q) if q.as_u64() == Some(0) => out.push(
                Issue::at("quorum", "`quorum: 0` would pass the gate with no approval at all")
                    .help("give how many distinct approvers must approve (1 or more), or leave the step out if nobody needs to"),
            ),
            Some(q) => {
                if let (Some(q), Some(n)) = (q.as_u64(), listed) {
                    if q > n as u64 {
                        out.push(
                            Issue::at(
                                "quorum",
                                format!("`quorum: {q}` needs more approvers than the {n} listed: the gate could never pass"),
                            )
                            .help(format!("lower `quorum` to at most {n}, or list more names in `approvers`")),
                        );
                    }
                }
            }
            None => {}
        }
        if with.get("distinct_from_initiator").is_some_and(|d| !d.is_boolean()) {
            out.push(
                Issue::at("distinct_from_initiator", "`distinct_from_initiator` must be true or false, written in the runbook")
                    .help("write `distinct_from_initiator: true` to refuse a vote from whoever started or resumed the run"),
            );
        }
        if with.get("timeout_decision").and_then(Value::as_str) == Some("approve") {
            out.push(
                Issue::at(
                    "timeout_decision",
                    "`timeout_decision: approve` is not allowed: a gate that opens when nobody answers is no gate",
                )
                .help("leave `timeout_decision` out (a timeout rejects); if the step may go ahead unattended, it needs no approval step"),
            );
        }
        out
    }

    fn plan(&self, with: &Value) -> String {
        format!("ask for approval: {}", with.get("message").and_then(Value::as_str).unwrap_or("?"))
    }
    async fn run(&self, _ctx: &ActionCtx, _input: ApprovalInput) -> Result<Value, ActionError> {
        Err(engine_only(Action::info(self).name))
    }
}
