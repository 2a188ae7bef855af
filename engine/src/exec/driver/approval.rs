//! Approvals: asking, recording a decision, enforcing approvers and timeouts.
//!
//! `approvers` may be a template (`"{{ params.approvers }}"`): it is rendered when the step
//! starts waiting and the rendered list is recorded in the step's `inputs`, which is what
//! every decision is checked against — here, in `phoenix approve` on a halted run, and on the
//! page. A list that renders empty, or to anything but names, fails the step: nobody could
//! decide, and "anyone" is only ever meant by leaving `approvers` out.

use std::time::Duration;

use serde_json::json;
use tokio::sync::oneshot;

use super::{Driver, Msg};
use crate::exec::approvers::render_approvers;
use crate::exec::observer::UiEvent;
use crate::exec::prepare::now_ms;
use crate::exec::votes::{self, Tally};
use crate::state::{Approval, EventKind, PlanKind, StepStatus};
use crate::template::render_tree;

impl Driver {
    pub(super) fn request_approval(&mut self, k: PlanKind, i: usize) {
        let step = self.plan(k).steps[i].clone();
        let approvers = match self.recorded_approvers(k, i) {
            Some(Ok(list)) => list,
            Some(Err(e)) => {
                self.transition((k, i, None), StepStatus::Failed, Some(e));
                return;
            }
            None => match render_approvers(step.with.get("approvers"), &self.ctx.value(None)) {
                Ok(list) => list,
                Err(e) => {
                    self.transition((k, i, None), StepStatus::Failed, Some(e));
                    return;
                }
            },
        };
        let policy = votes::Policy::of(None, Some(&step.with));
        if let Some(n) = approvers.as_ref().map(Vec::len).filter(|&n| n < policy.quorum) {
            let why =
                format!("`quorum: {}` needs more approvers than the {n} `approvers` rendered to: the gate could never pass", policy.quorum);
            self.transition((k, i, None), StepStatus::Failed, Some(why));
            return;
        }
        self.waiting.insert((k, i));
        let message = step
            .with
            .get("message")
            .map(|m| {
                render_tree(&json!({"m": m}), &self.ctx.value(None), &[], &[])
                    .map_or_else(|_| m.to_string(), |v| v["m"].as_str().map_or_else(|| v["m"].to_string(), str::to_string))
            })
            .unwrap_or_default();
        let run_id = self.run.id.clone();
        // What was asked, as rendered: decisions are checked against this list.
        let rec = self.rec_mut((k, i, None));
        let mut inputs = json!({ "message": message, "approvers": approvers });
        for (key, v) in policy.recorded() {
            inputs[key] = v;
        }
        // Asked anew (another question, or again after a decision): earlier votes are history.
        if rec.inputs.as_ref() != Some(&inputs) || rec.approval.is_some() {
            rec.inputs = Some(inputs);
            rec.approval = None;
            rec.votes.clear();
            let rec = rec.clone();
            self.batch.put_step(&run_id, &rec);
        }
        let deadline = step.timeout.map(|t| self.recs(k)[i].waiting_since.unwrap_or_else(now_ms) + t.as_millis() as u64);
        // Votes recorded while no process owned the run (approve, then resume) count if they
        // were made in time, in the order they were cast.
        if let Ok(recorded) = votes::pending(&self.engine.inner.store, &run_id, &step.id) {
            for (n, vote) in recorded.into_iter().enumerate() {
                self.batch.clear_approval(&run_id, &votes::slot(&step.id, n));
                if deadline.is_none_or(|d| vote.at <= d) && self.recs(k)[i].status == StepStatus::Waiting {
                    if let Err(why) = self.apply_approval(&step.id, vote) {
                        let text = format!("a vote recorded on the halted run was not counted: {why}");
                        self.engine.inner.observer.on(&UiEvent::Log { run: run_id.clone(), step: step.id.clone(), text, stderr: true });
                    }
                }
            }
            if self.recs(k)[i].status != StepStatus::Waiting {
                return;
            }
        }
        // The deadline passed while the run was halted: rejected, never left waiting.
        if deadline.is_some_and(|d| now_ms() >= d) {
            self.time_out_approval(k, i);
            return;
        }
        self.event(EventKind::Approval { step: step.id.clone(), approved: None, by: None, comment: Some(message.clone()) });
        self.engine.inner.observer.on(&UiEvent::ApprovalRequested { run: run_id.clone(), step: step.id.clone(), message: message.clone() });
        if let Some(t) = step.timeout {
            let since = self.recs(k)[i].waiting_since.unwrap_or_else(now_ms);
            let left = Duration::from_millis((since + t.as_millis() as u64).saturating_sub(now_ms()));
            let tx = self.tx.clone();
            let id = step.id.clone();
            tokio::spawn(async move {
                tokio::time::sleep(left).await;
                let _ = tx.send(Msg::ApprovalTimeout { step: id });
            });
        }
        if !self.no_wait && self.engine.inner.observer.interactive() {
            let obs = self.engine.inner.observer.clone();
            let tx = self.tx.clone();
            let operator = self.engine.inner.opts.operator.clone();
            let id = step.id.clone();
            tokio::task::spawn_blocking(move || {
                if let Some((approved, comment)) = obs.ask_approval(&run_id, &id, &message) {
                    let (reply, answer) = oneshot::channel();
                    let via = Some(crate::exec::identity::Peer::me().via("terminal"));
                    let approval = Approval { approved, by: operator, comment, at: now_ms(), via };
                    let _ = tx.send(Msg::Approve { step: id.clone(), approval, reply });
                    // Not recorded (not an approver, or decided meanwhile): say so at the terminal.
                    if let Ok(Err(why)) = answer.blocking_recv() {
                        let text =
                            format!("your answer was not recorded: {why}; an approver can decide with: phoenix approve {run_id} {id}");
                        obs.on(&UiEvent::Log { run: run_id.clone(), step: id, text, stderr: true });
                    }
                }
            });
        }
    }

