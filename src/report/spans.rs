//! Each step's spans, replayed from the event log: a span is one stretch from `running` (or
//! `waiting`, for an approval) to the state that ended it. Retries stay inside their span as
//! marks; a crash or a halt ends a span, and the resume opens the next one.

use std::collections::{BTreeMap, HashMap};

use phoenix_engine::state::{EventKind, RunStatus, StepStatus};
use serde::Serialize;

use super::Time;
use super::run::Event;

/// One stretch of a step.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Span {
    pub(crate) start: Time,
    /// None while it goes on.
    pub(crate) end: Option<Time>,
    /// How it ended: a step state, `interrupted` or `halted`; `running` or `waiting` while open.
    pub(crate) outcome: String,
    /// An approval waiting for a decision, not an attempt.
    pub(crate) waiting: bool,
    /// The attempts it covers.
    pub(crate) first_attempt: u32,
    pub(crate) last_attempt: u32,
    pub(crate) retries: Vec<Retry>,
}

/// An attempt that failed and was tried again.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Retry {
    pub(crate) at: Time,
    pub(crate) attempt: u32,
    pub(crate) error: String,
    /// The wait before the next attempt.
    pub(crate) delay_ms: u64,
}

/// The spans of every step that ran or waited, by step id, in time order.
pub(crate) fn by_step(events: &[Event]) -> HashMap<String, Vec<Span>> {
    let mut replay = Replay::default();
    for e in events {
        replay.event(e);
    }
    replay.finish()
}

/// Ends a step's open span when its record says the step is over: `phoenix cancel` of a
/// halted run marks its steps cancelled without a step event, at the run's end.
pub(crate) fn settle(spans: &mut [Span], status: &str, at: Option<Time>) {
    if let (Some(last), false) = (spans.last_mut(), matches!(status, "running" | "waiting")) {
        if last.end.is_none() {
            last.end = at.map(|t| t.max(last.start));
            last.outcome = status.to_string();
        }
    }
}

#[derive(Default)]
struct Replay {
    done: HashMap<String, Vec<Span>>,
    open: BTreeMap<String, Span>,
    /// When the run last stopped (halted, failed…): a resume after it ends what was left running.
    last_stop: Option<Time>,
}

impl Replay {
    fn event(&mut self, e: &Event) {
        match &e.kind {
            EventKind::Step { step, status, attempt, .. } => self.step(step, *status, *attempt, e.at),
            EventKind::Retry { step, attempt, error, delay_ms } => {
                if let Some(span) = self.open.get_mut(step) {
                    span.retries.push(Retry { at: e.at, attempt: *attempt, error: error.clone(), delay_ms: *delay_ms });
                    span.last_attempt = span.last_attempt.max(attempt + 1);
                }
            }
            // A resume after a crash: what the dead process was running ended with it.
            EventKind::RunStarted { attempt, .. } if *attempt > 1 => self.close_running(self.last_stop.unwrap_or(e.at), "interrupted"),
            EventKind::RunFinished { status, .. } => {
                self.close_running(e.at, if *status == RunStatus::Halted { "halted" } else { "interrupted" });
                self.last_stop = Some(e.at);
            }
            _ => {}
        }
    }

    fn step(&mut self, step: &str, status: StepStatus, attempt: u32, at: Time) {
        let waiting = status == StepStatus::Waiting;
        match status {
            StepStatus::Running | StepStatus::Waiting => {
                // `running` again within a span is a retry; `waiting` again is the same wait asked anew.
                if self.open.get(step).is_some_and(|s| s.waiting == waiting) {
                    return;
                }
                self.close(step, at, "interrupted");
                let span = Span {
                    start: at,
                    end: None,
                    outcome: status.as_str().to_string(),
                    waiting,
                    first_attempt: attempt,
                    last_attempt: attempt,
                    retries: Vec::new(),
                };
                self.open.insert(step.to_string(), span);
            }
            StepStatus::Succeeded | StepStatus::Failed | StepStatus::Cancelled => {
                if let Some(span) = self.open.get_mut(step) {
                    span.last_attempt = span.last_attempt.max(attempt);
                }
                self.close(step, at, status.as_str());
            }
            StepStatus::Pending => self.close(step, at, "interrupted"),
            StepStatus::Skipped | StepStatus::UpstreamFailed => {}
        }
    }

    fn close(&mut self, step: &str, at: Time, outcome: &str) {
        if let Some(mut span) = self.open.remove(step) {
            span.end = Some(at.max(span.start));
            span.outcome = outcome.to_string();
            self.done.entry(step.to_string()).or_default().push(span);
        }
    }

    fn close_running(&mut self, at: Time, outcome: &str) {
        let running: Vec<String> = self.open.iter().filter(|(_, s)| !s.waiting).map(|(k, _)| k.clone()).collect();
        for step in running {
            self.close(&step, at, outcome);
        }
    }

    fn finish(mut self) -> HashMap<String, Vec<Span>> {
        for (step, span) in std::mem::take(&mut self.open) {
            self.done.entry(step).or_default().push(span);
        }
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(at: u64, step: &str, status: StepStatus, attempt: u32) -> Event {
        Event { at: Time(at), kind: EventKind::Step { step: step.into(), status, attempt, error: None } }
    }

    #[test]
    fn retries_stay_in_their_span_and_a_resume_opens_the_next() {
        let retry = Event { at: Time(20), kind: EventKind::Retry { step: "a".into(), attempt: 1, error: "boom".into(), delay_ms: 5 } };
        let halted = Event { at: Time(50), kind: EventKind::RunFinished { status: RunStatus::Halted, error: None } };
        let resumed = Event { at: Time(90), kind: EventKind::RunStarted { attempt: 2, by: None } };
        let events = [
            step(10, "a", StepStatus::Running, 1),
            retry,
            step(40, "a", StepStatus::Succeeded, 2),
            step(41, "b", StepStatus::Running, 1),
            step(42, "gate", StepStatus::Waiting, 1),
            halted,
            resumed,
            step(91, "b", StepStatus::Running, 2),
            step(95, "gate", StepStatus::Succeeded, 1),
        ];
        let spans = by_step(&events);
        let a = &spans["a"];
        assert_eq!(
            (a.len(), a[0].end, a[0].outcome.as_str(), a[0].retries.len(), a[0].last_attempt),
            (1, Some(Time(40)), "succeeded", 1, 2)
        );
        let b: Vec<(Option<Time>, &str)> = spans["b"].iter().map(|s| (s.end, s.outcome.as_str())).collect();
        assert_eq!(b, [(Some(Time(50)), "halted"), (None, "running")]);
        let gate = &spans["gate"];
        assert_eq!((gate.len(), gate[0].waiting, gate[0].start, gate[0].end), (1, true, Time(42), Some(Time(95))));
    }
}
