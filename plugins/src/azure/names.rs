//! Azure's rules for container and blob names, checked before anything is sent.

/// The container rules, for help text.
pub(crate) const CONTAINER_RULES: &str =
    "a container name is 3 to 63 lowercase letters, digits and hyphens, starts with a letter or digit, and has no `--`";

/// Containers Azure names itself (the root container, static websites, logs).
const SPECIAL: &[&str] = &["$root", "$web", "$logs"];

/// Why `name` is not a container name, if it is not.
pub(crate) fn container(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("`container` is empty".into());
    }
    if SPECIAL.contains(&name) {
        return Ok(());
    }
    let len = name.chars().count();
    if !(3..=63).contains(&len) {
        return Err(format!("`{name}` is not a container name: it has {len} characters"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        let what = if c.is_ascii_uppercase() { "an uppercase letter".to_string() } else { format!("`{c}`") };
        return Err(format!("`{name}` is not a container name: it has {what}"));
    }
    if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Err(format!("`{name}` is not a container name: a hyphen must sit between letters or digits"));
    }
    Ok(())
}

/// Why `name` is not a blob name, if it is not.
pub(crate) fn blob(key: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("`{key}` is empty"));
    }
    if name.starts_with('/') || name.ends_with('/') {
        // azure_storage_blobs 0.21 trims them off when it builds the URL.
        return Err(format!("`{key}` starts or ends with `/`: the SDK would address a blob without it"));
    }
    if name.chars().count() > 1024 {
        return Err(format!("`{key}` is longer than 1024 characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_follow_azures_rules() {
        for ok in ["abc", "dr-assets-2026", "a1b", &"x".repeat(63), "$root", "$web"] {
            assert_eq!(container(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "is empty"),
            ("ab", "2 characters"),
            (&"x".repeat(64), "64 characters"),
            ("DR-assets", "an uppercase letter"),
            ("dr_assets", "`_`"),
            ("-dr", "hyphen"),
            ("dr-", "hyphen"),
            ("dr--assets", "hyphen"),
        ] {
            let e = container(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn blob_names_are_one_to_1024_characters() {
        assert!(blob("name", "a/b/c.txt").is_ok());
        assert!(blob("name", "").unwrap_err().contains("`name` is empty"));
        assert!(blob("name", &"x".repeat(1025)).is_err());
        assert!(blob("name", "/a").unwrap_err().contains("starts or ends with `/`"));
    }
}
