//! Attacks: shell. A value in a script is data, never code: each `{{ }}` reaches bash as an
//! environment variable (`PHX_V1`…) behind a quoted reference, whatever filter made it
//! (`tojson` and `e` mark their output safe for HTML, not for bash). Each case runs a real
//! script with a payload and asserts both sides: the script reads the value back as exactly
//! the payload's bytes, and the command hidden in the payload did not run (no file `pwned`).
//! Places where a reference cannot keep a value data are refused at load, and nothing runs.

use crate::support::Test;

/// The file every payload tries to create.
const P: &str = "pwned";

/// Writes a runbook whose one step runs `script` (a template over `params.x`).
fn runbook(script: &str) -> String {
    let body: String = script.lines().map(|l| format!("        {l}\n")).collect();
    format!("version: 1\nname: attack\nparams:\n  x: {{ type: string }}\nsteps:\n  s:\n    uses: exec\n    with:\n      script: |\n{body}")
}

/// Runs `script` with `x = payload`; returns what the script wrote to `out`, after checking
/// that the payload created nothing.
fn echo_back(script: &str, payload: &str) -> Vec<u8> {
    let out = Test::new().file("r.yaml", runbook(script)).args(["run", "r.yaml", "--param", &format!("x={payload}")]).run();
    let written = std::fs::read(out.path().join("out"));
    assert!(!out.path().join(P).exists(), "the payload ran a command: {P} exists\nscript:\n{script}\npayload: {payload:?}");
    let _ = out.success();
    written.unwrap_or_else(|e| panic!("the script wrote no `out` ({e})\nscript:\n{script}"))
}

// The payloads: each tries to run `touch pwned` from a different angle.
const CMDSUB: &str = "$(touch pwned)";
const BACKQUOTE: &str = "`touch pwned`";
const SQUOTE: &str = "'; touch pwned; '";
const DQUOTE: &str = "\"; touch pwned; \"";
const NEWLINE: &str = "x\ntouch pwned\n";
const BACKSLASH_END: &str = "'\\''; touch pwned; echo \\";
const GLOB: &str = "* /* ?";
const IFS: &str = "a${IFS}b;touch${IFS}pwned";
const SUBSCRIPT: &str = "a[$(touch pwned)]";
const HEREDOC_END: &str = "EOF\ntouch pwned\nEOF";
const BINARY: &str = "\u{1}\u{2}\u{1b}[31m\u{7f}\t\r end $(touch pwned)";
const UNICODE: &str = "ünïcødé — ✓ 日本語 \u{202e}$(touch pwned)";

fn long() -> String {
    format!("$(touch pwned){}'\"`touch pwned`", "A;".repeat(10_000))
}

/// `$( )` drops the trailing newlines of what it captures: bash's rule, not Phoenix's.
fn captured(v: &str) -> String {
    v.trim_end_matches('\n').to_string()
}

/// What `tojson` writes: JSON with `<`, `>`, `&` and `'` escaped.
fn json(v: &str) -> String {
    serde_json::to_string(v).unwrap().replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026").replace('\'', "\\u0027")
}

/// What `e` and `escape` write: HTML's escapes.
fn html(v: &str) -> String {
    v.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#x27;").replace('/', "&#x2f;")
}

/// One case: `name`, a script with `X` where the tag goes, the tag's expression, the
/// payload, and what `out` must hold (from the filtered value `v`).
macro_rules! case {
    ($name:ident, $script:expr, $tag:expr, $payload:expr, |$v:ident| $want:expr) => {
        #[test]
        fn $name() {
            let payload: String = $payload.to_string();
            let script = $script.replace('X', &format!("{{{{ {} }}}}", $tag));
            let $v = payload.clone();
            let want: String = $want;
            let got = echo_back(&script, &payload);
            assert_eq!(String::from_utf8_lossy(&got), want, "script:\n{script}");
        }
    };
}

// Contexts (the tag is `params.x`, no filter).
const BARE: &str = "printf '%s' X > out";
const DOUBLE: &str = "printf '%s' \"<X>\" > out";
const SINGLE: &str = "printf '%s' '<X>' > out";
const HEREDOC: &str = "cat > out <<EOF\nX\nEOF";
const COMMAND: &str = "printf '%s' \"$(printf '%s' X)\" > out";
const AFTER_BACKSLASH: &str = "printf '%s' \\\\X > out";
const ADJACENT: &str = "printf '%s' XX > out";
const ASSIGN: &str = "v=X; printf '%s' \"$v\" > out";
const FOR: &str = "for i in X; do printf '%s' \"$i\" >> out; done";
const COND: &str = "[[ -n X && X == X ]] && printf '%s' X > out";
const CASE_WORD: &str = "case X in *) printf '%s' X > out;; esac";
const CASE_PATTERN: &str = "v=X\ncase \"$v\" in X) printf '%s' \"$v\" > out;; *) printf 'no match' > out;; esac";
const COMMENT: &str = "# about X\nprintf '%s' X > out";
const CASE_IN_COMMAND: &str = "printf '%s' \"$(case a in a) printf '%s' \"X\";; esac)\" > out";
const X: &str = "params.x";

