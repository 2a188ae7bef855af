use super::*;

fn contexts(src: &str) -> Vec<Context> {
    parts(src)
        .unwrap()
        .into_iter()
        .filter_map(|p| match p {
            Part::Output { context, .. } => Some(context),
            _ => None,
        })
        .collect()
}

fn here(d: &str, quoted: bool) -> Context {
    Context::Heredoc { delimiter: d.into(), quoted }
}

#[test]
fn each_tag_gets_the_context_bash_reads_it_in() {
    use Context::*;
    assert_eq!(contexts(r#"echo {{ a }} "{{ b }}" '{{ c }}' x{{ d }}y"#), [Word, Double, Single, Word]);
    assert_eq!(contexts(r#"echo "$(cat {{ a }})" "in $(echo "{{ b }}") {{ c }}""#), [Word, Double, Double]);
    assert_eq!(contexts("echo hi # {{ a }}\necho {{ b }}#{{ c }}"), [Comment, Word, Word]);
    assert_eq!(contexts(r#"echo "it's {{ a }}" 'say "{{ b }}"' \"{{ c }}"#), [Double, Single, Word]);
    assert_eq!(contexts("cat <<EOF\nline {{ a }}\nEOF\necho {{ b }}"), [here("EOF", false), Word]);
    assert_eq!(contexts("cat <<'END' > f\n{{ a }}\n  END\nEND\n{{ b }}"), [here("END", true), Word]);
    assert_eq!(contexts("cat <<-\"X\"\n\t{{ a }}\n\tX\n{{ b }}"), [here("X", true), Word]);
    assert_eq!(contexts("cat <<EOF\n$(echo {{ a }}) \"{{ b }}\"\nEOF"), [Word, here("EOF", false)]);
    assert_eq!(contexts("cat <<< {{ a }}"), [Word]);
    assert_eq!(contexts("{% raw %}echo \"{% endraw %}{{ a }}\""), [Double]);
    assert_eq!(contexts("{% if x %}echo '{{ a }}'{% endif %} {{ b }}"), [Single, Word]);
}
