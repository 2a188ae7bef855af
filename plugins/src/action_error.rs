//! Why an attempt did not succeed, and whether it failed before any effect: what decides
//! if a non-idempotent step may be tried again without an operator's word.

use serde_json::Value;

/// Why an attempt did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ActionError {
    /// The work failed; `outputs` holds what is known (exit code, output tails).
    #[error("{message}")]
    Failed {
        /// What happened.
        message: String,
        /// Outputs gathered before the failure.
        outputs: Option<Value>,
        /// Whether another attempt could help (false for bad input).
        retryable: bool,
        /// Whether the failure certainly came before any effect: nothing was sent or started
        /// (a connection refused, a name that did not resolve, a TLS handshake or login
        /// refused, a program not found). Only then is a non-idempotent step retried; false,
        /// the default, means its effect may have begun.
        before_effect: bool,
    },
    /// The rendered input is not what the action takes: refused before any effect.
    #[error("invalid input: {0}")]
    Input(String),
    /// The work was stopped by cancellation (timeout, cancel, Ctrl-C).
    #[error("stopped: {0}")]
    Cancelled(String),
}

impl ActionError {
    /// A retryable failure without outputs, whose effect may have begun.
    pub fn failed(message: impl Into<String>) -> Self {
        ActionError::Failed { message: message.into(), outputs: None, retryable: true, before_effect: false }
    }

    /// A retryable failure without outputs that certainly came before any effect (nothing
    /// was sent or started): a non-idempotent step may be retried after it.
    pub fn before_effect(message: impl Into<String>) -> Self {
        ActionError::Failed { message: message.into(), outputs: None, retryable: true, before_effect: true }
    }

    /// The same failure, known to have come before any effect (a failed connection or login,
    /// before anything was sent).
    pub fn before_any_effect(self) -> Self {
        match self {
            ActionError::Failed { message, outputs, retryable, .. } => {
                ActionError::Failed { message, outputs, retryable, before_effect: true }
            }
            other => other,
        }
    }
}

/// Whether an error (or one of its causes) is a connection that was never made: refused by
/// the peer, or a name that did not resolve. Then nothing was sent, so nothing took effect.
/// Ask it only of errors from sending (never of a service's answer, whose text is theirs).
pub(crate) fn never_connected(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        // The resolver's own words (getaddrinfo through std, or hyper's resolver).
        let text = c.to_string();
        if text.starts_with("failed to lookup address") || text.starts_with("dns error") {
            return true;
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that wraps another, as clients wrap the socket's error.
    #[derive(Debug, thiserror::Error)]
    #[error("request failed")]
    struct Wrapped(#[source] std::io::Error);

    #[test]
    fn only_a_connection_never_made_counts_as_before_any_effect() {
        let refused = Wrapped(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(never_connected(&refused));
        let dns = Wrapped(std::io::Error::other("failed to lookup address information: Name or service not known"));
        assert!(never_connected(&dns));
        // The request may have arrived: a reset, a timeout, or a peer that says "refused" in
        // its own words.
        for kind in [std::io::ErrorKind::ConnectionReset, std::io::ErrorKind::TimedOut, std::io::ErrorKind::BrokenPipe] {
            assert!(!never_connected(&Wrapped(std::io::Error::from(kind))), "{kind:?}");
        }
        assert!(!never_connected(&Wrapped(std::io::Error::other("upstream said: Connection refused"))));
        assert!(ActionError::failed("x").before_any_effect().to_string() == "x");
        assert!(matches!(ActionError::failed("x").before_any_effect(), ActionError::Failed { before_effect: true, .. }));
        assert!(matches!(ActionError::failed("x"), ActionError::Failed { before_effect: false, .. }));
    }
}
