//! `phoenix`: the command line of the Phoenix workflow engine.

mod cli;
mod cluster;
mod cmd;
mod display;
mod exit;
mod metrics;
mod number;
mod report;
mod serve;
mod telemetry;
mod visible;
mod wiring;

use clap::Parser;

fn main() {
    quiet_on_closed_pipe();
    let cli = cli::Cli::parse();
    telemetry::init(cli.log_level, cli.log_format);
    if let Err(e) = cmd::state::choose_store(cli.store.as_deref()) {
        eprintln!("error: {e}");
        telemetry::shutdown();
        std::process::exit(exit::Exit::BadInput.code());
    }
    let code = cmd::dispatch(cli);
    // The spans not yet exported, at most ~2 s: process::exit runs no destructors.
    telemetry::shutdown();
    std::process::exit(code.code());
}

/// `phoenix logs RUN | head` closes our stdout early. Rust ignores SIGPIPE, so the next print
/// panics with "failed printing to stdout: Broken pipe"; exit quietly with the status a shell
/// gives a process killed by SIGPIPE (128 + 13) instead, as other Unix tools do. A run's state
/// is durable at every step, so `phoenix resume` finishes a run stopped this way.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message =
            info.payload().downcast_ref::<String>().map(String::as_str).or_else(|| info.payload().downcast_ref::<&str>().copied());
        if message.is_some_and(|m| m.starts_with("failed printing to std") && m.contains("Broken pipe")) {
            std::process::exit(141);
        }
        default(info);
    }));
}
