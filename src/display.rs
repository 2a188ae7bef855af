//! What a person sees while a run goes: a live status line on a terminal, plain
//! timestamped lines otherwise. Everything goes to stderr; stdout is for results.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Instant;

use phoenix_engine::exec::{Observer, UiEvent};
use phoenix_engine::state::{RunStatus, StepStatus};

use crate::visible::visible;

struct State {
    running: BTreeMap<String, Instant>,
    done: usize,
    total: usize,
    status_shown: bool,
    /// What each run did in this process, for the line that ends it.
    tallies: BTreeMap<String, Tally>,
}

/// What one run did in this process: its steps' ends (not their items'), retries, and the
/// steps a resume kept from before.
struct Tally {
    since: Instant,
    kept: usize,
    succeeded: usize,
    failed: usize,
    skipped: usize,
    /// Not run because a need failed: told apart from `skipped`, which is no failure.
    upstream_failed: usize,
    cancelled: usize,
    retries: usize,
}

impl Tally {
    /// `after 1.2s (10 succeeded, 1 failed, 2 kept from before)`.
    fn summary(&self) -> String {
        let parts: Vec<String> = [
            (self.succeeded, "succeeded"),
            (self.failed, "failed"),
            (self.skipped, "skipped"),
            (self.upstream_failed, "not run: upstream failed"),
            (self.cancelled, "cancelled"),
            (self.retries, if self.retries == 1 { "retry" } else { "retries" }),
            (self.kept, "kept from before"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        let took = self.since.elapsed().as_secs_f64();
        let took = if took < 60.0 { format!("{took:.1}s") } else { format!("{}m{:02}s", (took / 60.0) as u64, (took % 60.0) as u64) };
        if parts.is_empty() { format!("after {took}") } else { format!("after {took} ({})", parts.join(", ")) }
    }
}

/// The terminal display.
pub(crate) struct Display {
    tty: bool,
    interactive: bool,
    state: Mutex<State>,
}

impl Display {
    pub(crate) fn new(allow_prompt: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        Display {
            tty,
            interactive: allow_prompt && tty && std::io::stdin().is_terminal(),
            state: Mutex::new(State { running: BTreeMap::new(), done: 0, total: 0, status_shown: false, tallies: BTreeMap::new() }),
        }
    }

    fn stamp() -> String {
        let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        now.get(11..23).unwrap_or(&now).to_string()
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.tty { format!("\x1b[{code}m{s}\x1b[0m") } else { s.to_string() }
    }

    fn line(&self, st: &mut State, text: &str) {
        // `--log-format json` off a terminal: the line as one JSON object, so that every
        // line on stderr parses (docs/observability.md).
        if !self.tty && crate::telemetry::json() {
            crate::telemetry::json_line("phoenix::display", text);
            return;
        }
        // One write per line (stderr is unbuffered): a line is never interleaved with
        // another process's output, and costs one system call.
        let mut buf = Vec::with_capacity(text.len() + 32);
        if st.status_shown {
            buf.extend_from_slice(b"\r\x1b[2K");
        }
        let _ = writeln!(buf, "{} {text}", self.paint("2", &Self::stamp()));
        st.status_shown = false;
        if self.tty {
            self.status(st, &mut buf);
        }
        let _ = std::io::stderr().lock().write_all(&buf);
    }

    fn status(&self, st: &mut State, err: &mut impl Write) {
        if st.running.is_empty() {
            return;
        }
        let now = Instant::now();
        let running: Vec<String> =
            st.running.iter().take(6).map(|(s, t)| format!("{s} {:.1}s", now.duration_since(*t).as_secs_f64())).collect();
        let more = if st.running.len() > 6 { format!(" +{}", st.running.len() - 6) } else { String::new() };
        let _ = write!(err, "{}", self.paint("36", &format!("⏳ {}/{} done · running: {}{more}", st.done, st.total, running.join(", "))));
        let _ = err.flush();
        st.status_shown = true;
    }

    /// Redraws the status line (elapsed times move on).
    pub(crate) fn tick(&self) {
        if !self.tty {
            return;
        }
        let mut st = self.state.lock().expect("poisoned");
        let mut err = std::io::stderr().lock();
        if st.status_shown {
            let _ = write!(err, "\r\x1b[2K");
        }
        self.status(&mut st, &mut err);
    }
}

fn secs(ms: Option<u64>) -> String {
    ms.map_or(String::new(), |m| format!(" ({:.1}s)", m as f64 / 1000.0))
}

impl Observer for Display {
    fn on(&self, e: &UiEvent) {
        let mut st = self.state.lock().expect("poisoned");
        match e {
            UiEvent::RunStarted { run, runbook, total, done, drill } => {
                st.total = *total;
                st.done = *done;
                let tally = Tally {
                    since: Instant::now(),
                    kept: *done,
                    succeeded: 0,
                    failed: 0,
                    skipped: 0,
                    upstream_failed: 0,
                    cancelled: 0,
                    retries: 0,
                };
                st.tallies.insert(run.clone(), tally);
                let resumed = if *done > 0 { format!(", {done} already done") } else { String::new() };
                let kind = if *drill { "drill run" } else { "run" };
                self.line(&mut st, &format!("{kind} {run} of `{runbook}`: {total} step{}{resumed}", if *total == 1 { "" } else { "s" }));
            }
            UiEvent::Step { run, step, status, attempt, elapsed_ms, error } => {
                let is_item = step.ends_with(']');
                if let Some(t) = st.tallies.get_mut(run).filter(|_| !is_item) {
                    match status {
                        StepStatus::Succeeded => t.succeeded += 1,
                        StepStatus::Failed => t.failed += 1,
                        StepStatus::Skipped => t.skipped += 1,
                        StepStatus::UpstreamFailed => t.upstream_failed += 1,
                        StepStatus::Cancelled => t.cancelled += 1,
                        _ => {}
                    }
                }
                match status {
                    StepStatus::Running => {
                        st.running.insert(step.clone(), Instant::now());
                        let again = if *attempt > 1 { format!(" (attempt {attempt})") } else { String::new() };
                        self.line(&mut st, &format!("{} {step}{again}", self.paint("34", "▶")));
                    }
                    StepStatus::Succeeded => {
                        st.running.remove(step);
                        if !is_item {
                            st.done += 1;
                        }
                        self.line(&mut st, &format!("{} {step}{}", self.paint("32", "✓"), secs(*elapsed_ms)));
                    }
                    StepStatus::Failed => {
                        st.running.remove(step);
                        if !is_item {
                            st.done += 1;
                        }
                        self.line(
                            &mut st,
                            &format!(
                                "{} {step} failed{}: {}",
                                self.paint("31", "✗"),
                                secs(*elapsed_ms),
                                visible(error.as_deref().unwrap_or(""))
                            ),
                        );
                    }
                    StepStatus::Skipped => {
                        st.done += 1;
                        self.line(
                            &mut st,
                            &format!(
                                "{} {step} skipped{}",
                                self.paint("33", "○"),
                                error.as_deref().map_or(String::new(), |e| format!(": {}", visible(e)))
                            ),
                        );
                    }
                    StepStatus::UpstreamFailed => {
                        st.done += 1;
                        let why = error.as_deref().unwrap_or("not run: a need failed");
                        // `⊘ rollout not run: `deploy` failed`
                        self.line(&mut st, &format!("{} {step} {why}", self.paint("31", "⊘")));
                    }
                    StepStatus::Cancelled => {
                        st.running.remove(step);
                        self.line(
                            &mut st,
                            &format!("{} {step} {}", self.paint("33", "■"), visible(error.as_deref().unwrap_or("cancelled"))),
                        );
                    }
                    StepStatus::Waiting => self.line(&mut st, &format!("{} {step} waits for approval", self.paint("35", "?"))),
                    StepStatus::Pending => {}
                }
            }
            UiEvent::Retry { run, step, attempt, error, delay_ms } => {
                if let Some(t) = st.tallies.get_mut(run) {
                    t.retries += 1;
                }
                self.line(
                    &mut st,
                    &format!(
                        "{} {step} attempt {attempt} failed: {}; retrying in {:.1}s",
                        self.paint("33", "↻"),
                        visible(error),
                        *delay_ms as f64 / 1000.0
                    ),
                );
            }
            UiEvent::Log { step, text, stderr, .. } => {
                let prefix = self.paint(if *stderr { "31" } else { "2" }, &format!("[{step}]"));
                self.line(&mut st, &format!("{prefix} {}", visible(text)));
            }
            UiEvent::ApprovalRequested { run, step, message } => {
                let message = visible(message);
                self.line(&mut st, &format!("{} approval needed for {step}: {message}\n    approve: phoenix approve {run} {step}    reject: phoenix approve {run} {step} --reject", self.paint("35", "?")));
            }
            UiEvent::RunFinished { run, status, error } => {
                st.running.clear();
                let (mark, color) = match status {
                    RunStatus::Succeeded => ("succeeded", "32"),
                    RunStatus::Failed => ("failed", "31"),
                    RunStatus::Halted => ("halted", "33"),
                    RunStatus::Cancelled => ("cancelled", "33"),
                    RunStatus::Running => ("running", "34"),
                };
                // Why a run halted (and what to do) is printed once, by the command.
                let why = error.as_deref().filter(|_| *status != RunStatus::Halted).map_or(String::new(), |e| format!(": {}", visible(e)));
                let tally = st.tallies.remove(run).map_or(String::new(), |t| format!(" {}", t.summary()));
                self.line(&mut st, &format!("run {run} {}{tally}{why}", self.paint(color, mark)));
            }
        }
    }

    fn interactive(&self) -> bool {
        self.interactive
    }

    fn ask_approval(&self, _run: &str, step: &str, message: &str) -> Option<(bool, Option<String>)> {
        if !self.interactive {
            return None;
        }
        {
            let mut st = self.state.lock().expect("poisoned");
            self.line(
                &mut st,
                &format!("{}\n  approve `{step}`? [y/N] (or answer from another terminal with phoenix approve)", visible(message)),
            );
        }
        let mut answer = String::new();
        // End of input (the terminal went away, stdin closed) is no answer: the approval
        // waits for `phoenix approve` from elsewhere. Only a line typed here decides.
        if std::io::stdin().read_line(&mut answer).ok()? == 0 {
            return None;
        }
        let a = answer.trim().to_ascii_lowercase();
        Some((a == "y" || a == "yes", Some("answered at the terminal".to_string())))
    }
}
