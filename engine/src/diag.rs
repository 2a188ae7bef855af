//! Diagnostics: what is wrong with a runbook, where, and how to fix it.
//!
//! Every diagnostic has a stable code (listed in `docs/diagnostics.md`), the YAML path of the
//! value at fault, and once the loader has placed it, a file, line and column.

use std::fmt;

use serde::Serialize;

use crate::yaml::{Path, Span};

/// A stable diagnostic code. The number never changes meaning once released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Code {
    /// The file could not be read.
    Io,
    /// The file is not valid YAML.
    Syntax,
    /// A key the format does not know.
    UnknownField,
    /// A value of the wrong type.
    WrongType,
    /// A required field is missing.
    MissingField,
    /// A value outside what is allowed.
    InvalidValue,
    /// An unsupported `version`.
    Version,
    /// A name that does not follow `[a-z0-9][a-z0-9_-]*`.
    BadName,
    /// Two steps (or signals) with one id.
    DuplicateId,
    /// An id that is reserved (`score`).
    ReservedId,
    /// `needs` names a step that does not exist.
    UnknownNeed,
    /// The steps' needs form a cycle.
    Cycle,
    /// `uses` names no known action.
    UnknownAction,
    /// An action's `with` is wrong.
    ActionInput,
    /// A step declares less effect than its action has.
    EffectLowered,
    /// `idempotent:`, the older spelling of `effect:` (a warning).
    IdempotentSpelling,
    /// An irreversible step with no approval before it (a warning).
    Unapproved,
    /// An invariant's check is not read-only.
    InvariantEffect,
    /// An invariant's `around` names no step of `steps:`.
    UnknownAround,
    /// A duration that cannot be read.
    Duration,
    /// A param declaration or value is wrong.
    Param,
    /// The drill's `params` overlay names an unknown param or a value of the wrong type.
    DrillParam,
    /// `levels` are out of order or incomplete.
    Levels,
    /// A level that starts a runbook has no `for:` (a warning).
    LevelWithoutFor,
    /// A signal's weight rules are wrong.
    Weights,
    /// A weight rule that can never match (a warning).
    NeverMatches,
    /// A template does not parse.
    TemplateSyntax,
    /// A template names something that does not exist.
    UnknownReference,
    /// A template reads a step that is not guaranteed to have finished.
    Race,
    /// `score` is used without `signals`.
    ScoreWithoutSignals,
    /// A secret would be stored or shown.
    SecretLeak,
    /// A secret's source is wrong.
    SecretSource,
    /// `retry` settings that cannot work.
    Retry,
    /// A template stands where a script cannot quote its value.
    ShellQuoting,
    /// A `protect` entry of the drill does not parse or reads more than params and vars.
    DrillProtect,
}

