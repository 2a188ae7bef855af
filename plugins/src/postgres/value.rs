//! Between PostgreSQL values and JSON: result cells decoded from the binary format, and
//! parameters sent as text (the server parses them as it would a literal of the
//! parameter's type, so `$1::numeric`, dates and arrays need no client-side codec).

use std::error::Error;
use std::fmt::Write as _;

use serde_json::{Number, Value};
use tokio_postgres::types::{Format, FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};

type BoxError = Box<dyn Error + Sync + Send>;

/// A result cell as JSON.
pub(crate) struct Cell(pub(crate) Value);

impl<'a> FromSql<'a> for Cell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        decode(ty, raw).map(Cell)
    }
    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Cell(Value::Null))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

fn decode(ty: &Type, raw: &[u8]) -> Result<Value, BoxError> {
    Ok(match *ty {
        Type::BOOL => Value::Bool(bool::from_sql(ty, raw)?),
        Type::INT2 => i16::from_sql(ty, raw)?.into(),
        Type::INT4 => i32::from_sql(ty, raw)?.into(),
        Type::INT8 => i64::from_sql(ty, raw)?.into(),
        Type::OID => u32::from_sql(ty, raw)?.into(),
        Type::FLOAT4 => float(f32::from_sql(ty, raw)?.into()),
        Type::FLOAT8 => float(f64::from_sql(ty, raw)?),
        Type::NUMERIC => numeric_json(&numeric_text(raw)?),
        Type::JSON | Type::JSONB => Value::from_sql(ty, raw)?,
        Type::TIMESTAMP => timestamp(i64::from_sql(ty, raw)?, ""),
        Type::TIMESTAMPTZ => timestamp(i64::from_sql(ty, raw)?, "Z"),
        Type::DATE => date(i32::from_sql(ty, raw)?),
        Type::TIME => Value::String(time_of_day(i64::from_sql(ty, raw)?)),
        Type::UUID => Value::String(uuid(raw)?),
        Type::BYTEA => Value::String(raw.iter().fold(String::from("\\x"), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })),
        Type::PG_LSN => {
            let v = u64::from_be_bytes(raw.try_into().map_err(|_| "a pg_lsn is 8 bytes")?);
            Value::String(format!("{:X}/{:X}", v >> 32, v & 0xffff_ffff))
        }
        _ => match ty.kind() {
            Kind::Array(_) => Value::Array(Vec::<Cell>::from_sql(ty, raw)?.into_iter().map(|c| c.0).collect()),
            Kind::Domain(base) => decode(base, raw)?,
            // Text-like types (text, varchar, char, name, citext, xml, …) and enums are sent
            // as their text.
            Kind::Enum(_) => Value::String(std::str::from_utf8(raw)?.to_string()),
            _ if <&str as FromSql>::accepts(ty) => Value::String(<&str>::from_sql(ty, raw)?.to_string()),
            _ => return Err(format!("values of type `{}` are not converted to JSON; cast the column (`::text`)", ty.name()).into()),
        },
    })
}

/// JSON has no NaN or infinities: those become strings, as PostgreSQL prints them.
fn float(f: f64) -> Value {
    match Number::from_f64(f) {
        Some(n) => Value::Number(n),
        None if f.is_nan() => "NaN".into(),
        None if f > 0.0 => "Infinity".into(),
        None => "-Infinity".into(),
    }
}

