//! What must hold for any text given to the loader, whatever it is.

use std::path::Path;

/// Loads `text` and checks the loader's promises: no panic, a runbook only when there are
/// no diagnostics, every diagnostic placed inside the file, and drawable.
pub fn load_and_check(text: &str) {
    let loaded = phoenix_engine::load_str(text, Path::new("fuzz.yaml"));
    assert_eq!(loaded.runbook.is_some(), loaded.diagnostics.is_empty(), "a runbook comes with no diagnostics, and only then");
    // Lines as YAML counts them: `\n`, `\r\n` and a lone `\r` each end one (the end of the
    // file after a last break is the start of one more line, where a diagnostic may point).
    let lines = 1 + text.replace("\r\n", "\n").chars().filter(|&c| c == '\n' || c == '\r').count();
    for d in &loaded.diagnostics {
        let span = d.span.expect("a diagnostic of a loaded text is placed");
        assert!(span.line >= 1 && span.col >= 1, "1-based position: {d:?}");
        assert!(span.line <= lines, "position past the end of the file ({lines} lines): {d:?}");
        assert!(!d.message.is_empty(), "a diagnostic says what is wrong: {d:?}");
    }
    let _ = loaded.render();
    if let Some(rb) = &loaded.runbook {
        assert_eq!(rb.main.dag.order().len(), rb.main.steps.len(), "the DAG orders every step");
        for format in [phoenix_engine::graph::Format::Dot, phoenix_engine::graph::Format::Mermaid] {
            let _ = phoenix_engine::graph::render(rb, format);
        }
    }
}
