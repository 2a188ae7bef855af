//! pg_dump and pg_restore as one process group: started together, their stderr logged line
//! by line and kept as bounded tails, stopped together on cancel (SIGTERM to the group, then
//! SIGKILL after the grace period), and never left behind, even when the step is dropped.

use std::collections::VecDeque;
use std::process::ExitStatus;
use std::sync::Arc;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncRead;
use tokio::process::Child;
use tokio::task::JoinHandle;
use tracing::Span;

use super::command::Invocation;
use crate::action::log_output;
use crate::{ActionCtx, ActionError, Stream};

/// How much of a program's stderr is kept (its last lines).
const TAIL_BYTES: usize = 16 * 1024;
/// A longer line is cut when kept (it is logged whole).
const LINE_BYTES: usize = 2048;

/// The last lines a program wrote to stderr, within a byte budget.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    lines: VecDeque<String>,
    bytes: usize,
    dropped: usize,
}

impl Tail {
    fn push(&mut self, line: &str) {
        let mut line = line.to_string();
        if line.len() > LINE_BYTES {
            let mut cut = LINE_BYTES;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
            line.push('…');
        }
        self.bytes += line.len() + 1;
        self.lines.push_back(line);
        while self.bytes > TAIL_BYTES && self.lines.len() > 1 {
            let gone = self.lines.pop_front().expect("more than one line");
            self.bytes -= gone.len() + 1;
            self.dropped += 1;
        }
    }

    /// Every kept line, with a note when earlier ones were not kept.
    pub(crate) fn text(&self) -> String {
        let mut out = if self.dropped > 0 { format!("[… {} earlier lines not kept]\n", self.dropped) } else { String::new() };
        out += &self.lines.iter().map(String::as_str).collect::<Vec<_>>().join("\n");
        out
    }

    /// The last `n` lines.
    pub(crate) fn last(&self, n: usize) -> Vec<&str> {
        self.lines.iter().skip(self.lines.len().saturating_sub(n)).map(String::as_str).collect()
    }
}

/// How one program ended.
#[derive(Debug)]
pub(crate) struct Exit {
    pub(crate) name: &'static str,
    pub(crate) status: Option<ExitStatus>,
    pub(crate) stderr: Tail,
}

impl Exit {
    pub(crate) fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// `0`, `1`, or 128+N when killed by signal N (as a shell reports it).
    pub(crate) fn code(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.status.map(|s| s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)))
    }

    /// `pg_dump exited with 1`, `pg_restore was killed by signal 9`.
    pub(crate) fn describe(&self) -> String {
        use std::os::unix::process::ExitStatusExt;
        match self.status {
            None => format!("{} could not be waited for", self.name),
            Some(s) => match (s.code(), s.signal()) {
                (Some(c), _) => format!("{} exited with {c}", self.name),
                // Its reader went away first: a consequence, not the cause.
                (None, Some(13)) => format!("{} stopped when its output was no longer read (SIGPIPE)", self.name),
                (None, Some(sig)) => format!("{} was killed by signal {sig}", self.name),
                _ => format!("{} ended", self.name),
            },
        }
    }
}

struct Member {
    name: &'static str,
    child: Child,
    stderr: JoinHandle<Tail>,
    /// The program's span (`postgres/traced.rs`), ended with its exit.
    span: Span,
}

/// Programs in one process group (the first one started leads it).
pub(crate) struct Group {
    leader: Option<Pid>,
    members: Vec<Member>,
    redact: Arc<dyn Fn(&str) -> String + Send + Sync>,
    finished: bool,
}

impl Group {
    /// An empty group; `redact` scrubs every line the programs write before it is logged or kept.
    pub(crate) fn new(redact: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        Group { leader: None, members: Vec::new(), redact: Arc::new(redact), finished: false }
    }

