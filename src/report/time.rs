//! Instants as the views write them (RFC 3339, milliseconds, UTC), and durations.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// An instant, in milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Time(pub(crate) u64);

impl Time {
    /// `2026-11-28T21:30:11.310Z`.
    pub(crate) fn rfc3339(self) -> String {
        humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(self.0)).to_string()
    }

    /// Milliseconds since `earlier` (0 if it is later).
    pub(crate) fn since(self, earlier: Time) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// `+1.5s` after `start`.
    pub(crate) fn offset(self, start: Time) -> String {
        format!("+{}", duration(self.since(start)))
    }

    /// This instant plus `ms`.
    pub(crate) fn plus(self, ms: u64) -> Time {
        Time(self.0.saturating_add(ms))
    }
}

/// The current instant.
pub(crate) fn now() -> Time {
    Time(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64))
}

/// `250ms`, `1.5s`, `2m3s`.
pub(crate) fn duration(ms: u64) -> String {
    phoenix_plugins::duration::format_duration(Duration::from_millis(ms))
}

impl Serialize for Time {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.rfc3339())
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let at = humantime::parse_rfc3339(&text).map_err(serde::de::Error::custom)?;
        Ok(Time(at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_read_back_as_written() {
        let t: Time = serde_json::from_str("\"2026-11-28T21:30:11.310Z\"").unwrap();
        assert_eq!(t.rfc3339(), "2026-11-28T21:30:11.310Z");
        assert_eq!(t.plus(1500).offset(t), "+1.5s");
    }
}
