//! `phoenix graph FILE --format dot|mermaid`

use std::path::Path;

use phoenix_engine::graph::{Format, render};

use crate::cli::{GraphFormat, Output};
use crate::exit::Exit;

pub(crate) fn run(file: &Path, format: GraphFormat, out: Output) -> Exit {
    let rb = match super::load_or_report(file, out) {
        Ok(rb) => rb,
        Err(e) => return e,
    };
    let f = match format {
        GraphFormat::Dot => Format::Dot,
        GraphFormat::Mermaid => Format::Mermaid,
    };
    print!("{}", render(&rb, f));
    Exit::Ok
}
