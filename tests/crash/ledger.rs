//! What the crash test proves from a trial's ledger and the store each crash left: the
//! ledger's lines, the crashes, and the checks (see the crash test's own description).

use std::collections::HashMap;
use std::path::Path;

use super::{MAX_PARALLEL, STEPS, id};

/// One ledger line: (global index, phase, kind, step).
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub(crate) at: usize,
    pub(crate) phase: usize,
    pub(crate) start: bool,
    pub(crate) step: usize,
}

pub(crate) fn read_ledger(ledger: &Path, bounds: &[usize]) -> Result<Vec<Line>, String> {
    let text = std::fs::read_to_string(ledger).unwrap_or_default();
    let mut lines = vec![];
    let mut offset = 0;
    for (at, l) in text.lines().enumerate() {
        let phase = bounds.iter().filter(|&&b| b <= offset).count();
        offset += l.len() + 1;
        let (kind, step) = l.split_once(' ').ok_or_else(|| format!("torn ledger line {at}: {l:?}"))?;
        let step: usize = step.strip_prefix('s').and_then(|n| n.parse().ok()).ok_or_else(|| format!("bad ledger line {l:?}"))?;
        let start = match kind {
            "start" => true,
            "done" => false,
            _ => return Err(format!("bad ledger line {l:?}")),
        };
        lines.push(Line { at, phase, start, step });
    }
    Ok(lines)
}

/// What one crash left behind.
pub(crate) struct Crash {
    /// Ledger length (bytes) when the tree was dead.
    pub(crate) bound: usize,
    /// Step states in the store after the crash; none if the run was not recorded yet.
    pub(crate) states: Option<HashMap<String, String>>,
}

#[derive(Default, Debug)]
pub(crate) struct Figures {
    /// Seeds tried.
    pub(crate) seeds: u64,
    /// Trials in which at least one crash hit a live phoenix.
    pub(crate) crashed_trials: u64,
    /// Crashes before the run was recorded (a fresh run follows).
    pub(crate) kills_before_record: u64,
    /// Crashes of `phoenix run` with the run recorded and unfinished.
    pub(crate) kills_mid_run: u64,
    /// Crashes of a `phoenix resume`.
    pub(crate) kills_mid_resume: u64,
    /// Crashes after the run had succeeded (the process was still exiting).
    pub(crate) kills_after_end: u64,
    /// Phases that ended before their planned crash.
    pub(crate) ended_before_kill: u64,
    /// Steps caught running by a crash, which ran again.
    pub(crate) in_flight_rerun: u64,
    /// Steps caught finished but not yet checkpointed, which ran again.
    pub(crate) done_not_checkpointed: u64,
}

/// Checks the ledger against the crashes, counting in `f` the steps caught in flight and
/// those caught finished but not yet checkpointed.
pub(crate) fn check(needs: &[Vec<usize>], lines: &[Line], crashes: &[Crash], f: &mut Figures) -> Result<(), String> {
    let phases = crashes.len() + 1;
    // Per phase: at most one start and one done per step, done after start; bounded overlap.
    for p in 0..phases {
        let mut open = 0usize;
        let mut started = [0; STEPS];
        let mut done = [0; STEPS];
        for l in lines.iter().filter(|l| l.phase == p) {
            if l.start {
                started[l.step] += 1;
                open += 1;
                if open > MAX_PARALLEL {
                    return Err(format!("{open} steps ran at once (max_parallel {MAX_PARALLEL}) at ledger line {}", l.at));
                }
            } else {
                if started[l.step] != 1 {
                    return Err(format!("{} done without a start in phase {p}", id(l.step)));
                }
                done[l.step] += 1;
                open -= 1;
            }
            if started[l.step] > 1 || done[l.step] > 1 {
                return Err(format!("{} ran twice within one process (phase {p})", id(l.step)));
            }
        }
    }
    // A step starts only after each of its needs has written `done`.
    for l in lines.iter().filter(|l| l.start) {
        for &n in &needs[l.step] {
            if !lines.iter().any(|d| !d.start && d.step == n && d.at < l.at) {
                return Err(format!("{} started at ledger line {} before its need {} was done", id(l.step), l.at, id(n)));
            }
        }
    }
    // What each crash left in the store against what the steps did.
    for (k, c) in crashes.iter().enumerate() {
        let Some(states) = &c.states else {
            if lines.iter().any(|l| l.phase == k) {
                return Err(format!("a step ran (phase {k}) although the crash left no run record"));
            }
            continue;
        };
        for (i, step_needs) in needs.iter().enumerate() {
            let s = id(i);
            let st = states.get(&s).map(String::as_str).unwrap_or("missing");
            let started_here = lines.iter().any(|l| l.phase == k && l.start && l.step == i);
            let done_by_now = lines.iter().any(|l| l.phase <= k && !l.start && l.step == i);
            let done_here = lines.iter().any(|l| l.phase == k && !l.start && l.step == i);
            let runs_later = lines.iter().any(|l| l.phase > k && l.start && l.step == i);
            if started_here {
                // Durable before acted on: the step's `running` and its needs' success.
                if st != "running" && st != "succeeded" {
                    return Err(format!("{s} ran in phase {k} but the store after the crash says it is {st}"));
                }
                for &n in step_needs {
                    let ns = states.get(&id(n)).map(String::as_str).unwrap_or("missing");
                    if ns != "succeeded" {
                        return Err(format!("{s} ran in phase {k} while its need {} is {ns} in the store", id(n)));
                    }
                }
            }
            match st {
                "succeeded" => {
                    if !done_by_now {
                        return Err(format!("{s} is succeeded in the store but never wrote `done`"));
                    }
                    if runs_later {
                        return Err(format!("{s} was checkpointed as succeeded before crash {k} but ran again"));
                    }
                }
                "running" => {
                    if done_here {
                        f.done_not_checkpointed += 1;
                    } else if started_here {
                        f.in_flight_rerun += 1;
                    }
                }
                "pending" => {
                    if started_here {
                        return Err(format!("{s} ran but is pending in the store"));
                    }
                }
                other => return Err(format!("{s} is {other} after a crash; only pending, running or succeeded are expected")),
            }
        }
    }
    // In the end every step did its work exactly once, plus once more for each crash that
    // caught it finished but not checkpointed.
    for i in 0..STEPS {
        let dones = lines.iter().filter(|l| !l.start && l.step == i).count();
        let allowed = 1 + crashes
            .iter()
            .enumerate()
            .filter(|(k, c)| {
                c.states.as_ref().is_some_and(|s| s.get(&id(i)).is_some_and(|x| x == "running"))
                    && lines.iter().any(|l| l.phase == *k && !l.start && l.step == i)
            })
            .count();
        if dones != allowed {
            return Err(format!("{} wrote `done` {dones} times; expected {allowed}", id(i)));
        }
    }
    Ok(())
}
