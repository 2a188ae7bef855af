//! The `storage.lag` action: how far a copy (`to`) is behind its source (`from`), measured.
//!
//! Both sides are listed (one listing each, paged, as `storage.sync` lists them). A source
//! object is *missing* when the destination has no current copy of it by `storage.sync`'s
//! own rule (same size, and the source's ETag recorded at the copy or the same MD5): absent,
//! or present but older or different. Nothing is read or written besides the listings (and,
//! on an S3 destination, a HEAD for a same-size object whose listing tells no MD5).
//!
//! `rpo_seconds` is the data the destination lacks, as a time: now (when both listings are
//! complete) minus the last-modified time of the *oldest* missing source object, 0 when none
//! is missing. Everything written to the source since then may be absent from the copy; before
//! then, everything is there. This is the object counterpart of a standby's replay lag (now
//! minus the last transaction replayed). The *newest* missing object is reported too: its age
//! is how long ago the source last changed something the copy does not have. Times are the
//! storage services' clocks against this machine's; an age below 0 (clock skew) is 0.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Location;
use super::side::{Entry, Side};
use crate::aws::S3Settings;
use crate::azure::AzureSettings;
use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin};

/// Measures what a copy lacks of its source.
pub struct StorageLag;

/// `storage.lag`'s input.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StorageLagInput {
    /// The source: `s3://bucket/prefix` or `azblob://container/prefix`.
    pub from: String,
    /// The copy, of either kind.
    pub to: String,
    /// How long each call may take (default 60s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// S3's settings (endpoint, region, credentials, path style); default: the environment.
    #[serde(default)]
    pub s3: S3Settings,
    /// Azure's settings (connection string, account, endpoint…); default: the environment.
    #[serde(default)]
    pub azure: AzureSettings,
}

impl Plugin for StorageLag {
    type Input = StorageLagInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "storage.lag",
            summary: "Measures how far a copy is behind its source (S3 or Azure Blob, either way): the objects it lacks and, as a time, the recovery point.",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "objects", doc: "how many objects the source has" },
                Field { name: "missing", doc: "how many of them the copy lacks or holds an older or different version of" },
                Field { name: "missing_bytes", doc: "the source's bytes of those objects" },
                Field { name: "oldest_missing", doc: "{key, last_modified (RFC 3339)} of the missing object written longest ago, or null" },
                Field { name: "newest_missing", doc: "{key, last_modified (RFC 3339)} of the missing object written last, or null" },
                Field {
                    name: "rpo_seconds",
                    doc: "now minus the oldest missing object's last-modified time (0 when none): what the copy lacks, as a time",
                },
                Field { name: "measured_at", doc: "when both listings were complete (RFC 3339): the `now` of `rpo_seconds`" },
            ],
            caps: Capabilities { probe: true, effect: Effect::Read, general: false, spawns: false, network: true },
            example: "object_rpo:\n  uses: storage.lag\n  with: { from: \"s3://prod-assets\", to: \"azblob://dr-assets\" }",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        let mut issues = vec![];
        for key in ["from", "to"] {
            if let Some(Err(e)) = with.get(key).and_then(Value::as_str).filter(|u| !u.contains("{{")).map(Location::parse) {
                issues.push(Issue::at(key, e).help("e.g. `s3://prod-assets` or `azblob://dr-assets/images`"));
            }
        }
        issues
    }

    fn plan(&self, with: &Value) -> String {
        let get = |k: &str| with.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
        format!("list {} and {}, and measure what the copy lacks", get("from"), get("to"))
    }

    async fn run(&self, ctx: &ActionCtx, input: StorageLagInput) -> Result<Value, ActionError> {
        let timeout = input.timeout.map_or(Duration::from_secs(60), Dur::get);
        let from = Side::open(&input.from, &input.s3, &input.azure, timeout).await?;
        let to = Side::open(&input.to, &input.s3, &input.azure, timeout).await?;
        let failed = |message: String| ActionError::Failed { message, outputs: None, retryable: true, before_effect: false };
        let lists = futures::future::join(from.list(ctx), to.list(ctx));
        let (src, dst) = tokio::select! {
            r = lists => r,
            _ = ctx.cancel.cancelled() => return Err(ActionError::Cancelled("listing stopped".into())),
        };
        let (src, dst) = (src.map_err(failed)?, dst.map_err(failed)?);
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);

        let mut missing: Vec<(&String, &Entry)> = Vec::new();
        for (key, s) in &src {
            if !to.has_current(key, s, dst.get(key)).await {
                missing.push((key, s));
            }
        }
        let lag = Lag::of(&missing, now_ms);
        Ok(json!({
            "from": from.at().to_string(),
            "to": to.at().to_string(),
            "objects": src.len(),
            "missing": missing.len(),
            "missing_bytes": missing.iter().map(|(_, e)| e.size).sum::<u64>(),
            "oldest_missing": lag.oldest.map(object),
            "newest_missing": lag.newest.map(object),
            "rpo_seconds": lag.rpo_seconds,
            "measured_at": rfc3339(now_ms),
        }))
    }
}

