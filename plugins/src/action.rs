//! The contract between the engine and an action.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

pub use crate::action_error::ActionError;
pub use crate::info::{ActionInfo, Capabilities, Effect, Field, Kind};
pub use crate::target::Target;

/// One step of a path inside `with`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum At {
    /// A key.
    Key(String),
    /// An index.
    Index(usize),
}

/// A problem an action finds in its (unrendered) `with`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Where, inside `with`.
    pub at: Vec<At>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl Issue {
    /// An issue at a key of `with` (empty for `with` itself).
    pub fn at(key: &str, message: impl Into<String>) -> Self {
        let at = if key.is_empty() { vec![] } else { vec![At::Key(key.to_string())] };
        Issue { at, message: message.into(), help: None }
    }
    /// Adds advice.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Which stream a line of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A note from the action itself.
    Info,
}

/// A line of output from a running step.
#[derive(Debug)]
pub struct LogLine {
    /// The stream.
    pub stream: Stream,
    /// The text, without its newline.
    pub text: String,
    /// Structured data: the line is a note for the run's event log (`phoenix logs`), such as
    /// an analysis's prompt hash, model, latency and decision.
    pub data: Option<Value>,
    /// Held until the engine has taken the line (see [`ActionCtx::pace`]).
    pub permit: Option<OwnedSemaphorePermit>,
    /// The line went on past [`MAX_LINE`] bytes and was cut there: its end may hold the
    /// start of a secret.
    pub cut: bool,
}

/// How many lines of one step's output may wait for the engine before the step is made to
/// wait (see [`ActionCtx::pace`]).
pub const PACE_LINES: usize = 1024;

/// The longest line of a child's output that is logged whole; the rest of a longer line is
/// left out of the log (it still reaches the step's own output tails).
pub(crate) const MAX_LINE: usize = 64 << 10;

/// Reads a child's output (stdout or stderr) to its end and logs it line by line, paced (see
/// [`ActionCtx::pace`]). Every byte goes to `each` (the step's own tail); a line longer
/// than [`MAX_LINE`] is logged cut there, marked [`LogLine::cut`] so the engine scrubs a
/// secret cut in half too, and followed by a note of how much of it was left out. `redact`
/// is applied to what is logged (the engine redacts again).
pub(crate) async fn log_output<R: tokio::io::AsyncRead + Unpin>(
    reader: R,
    ctx: &ActionCtx,
    stream: Stream,
    mut each: impl FnMut(&[u8]),
    redact: impl Fn(&str) -> String,
) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt};
    let mut reader = tokio::io::BufReader::new(reader);
    let mut piece = Vec::new();
    // Bytes of a long line left out so far.
    let mut left_out: Option<usize> = None;
    loop {
        piece.clear();
        match (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut piece).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        each(&piece);
        let ends = piece.last() == Some(&b'\n') || piece.len() < MAX_LINE;
        match &mut left_out {
            Some(n) => *n += piece.len() - usize::from(piece.ends_with(b"\n")),
            None => {
                let text = redact(String::from_utf8_lossy(&piece).trim_end_matches(['\n', '\r']));
                ctx.send_paced(stream, text, !ends).await;
                if !ends {
                    left_out = Some(0);
                }
            }
        }
        if ends {
            if let Some(n) = left_out.take() {
                ctx.send_paced(Stream::Info, cut_note(n), false).await;
            }
        }
    }
    if let Some(n) = left_out {
        ctx.send_paced(Stream::Info, cut_note(n), false).await;
    }
}

fn cut_note(n: usize) -> String {
    format!("[phoenix] the line above went on for {n} more bytes, left out of the log (a line is logged up to 64 KiB)")
}

