//! Actions that talk HTTP.

mod client;
mod http;

pub use http::{Http, HttpInput};
