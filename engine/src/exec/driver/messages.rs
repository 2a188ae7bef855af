//! What the driver hears: attempts ending or retrying, output lines, child runs,
//! approvals, timeouts and cancels.

use serde_json::Value;

use super::{Driver, Msg, Stop, UnitKey, UnitResult};
use crate::exec::attempt::Unit;
use crate::exec::observer::UiEvent;
use crate::exec::prepare::now_ms;
use crate::state::{EventKind, LevelHistory, LogRecord, StepStatus};

impl Driver {
    pub(super) fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Abandon { why } => {
                self.abandoned.get_or_insert(why);
            }
            Msg::Log { step, line } => {
                let redactor = self.redactor.read().expect("poisoned");
                let text = if line.cut { redactor.cut_text(&line.text) } else { redactor.text(&line.text) };
                drop(redactor);
                if let Some(data) = &line.data {
                    let data = self.redactor.read().expect("poisoned").json(data);
                    self.event(EventKind::Note { step: Some(step.clone()), text: text.clone(), data: Some(data) });
                }
                let rec = LogRecord { seq: self.seq_l, at: now_ms(), step: step.clone(), stream: line.stream, text: text.clone() };
                self.seq_l += 1;
                self.batch.log(&self.run.id, &rec);
                let trim = self.kept.entry(step.clone()).or_default().take(rec.seq, rec.at, text.len());
                for seq in trim.remove {
                    self.batch.forget_log(&self.run.id, seq);
                }
                if let Some(l) = trim.left_out {
                    let note =
                        LogRecord { seq: l.seq, at: l.at, step: step.clone(), stream: phoenix_plugins::Stream::Info, text: l.text() };
                    self.batch.log(&self.run.id, &note);
                }
                self.engine.inner.observer.on(&UiEvent::Log {
                    run: self.run.id.clone(),
                    step,
                    text,
                    stderr: line.stream == phoenix_plugins::Stream::Stderr,
                });
            }
            Msg::Retry { key, attempt, error, delay, ack } => {
                let error = self.redactor.read().expect("poisoned").text(&error);
                let run_id = self.run.id.clone();
                let rec = self.rec_mut(key);
                rec.attempts = attempt + 1;
                rec.error = Some(error.clone());
                let rec = rec.clone();
                self.batch.put_step(&run_id, &rec);
                self.event(EventKind::Retry { step: rec.id.clone(), attempt, error: error.clone(), delay_ms: delay.as_millis() as u64 });
                self.engine.inner.observer.on(&UiEvent::Retry {
                    run: run_id,
                    step: rec.id,
                    attempt,
                    error,
                    delay_ms: delay.as_millis() as u64,
                });
                self.acks.push(ack);
            }
            Msg::Child { key, run_id, ack } => {
                let parent = self.run.id.clone();
                let rec = self.rec_mut(key);
                rec.child_run = Some(run_id);
                let rec = rec.clone();
                self.batch.put_step(&parent, &rec);
                self.durable = true;
                self.acks.push(ack);
            }
            Msg::Done { key, result, inputs, history } => self.done(key, result, inputs, history),
            Msg::Checked { step, phase, verdicts } => self.checked(step, phase, verdicts),
            Msg::Approve { step, approval, reply } => {
                let r = self.apply_approval(&step, approval);
                self.replies.push((reply, r));
            }
            Msg::ApprovalTimeout { step } => {
                if let Some((k, i)) = self.find(&step) {
                    self.time_out_approval(k, i);
                }
            }
            Msg::Event { kind, reply } => {
                self.event(kind);
                self.replies.push((reply, Ok(())));
            }
            Msg::Cancel { by, reply } => {
                self.event(EventKind::Operator { action: "cancel".into(), by, detail: None });
                self.stop(Stop::Cancel);
                self.replies.push((reply, Ok(())));
            }
        }
    }

    pub(super) fn done(&mut self, key: UnitKey, result: UnitResult, inputs: Option<Value>, history: Option<LevelHistory>) {
        self.running.remove(&key);
        let redactor = self.redactor.read().expect("poisoned").clone();
        let run_id = self.run.id.clone();
        // Its output is all in: what the store keeps of it need not be remembered any more.
        let id = self.rec_mut(key).id.clone();
        self.kept.remove(&id);
        {
            let rec = self.rec_mut(key);
            rec.inputs = inputs.map(|v| redactor.json(&v));
        }
        if let Some(h) = history {
            self.batch.history(&self.rb.name, &h);
        }
        match result {
            UnitResult::Ok(outputs) => {
                self.rec_mut(key).outputs = Some(redactor.json(&outputs));
                if !self.hold_for_after_check(key) {
                    self.transition(key, StepStatus::Succeeded, None);
                }
            }
            UnitResult::Failed { error, outputs, uncertain } => {
                let rec = self.rec_mut(key);
                rec.outputs = outputs.map(|o| redactor.json(&o));
                rec.uncertain = uncertain.map(|u| redactor.text(&u));
                self.transition(key, StepStatus::Failed, Some(redactor.text(&error)));
            }
            UnitResult::Cancelled { why, uncertain } => {
                // Recorded with the transition, in the same batch: durable before the run ends.
                let how = match self.stopping {
                    Some(Stop::Interrupt) => "interrupted (Ctrl-C, SIGTERM, or phoenix serve stopping): ",
                    Some(Stop::Cancel) => "cancelled: ",
                    None => "",
                };
                self.rec_mut(key).uncertain = uncertain.map(|u| redactor.text(&format!("{how}{u}")));
                if self.stopping == Some(Stop::Interrupt) {
                    // Interrupted: it runs again on resume.
                    self.transition(key, StepStatus::Cancelled, Some(format!("interrupted: {why}")));
                } else {
                    self.transition(key, StepStatus::Cancelled, Some(why));
                }
            }
            UnitResult::Halted(why) => {
                self.halted_units.insert(key);
                self.halted.push(why);
                let rec = self.rec_mut(key).clone();
                self.batch.put_step(&run_id, &rec);
                self.durable = true;
            }
        }
        if let (k, i, Some(_)) = key {
            if self.stopping.is_none() {
                // Start the next items (and end the step once all have ended).
                let mut out = Vec::new();
                self.start_items(k, i, &mut out);
                self.spawn_later(out);
            } else {
                self.finish_items(k, i);
            }
        }
    }

    pub(super) fn spawn_later(&mut self, units: Vec<Unit>) {
        // Units decided in a message handler are spawned after the next commit.
        self.pending_spawn.extend(units);
    }

    pub(super) fn stop(&mut self, how: Stop) {
        if self.stopping.is_none() {
            self.stopping = Some(how);
        }
        for t in self.running.values() {
            t.cancel();
        }
    }
}
