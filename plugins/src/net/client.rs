//! One HTTP client per process: connection pools are shared between steps.

use std::sync::OnceLock;

/// The shared client (rustls, no proxy surprises, redirects followed up to 5 times).
pub(crate) fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .user_agent(concat!("phoenix/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .expect("the HTTP client's settings are valid")
    })
}