/// What an action gets besides its input.
#[derive(Debug, Clone)]
pub struct ActionCtx {
    /// The run.
    pub run_id: String,
    /// The step (with `[i]` for a `for_each` item).
    pub step_id: String,
    /// Fired on timeout, cancel or Ctrl-C: stop gracefully, then return.
    pub cancel: CancellationToken,
    /// How long a child process gets between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Where output lines go (the engine prefixes, redacts and stores them).
    pub log: mpsc::UnboundedSender<LogLine>,
    /// [`PACE_LINES`] permits: a line of a child's output (`log_output`) holds one until the
    /// engine has taken it, so a step that prints faster than its output can be stored is
    /// slowed down (its pipe fills), rather than its lines piling up in memory.
    pub pace: Arc<Semaphore>,
    /// A scratch directory for this run.
    pub work_dir: PathBuf,
    /// Environment variables the step's processes must not inherit (the server's API
    /// tokens, the runbook's secrets): a step gets a secret only through a template.
    pub env_remove: Arc<[String]>,
    /// The fencing token this run is driven under (a cluster leader's; 0 outside a
    /// cluster). An action that changes an outside system can send it along, so that the
    /// system refuses a deposed leader's late write (docs/ha.md, "What fencing covers").
    pub fence: u64,
    /// The step says `effect: read` (an invariant's check, a probe, a dry run's read): an
    /// action that can hold itself to reading does so, so that a check cannot write even by
    /// mistake (`postgres.query` runs in a read-only transaction).
    pub read_only: bool,
}

impl ActionCtx {
    /// Sends a line of output.
    pub fn log(&self, stream: Stream, text: impl Into<String>) {
        let _ = self.log.send(LogLine { stream, text: text.into(), data: None, permit: None, cut: false });
    }

    /// Sends a line of a child's output, first waiting while [`PACE_LINES`] lines of this step
    /// are still on their way to the engine.
    async fn send_paced(&self, stream: Stream, text: String, cut: bool) {
        let permit = self.pace.clone().acquire_owned().await.ok();
        let _ = self.log.send(LogLine { stream, text, data: None, permit, cut });
    }

    /// Records a note with structured data in the run's event log (secrets are redacted).
    pub fn note(&self, text: impl Into<String>, data: Value) {
        let _ = self.log.send(LogLine { stream: Stream::Info, text: text.into(), data: Some(data), permit: None, cut: false });
    }
}

/// A boxed future, so that [`Action`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An action as the engine sees it.
pub trait Action: Send + Sync {
    /// Its documentation and capabilities.
    fn info(&self) -> ActionInfo;
    /// The JSON Schema of its `with`.
    fn input_schema(&self) -> schemars::Schema;
    /// Checks beyond the schema on the unrendered `with` (strings may be templates).
    fn check(&self, with: &Value) -> Vec<Issue>;
    /// Whether a key of `with` holds an expression rather than a template (`assert.that`).
    fn expression_fields(&self) -> &'static [&'static str] {
        &[]
    }
    /// Keys of `with` rendered as shell text (every `{{ }}` output quoted).
    fn shell_fields(&self) -> &'static [&'static str] {
        &[]
    }
    /// Keys of `with` naming a template file (relative to the runbook) that the engine renders
    /// with the step's context into another key: `("prompt_file", "prompt")`.
    fn template_files(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// Keys of `with` whose rendered text leaves the machine for a third party (an LLM's
    /// prompt): the engine scrubs every secret the runbook declares out of them first.
    fn redacted_fields(&self) -> &'static [&'static str] {
        &[]
    }
    /// Where the step's requests go, from its rendered `with`: (key of `with`, URL). A
    /// secret the step uses may only go to a host it allows (`secrets.*.hosts`); the engine
    /// checks these before the action runs.
    fn destinations(&self, _with: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// What the step changes, from its rendered `with` (a drill refuses to touch a
    /// production target): none by default, and none for an action that only reads.
    /// Never holds a credential (see [`Target`]).
    fn targets(&self, _with: &Value) -> Vec<Target> {
        Vec::new()
    }
    /// One line on what [`Action::targets`] can tell (for `phoenix plugins NAME`); empty
    /// when it tells nothing.
    fn targets_doc(&self) -> &'static str {
        ""
    }
    /// What the step would do, for `--dry-run`.
    fn plan(&self, with: &Value) -> String;
    /// What `--dry-run` can tell now would make the step fail (a program not installed, a
    /// directory missing), from its rendered `with`. Looks, never acts.
    fn preflight(&self, with: &Value) -> Vec<String>;
    /// Runs one attempt with the rendered `with`; returns its outputs.
    fn run<'a>(&'a self, ctx: &'a ActionCtx, with: Value) -> BoxFuture<'a, Result<Value, ActionError>>;
}