impl Code {
    /// Every code, in number order (the docs table is generated from this).
    pub const ALL: &'static [Code] = &[
        Code::Io,
        Code::Syntax,
        Code::UnknownField,
        Code::WrongType,
        Code::MissingField,
        Code::InvalidValue,
        Code::Version,
        Code::BadName,
        Code::DuplicateId,
        Code::ReservedId,
        Code::UnknownNeed,
        Code::Cycle,
        Code::UnknownAction,
        Code::ActionInput,
        Code::EffectLowered,
        Code::IdempotentSpelling,
        Code::Unapproved,
        Code::InvariantEffect,
        Code::UnknownAround,
        Code::Duration,
        Code::Retry,
        Code::Param,
        Code::DrillParam,
        Code::Levels,
        Code::Weights,
        Code::NeverMatches,
        Code::LevelWithoutFor,
        Code::TemplateSyntax,
        Code::UnknownReference,
        Code::Race,
        Code::ScoreWithoutSignals,
        Code::SecretLeak,
        Code::SecretSource,
        Code::ShellQuoting,
        Code::DrillProtect,
    ];

    /// The code as printed: `PHX0203`.
    pub fn id(self) -> &'static str {
        match self {
            Code::Io => "PHX0001",
            Code::Syntax => "PHX0002",
            Code::UnknownField => "PHX0101",
            Code::WrongType => "PHX0102",
            Code::MissingField => "PHX0103",
            Code::InvalidValue => "PHX0104",
            Code::Version => "PHX0105",
            Code::BadName => "PHX0106",
            Code::DuplicateId => "PHX0201",
            Code::ReservedId => "PHX0202",
            Code::UnknownNeed => "PHX0203",
            Code::Cycle => "PHX0204",
            Code::UnknownAction => "PHX0301",
            Code::ActionInput => "PHX0302",
            Code::EffectLowered => "PHX0303",
            Code::IdempotentSpelling => "PHX0304",
            Code::Unapproved => "PHX0305",
            Code::InvariantEffect => "PHX0306",
            Code::UnknownAround => "PHX0307",
            Code::Duration => "PHX0401",
            Code::Retry => "PHX0402",
            Code::Param => "PHX0501",
            Code::DrillParam => "PHX0502",
            Code::Levels => "PHX0601",
            Code::Weights => "PHX0602",
            Code::NeverMatches => "PHX0603",
            Code::LevelWithoutFor => "PHX0604",
            Code::TemplateSyntax => "PHX0701",
            Code::UnknownReference => "PHX0702",
            Code::Race => "PHX0703",
            Code::ScoreWithoutSignals => "PHX0704",
            Code::SecretLeak => "PHX0705",
            Code::SecretSource => "PHX0706",
            Code::ShellQuoting => "PHX0707",
            Code::DrillProtect => "PHX0708",
        }
    }

    /// One line on what the code means.
    pub fn summary(self) -> &'static str {
        match self {
            Code::Io => "the file could not be read",
            Code::Syntax => "the file is not valid YAML (or uses a YAML feature runbooks refuse)",
            Code::UnknownField => "a key the runbook format does not know (often a typo)",
            Code::WrongType => "a value of the wrong type",
            Code::MissingField => "a required field is missing",
            Code::InvalidValue => "a value outside what the field allows",
            Code::Version => "the runbook `version` is not one this binary reads",
            Code::BadName => "a name that does not match `[a-z0-9][a-z0-9_-]*`",
            Code::DuplicateId => "two steps, signals or on_failure steps share an id",
            Code::ReservedId => "an id that Phoenix reserves (`score`)",
            Code::UnknownNeed => "`needs` names a step that does not exist",
            Code::Cycle => "steps need each other in a cycle",
            Code::UnknownAction => "`uses` names no built-in action or plugin",
            Code::ActionInput => "an action's `with` has a missing, unknown or mistyped input",
            Code::EffectLowered => "a step declares less `effect` than its action has",
            Code::IdempotentSpelling => "`idempotent:` is the older spelling of `effect:` (a warning)",
            Code::Unapproved => "an irreversible step has no approval before it (a warning)",
            Code::InvariantEffect => "an invariant's check is not read-only (its action's effect is not `read`)",
            Code::UnknownAround => "an invariant's `around` names no step of `steps:` (or is empty)",
            Code::Duration => "a duration that cannot be read (`500ms`, `5s`, `10m`, `1h30m`)",
            Code::Retry => "retry settings that cannot work",
            Code::Param => "a param declaration, default or value is wrong",
            Code::DrillParam => "the drill's `params` overlay names a param the runbook does not declare, or a value not of its type",
            Code::Levels => "`levels` are not ascending, or the last one has a `max`",
            Code::Weights => "a signal's weight rules are wrong (the fallback must come last)",
            Code::NeverMatches => "a weight rule that can never match (a warning: the runbook still runs)",
            Code::LevelWithoutFor => "a level that starts a runbook has no `for:` (a warning: one bad evaluation would act)",
            Code::TemplateSyntax => "a template or expression does not parse",
            Code::UnknownReference => "a template names a param, var, secret or value that does not exist",
            Code::Race => "a template reads a step that is not among the step's `needs` (directly or not)",
            Code::ScoreWithoutSignals => "`score` is used but the runbook has no `signals`",
            Code::SecretLeak => "a secret is used where its value would be stored or shown",
            Code::SecretSource => {
                "a secret's source is wrong (exactly one of `env`, `file`, `aws_secretsmanager`, `exec`, with only its own settings)"
            }
            Code::ShellQuoting => {
                "a template in a script stands where its value would not stay data (a script's values reach bash as `PHX_Vn` variables)"
            }
            Code::DrillProtect => "a drill's `protect` entry does not parse, is empty, or reads more than params and vars",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl Serialize for Diagnostic {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Diagnostic", 9)?;
        st.serialize_field("code", self.code.id())?;
        st.serialize_field("severity", if self.warning { "warning" } else { "error" })?;
        st.serialize_field("message", &self.message)?;
        st.serialize_field("help", &self.help)?;
        st.serialize_field("file", &self.file)?;
        st.serialize_field("path", &self.path)?;
        st.serialize_field("line", &self.span.map(|s| s.line))?;
        st.serialize_field("column", &self.span.map(|s| s.col))?;
        st.serialize_field("length", &self.span.map(|s| s.len))?;
        st.end()
    }
}

