//! The command line, as clap reads it.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Phoenix: declarative, durable disaster-recovery runbooks.
#[derive(Debug, Parser)]
#[command(name = "phoenix", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    /// The state directory (runs, checkpoints, locks, level history).
    #[arg(long, global = true, env = "PHOENIX_STATE", value_name = "DIR")]
    pub(crate) state: Option<PathBuf>,
    /// Where runs are stored: `sled` (the default, in the state directory) or
    /// `etcd://HOST:PORT[,HOST:PORT…][/PREFIX]`, shared by every node of a cluster; over TLS
    /// `etcds://…[?ca=FILE&cert=FILE&key=FILE]` (docs/ha.md).
    #[arg(long, global = true, env = "PHOENIX_STORE", value_name = "URL")]
    pub(crate) store: Option<String>,
    /// How to print results.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub(crate) output: Output,
    /// The least severe log lines shown on stderr (`RUST_LOG`, if set, wins). Default: warn.
    #[arg(long, global = true, value_enum, value_name = "LEVEL")]
    pub(crate) log_level: Option<LogLevel>,
    /// Log lines as text, or as one JSON object a line for log shippers (docs/observability.md).
    #[arg(long, global = true, value_enum, env = "PHOENIX_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Text for people, JSON for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    Text,
    Json,
}

/// How log lines are written on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// A log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    /// The name `EnvFilter` reads.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// A graph format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GraphFormat {
    Dot,
    Mermaid,
}