/// A numeric is a JSON number when that is exact, else its text (every digit kept).
fn numeric_json(text: &str) -> Value {
    let normal = match text.split_once('.') {
        Some((int, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() { int.to_string() } else { format!("{int}.{frac}") }
        }
        None => text.to_string(),
    };
    if let Ok(i) = normal.parse::<i64>() {
        return i.into();
    }
    match normal.parse::<f64>() {
        Ok(f) if f.is_finite() && f.to_string() == normal => float(f),
        _ => Value::String(text.to_string()),
    }
}

/// The text of a binary numeric: base-10000 digits with a weight, sign and display scale.
fn numeric_text(raw: &[u8]) -> Result<String, BoxError> {
    let word = |i: usize| -> Result<u16, BoxError> {
        raw.get(i * 2..i * 2 + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or_else(|| "a truncated numeric".into())
    };
    let (ndigits, weight, sign, dscale) = (word(0)? as usize, word(1)? as i16 as i64, word(2)?, word(3)? as usize);
    let digits: Vec<u16> = (0..ndigits).map(|i| word(4 + i)).collect::<Result<_, _>>()?;
    let digit = |i: i64| if i >= 0 { digits.get(i as usize).copied().unwrap_or(0) } else { 0 };
    let mut s = match sign {
        0x0000 => String::new(),
        0x4000 => "-".to_string(),
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        other => return Err(format!("a numeric with sign {other:#x}").into()),
    };
    if weight < 0 {
        s.push('0');
    } else {
        for i in 0..=weight {
            let _ = if i == 0 { write!(s, "{}", digit(i)) } else { write!(s, "{:04}", digit(i)) };
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(i));
            i += 1;
        }
        frac.truncate(dscale);
        s.push('.');
        s.push_str(&frac);
    }
    Ok(s)
}

/// Seconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH: i64 = 946_684_800;

/// A timestamp (microseconds since 2000-01-01) as RFC 3339: `Z` for timestamptz (in UTC),
/// no offset for a timestamp without time zone (it has none).
fn timestamp(micros: i64, zone: &str) -> Value {
    match micros {
        i64::MAX => return Value::String("infinity".into()),
        i64::MIN => return Value::String("-infinity".into()),
        _ => {}
    }
    let secs = micros.div_euclid(1_000_000) + PG_EPOCH;
    let (days, in_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil(days);
    let frac = micros.rem_euclid(1_000_000);
    let mut s = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", in_day / 3600, in_day / 60 % 60, in_day % 60);
    if frac > 0 {
        s += format!(".{frac:06}").trim_end_matches('0');
    }
    Value::String(s + zone)
}

fn date(days: i32) -> Value {
    match days {
        i32::MAX => Value::String("infinity".into()),
        i32::MIN => Value::String("-infinity".into()),
        _ => {
            let (y, m, d) = civil(i64::from(days) + PG_EPOCH / 86_400);
            Value::String(format!("{y:04}-{m:02}-{d:02}"))
        }
    }
}

fn time_of_day(micros: i64) -> String {
    let secs = micros / 1_000_000;
    let mut s = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    let frac = micros % 1_000_000;
    if frac > 0 {
        s += format!(".{frac:06}").trim_end_matches('0');
    }
    s
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn uuid(raw: &[u8]) -> Result<String, BoxError> {
    if raw.len() != 16 {
        return Err("a uuid is 16 bytes".into());
    }
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]))
}

/// A parameter from `params`, sent as text: strings as they are, numbers and booleans as
/// written, lists as array literals for array parameters (JSON text otherwise), objects as
/// JSON text, null as NULL.
#[derive(Debug)]
pub(crate) struct Param(pub(crate) Value);

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        let text = match &self.0 {
            Value::Null => return Ok(IsNull::Yes),
            Value::Array(items) if matches!(ty.kind(), Kind::Array(_)) => array_literal(items),
            other => text_of(other),
        };
        out.extend_from_slice(text.as_bytes());
        Ok(IsNull::No)
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }
    to_sql_checked!();
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn array_literal(items: &[Value]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|v| match v {
            Value::Null => "NULL".to_string(),
            Value::Array(inner) => array_literal(inner),
            Value::Number(_) | Value::Bool(_) => v.to_string(),
            other => format!("\"{}\"", text_of(other).replace('\\', "\\\\").replace('"', "\\\"")),
        })
        .collect();
    format!("{{{}}}", parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> String {
        let mut raw = vec![];
        for w in [ndigits, weight as u16, sign, dscale].iter().chain(digits) {
            raw.extend_from_slice(&w.to_be_bytes());
        }
        numeric_text(&raw).unwrap()
    }

    #[test]
    fn numerics_print_as_postgres_prints_them() {
        assert_eq!(numeric(2, 0, 0, 2, &[12, 3400]), "12.34");
        assert_eq!(numeric(2, 1, 0x4000, 0, &[1, 2]), "-10002");
        assert_eq!(numeric(1, -2, 0, 6, &[5000]), "0.000050");
        assert_eq!(numeric(0, 0, 0, 0, &[]), "0");
        assert_eq!(numeric(0, 0, 0xC000, 0, &[]), "NaN");
    }

    #[test]
    fn numerics_are_numbers_when_exact() {
        assert_eq!(numeric_json("12.50"), serde_json::json!(12.5));
        assert_eq!(numeric_json("42.000"), serde_json::json!(42));
        assert_eq!(numeric_json("123456789012345678901234.5"), serde_json::json!("123456789012345678901234.5"));
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(timestamp(0, "Z"), "2000-01-01T00:00:00Z");
        assert_eq!(timestamp(-1, "Z"), "1999-12-31T23:59:59.999999Z");
        assert_eq!(timestamp(849_225_600_500_000, ""), "2026-11-29T00:00:00.5");
        assert_eq!(date(-1), "1999-12-31");
        assert_eq!(time_of_day(3_723_250_000), "01:02:03.25");
    }

    #[test]
    fn lists_become_array_literals() {
        assert_eq!(
            array_literal(&serde_json::from_str::<Vec<Value>>(r#"[1, "a\"b", null, [true]]"#).unwrap()),
            r#"{1,"a\"b",NULL,{true}}"#
        );
    }
}
