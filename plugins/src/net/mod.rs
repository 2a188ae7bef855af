//! Actions that talk HTTP.

mod client;
pub(crate) use client::client;
mod http;
mod notify;
pub(crate) mod traced;

pub use http::{Http, HttpInput};
pub use notify::{Notify, NotifyInput};
