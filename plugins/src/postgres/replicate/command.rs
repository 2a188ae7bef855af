//! The pg_dump and pg_restore command lines. Each program is told where to connect by a
//! libpq conninfo string built from the parsed DSN without its password (command lines are
//! visible to every user of the machine); the password reaches it only through `PGPASSWORD`
//! in its own environment.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio_postgres::Config;
use tokio_postgres::config::{SslMode, TargetSessionAttrs};

use super::super::dsn::Dsn;
use super::super::traced::Db;
use super::input::ReplicateInput;
use super::tools::Tools;
use crate::ActionCtx;

/// The dump's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// One stream or file (`--format=custom`).
    Custom,
    /// A directory, one file per table, for parallel jobs (`--format=directory`).
    Directory,
}

impl Format {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Custom => "custom",
            Format::Directory => "directory",
        }
    }
}

/// One program to run: its argv, and the password it gets through its environment.
pub(crate) struct Invocation {
    pub(crate) name: &'static str,
    program: std::path::PathBuf,
    args: Vec<String>,
    password: Option<Vec<u8>>,
    /// The database it works on, for its span.
    pub(crate) db: Db,
}

impl std::fmt::Debug for Invocation {
    /// The command line only: never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

impl Invocation {
    /// The command, in a clean state: stdin and stdout closed, the run's markers in its
    /// environment (so that a resume after a crash finds and stops it).
    pub(crate) fn command(&self, ctx: &ActionCtx) -> Command {
        let mut c = Command::new(&self.program);
        c.args(&self.args)
            .env("PHOENIX_RUN_ID", &ctx.run_id)
            .env("PHOENIX_STEP_ID", &ctx.step_id)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Some(pw) = &self.password {
            c.env("PGPASSWORD", OsStr::from_bytes(pw));
        }
        c
    }

    /// The command line as it runs (it holds no password), for logs.
    pub(crate) fn display(&self) -> String {
        let mut words = vec![quote(&self.program.display().to_string())];
        words.extend(self.args.iter().map(|a| quote(a)));
        words.join(" ")
    }
}

/// What both programs need to know about one replication.
pub(crate) struct Job<'a> {
    pub(crate) tools: Tools,
    pub(crate) source: &'a Dsn,
    pub(crate) target: &'a Dsn,
    pub(crate) input: &'a ReplicateInput,
    pub(crate) jobs: u32,
    /// `connect_timeout` from `with`; each DSN's own applies without it.
    pub(crate) connect_timeout: Option<Duration>,
    /// `reuse_dump`: how old a finished dump of an earlier attempt may be to be restored again.
    pub(crate) reuse: Duration,
}

impl Job<'_> {
    /// pg_dump writing `format` to `file`, or to its stdout without one.
    pub(crate) fn dump(&self, format: Format, file: Option<&Path>) -> Invocation {
        let mut args = vec![format!("--format={}", format.name()), "--no-password".into()];
        args.push(format!("--dbname={}", conninfo(&self.source.config, self.source.connect_timeout(self.connect_timeout))));
        if let Some(f) = file {
            args.push(format!("--file={}", f.display()));
        }
        if format == Format::Directory && self.jobs > 1 {
            args.push(format!("--jobs={}", self.jobs));
        }
        args.extend(self.input.schemas.iter().map(|s| format!("--schema={s}")));
        args.extend(self.input.tables.iter().map(|t| format!("--table={t}")));
        args.extend(self.input.extra_args.iter().cloned());
        Invocation {
            name: "pg_dump",
            program: self.tools.pg_dump.clone(),
            args,
            password: password(&self.source.config),
            db: Db::of(self.source),
        }
    }

    /// pg_restore replacing the target's objects from `file`, or from its stdin without one.
    pub(crate) fn restore(&self, file: Option<&Path>) -> Invocation {
        let mut args: Vec<String> = ["--clean", "--if-exists", "--no-owner", "--no-password"].map(String::from).into();
        args.push(format!("--dbname={}", conninfo(&self.target.config, self.target.connect_timeout(self.connect_timeout))));
        if file.is_some() && self.jobs > 1 {
            args.push(format!("--jobs={}", self.jobs));
        }
        args.extend(self.input.restore_args.iter().cloned());
        if let Some(f) = file {
            // Options end here, whatever the file is called.
            args.push("--".into());
            args.push(f.display().to_string());
        }
        Invocation {
            name: "pg_restore",
            program: self.tools.pg_restore.clone(),
            args,
            password: password(&self.target.config),
            db: Db::of(self.target),
        }
    }

    /// Text with both DSNs' passwords replaced by `***`.
    pub(crate) fn redact(&self, text: &str) -> String {
        self.target.redact(&self.source.redact(text))
    }
}

