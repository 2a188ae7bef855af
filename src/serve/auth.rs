//! Bearer tokens: who is asking, and whether they may.

use axum::http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Right {
    /// Read runs, steps, logs, events and metrics.
    Read,
    /// Start, resume and cancel runs.
    Run,
    /// Approve or reject approval steps.
    Approve,
    /// Post Alertmanager webhooks.
    Alerts,
}

impl Right {
    pub(crate) const ALL: [&str; 4] = ["read", "run", "approve", "alerts"];

    fn as_str(self) -> &'static str {
        Self::ALL[self as usize]
    }
}

/// A configured token. Only its SHA-256 is kept: comparing digests of equal length in
/// constant time tells nothing about the token, not even its length.
pub(crate) struct Token {
    pub(crate) name: String,
    digest: [u8; 32],
    rights: Vec<Right>,
}

impl Token {
    pub(crate) fn new(name: String, value: &str, rights: Vec<Right>) -> Token {
        Token { name, digest: Sha256::digest(value.as_bytes()).into(), rights }
    }
}

/// Who may do what. Never empty: without configured tokens the server makes one at start
/// ([`Auth::generated`]), so that no request is anonymous.
pub(crate) struct Auth {
    pub(crate) tokens: Vec<Token>,
}

/// A refusal: the status and the message.
pub(crate) type Refusal = (StatusCode, String);

impl Auth {
    /// One random token named `name` with every right, for a server started without
    /// `tokens:`; its value is returned once, to be printed, and only its digest kept.
    pub(crate) fn generated(name: &str) -> (Auth, String) {
        let bytes: [u8; 32] = rand::random();
        let value: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let all = vec![Right::Read, Right::Run, Right::Approve, Right::Alerts];
        (Auth { tokens: vec![Token::new(name.to_string(), &value, all)] }, value)
    }

    /// The name of the caller, when its token carries `right`.
    pub(crate) fn check(&self, headers: &HeaderMap, right: Right) -> Result<String, Refusal> {
        let tokens = &self.tokens;
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or((StatusCode::UNAUTHORIZED, "give a token: `Authorization: Bearer TOKEN`".to_string()))?;
        let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        // Every token is compared, whichever matches.
        let mut found = None;
        for t in tokens {
            if bool::from(t.digest.ct_eq(&digest)) {
                found = Some(t);
            }
        }
        let t = found.ok_or((StatusCode::UNAUTHORIZED, "unknown token".to_string()))?;
        if t.rights.contains(&right) {
            Ok(t.name.clone())
        } else {
            Err((StatusCode::FORBIDDEN, format!("the token `{}` lacks the right `{}`", t.name, right.as_str())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn tokens_and_rights() {
        let auth = Auth {
            tokens: vec![
                Token::new("oncall".into(), "0123456789abcdef-oncall", vec![Right::Read, Right::Approve]),
                Token::new("viewer".into(), "0123456789abcdef-viewer", vec![Right::Read]),
            ],
        };
        assert_eq!(auth.check(&headers("Bearer 0123456789abcdef-oncall"), Right::Approve), Ok("oncall".into()));
        assert_eq!(auth.check(&headers("Bearer 0123456789abcdef-viewer"), Right::Read), Ok("viewer".into()));
        assert_eq!(auth.check(&headers("Bearer 0123456789abcdef-viewer"), Right::Approve).unwrap_err().0, StatusCode::FORBIDDEN);
        assert_eq!(auth.check(&headers("Bearer 0123456789abcdef-other"), Right::Read).unwrap_err().0, StatusCode::UNAUTHORIZED);
        assert_eq!(auth.check(&HeaderMap::new(), Right::Read).unwrap_err().0, StatusCode::UNAUTHORIZED);
        assert_eq!(auth.check(&headers("Basic abc"), Right::Read).unwrap_err().0, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn a_generated_token_is_random_and_the_only_way_in() {
        let (auth, value) = Auth::generated("ops");
        let (_, other) = Auth::generated("ops");
        assert_eq!(value.len(), 64);
        assert_ne!(value, other);
        assert_eq!(auth.check(&headers(&format!("Bearer {value}")), Right::Run), Ok("ops".into()));
        assert_eq!(auth.check(&HeaderMap::new(), Right::Read).unwrap_err().0, StatusCode::UNAUTHORIZED);
        assert_eq!(auth.check(&headers(&format!("Bearer {other}")), Right::Read).unwrap_err().0, StatusCode::UNAUTHORIZED);
    }
}
