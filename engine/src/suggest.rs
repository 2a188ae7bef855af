//! "Did you mean …?" for names a user mistyped.

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `word` quoted with a "did you mean" tail, or a list of what is allowed.
pub fn hint<'a, I>(word: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str> + Clone,
{
    match did_you_mean(word, candidates.clone()) {
        Some(c) => format!("did you mean `{c}`?"),
        None => {
            let all: Vec<_> = candidates.into_iter().map(|c| format!("`{c}`")).collect();
            if all.is_empty() { "nothing is allowed here".into() } else { format!("expected one of {}", all.join(", ")) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos() {
        assert_eq!(did_you_mean("nedes", ["needs", "uses", "with"]), Some("needs"));
        assert_eq!(did_you_mean("tiemout", ["timeout", "retry"]), Some("timeout"));
        assert_eq!(did_you_mean("completely", ["needs", "uses"]), None);
    }
}
