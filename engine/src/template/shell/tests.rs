use super::*;

#[test]
fn quotes_what_a_shell_would_interpret() {
    assert_eq!(shell_quote("plain-word_1.2"), "plain-word_1.2");
    assert_eq!(shell_quote(""), "''");
    assert_eq!(shell_quote("a b"), "'a b'");
    assert_eq!(shell_quote("x; rm -rf /"), "'x; rm -rf /'");
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
    assert_eq!(shell_quote("$(id)`id`"), "'$(id)`id`'");
}

fn unsafe_ones(s: &str) -> Vec<&'static str> {
    unsafe_tags(s).into_iter().map(|(_, _, _, why)| why).collect()
}

#[test]
fn places_no_reference_makes_safe_are_named() {
    assert_eq!(unsafe_ones("echo ${X:-{{ a }}}"), ["inside `${…}`"]);
    let arith = "in arithmetic (`$((…))`, `((…))`, `$[…]`)";
    assert_eq!(unsafe_ones("echo $(( {{ a }} + 1 )) `echo {{ b }}`"), [arith, "inside backquotes"]);
    assert_eq!(unsafe_ones("(( n = {{ a }} )); echo $[ {{ b }} ]; x=$(( ('{{ c }}') ))"), [arith, arith, arith]);
    assert!(unsafe_ones("( (echo {{ a }}) ); f(){ echo {{ b }}; }; echo $[1] {{ c }}").is_empty());
    assert_eq!(unsafe_ones("echo $'{{ a }}'; cat <<{{ b }}"), ["inside `$'…'`", "as a here-document's delimiter"]);
    assert!(unsafe_ones("echo {{ a }} \"{{ b }}\" '{{ c }}' ${X} $((1+2))").is_empty());
    assert_eq!(unsafe_tags("echo {{ a }}\n\necho `{{ b }}`"), [("b".to_string(), 3, 7, "inside backquotes")]);
}

#[test]
fn a_tag_ending_in_safe_is_never_refused_nor_rewritten() {
    assert!(unsafe_ones("echo $(( {{ a | safe }} ))").is_empty());
    assert_eq!(contextualize("echo {{ a|safe }} {{ (a | safe) }}").unwrap(), "echo {{ a|safe }} {{ ( (a | safe) ) | __shell(\"word\") }}");
    assert!(!is_safe("a | unsafe") && !is_safe("safe") && is_safe(" a |safe "));
}

#[test]
fn references_are_quoted_for_their_context() {
    assert_eq!(reference("PHX_V1", "word").unwrap(), "\"${PHX_V1}\"");
    assert_eq!(reference("PHX_V1", "double").unwrap(), "${PHX_V1}");
    assert_eq!(reference("PHX_V1", "single").unwrap(), "'\"${PHX_V1}\"'");
    assert_eq!(reference("PHX_V1", "heredoc").unwrap(), "${PHX_V1}");
    assert!(reference("PHX_V1", "unsafe").is_err());
}

#[test]
fn tags_are_rewritten_with_their_context_and_whitespace_markers_kept() {
    assert_eq!(
        contextualize("echo {{- a | upper -}} \"{{ b }}\"").unwrap(),
        "echo {{- ( a | upper ) | __shell(\"word\") -}} \"{{ ( b ) | __shell(\"double\") }}\""
    );
    assert_eq!(contextualize("echo {{ '}}' }}").unwrap(), "echo {{ ( '}}' ) | __shell(\"word\") }}");
    assert!(contextualize("echo {{ a").is_err());
    // Multi-byte characters inside and around tags (found by the fuzzer).
    assert_eq!(contextualize("s/{{{{ x.o¤¤¤ }}").unwrap(), "s/{{ ({{ x.o¤¤¤ ) | __shell(\"word\") }}");
    assert_eq!(contextualize("é{{ 'ü' }}ö").unwrap(), "é{{ ( 'ü' ) | __shell(\"word\") }}ö");
}

#[test]
fn any_script_is_read_without_a_panic() {
    // A small deterministic fuzzer over the characters bash and the lexer care about.
    let pieces = [
        "{{ a }}",
        "{{ a | safe }}",
        "{% if x %}",
        "{% endif %}",
        "{# c #}",
        "{% raw %}",
        "{% endraw %}",
        "$(",
        "$((",
        "((",
        ")",
        "))",
        "${",
        "}",
        "$[",
        "]",
        "[",
        "[[ ",
        " ]]",
        " -eq ",
        "`",
        "'",
        "\"",
        "$'",
        "\\",
        "\\\\",
        "#",
        "\n",
        " ",
        ";",
        ";;",
        "&",
        "|",
        "<<",
        "<<-",
        "<<'E'",
        "<<E",
        "E",
        "\tE",
        "case ",
        "esac",
        " in ",
        "let ",
        "eval ",
        "x=",
        "a[",
        "é",
        "{",
        "¤",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..20_000 {
        let mut s = String::new();
        for _ in 0..(seed % 24) {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            s.push_str(pieces[(seed >> 33) as usize % pieces.len()]);
        }
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let refused = unsafe_tags(&s).len();
        if let Ok(out) = contextualize(&s) {
            assert!(refused <= out.matches("__shell(").count(), "a refused tag is a tag: {s:?}");
        }
    }
}
