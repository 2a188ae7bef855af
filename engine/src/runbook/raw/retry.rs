//! `defaults:` and `retry:` as written: what every step gets unless it says, and how a
//! failed attempt is tried again.

use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;

use phoenix_plugins::duration::Dur;

/// Settings every step gets unless it sets its own.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// Per-attempt timeout.
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Retry policy; a step's own `retry` overrides these field by field.
    #[serde(default)]
    pub retry: Option<RawRetry>,
    /// The effect of every step that does not say (never below its action's own).
    #[serde(default)]
    pub effect: Option<phoenix_plugins::Effect>,
    /// The older spelling of `effect` (`true`: `idempotent`, `false`: `mutating`).
    #[serde(default)]
    pub idempotent: Option<bool>,
}

/// How a failed attempt is retried.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Attempts in all, the first included (1 = no retry).
    #[serde(default)]
    pub attempts: Option<u32>,
    /// `fixed` or `exponential` (each delay doubles).
    #[serde(default)]
    pub backoff: Option<Backoff>,
    /// The delay before the second attempt.
    #[serde(default)]
    pub delay: Option<Dur>,
    /// The longest delay between attempts.
    #[serde(default)]
    pub max_delay: Option<Dur>,
    /// Randomize each delay: `true` (full jitter) or a fraction from 0 to 1 of the delay.
    #[serde(default)]
    pub jitter: Option<Jitter>,
}

/// How the delay grows between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    /// The same delay every time.
    Fixed,
    /// The delay doubles each time, up to `max_delay`.
    Exponential,
}

/// `true`/`false`, or the fraction of each delay that is random.
#[derive(Debug, Clone, Copy, PartialEq, JsonSchema)]
#[schemars(untagged)]
pub enum Jitter {
    /// `true`: full jitter; `false`: none.
    Bool(bool),
    /// A fraction from 0 to 1.
    Fraction(f64),
}

impl<'de> Deserialize<'de> for Jitter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Jitter;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`true`, `false` or a fraction from 0 to 1")
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Jitter, E> {
                Ok(Jitter::Bool(b))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Jitter, E> {
                self.visit_f64(n as f64)
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Jitter, E> {
                self.visit_f64(n as f64)
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Jitter, E> {
                if (0.0..=1.0).contains(&n) {
                    Ok(Jitter::Fraction(n))
                } else {
                    Err(E::custom(format!("jitter must be from 0 to 1, not {n}")))
                }
            }
        }
        d.deserialize_any(V)
    }
}
