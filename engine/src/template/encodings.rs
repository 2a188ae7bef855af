//! The forms a secret takes once a step or a filter has encoded it: shell-escaped,
//! JSON-escaped, URL-encoded, base64 (standard and URL-safe, padded or not, and the part of
//! it that stays the same wherever the secret sits inside a larger blob), hex. The redactor
//! scrubs each of them as it scrubs the value itself.

/// Every encoded form of `v` (the value itself excluded), without duplicates.
pub(crate) fn forms(v: &str) -> Vec<String> {
    let mut out = vec![
        bash_q(v),
        shlex_quote(v),
        json_escaped(v),
        json_ascii(v),
        url_encoded(v, "", false),
        url_encoded(v, "", true),
        url_encoded(v, "/", false),
        url_encoded(v, "/", true),
        // JavaScript's encodeURIComponent and jq's @uri keep these.
        url_encoded(v, "!'()*", false),
        url_encoded(v, "!'()*", true),
        hex(v.as_bytes(), false),
        hex(v.as_bytes(), true),
    ];
    for alphabet in [STANDARD, URL_SAFE] {
        let unpadded = base64(v.as_bytes(), alphabet);
        let padding = (4 - unpadded.len() % 4) % 4;
        out.push(format!("{unpadded}{}", "=".repeat(padding)));
        out.push(unpadded);
        for k in 0..3 {
            out.push(base64_inner(v.as_bytes(), k, alphabet));
        }
    }
    out.retain(|f| f != v && !f.is_empty());
    let mut seen = std::collections::HashSet::new();
    out.retain(|f| seen.insert(f.clone()));
    out
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64 without padding.
fn base64(bytes: &[u8], alphabet: &[u8; 64]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The characters of the base64 of `k` unknown bytes, then `bytes`, then unknown bytes,
/// that depend on `bytes` alone: what any blob holding the secret at offset `k` (mod 3)
/// contains.
fn base64_inner(bytes: &[u8], k: usize, alphabet: &[u8; 64]) -> String {
    let mut padded = vec![0u8; k];
    padded.extend_from_slice(bytes);
    let full = base64(&padded, alphabet);
    // The first characters mix in the unknown bytes before: none for k = 0, 2 for k = 1
    // (the second takes 4 bits of the unknown byte), 3 for k = 2.
    let skip = [0, 2, 3][k];
    // The last character mixes in the bytes after, unless the secret ends a 3-byte group.
    let end = if padded.len().is_multiple_of(3) { full.len() } else { full.len() - 1 };
    full.get(skip..end).unwrap_or_default().to_string()
}

/// `printf %q` of bash 5: a backslash before each character the shell reads specially, or
/// `$'…'` when the value holds control characters.
fn bash_q(v: &str) -> String {
    if v.chars().any(|c| c.is_control()) {
        let mut out = String::from("$'");
        for c in v.chars() {
            match c {
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\x07' => out.push_str("\\a"),
                '\x08' => out.push_str("\\b"),
                '\x1b' => out.push_str("\\E"),
                '\x0c' => out.push_str("\\f"),
                '\x0b' => out.push_str("\\v"),
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                c if c.is_ascii_control() => out.push_str(&format!("\\{:03o}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    let mut out = String::with_capacity(v.len() * 2);
    for (i, c) in v.chars().enumerate() {
        let special = " ,!*?[]{}^$&|;<>()'\"\\`".contains(c) || (i == 0 && (c == '~' || c == '#'));
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Python's `shlex.quote`: `'…'`, with each `'` written `'"'"'`.
fn shlex_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "'\"'\"'"))
}

/// The inside of a JSON string, as serde_json (and jq) write it.
fn json_escaped(v: &str) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    s.get(1..s.len().saturating_sub(1)).unwrap_or_default().to_string()
}

/// The inside of a JSON string with every non-ASCII character `\uXXXX` (Python's
/// `json.dumps`).
fn json_ascii(v: &str) -> String {
    let mut out = String::new();
    for c in json_escaped(v).chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// Percent-encoding of every byte but the unreserved ones (and those in `safe`); a space
/// as `+` when `plus` (forms, Python's `quote_plus`).
fn url_encoded(v: &str, safe: &str, plus: bool) -> String {
    let mut out = String::new();
    for &b in v.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            b' ' if plus => out.push('+'),
            b if safe.as_bytes().contains(&b) => out.push(b as char),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn hex(bytes: &[u8], upper: bool) -> String {
    bytes.iter().map(|b| if upper { format!("{b:02X}") } else { format!("{b:02x}") }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_reference_and_finds_the_secret_at_each_offset() {
        assert_eq!(base64(b"hunter22", STANDARD), "aHVudGVyMjI");
        assert_eq!(base64(b"\xfb\xff", URL_SAFE), "-_8");
        for k in 0..3 {
            for after in 0..3 {
                let mut blob = b"xyz"[..k].to_vec();
                blob.extend_from_slice(b"s3cret-value");
                blob.extend_from_slice(&b"abc"[..after]);
                let encoded = base64(&blob, STANDARD);
                let inner = base64_inner(b"s3cret-value", k, STANDARD);
                assert!(inner.len() >= 12, "offset {k}: {inner}");
                assert!(encoded.contains(&inner), "offset {k}, {after} after: {inner} not in {encoded}");
            }
        }
    }

    #[test]
    fn shell_json_and_url_forms() {
        assert_eq!(bash_q("a b'c$d=e"), "a\\ b\\'c\\$d=e");
        assert_eq!(bash_q("a\tb"), "$'a\\tb'");
        assert_eq!(shlex_quote("a'b"), "'a'\"'\"'b'");
        assert_eq!(json_escaped("a\"b\\é"), "a\\\"b\\\\é");
        assert_eq!(json_ascii("é"), "\\u00e9");
        assert_eq!(url_encoded("a b/c", "", true), "a+b%2Fc");
        assert_eq!(url_encoded("a b/c", "/", false), "a%20b/c");
        assert_eq!(hex(b"\x01\xab", false), "01ab");
    }
}
