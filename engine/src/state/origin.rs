//! What started a run, when something other than a person did: the Alertmanager alert that
//! `phoenix serve` started it for. A drill's or a failover's RTO counts from the alert.

use serde::{Deserialize, Serialize};

/// The alert a run was started for (`phoenix serve`'s Alertmanager webhook).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertOrigin {
    /// Alertmanager's fingerprint of the alert (its label set).
    pub fingerprint: String,
    /// Its `alertname` label (empty without one).
    pub alertname: String,
    /// Its `startsAt` as received (RFC 3339).
    pub starts_at: String,
    /// `starts_at` in ms since the epoch; `None` when it did not parse.
    pub starts_at_ms: Option<u64>,
}

impl AlertOrigin {
    /// The origin of an alert with these fields; `starts_at` is parsed as RFC 3339.
    pub fn new(fingerprint: &str, alertname: &str, starts_at: &str) -> Self {
        let starts_at_ms = parse_ms(starts_at);
        AlertOrigin { fingerprint: fingerprint.into(), alertname: alertname.into(), starts_at: starts_at.into(), starts_at_ms }
    }

    /// Where a run started at `run_start` (ms) counts its RTO from: the alert's start when it
    /// is earlier, else the run's, with the reason.
    pub fn rto_start(origin: Option<&AlertOrigin>, run_start: u64) -> (u64, &'static str, Option<String>) {
        let Some(a) = origin else { return (run_start, "run", None) };
        match a.starts_at_ms {
            Some(t) if t <= run_start => (t, "alert", None),
            Some(_) => (
                run_start,
                "run",
                Some(format!("the alert's startsAt ({}) is after the run's start: the RTO counts from the run's start", a.starts_at)),
            ),
            None => (
                run_start,
                "run",
                Some(format!("the alert's startsAt ({:?}) is not an RFC 3339 time: the RTO counts from the run's start", a.starts_at)),
            ),
        }
    }
}

/// An RFC 3339 time (`Z` or a `+HH:MM` offset, any fraction) in ms since the epoch.
fn parse_ms(text: &str) -> Option<u64> {
    let t = text.trim();
    let (local, offset_s): (&str, i64) = if let Some(l) = t.strip_suffix('Z').or_else(|| t.strip_suffix('z')) {
        (l, 0)
    } else {
        let (l, off) = t.split_at(t.len().checked_sub(6)?);
        let sign = match off.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (h, m) = off[1..].split_once(':')?;
        (l, sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60))
    };
    if !local.contains('T') {
        return None;
    }
    let utc = humantime::parse_rfc3339_weak(local).ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as i64;
    u64::try_from(utc - offset_s * 1000).ok()
}

#[cfg(test)]
mod tests {
    use super::AlertOrigin;

    #[test]
    fn the_rto_counts_from_an_earlier_alert_and_never_from_a_later_or_unreadable_one() {
        let a = AlertOrigin::new("fp", "RegionDown", "2026-11-29T03:00:00Z");
        assert_eq!(a.starts_at_ms, Some(1_795_921_200_000));
        let run = 1_795_921_260_000; // a minute later
        assert_eq!(AlertOrigin::rto_start(Some(&a), run).0, 1_795_921_200_000);
        assert_eq!(AlertOrigin::rto_start(Some(&a), run).1, "alert");
        let nanos = AlertOrigin::new("fp", "x", "2026-11-29T03:00:00.123456789+00:00");
        assert_eq!(nanos.starts_at_ms, Some(1_795_921_200_123));
        let late = AlertOrigin::rto_start(Some(&a), 1_795_921_100_000);
        assert_eq!((late.0, late.1), (1_795_921_100_000, "run"));
        assert!(late.2.unwrap().contains("after the run's start"));
        let paris = AlertOrigin::new("fp", "x", "2026-11-29T04:00:00+01:00");
        assert_eq!(paris.starts_at_ms, Some(1_795_921_200_000));
        let bad = AlertOrigin::new("fp", "x", "yesterday");
        assert_eq!(bad.starts_at_ms, None);
        assert!(AlertOrigin::rto_start(Some(&bad), 5).2.unwrap().contains("not an RFC 3339 time"));
        assert_eq!(AlertOrigin::rto_start(None, 5), (5, "run", None));
    }
}