/// The missing objects written first and last, and the recovery point they give.
struct Lag<'a> {
    oldest: Option<(&'a String, i64)>,
    newest: Option<(&'a String, i64)>,
    rpo_seconds: f64,
}

impl<'a> Lag<'a> {
    /// From the missing objects, at `now_ms`. An object whose listing tells no time counts
    /// as written at the epoch: the copy lacks it, and for how long is not known, so the
    /// recovery point is as bad as it can be rather than hidden.
    fn of(missing: &[(&'a String, &Entry)], now_ms: i64) -> Lag<'a> {
        let times = missing.iter().map(|(k, e)| (*k, e.modified_ms.unwrap_or(0)));
        let oldest = times.clone().min_by_key(|(k, t)| (*t, *k));
        let newest = times.max_by_key(|(k, t)| (*t, std::cmp::Reverse(*k)));
        let rpo_seconds = oldest.map_or(0.0, |(_, t)| (now_ms - t).max(0) as f64 / 1000.0);
        Lag { oldest, newest, rpo_seconds }
    }
}

fn object((key, ms): (&String, i64)) -> Value {
    json!({ "key": key, "last_modified": rfc3339(ms) })
}

fn rfc3339(ms: i64) -> Value {
    use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
    DateTime::from_millis(ms).fmt(DateTimeFormat::DateTime).map_or(Value::Null, Value::String)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ms: Option<i64>) -> Entry {
        Entry { size: 1, etag: "e".into(), md5: None, source_tag: None, modified_ms: ms }
    }

    #[test]
    fn the_recovery_point_is_the_oldest_missing_write() {
        let (a, b, c) = ("a".to_string(), "b".to_string(), "c".to_string());
        let (ea, eb, ec) = (entry(Some(10_000)), entry(Some(70_000)), entry(Some(40_000)));
        let lag = Lag::of(&[(&a, &ea), (&b, &eb), (&c, &ec)], 100_000);
        assert_eq!((lag.oldest, lag.newest, lag.rpo_seconds), (Some((&a, 10_000)), Some((&b, 70_000)), 90.0));
        let none = Lag::of(&[], 100_000);
        assert_eq!((none.oldest, none.newest, none.rpo_seconds), (None, None, 0.0));
        // A clock ahead of ours is no negative lag; a time not told is the worst case.
        assert_eq!(Lag::of(&[(&a, &entry(Some(200_000)))], 100_000).rpo_seconds, 0.0);
        assert_eq!(Lag::of(&[(&a, &entry(None))], 100_000).rpo_seconds, 100.0);
        assert_eq!(rfc3339(1_700_000_000_500), json!("2023-11-14T22:13:20.5Z"));
    }
}
