//! Reading one secret's value from where the runbook says it is: an environment variable, a
//! file, AWS Secrets Manager, or a command that prints it. Errors name the source, never
//! the value.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::runbook::SecretSource;

/// The value of the secret `name`, read now.
pub(crate) fn read(name: &str, source: &SecretSource) -> Result<String, String> {
    let said = |e: String| format!("secret `{name}`: {e}");
    match source {
        SecretSource::Env(var) => std::env::var(var).map_err(|_| said(format!("the environment variable {var} is not set"))),
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
            .map_err(|e| said(format!("cannot read {}: {e}", path.display()))),
        SecretSource::AwsSecretsManager { at, timeout } => at.read(*timeout).map_err(said),
        SecretSource::Exec { argv, timeout } => command(argv, *timeout).map_err(said),
    }
}

/// What `argv` prints on stdout, its trailing newline removed; it must exit 0 within
/// `timeout` and print something.
fn command(argv: &[String], timeout: Duration) -> Result<String, String> {
    use std::os::unix::process::CommandExt;
    let shown = argv.join(" ");
    let (program, args) = argv.split_first().ok_or("the command is empty")?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run `{shown}`: {e}"))?;
    let pid = child.id() as i32;
    let (mut out, mut err) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let reader = std::thread::spawn(move || err.read_to_end(&mut e).map(|_| e));
        let _ = out.read_to_end(&mut o);
        let e = reader.join().ok().and_then(Result::ok).unwrap_or_default();
        let status = child.wait();
        let _ = tx.send((status, o, e));
    });
    let Ok((status, stdout, stderr)) = rx.recv_timeout(timeout) else {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        return Err(format!("`{shown}` did not finish within {}; it was stopped", humantime::format_duration(timeout)));
    };
    let status = status.map_err(|e| format!("`{shown}`: {e}"))?;
    if !status.success() {
        let last = String::from_utf8_lossy(&stderr)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>();
        let code = status.code().map_or_else(|| "was killed by a signal".to_string(), |c| format!("exited with {c}"));
        let said = if last.is_empty() { String::new() } else { format!(": {}", last.trim()) };
        return Err(format!("`{shown}` {code}{said}"));
    }
    let value = String::from_utf8(stdout).map_err(|_| format!("`{shown}` printed something that is not UTF-8 text"))?;
    let value = value.trim_end_matches(['\n', '\r']).to_string();
    if value.is_empty() {
        return Err(format!("`{shown}` printed nothing"));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_command_gives_what_it_prints_and_its_failures_name_it() {
        let s = |a: &[&str]| read("db", &SecretSource::Exec { argv: argv(a), timeout: Duration::from_secs(5) });
        assert_eq!(s(&["printf", "s3cret\n\n"]).unwrap(), "s3cret");
        let e = s(&["sh", "-c", "echo 'vault: permission denied' >&2; exit 2"]).unwrap_err();
        assert_eq!(e, "secret `db`: `sh -c echo 'vault: permission denied' >&2; exit 2` exited with 2: vault: permission denied");
        assert!(s(&["true"]).unwrap_err().ends_with("printed nothing"));
        assert!(s(&["phoenix-no-such-program"]).unwrap_err().contains("cannot run `phoenix-no-such-program`"));
        let slow = read("db", &SecretSource::Exec { argv: argv(&["sleep", "30"]), timeout: Duration::from_millis(200) }).unwrap_err();
        assert!(slow.contains("did not finish within 200ms; it was stopped"), "{slow}");
    }
}
