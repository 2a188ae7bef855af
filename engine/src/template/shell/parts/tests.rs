use super::*;
use crate::template::shell::lexer::COND_ARITH;

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

const QUOTED_HERE: Context = Context::Unsafe("in a quoted here-document (`<<'EOF'`), where no reference expands");

#[test]
fn each_tag_gets_the_context_bash_reads_it_in() {
    use Context::*;
    assert_eq!(contexts(r#"echo {{ a }} "{{ b }}" '{{ c }}' x{{ d }}y"#), [Word, Double, Single, Word]);
    assert_eq!(contexts(r#"echo "$(cat {{ a }})" "in $(echo "{{ b }}") {{ c }}""#), [Word, Double, Double]);
    assert_eq!(contexts("echo hi # {{ a }}\necho {{ b }}#{{ c }}"), [Comment, Word, Word]);
    assert_eq!(contexts(r#"echo "it's {{ a }}" 'say "{{ b }}"' \"{{ c }}"#), [Double, Single, Word]);
    assert_eq!(contexts("cat <<EOF\nline {{ a }}\nEOF\necho {{ b }}"), [Heredoc, Word]);
    assert_eq!(contexts("cat <<'END' > f\n{{ a }}\n  END\nEND\n{{ b }}"), [QUOTED_HERE, Word]);
    assert_eq!(contexts("cat <<-\"X\"\n\t{{ a }}\n\tX\n{{ b }}"), [QUOTED_HERE, Word]);
    assert_eq!(contexts("cat <<EOF\n$(echo {{ a }}) \"{{ b }}\"\nEOF"), [Word, Heredoc]);
    assert_eq!(contexts("cat <<< {{ a }}"), [Word]);
    assert_eq!(contexts("{% raw %}echo \"{% endraw %}{{ a }}\""), [Double]);
    assert_eq!(contexts("{% if x %}echo '{{ a }}'{% endif %} {{ b }}"), [Single, Word]);
}

fn refused(src: &str) -> Vec<bool> {
    contexts(src).into_iter().map(|c| matches!(c, Context::Unsafe(_))).collect()
}

#[test]
fn a_backslash_before_a_tag_is_refused_and_a_pair_of_them_is_not() {
    assert_eq!(refused(r"echo \{{ a }} \\{{ b }} '\{{ c }}' "), [true, false, false]);
    assert_eq!(refused(r#"echo "\{{ a }}" "\\{{ b }}""#), [true, false]);
    assert_eq!(refused("cat <<EOF\n\\{{ a }} \\\\{{ b }}\nEOF\n\\\n{{ c }}"), [true, false, false]);
}

#[test]
fn a_case_pattern_inside_command_substitution_closes_nothing() {
    use Context::*;
    let s = r#"echo "$(case $x in a) echo "{{ a }}";; (b) echo {{ b }};; esac)" "{{ c }}" {{ d }}"#;
    assert_eq!(contexts(s), [Double, Word, Double, Word]);
    assert_eq!(contexts(r#"echo "$(echo case; (echo "{{ a }}"))" '{{ b }}'"#), [Double, Single]);
}

#[test]
fn arithmetic_in_disguise_is_refused() {
    assert_eq!(refused("let x={{ a }}+1; echo {{ b }}\nlet \"y = {{ c }}\""), [true, false, true]);
    assert_eq!(refused("eval \"echo {{ a }}\"; echo {{ b }}"), [true, false]);
    assert_eq!(refused("arr[{{ a }}]=1; arr[\"{{ b }}\"]=2; echo x[1] {{ c }}"), [true, true, false]);
    assert_eq!(refused("$(( $(echo {{ a }}) )); echo ${X:-\"{{ b }}\"}"), [true, true]);
    assert_eq!(
        contexts("[[ {{ a }} -eq 3 ]] && [[ -n {{ b }} ]]; if [[ \"{{ c }}\" -lt 2 ]]; then :; fi"),
        [Context::Unsafe(COND_ARITH), Context::Word, Context::Unsafe(COND_ARITH)]
    );
    assert_eq!(refused("echo let {{ a }} eval {{ b }}; x=1 let {{ c }}"), [false, false, true]);
    assert_eq!(refused("declare -i n={{ a }}; local -r -i m={{ b }}; declare x={{ c }}; local -a y=({{ d }})"), [true, true, false, false]);
}