    /// Starts `inv` (its stdin and stdout as `setup` leaves them) in the group.
    pub(crate) fn spawn(
        &mut self,
        ctx: &ActionCtx,
        inv: &Invocation,
        setup: impl FnOnce(&mut tokio::process::Command),
    ) -> Result<&mut Child, ActionError> {
        let mut command = inv.command(ctx);
        setup(&mut command);
        command.stderr(std::process::Stdio::piped()).kill_on_drop(true).process_group(self.leader.map_or(0, Pid::as_raw));
        let span = inv.db.process_span(inv.name);
        let mut child = command.spawn().map_err(|e| {
            crate::telemetry::fail(&span, "spawn");
            ActionError::Failed {
                message: format!("could not start {}: {e}", inv.display()),
                outputs: None,
                retryable: e.kind() != std::io::ErrorKind::NotFound,
                before_effect: false,
            }
        })?;
        if self.leader.is_none() {
            self.leader = child.id().map(|id| Pid::from_raw(id as i32));
        }
        let stderr = child.stderr.take().expect("stderr is piped");
        let stderr = tokio::spawn(read_stderr(stderr, ctx.clone(), Arc::clone(&self.redact)));
        self.members.push(Member { name: inv.name, child, stderr, span });
        Ok(&mut self.members.last_mut().expect("just pushed").child)
    }

    /// Waits for every program to end. On cancel, stops the whole group and says how
    /// (`Err`); either way nothing of the group is left running.
    pub(crate) async fn wait(&mut self, ctx: &ActionCtx) -> Result<Vec<Exit>, String> {
        let finished = tokio::select! {
            _ = wait_all(&mut self.members) => true,
            _ = ctx.cancel.cancelled() => false,
        };
        let stopped = if finished { None } else { Some(self.terminate(ctx.grace).await) };
        // Whatever a program left behind (pg_dump's parallel workers) ends with it.
        if let Some(pg) = self.leader {
            let _ = killpg(pg, Signal::SIGKILL);
        }
        self.finished = true;
        let mut exits = Vec::new();
        for m in &mut self.members {
            let status = m.child.wait().await.ok();
            match status.map(|s| (s.success(), s.code())) {
                Some((true, code)) => {
                    m.span.record("process.exit.code", code.unwrap_or(0));
                }
                Some((false, Some(code))) => {
                    m.span.record("process.exit.code", code);
                    crate::telemetry::fail(&m.span, "exit_code");
                }
                _ => crate::telemetry::fail(&m.span, if stopped.is_some() { "cancelled" } else { "signal" }),
            }
            m.span = Span::none();
            let stderr = (&mut m.stderr).await.unwrap_or_default();
            exits.push(Exit { name: m.name, status, stderr });
        }
        match stopped {
            Some(how) => Err(how),
            None => Ok(exits),
        }
    }

    async fn terminate(&mut self, grace: std::time::Duration) -> String {
        let names = self.members.iter().map(|m| m.name).collect::<Vec<_>>().join(" and ");
        let Some(pg) = self.leader else { return format!("{names} stopped") };
        let _ = killpg(pg, Signal::SIGTERM);
        match tokio::time::timeout(grace, wait_all(&mut self.members)).await {
            Ok(()) => format!("{names} stopped (SIGTERM)"),
            Err(_) => {
                let _ = killpg(pg, Signal::SIGKILL);
                wait_all(&mut self.members).await;
                format!("{names} did not stop within the grace period and were killed (SIGKILL)")
            }
        }
    }
}

impl Drop for Group {
    /// A step dropped half-way (the engine gave up waiting) leaves nothing running.
    fn drop(&mut self) {
        if let (Some(pg), false) = (self.leader, self.finished) {
            let _ = killpg(pg, Signal::SIGKILL);
        }
    }
}

async fn wait_all(members: &mut [Member]) {
    futures::future::join_all(members.iter_mut().map(|m| m.child.wait())).await;
}

async fn read_stderr<R: AsyncRead + Unpin>(reader: R, ctx: ActionCtx, redact: Arc<dyn Fn(&str) -> String + Send + Sync>) -> Tail {
    let mut tail = Tail::default();
    log_output(
        reader,
        &ctx,
        Stream::Stderr,
        |piece| tail.push(&redact(String::from_utf8_lossy(piece).trim_end_matches(['\n', '\r']))),
        |t| redact(t),
    )
    .await;
    tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_keeps_the_last_lines_within_its_budget() {
        let mut t = Tail::default();
        for i in 0..2000 {
            t.push(&format!("line {i}"));
        }
        assert!(t.text().starts_with("[… "), "{}", &t.text()[..40]);
        assert_eq!(t.last(2), ["line 1998", "line 1999"]);
        assert!(t.text().len() <= TAIL_BYTES + 64);
        let mut long = Tail::default();
        long.push(&"é".repeat(LINE_BYTES));
        assert!(long.last(1)[0].len() <= LINE_BYTES + '…'.len_utf8());
    }
}
