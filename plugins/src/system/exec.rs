use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio::process::Command;

use super::tail::Tail;
use crate::action::log_output;
use crate::{ActionCtx, ActionError, ActionInfo, At, Capabilities, Effect, Field, Issue, Kind, Plugin, Stream, Target};

/// Runs a program: an argv without a shell, or a bash script.
pub struct Exec;

/// How to read the program's standard output.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Parse {
    /// Parse stdout as JSON into `outputs.json`.
    Json,
}

/// `exec`'s input: exactly one of `cmd` and `script`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecInput {
    /// The program and its arguments. Never goes through a shell: templated values cannot
    /// inject commands.
    #[serde(default, deserialize_with = "texts")]
    pub cmd: Option<Vec<String>>,
    /// A script run by `bash -euo pipefail`. Every `{{ }}` in it reaches the script as an
    /// environment variable (`PHX_V1`, …) referenced in quotes, unless it ends in `| safe`.
    #[serde(default)]
    pub script: Option<String>,
    /// Extra environment variables (names starting with `PHX_V` are reserved for the
    /// script's values).
    #[serde(default, deserialize_with = "text_map")]
    pub env: BTreeMap<String, String>,
    /// The working directory.
    #[serde(default)]
    pub dir: Option<String>,
    /// Text written to the program's standard input.
    #[serde(default, deserialize_with = "opt_text")]
    pub stdin: Option<String>,
    /// `json`: parse stdout into `outputs.json` (the step fails if it is not JSON).
    #[serde(default)]
    pub parse: Option<Parse>,
    /// Exit codes that count as success (default `[0]`).
    #[serde(default)]
    pub ok_exit_codes: Option<Vec<i32>>,
    /// How many bytes of stdout and of stderr the outputs keep (default 16384).
    #[serde(default)]
    pub tail_bytes: Option<usize>,
}

/// A template that is one whole expression keeps its type (`"{{ params.replicas }}"` renders
/// as the number 3), but an argument, a variable or stdin is text: a number or a boolean
/// becomes its JSON text (`3`, `true`), and so does a list or a mapping.
fn text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn texts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    Ok(Option::<Vec<Value>>::deserialize(d)?.map(|v| v.into_iter().map(text).collect()))
}

fn text_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(BTreeMap::<String, Value>::deserialize(d)?.into_iter().map(|(k, v)| (k, text(v))).collect())
}

fn opt_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.map(text))
}

const DEFAULT_TAIL: usize = 16 * 1024;
/// stdout kept whole for `parse: json`.
const MAX_JSON: usize = 16 * 1024 * 1024;

