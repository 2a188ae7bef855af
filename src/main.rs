//! `phoenix`: the command line of the Phoenix workflow engine.

mod cli;
mod cmd;
mod display;
mod exit;
mod metrics;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let code = cmd::dispatch(cli);
    std::process::exit(code.code());
}