    /// No decision within the step's timeout: the approval is rejected (its decision recorded
    /// as by `timeout`, with the approvals it had) and the step fails.
    pub(super) fn time_out_approval(&mut self, k: PlanKind, i: usize) {
        if self.recs(k)[i].status != StepStatus::Waiting {
            return;
        }
        let step = self.plan(k).steps[i].id.clone();
        let t = self.plan(k).steps[i].timeout.map(phoenix_plugins::duration::format_duration).unwrap_or_default();
        let policy = votes::Policy::of(self.recs(k)[i].inputs.as_ref(), Some(&self.plan(k).steps[i].with));
        let quorum = match votes::tally(&self.recs(k)[i].votes, policy.quorum) {
            Tally::Open { approvals, .. } if policy.quorum > 1 => format!(" (quorum not met: {approvals} of {} approvals)", policy.quorum),
            _ => String::new(),
        };
        self.waiting.remove(&(k, i));
        let comment = format!("no decision within {t}{quorum}");
        self.event(EventKind::Approval { step, approved: Some(false), by: Some("timeout".into()), comment: Some(comment.clone()) });
        // Written with the transition.
        self.rec_mut((k, i, None)).approval =
            Some(Approval { approved: false, by: "timeout".into(), comment: Some(comment), at: now_ms(), via: None });
        self.transition((k, i, None), StepStatus::Failed, Some(format!("approval timed out after {t}{quorum}: rejected")));
    }

    /// The approvers recorded when the step started waiting (`None` inside: anyone), or
    /// `None` when it was not asked yet.
    fn recorded_approvers(&self, k: PlanKind, i: usize) -> Option<Result<Option<Vec<String>>, String>> {
        crate::exec::approvers::recorded(self.recs(k)[i].inputs.as_ref())
    }

    pub(super) fn find(&self, id: &str) -> Option<(PlanKind, usize)> {
        self.rb.main.find(id).map(|i| (PlanKind::Main, i)).or_else(|| self.rb.on_failure.find(id).map(|i| (PlanKind::OnFailure, i)))
    }

    pub(super) fn apply_approval(&mut self, step: &str, a: Approval) -> Result<(), String> {
        let Some((k, i)) = self.find(step) else {
            let waiting: Vec<&str> = self.waiting.iter().map(|&(k, i)| self.plan(k).steps[i].id.as_str()).collect();
            let all: Vec<&str> = self.rb.main.steps.iter().chain(&self.rb.on_failure.steps).map(|s| s.id.as_str()).collect();
            return Err(crate::exec::decided::no_such_step(&self.run.id, step, &waiting, &all));
        };
        // A second decision is refused, naming the first: the record keeps one.
        // (A step asked again after `resume --retry` waits anew: its old decision is history.)
        if let Some(first) = self.recs(k)[i].approval.as_ref().filter(|_| self.recs(k)[i].status != StepStatus::Waiting) {
            return Err(crate::exec::decided::already(step, first));
        }
        if self.recs(k)[i].status != StepStatus::Waiting {
            return Err(format!("step `{step}` is {}, not waiting for approval", self.recs(k)[i].status.as_str()));
        }
        // Recorded when the step started waiting; never the unrendered definition.
        let approvers = match self.recorded_approvers(k, i) {
            Some(list) => list?,
            None => return Err(format!("step `{step}` has not been asked yet: its approvers are not known")),
        };
        if let Some(list) = approvers.filter(|l| !l.contains(&a.by)) {
            return Err(format!("`{}` may not decide on `{step}`: approvers are {}", a.by, list.join(", ")));
        }
        let policy = votes::Policy::of(self.recs(k)[i].inputs.as_ref(), Some(&self.plan(k).steps[i].with));
        let initiators = if policy.distinct_from_initiator {
            votes::initiators(&self.engine.inner.store, &self.run.id, a.at).map_err(|e| e.to_string())?
        } else {
            Vec::new()
        };
        votes::refuse(step, &self.recs(k)[i].votes, &a.by, policy, &initiators)?;
        // One event per vote: who, how, why; the event makes it durable before the reply.
        self.event(EventKind::Approval {
            step: step.to_string(),
            approved: Some(a.approved),
            by: Some(a.by.clone()),
            comment: a.comment.clone(),
        });
        let run_id = self.run.id.clone();
        let rec = self.rec_mut((k, i, None));
        rec.votes.push(a);
        let decision = match votes::tally(&rec.votes, policy.quorum) {
            Tally::Open { .. } => None,
            Tally::Approved(d) | Tally::Rejected(d) => Some(d.clone()),
        };
        let Some(a) = decision else {
            let rec = rec.clone();
            self.batch.put_step(&run_id, &rec);
            return Ok(());
        };
        self.waiting.remove(&(k, i));
        let at = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(a.at)).to_string();
        let rec = self.rec_mut((k, i, None));
        rec.approval = Some(a.clone());
        rec.outputs = Some(json!({ "approved": a.approved, "by": a.by, "comment": a.comment, "at": at, "votes": votes::view(&rec.votes) }));
        if a.approved {
            self.transition((k, i, None), StepStatus::Succeeded, None);
        } else {
            let why = a.comment.as_deref().map_or(String::new(), |c| format!(": {c}"));
            self.transition((k, i, None), StepStatus::Failed, Some(format!("rejected by {}{why}", a.by)));
        }
        Ok(())
    }
}