impl Plugin for Exec {
    type Input = ExecInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "exec",
            summary: "Runs a program (argv `cmd`, no shell) or a `script` through bash -euo pipefail.",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "exit_code", doc: "the exit code (128+N when killed by signal N)" },
                Field { name: "stdout", doc: "the tail of standard output" },
                Field { name: "stderr", doc: "the tail of standard error" },
                Field { name: "json", doc: "stdout parsed as JSON, with `parse: json`" },
            ],
            caps: Capabilities { probe: true, effect: Effect::Idempotent, general: true, spawns: true, network: false },
            example: "provision:\n  uses: exec\n  with:\n    cmd: [terraform, apply, -auto-approve]\n    dir: terraform/azure",
        }
    }

    fn shell_fields(&self) -> &'static [&'static str] {
        &["script"]
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let has = |k| with.get(k).is_some_and(|v| !v.is_null());
        match (has("cmd"), has("script")) {
            (true, true) => vec![
                Issue::at("", "`exec` takes `cmd` or `script`, not both")
                    .help("use `cmd` (an argv list, no shell) unless you need shell syntax"),
            ],
            (false, false) => vec![Issue::at("", "`exec` needs `cmd` (an argv list) or `script`").help("for example `cmd: [echo, hello]`")],
            _ => match with.get("cmd") {
                Some(Value::Array(a)) if a.is_empty() => vec![Issue::at("cmd", "`cmd` is empty; it needs at least the program")],
                _ => reserved_env(with),
            },
        }
    }

    fn plan(&self, with: &Value) -> String {
        match (with.get("cmd"), with.get("script")) {
            (Some(Value::Array(argv)), _) => {
                let words: Vec<String> = argv.iter().map(|a| a.as_str().map_or_else(|| a.to_string(), quote_for_display)).collect();
                format!("exec {}", words.join(" "))
            }
            (_, Some(Value::String(s))) => format!("bash script:\n{}{}", indent(s), script_values(with)),
            _ => "exec".into(),
        }
    }

    fn targets(&self, with: &Value) -> Vec<Target> {
        super::exec_targets::of(with)
    }
    fn targets_doc(&self) -> &'static str {
        "for a `cmd` argv of helm upgrade|install|uninstall|rollback, kubectl apply|delete|scale|rollout restart|…, terraform apply|destroy|…: the release, namespace or directory; nothing for a `script` or another program"
    }

    fn preflight(&self, with: &Value) -> Vec<String> {
        let Ok(input) = serde_json::from_value::<ExecInput>(with.clone()) else { return Vec::new() };
        let dir = input.dir.as_deref();
        if let Some(d) = dir.filter(|d| !Path::new(d).is_dir()) {
            return vec![format!("its directory `{d}` (`dir`) does not exist{}", relative_to_here(d))];
        }
        let program = match (&input.cmd, &input.script) {
            (Some(argv), _) if !argv.is_empty() => argv[0].as_str(),
            (None, Some(_)) => "bash",
            _ => return Vec::new(),
        };
        let path = input.env.get("PATH").cloned().or_else(|| std::env::var("PATH").ok()).unwrap_or_default();
        let found = if program.contains('/') {
            executable(&dir.map_or_else(|| Path::new(program).to_path_buf(), |d| Path::new(d).join(program)))
        } else {
            let seen: Vec<bool> = std::env::split_paths(&path).filter_map(|p| executable(&p.join(program))).collect();
            if seen.is_empty() { None } else { Some(seen.contains(&true)) }
        };
        match (found, program.contains('/')) {
            (Some(true), _) => Vec::new(),
            (Some(false), _) => vec![format!("`{program}` is not executable (`chmod +x {program}`)")],
            (None, false) => vec![format!("`{program}`: no such program on PATH")],
            (None, true) => vec![format!("`{program}`: no such file{}", program_place(program, dir))],
        }
    }

    async fn run(&self, ctx: &ActionCtx, input: ExecInput) -> Result<Value, ActionError> {
        let mut command = match (&input.cmd, &input.script) {
            (Some(argv), None) if !argv.is_empty() => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
            (None, Some(script)) => {
                let mut c = Command::new("bash");
                c.args(["-euo", "pipefail", "-c", script, "phoenix-script"]);
                c
            }
            _ => return Err(ActionError::Input("`exec` needs exactly one of `cmd` (non-empty) and `script`".into())),
        };
        // Not inherited: the server's tokens, the runbook's secrets (a step that needs one
        // names it in `env:` with a template, and the redactor knows it then).
        for name in ctx.env_remove.iter() {
            command.env_remove(name);
        }
        command.envs(&input.env).env("PHOENIX_RUN_ID", &ctx.run_id).env("PHOENIX_STEP_ID", &ctx.step_id);
        if let Some(dir) = &input.dir {
            command.current_dir(dir);
        }
        command
            .stdin(if input.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let program = input.cmd.as_ref().map_or("bash", |c| c[0].as_str()).to_string();
        let mut child = command.spawn().map_err(|e| start_error(&program, input.dir.as_deref(), &e))?;
        // What ran, as errors name it: the program, or the step's script.
        let what = if input.script.is_some() { "the script".to_string() } else { format!("`{program}`") };
        let pgid = child.id().map(|id| Pid::from_raw(id as i32));
        let group = Group(pgid);

        if let (Some(text), Some(mut stdin)) = (input.stdin.clone(), child.stdin.take()) {
            tokio::spawn(async move {
                let _ = stdin.write_all(text.as_bytes()).await;
            });
        }
        let cap = input.tail_bytes.unwrap_or(DEFAULT_TAIL);
        let keep_all = input.parse == Some(Parse::Json);
        let out =
            tokio::spawn(pump(child.stdout.take().expect("piped"), ctx.clone(), Stream::Stdout, if keep_all { MAX_JSON } else { cap }));
        let err = tokio::spawn(pump(child.stderr.take().expect("piped"), ctx.clone(), Stream::Stderr, cap));

        let (status, stopped) = tokio::select! {
            s = child.wait() => (s, None),
            _ = ctx.cancel.cancelled() => {
                let reason = terminate(&mut child, pgid, ctx.grace).await;
                (child.wait().await, Some(reason))
            }
        };
        // A background grandchild may hold the pipes open: the group is ended with the step.
        drop(group);
        let stdout = out.await.unwrap_or_else(|_| Tail::new(0));
        let stderr = err.await.unwrap_or_else(|_| Tail::new(0));
        let status = status.map_err(|e| ActionError::failed(format!("waiting for {what}: {e}")))?;
        let code = status.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + status.signal().unwrap_or(0)
        });
        let mut outputs = json!({ "exit_code": code, "stdout": stdout.last(cap), "stderr": stderr.text() });
        if let Some(reason) = stopped {
            return Err(ActionError::Cancelled(format!("{what} {reason}")));
        }
        let ok = input.ok_exit_codes.as_deref().unwrap_or(&[0]).contains(&code);
        if !ok {
            let last = stderr.text().lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
            let message = if last.is_empty() { format!("{what} exited with {code}") } else { format!("{what} exited with {code}: {last}") };
            return Err(ActionError::Failed { message, outputs: Some(outputs), retryable: true, before_effect: false });
        }
        if keep_all {
            if stdout.truncated() {
                return Err(ActionError::Failed {
                    message: "stdout is larger than 16 MiB: cannot parse it as JSON".into(),
                    outputs: Some(outputs),
                    retryable: false,
                    before_effect: false,
                });
            }
            match serde_json::from_str::<Value>(&stdout.text()) {
                Ok(v) => outputs["json"] = v,
                Err(e) => {
                    return Err(ActionError::Failed {
                        message: format!("stdout is not JSON ({e})"),
                        outputs: Some(outputs),
                        retryable: false,
                        before_effect: false,
                    });
                }
            }
        }
        Ok(outputs)
    }
}

