//! Whether the observer itself can see: a failed vantage signal, or every signal failing
//! the same way at once, makes the evaluation `unknown` (observer degraded).

use serde_json::{Map, Value};

use crate::runbook::Runbook;

/// The level an evaluation takes when the observer cannot trust what it sees.
pub(crate) const UNKNOWN: &str = "unknown";

/// Why the observer is degraded, if it is. `signals` are the score's per-signal details.
pub(crate) fn degraded(rb: &Runbook, signals: &Map<String, Value>) -> Option<String> {
    let failed = |name: &str| signals.get(name).is_none_or(|s| s["status"] != "succeeded");
    let why = |name: &str| signals.get(name).and_then(|s| s["error"].as_str()).unwrap_or("the probe did not run").to_string();
    if let Some(v) = rb.signals.iter().find(|s| s.vantage && failed(&s.name)) {
        return Some(format!("the vantage signal `{}` failed: {}", v.name, why(&v.name)));
    }
    // A vantage signal that succeeded proves this machine can reach out: then every probe
    // failing is production's outage, not the observer's.
    if rb.signals.iter().any(|s| s.vantage) {
        return None;
    }
    let measured: Vec<&str> = rb.signals.iter().map(|s| s.name.as_str()).collect();
    if measured.len() < 2 || !measured.iter().all(|n| failed(n)) {
        return None;
    }
    let kinds: Vec<Option<&str>> = measured.iter().map(|n| kind(&why(n))).collect();
    match kinds[0] {
        Some(k) if kinds.iter().all(|x| *x == Some(k)) => {
            Some(format!("every signal failed the same way at once ({k}): the observer may be cut off, not production"))
        }
        _ => None,
    }
}

/// The way a probe failed, when it says the network was not there.
fn kind(error: &str) -> Option<&'static str> {
    let e = error.to_ascii_lowercase();
    if ["timed out", "timeout", "deadline"].iter().any(|w| e.contains(w)) {
        Some("timeouts")
    } else if ["connection refused", "connect", "unreachable", "no route to host", "dns", "resolve", "name resolution", "network is down"]
        .iter()
        .any(|w| e.contains(w))
    {
        Some("no connection")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::kind;

    #[test]
    fn kinds_of_network_failure() {
        assert_eq!(kind("error sending request: tcp connect error: Connection refused (os error 111)"), Some("no connection"));
        assert_eq!(kind("dns error: failed to lookup address"), Some("no connection"));
        assert_eq!(kind("the probe timed out after 5s"), Some("timeouts"));
        assert_eq!(kind("HTTP 500 from the server"), None);
    }
}
