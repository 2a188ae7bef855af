//! Actions that talk HTTP.

mod client;
pub(crate) use client::client;
mod http;

pub use http::{Http, HttpInput};