/// A report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    /// Markdown, the chart inline as an `<svg>` block.
    Md,
    /// One self-contained HTML page.
    Html,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check runbooks without running anything (exit 0 if all are valid, 2 if not).
    Validate {
        /// Runbook files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Fail (exit 2) on warnings too, as a linter's `-D warnings` does: for CI.
        #[arg(long)]
        strict: bool,
    },
    /// Print a runbook's DAG (signals and `score` included).
    Graph {
        /// The runbook.
        file: PathBuf,
        /// The output format.
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Print the JSON Schema of runbooks.
    Schema,
    /// Run a runbook (exit 0 succeeded, 1 failed, 2 bad input, 3 halted, 130 interrupted).
    Run {
        /// The runbook.
        file: PathBuf,
        /// A param: `--param name=value` (repeatable).
        #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Print the plan, rendered as far as possible, and what would fail if it ran now (secrets,
        /// programs, directories); run for real only the steps that read (signals, `score`,
        /// `effect: read` steps needing only reads) and show what they saw; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: run not even the reads (the plan and the checks only).
        #[arg(long, requires = "dry_run")]
        no_reads: bool,
        /// At an approval, halt (exit 3) instead of waiting.
        #[arg(long)]
        no_wait: bool,
        /// Who is operating (default: $USER).
        #[arg(long = "as", value_name = "NAME")]
        operator: Option<String>,
    },
    /// Rehearse the runbook: a run with its `drill.params` overlaid (they win over --param), marked as a drill, refused (exit 2, nothing written) if a mutating step would change a target in `drill.protect` or one production changes.
    Drill {
        /// The runbook (it needs a `drill:` section).
        file: PathBuf,
        /// A param: `--param name=value` (repeatable); the drill's overlay wins.
        #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
        params: Vec<String>,
        /// Check the drill and print its plan with the drill's params; run nothing, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// At an approval, halt (exit 3) instead of waiting.
        #[arg(long)]
        no_wait: bool,
        /// Who is operating (default: $USER).
        #[arg(long = "as", value_name = "NAME")]
        operator: Option<String>,
    },
    /// Evaluate the signals once (no run, no lock), update the level history, print the score (exit 0 whatever the level).
    Health {
        /// The runbook.
        file: PathBuf,
        /// A param: `--param name=value` (repeatable).
        #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
        params: Vec<String>,
    },
    /// Evaluate the signals on a schedule; start a run when the confirmed level is above the lowest.
    Watch {
        /// The runbook.
        file: PathBuf,
        /// Between evaluations (`30s`, `500ms`).
        #[arg(long, value_parser = humantime::parse_duration)]
        every: std::time::Duration,
        /// After a run, start no other one for this long (evaluations go on).
        #[arg(long, value_parser = humantime::parse_duration)]
        cooldown: Option<std::time::Duration>,
        /// Serve GET /metrics (Prometheus text format) on this address, e.g. `127.0.0.1:9464`.
        #[arg(long, value_name = "ADDR")]
        metrics: Option<String>,
        /// A param: `--param name=value` (repeatable).
        #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
        params: Vec<String>,
    },
    /// Continue a halted, failed or crashed run from its checkpoint.
    Resume {
        /// The run id.
        run: String,
        /// Adopt an edited runbook: unchanged steps keep their results.
        #[arg(long, value_name = "FILE")]
        runbook: Option<PathBuf>,
        /// Run again a non-idempotent step found in flight after a crash.
        #[arg(long, value_name = "STEP")]
        retry: Vec<String>,
        /// Count as done a non-idempotent step found in flight after a crash.
        #[arg(long, value_name = "STEP")]
        skip: Vec<String>,
        /// Run again a succeeded step: one that is not idempotent is otherwise kept when
        /// changed or stale.
        #[arg(long, value_name = "STEP")]
        rerun: Vec<String>,
        /// Keep the result of a succeeded step that is changed or stale (what follows it is
        /// not made stale by it).
        #[arg(long, value_name = "STEP")]
        keep: Vec<String>,
        /// Go on although this invariant does not hold (its check still runs and is
        /// recorded); needs --reason. Repeatable.
        #[arg(long = "override", value_name = "INVARIANT", requires = "reason")]
        overrides: Vec<String>,
        /// Show what the resume would do (the diff and the plan) and do nothing.
        #[arg(long)]
        dry_run: bool,
        /// Adopt the edited runbook without asking (for scripts; needed without a terminal).
        #[arg(long)]
        yes: bool,
        /// At an approval, halt (exit 3) instead of waiting.
        #[arg(long)]
        no_wait: bool,
        /// Who is operating (default: $USER).
        #[arg(long = "as", value_name = "NAME")]
        operator: Option<String>,
        /// Work in DIR instead of the directory the run worked in before (relative paths in
        /// its steps resolve there).
        #[arg(long, value_name = "DIR")]
        workdir: Option<PathBuf>,
        /// Go on although the run's decision is older than `decision_ttl` and the signals,
        /// evaluated again, no longer call for it (recorded with --reason).
        #[arg(long, requires = "reason", conflicts_with = "abort")]
        confirm: bool,
        /// End the run instead: its `on_abort` steps run, then it is cancelled.
        #[arg(long, conflicts_with_all = ["runbook", "retry", "skip", "rerun", "keep", "dry_run"])]
        abort: bool,
        /// Why: required with --override and --confirm, recorded with --abort; kept with who
        /// said it, in the run's events and audit chain.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Show a run and its steps (the latest run by default).
    Status {
        /// The run id.
        run: Option<String>,
    },
    /// List runs, newest first.
    Runs,
    /// List drills, newest first: when, runbook, result, RTO and RPO (measured from their records).
    Drills,
    /// Show a run's step output and events.
    Logs {
        /// The run id.
        run: String,
        /// Only this step.
        step: Option<String>,
        /// Keep printing what the run logs until it ends or halts (exit 0 succeeded, 1 failed,
        /// 3 halted); Ctrl-C stops following, not the run.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// The post-incident report of a run and its child runs: timeline, steps, Gantt chart, analysis, changes.
    Report {
        /// The run id.
        run: String,
        /// Markdown or one HTML page (`--output json` prints the report's data instead).
        #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
        format: ReportFormat,
    },
    /// Approve (or reject) a step waiting for approval.
    Approve {
        /// The run id.
        run: String,
        /// The approval step.
        step: String,
        /// Reject instead of approving: the step fails.
        #[arg(long)]
        reject: bool,
        /// Why.
        #[arg(long)]
        comment: Option<String>,
        /// Who decides (default: $USER).
        #[arg(long = "as", value_name = "NAME")]
        operator: Option<String>,
    },
    /// Cancel a run: running steps are stopped, its lock is released.
    Cancel {
        /// The run id.
        run: String,
        /// Who cancels (default: $USER).
        #[arg(long = "as", value_name = "NAME")]
        operator: Option<String>,
    },
    /// Serve the API, Alertmanager's webhook, the live page and /metrics; run watch loops.
    Serve {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
        listen: String,
        /// The server's configuration (tokens, alert routes, watched runbooks); see docs/serve.md.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Load and check the configuration (its runbooks, tokens, routes), say what it
        /// holds, and exit: 0 if it would start, 2 if not. Listens on nothing.
        #[arg(long)]
        check: bool,
        /// This node's name in a cluster (`--store etcd://…`); serve.yaml's `ha.node`, else
        /// the host name.
        #[arg(long, value_name = "NAME")]
        node: Option<String>,
        /// The URL other nodes forward writes to; serve.yaml's `ha.advertise`, else
        /// `http://LISTEN`.
        #[arg(long, value_name = "URL")]
        advertise: Option<String>,
    },
    /// The cluster of `phoenix serve` nodes on etcd: who leads, under which lease and token.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// A run's tamper-evident event log: check its hash chain, or export it for a SIEM.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// List actions, or document one: its inputs and outputs.
    Plugins {
        /// An action name (`exec`, `http`, …).
        name: Option<String>,
    },
}

/// What `phoenix audit` does.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Recompute a run's event chain from the store and name the first record that does not
    /// match. Exit 0 when whole (or written before the chain: it says so), 1 when not, 2 for
    /// an unknown run.
    Verify {
        /// The run id.
        run: String,
    },
    /// Print a run's events as JSON lines (run, seq, time, kind and fields, prev, hash), one
    /// per event, for a SIEM.
    Export {
        /// The run id.
        run: String,
    },
}

/// What `phoenix cluster` does.
#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// The nodes, the leader (its lease and fencing token) and each etcd member's health,
    /// read from etcd. Exit 0 when a leader holds and etcd has a quorum, 1 otherwise.
    Status {
        /// Print JSON (as `--output json`).
        #[arg(long)]
        json: bool,
    },
}
