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
    /// How to print results.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub(crate) output: Output,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Text for people, JSON for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    Text,
    Json,
}

/// A graph format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check runbooks without running anything (exit 0 if all are valid, 2 if not).
    Validate {
        /// Runbook files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
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
    /// List actions, or document one: its inputs and outputs.
    Plugins {
        /// An action name (`exec`, `http`, …).
        name: Option<String>,
    },
}
