//! The incident-analysis gate's deciders: `llm` (a language model, its reply validated as
//! data) and `incident.analyze` (built-in rules), both giving the seed's decision.

pub mod decision;
mod llm;
mod reply;
mod rules;

pub use llm::{Llm, LlmInput, Provider};
pub use rules::{Analyze, AnalyzeInput, Thresholds};