/// An action with a typed input; every [`Plugin`] is an [`Action`].
pub trait Plugin: Send + Sync + 'static {
    /// The typed `with`.
    type Input: DeserializeOwned + JsonSchema + Send;
    /// Its documentation and capabilities.
    fn info(&self) -> ActionInfo;
    /// Checks beyond the schema on the unrendered `with`.
    fn check(&self, _with: &Value) -> Vec<Issue> {
        vec![]
    }
    /// Keys of `with` that hold expressions.
    fn expression_fields(&self) -> &'static [&'static str] {
        &[]
    }
    /// Keys of `with` rendered as shell text.
    fn shell_fields(&self) -> &'static [&'static str] {
        &[]
    }
    /// Keys of `with` naming template files the engine renders into other keys.
    fn template_files(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }
    /// Keys of `with` scrubbed of every declared secret before the action sees them.
    fn redacted_fields(&self) -> &'static [&'static str] {
        &[]
    }
    /// Where the step's requests go: (key of `with`, URL).
    fn destinations(&self, _with: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// What the step changes, from its rendered `with`; nothing by default.
    fn targets(&self, _with: &Value) -> Vec<Target> {
        Vec::new()
    }
    /// One line on what `targets` can tell; empty when it tells nothing.
    fn targets_doc(&self) -> &'static str {
        ""
    }
    /// What the step would do, for `--dry-run`.
    fn plan(&self, with: &Value) -> String {
        format!("{} {}", self.info().name, compact(with))
    }
    /// What `--dry-run` can tell now would make the step fail; nothing by default.
    fn preflight(&self, _with: &Value) -> Vec<String> {
        Vec::new()
    }
    /// Runs one attempt.
    fn run(&self, ctx: &ActionCtx, input: Self::Input) -> impl Future<Output = Result<Value, ActionError>> + Send;
}

impl<P: Plugin> Action for P {
    fn info(&self) -> ActionInfo {
        Plugin::info(self)
    }
    fn input_schema(&self) -> schemars::Schema {
        schemars::generate::SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<P::Input>()
    }
    fn check(&self, with: &Value) -> Vec<Issue> {
        Plugin::check(self, with)
    }
    fn expression_fields(&self) -> &'static [&'static str] {
        Plugin::expression_fields(self)
    }
    fn shell_fields(&self) -> &'static [&'static str] {
        Plugin::shell_fields(self)
    }
    fn template_files(&self) -> &'static [(&'static str, &'static str)] {
        Plugin::template_files(self)
    }
    fn redacted_fields(&self) -> &'static [&'static str] {
        Plugin::redacted_fields(self)
    }
    fn destinations(&self, with: &Value) -> Vec<(&'static str, String)> {
        Plugin::destinations(self, with)
    }
    fn targets(&self, with: &Value) -> Vec<Target> {
        Plugin::targets(self, with)
    }
    fn targets_doc(&self) -> &'static str {
        Plugin::targets_doc(self)
    }
    fn plan(&self, with: &Value) -> String {
        Plugin::plan(self, with)
    }
    fn preflight(&self, with: &Value) -> Vec<String> {
        Plugin::preflight(self, with)
    }
    fn run<'a>(&'a self, ctx: &'a ActionCtx, with: Value) -> BoxFuture<'a, Result<Value, ActionError>> {
        Box::pin(async move {
            let input: P::Input = serde_json::from_value(with).map_err(|e| ActionError::Input(e.to_string()))?;
            Plugin::run(self, ctx, input).await
        })
    }
}

/// The non-empty text values of `keys` in `with`, as [`Action::destinations`] gives them.
pub fn url_fields(with: &Value, keys: &[&'static str]) -> Vec<(&'static str, String)> {
    keys.iter().filter_map(|&k| with.get(k).and_then(Value::as_str).filter(|u| !u.is_empty()).map(|u| (k, u.to_string()))).collect()
}

/// A one-line JSON rendering of a value, for plans and messages.
pub fn compact(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
