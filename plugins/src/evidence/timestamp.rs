//! Instants as the evidence APIs write them: RFC 3339 text, unix seconds, unix nanoseconds.
//!
//! Kept here rather than pulling a date crate into the plugins: the three plugins need only
//! to read RFC 3339 (with `Z` or an offset: Statuspage pages answer in their own time zone),
//! to print UTC with nanoseconds, and to know the time now.

use std::time::{SystemTime, UNIX_EPOCH};

const NANOS: i128 = 1_000_000_000;

/// Nanoseconds since the unix epoch, now.
pub(crate) fn now_ns() -> i128 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// Reads `2024-05-01T10:00:00Z`, `2024-05-01T12:00:00.5+02:00` (`t`, `z` and a space for `T`
/// accepted) into nanoseconds since the unix epoch.
pub(crate) fn parse_rfc3339(text: &str) -> Result<i128, String> {
    let bad = || format!("`{text}` is not an RFC 3339 time (e.g. 2024-05-01T10:00:00Z)");
    let s = text.trim().as_bytes();
    if s.len() < 20 || s[4] != b'-' || s[7] != b'-' || !matches!(s[10], b'T' | b't' | b' ') || s[13] != b':' || s[16] != b':' {
        return Err(bad());
    }
    let num = |from: usize, to: usize| -> Result<i64, String> {
        let part = &s[from..to];
        if part.iter().all(u8::is_ascii_digit) { Ok(part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0'))) } else { Err(bad()) }
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    let mut rest = &s[19..];
    let mut frac: i128 = 0;
    if let Some(digits) = rest.strip_prefix(b".") {
        let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        if len == 0 {
            return Err(bad());
        }
        for (i, d) in digits[..len].iter().enumerate().take(9) {
            frac += i128::from(d - b'0') * 10i128.pow(8 - i as u32);
        }
        rest = &digits[len..];
    }
    let offset_secs: i64 = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(bad());
            }
            let (h, m) = (i64::from((h1 - b'0') * 10 + (h2 - b'0')), i64::from((m1 - b'0') * 10 + (m2 - b'0')));
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return Err(bad()),
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Ok(i128::from(secs) * NANOS + frac)
}

/// Reads unix seconds (`1714557600`, `1714557600.25`) into nanoseconds.
pub(crate) fn parse_unix_seconds(text: &str) -> Result<i128, String> {
    let t = text.trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 12 || !digits(whole) || !digits(frac) || (t.contains('.') && frac.is_empty()) {
        return Err(format!("`{t}` is not unix seconds (e.g. 1714557600)"));
    }
    let mut ns = whole.parse::<i128>().map_err(|_| format!("`{t}` is not unix seconds"))? * NANOS;
    for (i, d) in frac.bytes().take(9).enumerate() {
        ns += i128::from(d - b'0') * 10i128.pow(8 - i as u32);
    }
    Ok(ns)
}

/// Nanoseconds since the epoch as RFC 3339 in UTC with all nine fraction digits, so that
/// the text sorts as the instants do: `2024-05-01T10:00:00.000000000Z`.
pub(crate) fn format_rfc3339_nanos(ns: i128) -> String {
    let secs = ns.div_euclid(NANOS) as i64;
    let frac = ns.rem_euclid(NANOS);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let tod = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z", tod / 3600, tod / 60 % 60, tod % 60)
}

/// Nanoseconds as unix seconds with only the fraction needed: `1714557600`, `1714557600.25`.
pub(crate) fn unix_seconds_text(ns: i128) -> String {
    let (secs, frac) = (ns.div_euclid(NANOS), ns.rem_euclid(NANOS));
    if frac == 0 { secs.to_string() } else { format!("{secs}.{}", format!("{frac:09}").trim_end_matches('0')) }
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (year, month, day) to days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utc_offsets_and_fractions() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_rfc3339("2024-05-01T10:00:00Z").unwrap(), 1_714_557_600 * NANOS);
        assert_eq!(parse_rfc3339("2024-05-01T12:00:00+02:00").unwrap(), 1_714_557_600 * NANOS);
        assert_eq!(parse_rfc3339("2019-02-20T12:00:19.418-06:00").unwrap(), parse_rfc3339("2019-02-20T18:00:19.418Z").unwrap());
        assert_eq!(parse_rfc3339("2024-05-01t10:00:00.000000001z").unwrap(), 1_714_557_600 * NANOS + 1);
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.5Z").unwrap(), -NANOS / 2);
        for bad in
            ["2024-05-01", "2024-05-01T10:00:00", "2024-02-30T00:00:00Z", "2024-05-01T10:00:00.Z", "yesterday", "2024-05-01T25:00:00Z"]
        {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prints_utc_with_nanoseconds() {
        assert_eq!(format_rfc3339_nanos(1_714_557_600 * NANOS + 5), "2024-05-01T10:00:00.000000005Z");
        assert_eq!(format_rfc3339_nanos(-NANOS / 2), "1969-12-31T23:59:59.500000000Z");
        for t in ["2000-02-29T23:59:59.123456789Z", "2100-03-01T00:00:00.000000000Z"] {
            assert_eq!(format_rfc3339_nanos(parse_rfc3339(t).unwrap()), t);
        }
    }

    #[test]
    fn reads_and_prints_unix_seconds() {
        assert_eq!(parse_unix_seconds("1714557600").unwrap(), 1_714_557_600 * NANOS);
        assert_eq!(parse_unix_seconds("1714557600.25").unwrap(), 1_714_557_600 * NANOS + NANOS / 4);
        assert!(parse_unix_seconds("-5").is_err() && parse_unix_seconds("1.").is_err() && parse_unix_seconds("now").is_err());
        assert_eq!(unix_seconds_text(1_714_557_600 * NANOS + NANOS / 4), "1714557600.25");
        assert_eq!(unix_seconds_text(1_714_557_600 * NANOS), "1714557600");
    }
}