// Every payload as a bare word: the reference is quoted, so no splitting, no glob.
case!(bare_command_substitution, BARE, X, CMDSUB, |v| v);
case!(bare_backquotes, BARE, X, BACKQUOTE, |v| v);
case!(bare_single_quote_break, BARE, X, SQUOTE, |v| v);
case!(bare_double_quote_break, BARE, X, DQUOTE, |v| v);
case!(bare_newline_command, BARE, X, NEWLINE, |v| v);
case!(bare_backslash_at_the_end, BARE, X, BACKSLASH_END, |v| v);
case!(bare_glob, BARE, X, GLOB, |v| v);
case!(bare_ifs, BARE, X, IFS, |v| v);
case!(bare_array_subscript, BARE, X, SUBSCRIPT, |v| v);
case!(bare_heredoc_end, BARE, X, HEREDOC_END, |v| v);
case!(bare_binary_bytes, BARE, X, BINARY, |v| v);
case!(bare_unicode, BARE, X, UNICODE, |v| v);
case!(bare_very_long, BARE, X, long(), |v| v);

// Every context, with the payloads aimed at it.
case!(double_command_substitution, DOUBLE, X, CMDSUB, |v| format!("<{v}>"));
case!(double_quote_break, DOUBLE, X, DQUOTE, |v| format!("<{v}>"));
case!(double_backquotes, DOUBLE, X, BACKQUOTE, |v| format!("<{v}>"));
case!(double_backslash_at_the_end, DOUBLE, X, BACKSLASH_END, |v| format!("<{v}>"));
case!(single_quote_break, SINGLE, X, SQUOTE, |v| format!("<{v}>"));
case!(single_command_substitution, SINGLE, X, CMDSUB, |v| format!("<{v}>"));
case!(single_newline_command, SINGLE, X, NEWLINE, |v| format!("<{v}>"));
case!(heredoc_end_line, HEREDOC, X, HEREDOC_END, |v| format!("{v}\n"));
case!(heredoc_command_substitution, HEREDOC, X, CMDSUB, |v| format!("{v}\n"));
case!(heredoc_backquotes, HEREDOC, X, BACKQUOTE, |v| format!("{v}\n"));
case!(heredoc_backslash_at_the_end, HEREDOC, X, BACKSLASH_END, |v| format!("{v}\n"));
case!(command_substitution_inside_one, COMMAND, X, CMDSUB, |v| v);
case!(command_substitution_newline, COMMAND, X, NEWLINE, |v| captured(&v));
case!(command_substitution_quote_break, COMMAND, X, DQUOTE, |v| v);
case!(after_a_literal_backslash, AFTER_BACKSLASH, X, CMDSUB, |v| format!("\\{v}"));
case!(after_a_literal_backslash_quote_break, AFTER_BACKSLASH, X, SQUOTE, |v| format!("\\{v}"));
case!(adjacent_tags, ADJACENT, X, CMDSUB, |v| format!("{v}{v}"));
case!(adjacent_tags_heredoc_end, ADJACENT, X, HEREDOC_END, |v| format!("{v}{v}"));
case!(assignment, ASSIGN, X, CMDSUB, |v| v);
case!(assignment_subscript, ASSIGN, X, SUBSCRIPT, |v| v);
case!(assignment_ifs, ASSIGN, X, IFS, |v| v);
case!(for_list_is_one_word, FOR, X, GLOB, |v| v);
case!(for_list_command_substitution, FOR, X, CMDSUB, |v| v);
case!(conditional_command_substitution, COND, X, CMDSUB, |v| v);
case!(conditional_glob_is_no_pattern, COND, X, GLOB, |v| v);
case!(case_word, CASE_WORD, X, CMDSUB, |v| v);
case!(case_pattern_is_literal, CASE_PATTERN, X, GLOB, |v| v);
case!(case_pattern_command_substitution, CASE_PATTERN, X, CMDSUB, |v| v);
case!(comment_newline_command, COMMENT, X, NEWLINE, |v| v);
case!(case_pattern_inside_command_substitution, CASE_IN_COMMAND, X, DQUOTE, |v| v);
case!(case_pattern_inside_command_substitution_cmdsub, CASE_IN_COMMAND, X, CMDSUB, |v| v);

