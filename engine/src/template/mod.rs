//! Templates: minijinja with strict undefined, native types for whole expressions,
//! shell quoting for scripts, and secrets that never print.

mod check;
mod encodings;
mod render;
mod secret;
mod shell;

pub use check::{Reference, TemplateError, check_expression, check_template, is_template, whole_expression};
pub(crate) use render::render_text;
pub use render::{Renderer, eval_condition, eval_value, render_tree, to_mj};
pub use secret::{Redactor, Secret};
pub use shell::shell_quote;
pub(crate) use shell::unsafe_tags;
