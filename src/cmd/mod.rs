//! One module per command; `dispatch` maps each to its exit code.

mod adopt;
pub(crate) mod approve;
mod audit;
mod cluster;
mod drill;
mod drills;
mod follow;
mod graph;
pub(crate) mod health;
mod logs;
pub(crate) mod ops;
mod plugins;
pub(crate) mod report;
pub(crate) mod run;
pub(crate) mod state;
mod validate;
pub(crate) mod watch;

use crate::cli::{Cli, Command};
use crate::exit::Exit;
use phoenix_engine::exec::Override;

pub(crate) fn dispatch(cli: Cli) -> Exit {
    let out = cli.output;
    match cli.command {
        Command::Validate { files, strict } => validate::run(&files, strict, out),
        Command::Graph { file, format } => graph::run(&file, format, out),
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&phoenix_engine::schema::runbook_schema()).expect("schemas serialize"));
            Exit::Ok
        }
        Command::Plugins { name } => plugins::run(name.as_deref(), out),
        Command::Run { file, params, dry_run, no_reads, no_wait, operator } => {
            let dry_run = dry_run.then_some(run::Dry { reads: !no_reads });
            run::run(&cli.state, &file, &params, dry_run, no_wait, operator, out)
        }
        Command::Drill { file, params, dry_run, no_wait, operator } => {
            drill::run(&cli.state, &file, &params, dry_run, no_wait, operator, out)
        }
        Command::Health { file, params } => health::run(&cli.state, &file, &params, out),
        Command::Watch { file, every, cooldown, metrics, params } => {
            watch::run(&cli.state, &file, every, cooldown, metrics.as_deref(), &params)
        }
        Command::Resume {
            run,
            runbook,
            retry,
            skip,
            rerun,
            keep,
            overrides,
            dry_run,
            yes,
            no_wait,
            operator,
            workdir,
            confirm,
            abort,
            reason,
        } => {
            let because = reason.clone().unwrap_or_default();
            let overrides = overrides.into_iter().map(|invariant| Override { invariant, reason: because.clone() }).collect();
            let choice = adopt::Choice { retry, skip, rerun, keep, overrides, dry_run, yes, confirm, abort, reason };
            run::resume(&cli.state, &run, runbook.as_deref(), choice, no_wait, operator, workdir.as_deref(), out)
        }
        Command::Status { run } => ops::status(&cli.state, run.as_deref(), out),
        Command::Runs => ops::runs(&cli.state, out),
        Command::Drills => drills::list(&cli.state, out),
        Command::Logs { run, step, follow: true } if out == crate::cli::Output::Text => logs::follow(&cli.state, &run, step.as_deref()),
        Command::Logs { follow: true, .. } => {
            eprintln!("error: --follow prints text as it comes; without it, --output json prints the logs so far");
            crate::exit::Exit::BadInput
        }
        Command::Logs { run, step, .. } => logs::once(&cli.state, &run, step.as_deref(), out),
        Command::Report { run, format } => report::run(&cli.state, &run, format, out),
        Command::Approve { run, step, reject, comment, operator } => {
            approve::approve(&cli.state, &run, &step, !reject, comment, operator, out)
        }
        Command::Cancel { run, operator } => ops::cancel(&cli.state, &run, operator, out),
        Command::Audit { command: crate::cli::AuditCommand::Verify { run } } => audit::verify(&cli.state, &run, out),
        Command::Audit { command: crate::cli::AuditCommand::Export { run } } => audit::export(&cli.state, &run),
        Command::Cluster { command: crate::cli::ClusterCommand::Status { json } } => cluster::status(cli.store.as_deref(), json, out),
        Command::Serve { listen, config, check, node, advertise } => {
            crate::serve::run(&cli.state, &listen, config.as_deref(), check, crate::serve::NodeArgs { node, advertise })
        }
    }
}

/// Loads a runbook or prints its diagnostics (text or JSON) and returns exit 2.
pub(crate) fn load_or_report(file: &std::path::Path, out: crate::cli::Output) -> Result<phoenix_engine::Runbook, Exit> {
    let loaded = phoenix_engine::load_file(file);
    match loaded.runbook {
        Some(rb) => Ok(rb),
        None => {
            validate::report(&[loaded], out);
            Err(Exit::BadInput)
        }
    }
}