// Every filter: whatever it marks safe for HTML still reaches bash as data.
case!(tojson_bare, BARE, "params.x | tojson", CMDSUB, |v| json(&v));
case!(tojson_single_quote_break, BARE, "params.x | tojson", SQUOTE, |v| json(&v));
case!(tojson_in_single_quotes, SINGLE, "params.x | tojson", SQUOTE, |v| format!("<{}>", json(&v)));
case!(tojson_in_double_quotes, DOUBLE, "params.x | tojson", DQUOTE, |v| format!("<{}>", json(&v)));
case!(e_bare, BARE, "params.x | e", CMDSUB, |v| html(&v));
case!(e_backquotes, BARE, "params.x | e", BACKQUOTE, |v| html(&v));
case!(escape_in_double_quotes, DOUBLE, "params.x | escape", CMDSUB, |v| format!("<{}>", html(&v)));
case!(upper_bare, BARE, "params.x | upper", CMDSUB, |v| v.to_uppercase());
case!(upper_heredoc, HEREDOC, "params.x | upper", BACKQUOTE, |v| format!("{}\n", v.to_uppercase()));
case!(join_bare, BARE, "[params.x, params.x] | join('|')", CMDSUB, |v| format!("{v}|{v}"));
case!(join_single, SINGLE, "[params.x, 'b'] | join(' ')", SQUOTE, |v| format!("<{v} b>"));
case!(default_bare, BARE, "params.x | default('d')", SUBSCRIPT, |v| v);
case!(default_double, DOUBLE, "params.x | default('d')", DQUOTE, |v| format!("<{v}>"));
case!(concat_bare, BARE, "'(' ~ params.x ~ ')'", CMDSUB, |v| format!("({v})"));
case!(concat_heredoc, HEREDOC, "params.x ~ '\\n' ~ 'EOF'", CMDSUB, |v| format!("{v}\nEOF\n"));
case!(tojson_after_safe_filter_chain, BARE, "params.x | e | tojson", SQUOTE, |v| json(&html(&v)));

/// A refused place: `phoenix validate` says where and how to fix it (exit 2); `phoenix run`
/// refuses the runbook before anything runs, not even the step before it.
fn refused(script: &str, place: &str) {
    let script = format!("touch started\n{script}");
    let yaml = runbook(&script);
    let out = Test::new().file("r.yaml", &yaml).args(["validate", "r.yaml"]).run().code(2);
    let err = out.stderr();
    let (line, text) = script.lines().enumerate().find(|(_, l)| l.contains("{{")).expect("a tag");
    let at = format!("at line {}, column {} of the script", line + 1, text.find("{{").unwrap() + 1);
    for want in ["PHX0707", &at, place, "steps.s.with.script", "help:"] {
        assert!(err.contains(want), "missing `{want}` in:\n{err}");
    }
    let out = Test::new().file("r.yaml", &yaml).args(["run", "r.yaml", "--param", "x=$(touch pwned)"]).run().code(2);
    assert!(out.stderr().contains("PHX0707"), "{}", out.stderr());
    assert!(!out.path().join("started").exists() && !out.path().join(P).exists(), "a refused runbook ran");
}

macro_rules! refused {
    ($name:ident, $script:expr, $place:expr) => {
        #[test]
        fn $name() {
            refused($script, $place);
        }
    };
}

refused!(refused_in_arithmetic, "echo $(( {{ params.x }} + 1 ))", "in arithmetic");
refused!(refused_in_double_parentheses, "(( n = {{ params.x }} ))", "in arithmetic");
refused!(refused_in_let, "let n={{ params.x }}+1", "`let`");
refused!(refused_in_an_integer_declaration, "declare -i n={{ params.x }}", "`declare -i`");
refused!(refused_in_array_subscript, "a[{{ params.x }}]=1", "array subscript");
refused!(refused_in_numeric_test, "[[ \"{{ params.x }}\" -eq 1 ]]", "numeric test");
refused!(refused_in_parameter_expansion, "echo ${X:-{{ params.x }}}", "inside `${…}`");
refused!(refused_in_backquotes, "echo `echo {{ params.x }}`", "inside backquotes");
refused!(refused_in_ansi_c_quotes, "echo $'{{ params.x }}'", "inside `$'…'`");
refused!(refused_in_quoted_heredoc, "cat <<'EOF'\n{{ params.x }}\nEOF", "quoted here-document");
refused!(refused_as_heredoc_delimiter, "cat <<{{ params.x }}\nx\n", "delimiter");
refused!(refused_in_eval, "eval \"echo {{ params.x }}\"", "`eval`");
refused!(refused_after_a_lone_backslash, "echo \\{{ params.x }}", "backslash");

#[test]
fn safe_is_the_one_way_to_paste_text_and_it_does() {
    // The control for every case above: the same payload pasted with `| safe` runs.
    let out = Test::new()
        .file("r.yaml", runbook("printf '%s' {{ params.x | safe }} > out"))
        .args(["run", "r.yaml", "--param", &format!("x={CMDSUB}")])
        .run()
        .success();
    assert!(out.path().join(P).exists(), "`| safe` pastes the text as it is");
}

#[test]
fn a_reserved_variable_name_in_env_is_refused() {
    let yaml = "version: 1\nname: r\nsteps:\n  s:\n    uses: exec\n    with:\n      env: { PHX_V1: \"touch pwned\" }\n      script: echo hi > out\n";
    let out = Test::new().file("r.yaml", yaml).args(["run", "r.yaml"]).run().code(2);
    assert!(out.stderr().contains("PHX_V1") && out.stderr().contains("reserved"), "{}", out.stderr());
    assert!(!out.path().join("out").exists());
}