fn password(c: &Config) -> Option<Vec<u8>> {
    c.get_password().filter(|p| !p.is_empty()).map(<[u8]>::to_vec)
}

/// The DSN as a libpq conninfo string, every setting Phoenix reads except the password.
pub(crate) fn conninfo(c: &Config, connect_timeout: Duration) -> String {
    let mut parts: Vec<(&str, String)> = Vec::new();
    let hosts = crate::postgres::dsn::host_names(c);
    if !hosts.is_empty() {
        parts.push(("host", hosts.join(",")));
    }
    if !c.get_hostaddrs().is_empty() {
        parts.push(("hostaddr", c.get_hostaddrs().iter().map(ToString::to_string).collect::<Vec<_>>().join(",")));
    }
    if !c.get_ports().is_empty() {
        parts.push(("port", c.get_ports().iter().map(ToString::to_string).collect::<Vec<_>>().join(",")));
    }
    for (key, value) in
        [("user", c.get_user()), ("dbname", c.get_dbname()), ("application_name", c.get_application_name()), ("options", c.get_options())]
    {
        if let Some(v) = value {
            parts.push((key, v.to_string()));
        }
    }
    // libpq counts whole seconds (and takes less than 2 as 2).
    parts.push(("connect_timeout", connect_timeout.as_secs_f64().ceil().max(1.0).to_string()));
    if c.get_ssl_mode() == SslMode::Disable {
        parts.push(("sslmode", "disable".into()));
    }
    match c.get_target_session_attrs() {
        TargetSessionAttrs::ReadWrite => parts.push(("target_session_attrs", "read-write".into())),
        TargetSessionAttrs::ReadOnly => parts.push(("target_session_attrs", "read-only".into())),
        _ => {}
    }
    parts.iter().map(|(k, v)| format!("{k}={}", conninfo_value(v))).collect::<Vec<_>>().join(" ")
}

/// A conninfo value: bare when libpq reads it back whole, else single-quoted with `\` escapes.
fn conninfo_value(v: &str) -> String {
    if !v.is_empty() && !v.contains(|c: char| c.is_whitespace() || c == '\'' || c == '\\') {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// A word as a shell would need it, for showing command lines.
fn quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conninfo_keeps_everything_but_the_password() {
        let dsn = Dsn::parse("postgresql://app:s3cr%27t@db.example:6432/sales?application_name=dr&sslmode=disable").unwrap();
        let info = conninfo(&dsn.config, Duration::from_millis(2500));
        assert_eq!(info, "host=db.example port=6432 user=app dbname=sales application_name=dr connect_timeout=3 sslmode=disable");
        assert_eq!(password(&dsn.config).as_deref(), Some(&b"s3cr't"[..]));
        let kv = Dsn::parse(r"host=/run/pg user=o\'k dbname='my db' password=x target_session_attrs=read-write").unwrap();
        let info = conninfo(&kv.config, Duration::from_secs(5));
        assert_eq!(
            info,
            r"host=/run/pg user='o\'k' dbname='my db' application_name=phoenix connect_timeout=5 target_session_attrs=read-write"
        );
    }

    #[test]
    fn shown_command_lines_are_quoted() {
        assert_eq!(quote("--format=custom"), "--format=custom");
        assert_eq!(quote("--dbname=host=h user=u"), "'--dbname=host=h user=u'");
        assert_eq!(quote("--dbname=dbname='my db'"), r"'--dbname=dbname='\''my db'\'''");
    }
}
