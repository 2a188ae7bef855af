//! A secret value that prints as `***`, and the redactor that scrubs rendered values.

use std::fmt;

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

/// Values shorter than this are not scrubbed (they would scrub ordinary text).
const MIN_LEN: usize = 4;

impl Redactor {
    /// Remembers a secret to scrub.
    pub fn add(&mut self, s: &Secret) {
        if s.0.len() >= MIN_LEN && !self.values.contains(s) {
            self.values.push(s.clone());
            // Longest first, so a secret containing another is scrubbed whole.
            self.values.sort_by_key(|v| std::cmp::Reverse(v.0.len()));
        }
        for line in s.0.lines().filter(|l| l.len() >= MIN_LEN && l.len() != s.0.len()) {
            let part = Secret::new(line);
            if !self.values.contains(&part) {
                self.values.push(part);
                self.values.sort_by_key(|v| std::cmp::Reverse(v.0.len()));
            }
        }
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
}
