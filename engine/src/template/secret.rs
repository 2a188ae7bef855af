//! A secret value that prints as `***`, and the redactor that scrubs rendered values.

use std::fmt;

use super::encodings;

/// A secret's value. Debug, Display and serialization all print `***`; only
/// [`Secret::expose`] gives the value, where an action needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// Replaces every known secret value with `***` in text and JSON.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: Vec<Secret>,
}

/// Values (and encoded forms) shorter than this are not scrubbed (they would scrub ordinary
/// text).
const MIN_LEN: usize = 4;

/// The passwords inside a connection string, which leak on their own (a log line quoting
/// them, an error): `scheme://user:PASSWORD@host` and `password=PASSWORD` (libpq key=value).
fn embedded_passwords(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((_, rest)) = s.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            if let Some((_, password)) = userinfo.split_once(':') {
                out.push(password.to_string());
                // As written in the URL and decoded (`p%40ss` is `p@ss`).
                let decoded = percent_decode(password);
                if decoded != password {
                    out.push(decoded);
                }
            }
        }
    }
    for word in s.split_whitespace() {
        if let Some(v) = word.strip_prefix("password=") {
            out.push(v.trim_matches(['\'', '"']).to_string());
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Redactor {
    /// Remembers a secret to scrub: its value, its lines, the password of a connection
    /// string, and each of these as a step or a filter could encode it (shell-escaped,
    /// JSON-escaped, URL-encoded, base64, hex: [`encodings::forms`]).
    pub fn add(&mut self, s: &Secret) {
        if s.0.len() < MIN_LEN {
            return;
        }
        let mut parts: Vec<String> = vec![s.0.clone()];
        parts.extend(s.0.lines().filter(|l| l.len() != s.0.len()).map(str::to_string).chain(embedded_passwords(&s.0)));
        let plain: Vec<String> = parts.iter().filter(|p| p.len() >= MIN_LEN).cloned().collect();
        for p in &plain {
            parts.extend(encodings::forms(p));
        }
        for part in parts.into_iter().filter(|p| p.len() >= MIN_LEN) {
            let part = Secret::new(part);
            if !self.values.contains(&part) {
                self.values.push(part);
            }
        }
        // Longest first, so a form containing another (`'value'`) is scrubbed whole.
        self.values.sort_by_key(|v| std::cmp::Reverse(v.0.len()));
    }

    /// Whether any secret is known.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The text with secrets replaced.
    pub fn text(&self, s: &str) -> String {
        let mut out = s.to_string();
        for v in &self.values {
            if out.contains(v.expose()) {
                out = out.replace(v.expose(), "***");
            }
        }
        out
    }

    /// [`Redactor::text`] of a line that was cut: an end that could be the start of a secret
    /// is replaced too (the rest of that secret was cut off, and its start alone is a leak).
    pub fn cut_text(&self, s: &str) -> String {
        let mut out = self.text(s);
        let cut = self
            .values
            .iter()
            .filter_map(|v| {
                let v = v.expose();
                (1..v.len()).rev().find(|&k| v.is_char_boundary(k) && out.ends_with(&v[..k]))
            })
            .max();
        if let Some(k) = cut {
            out.truncate(out.len() - k);
            out.push_str("***");
        }
        out
    }

    /// The JSON with secrets replaced in every string (keys included).
    pub fn json(&self, v: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        if self.values.is_empty() {
            return v.clone();
        }
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.json(x)).collect()),
            Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (self.text(k), self.json(x))).collect()),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_line_loses_the_start_of_a_secret_at_its_end() {
        let mut r = Redactor::default();
        r.add(&Secret::new("hunter22"));
        assert_eq!(r.cut_text("token: hunt"), "token: ***");
        assert_eq!(r.cut_text("token: hunter22 and more"), "token: *** and more");
        assert_eq!(r.cut_text("nothing here"), "nothing here");
        assert_eq!(r.text("token: hunt"), "token: hunt", "a whole line is not cut");
    }

    #[test]
    fn never_prints() {
        let s = Secret::new("hunter22");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
    }

    #[test]
    fn scrubs_text_and_json() {
        let mut r = Redactor::default();
        r.add(&Secret::new("hunter22"));
        assert_eq!(r.text("password=hunter22;"), "password=***;");
        let j = r.json(&serde_json::json!({"a": ["xhunter22x"], "hunter22": 1}));
        assert_eq!(j, serde_json::json!({"a": ["x***x"], "***": 1}));
    }

    #[test]
    fn scrubs_every_encoding_of_a_secret() {
        let mut r = Redactor::default();
        r.add(&Secret::new(r#"p@ss w/rd'"$x"#));
        let forms = [
            r#"p@ss\ w/rd\'\"\$x"#,       // printf %q
            r#"p@ss w/rd'\"$x"#,          // JSON
            "p%40ss%20w%2Frd%27%22%24x",  // URL-encoded
            "p%40ss+w/rd%27%22%24x",      // a form, `/` kept
            "cEBzcyB3L3JkJyIkeA==",       // base64
            "cEBzcyB3L3JkJyIkeA",         // base64 without padding
            "7040737320772f726427222478", // hex
            // Inside larger base64 blobs, at each offset (mod 3).
            "cEBzcyB3L3JkJyIkeCBhbmQgbW9yZQ==",
            "YXBAc3Mgdy9yZCciJHggYW5kIG1vcmU=",
            "YWJwQHNzIHcvcmQnIiR4IGFuZCBtb3Jl",
        ];
        for form in forms {
            let out = r.text(&format!("<{form}>"));
            assert!(out.contains("***"), "{form} was not scrubbed: {out}");
            assert!(!out.contains("cEBzcyB3L3JkJy") && !out.contains("w/rd") && !out.contains("2f72"), "{out}");
        }
        assert_eq!(r.text("nothing to see"), "nothing to see");
    }

    #[test]
    fn scrubs_the_password_of_a_connection_string_on_its_own() {
        let mut r = Redactor::default();
        r.add(&Secret::new("postgresql://app:s3cr%40t-pw@db:5432/app"));
        r.add(&Secret::new("host=db user=app password='kv-pass-1' dbname=app"));
        let line = "auth failed for app with s3cr@t-pw / s3cr%40t-pw / kv-pass-1 at db:5432";
        assert_eq!(r.text(line), "auth failed for app with *** / *** / *** at db:5432");
        // Not every `%` starts an escape, and text after one may be anything.
        assert_eq!(percent_decode("100%é%4"), "100%é%4");
    }
}