/// One problem found in a runbook.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// The stable code.
    pub code: Code,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
    /// The YAML path of the value at fault.
    pub path: Path,
    /// Whether the span should be the key's rather than the value's.
    pub on_key: bool,
    /// The file, once placed.
    pub file: Option<String>,
    /// Line and column, once placed.
    pub span: Option<Span>,
    /// A warning: the runbook still loads (`validate --strict` fails on it).
    pub warning: bool,
}

impl Diagnostic {
    /// A diagnostic about the value at `path`.
    pub fn new(code: Code, path: Path, message: impl Into<String>) -> Self {
        Diagnostic { code, message: message.into(), help: None, path, on_key: false, file: None, span: None, warning: false }
    }

    /// Makes it a warning: reported, but the runbook loads.
    pub fn warning(mut self) -> Self {
        self.warning = true;
        self
    }

    /// Adds advice on how to fix it.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Points at the key at the end of the path rather than its value.
    pub fn on_key(mut self) -> Self {
        self.on_key = true;
        self
    }

    /// Draws the diagnostic with the source line and a caret, the way a compiler would.
    pub fn render(&self, source: Option<&str>) -> String {
        let mut out = format!("{}[{}]: {}\n", if self.warning { "warning" } else { "error" }, self.code, self.message);
        let file = self.file.as_deref().unwrap_or("<runbook>");
        match self.span {
            Some(span) => {
                out += &format!("  --> {file}:{}:{}\n", span.line, span.col);
                if let Some(line) = source.and_then(|s| yaml_lines(s).nth(span.line.saturating_sub(1))) {
                    let num = span.line.to_string();
                    let pad = " ".repeat(num.len());
                    let shown: String = line.chars().map(|c| if c == '\t' { ' ' } else { c }).collect();
                    let avail = shown.chars().count().saturating_sub(span.col - 1).max(1);
                    let carets = "^".repeat(span.len.clamp(1, avail));
                    out += &format!("{pad} |\n{num} | {shown}\n{pad} | {}{carets}\n", " ".repeat(span.col - 1));
                }
            }
            None => out += &format!("  --> {file}\n"),
        }
        if !self.path.is_root() {
            out += &format!("   = at: {}\n", self.path);
        }
        if let Some(help) = &self.help {
            out += &format!("   = help: {help}\n");
        }
        out
    }
}

/// The source's lines as YAML (and so a span's line number) counts them: a line ends at
/// `\n`, `\r\n` or a lone `\r`.
pub(crate) fn yaml_lines(source: &str) -> impl Iterator<Item = &str> {
    source.split('\n').flat_map(|l| l.strip_suffix('\r').unwrap_or(l).split('\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_listed() {
        let mut ids: Vec<_> = Code::ALL.iter().map(|c| c.id()).collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }

    #[test]
    fn counts_lines_as_yaml_does() {
        let lines: Vec<&str> = yaml_lines("a\r\nb\rc\nd").collect();
        assert_eq!(lines, ["a", "b", "c", "d"]);
    }

    #[test]
    fn renders_a_caret_under_the_value() {
        let mut d = Diagnostic::new(
            Code::UnknownNeed,
            Path::root().key("steps").key("b").key("needs").index(0),
            "`needs` names `aa`, which is not a step",
        )
        .help("did you mean `a`?");
        d.file = Some("r.yaml".into());
        d.span = Some(Span { line: 2, col: 15, len: 2 });
        let text = d.render(Some("steps:\n  b: {needs: [aa], uses: noop}\n"));
        assert_eq!(
            text,
            "error[PHX0203]: `needs` names `aa`, which is not a step\n  --> r.yaml:2:15\n  |\n2 |   b: {needs: [aa], uses: noop}\n  |               ^^\n   = at: steps.b.needs[0]\n   = help: did you mean `a`?\n"
        );
    }
}
