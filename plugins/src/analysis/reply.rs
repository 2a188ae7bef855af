//! Finding the JSON object in a model's reply: bare, in a code fence, or in prose.

use serde_json::{Map, Value};

/// The first JSON object in `text`: the contents of a ```json (or bare ```) fence first, then
/// the first balanced `{…}` that parses. Models wrap JSON in fences and prose; both are fine.
pub(super) fn extract_object(text: &str) -> Option<Map<String, Value>> {
    let mut candidates: Vec<&str> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let body_start = after.find('\n').map_or(0, |i| i + 1);
        let Some(end) = after[body_start..].find("```") else { break };
        candidates.push(&after[body_start..body_start + end]);
        rest = &after[body_start + end + 3..];
    }
    for c in candidates {
        if let Some(obj) = first_object(c) {
            return Some(obj);
        }
    }
    first_object(text)
}

/// The first `{…}` in `text` (string-aware brace matching) that parses as a JSON object.
fn first_object(text: &str) -> Option<Map<String, Value>> {
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(off) = text[from..].find('{') {
        let start = from + off;
        if let Some(end) = matching_brace(bytes, start) {
            if let Ok(Value::Object(obj)) = serde_json::from_str(&text[start..=end]) {
                return Some(obj);
            }
        }
        from = start + 1;
    }
    None
}

fn matching_brace(bytes: &[u8], start: usize) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(text: &str) -> Option<String> {
        extract_object(text).map(|o| o["a"].to_string())
    }

    #[test]
    fn bare_fenced_and_in_prose() {
        assert_eq!(get(r#"{"a": 1}"#).as_deref(), Some("1"));
        assert_eq!(get("```json\n{\"a\": 2}\n```").as_deref(), Some("2"));
        assert_eq!(get("Here you go:\n```\n{\"a\": 3}\n```\nHope it helps").as_deref(), Some("3"));
        assert_eq!(get("I think {this} is it: {\"a\": \"}{\", \"b\": {\"c\": 1}} done").as_deref(), Some("\"}{\""));
        assert_eq!(get("no json here"), None);
        assert_eq!(get("[1, 2]"), None);
    }
}