/// The prefix of the variables that carry a script's templated values.
const VALUE_PREFIX: &str = "PHX_V";

/// `env` keys that would take the place of a script's values.
fn reserved_env(with: &Value) -> Vec<Issue> {
    let Some(Value::Object(env)) = with.get("env") else { return vec![] };
    env.keys()
        .filter(|k| k.starts_with(VALUE_PREFIX))
        .map(|k| {
            let mut issue =
                Issue::at("env", format!("`{k}`: names starting with `{VALUE_PREFIX}` are reserved for the script's templated values"))
                    .help("rename the variable (for example `APP_V1`)");
            issue.at.push(At::Key(k.clone()));
            issue
        })
        .collect()
}

/// The values a rendered script's references stand for, one per line, quoted for display.
fn script_values(with: &Value) -> String {
    let Some(Value::Object(env)) = with.get("env") else { return String::new() };
    let values: Vec<String> = env
        .iter()
        .filter(|(k, _)| k.starts_with(VALUE_PREFIX))
        .map(|(k, v)| format!("\n    with {k}={}", v.as_str().map_or_else(|| v.to_string(), quote_for_display)))
        .collect();
    values.concat()
}

/// Whether a file is there (`None`: not there) and executable.
fn executable(path: &Path) -> Option<bool> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).ok().filter(|m| m.is_file()).map(|m| m.permissions().mode() & 0o111 != 0)
}

/// ` (relative to CWD)` for a relative path, else nothing.
fn relative_to_here(p: &str) -> String {
    if Path::new(p).is_absolute() {
        String::new()
    } else {
        std::env::current_dir().map(|d| format!(" (relative to {})", d.display())).unwrap_or_default()
    }
}

/// Where a relative program path is looked for: in `dir` when there is one.
fn program_place(program: &str, dir: Option<&str>) -> String {
    match dir {
        Some(d) if !Path::new(program).is_absolute() => format!(" (relative to `{d}`)"),
        _ => relative_to_here(program),
    }
}

/// Why the program did not start, in terms of the step's inputs: the kernel says "No such
/// file or directory" alike for a missing program and a missing `dir`.
fn start_error(program: &str, dir: Option<&str>, e: &std::io::Error) -> ActionError {
    use std::io::ErrorKind;
    let message = match (e.kind(), dir) {
        (ErrorKind::NotFound, Some(d)) if !Path::new(d).is_dir() => {
            format!("could not start `{program}`: its directory `{d}` (`dir`) does not exist{}", relative_to_here(d))
        }
        (ErrorKind::NotFound, _) if !program.contains('/') => {
            format!("could not start `{program}`: no such program on PATH (give its path, or install it)")
        }
        (ErrorKind::NotFound, _) => format!("could not start `{program}`: no such file{}", program_place(program, dir)),
        (ErrorKind::PermissionDenied, _) => {
            format!("could not start `{program}`: permission denied (is it executable? `chmod +x {program}`)")
        }
        _ => format!("could not start `{program}`: {e}"),
    };
    // The program never started: nothing it would do was done.
    ActionError::Failed { message, outputs: None, retryable: e.kind() != ErrorKind::NotFound, before_effect: true }
}

/// A step's process group, killed (SIGKILL) when the step ends, or when the step's future is
/// dropped before that (the engine gave up on the run): `kill_on_drop` reaches only the direct
/// child, and a script's children would run on with nobody recording them.
struct Group(Option<Pid>);

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pg) = self.0 {
            let _ = killpg(pg, Signal::SIGKILL);
        }
    }
}

/// SIGTERM to the whole process group, then SIGKILL after the grace period.
async fn terminate(child: &mut tokio::process::Child, pgid: Option<Pid>, grace: Duration) -> &'static str {
    let Some(pg) = pgid else { return "was stopped" };
    let _ = killpg(pg, Signal::SIGTERM);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(_) => "was stopped (SIGTERM)",
        Err(_) => {
            let _ = killpg(pg, Signal::SIGKILL);
            "did not stop within the grace period and was killed (SIGKILL)"
        }
    }
}

async fn pump<R: AsyncRead + Unpin>(reader: R, ctx: ActionCtx, stream: Stream, cap: usize) -> Tail {
    let mut tail = Tail::new(cap);
    log_output(reader, &ctx, stream, |piece| tail.push(piece), str::to_string).await;
    tail
}

fn quote_for_display(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}
