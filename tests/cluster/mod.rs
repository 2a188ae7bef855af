//! `phoenix serve` as a cluster on etcd (docs/ha.md): takeover after a SIGKILL, fencing after
//! a SIGSTOP, cluster-wide locks, etcd losing members. Each scenario runs ten times against a
//! real 3-member etcd and real serve nodes; a ledger the steps write proves what ran, how
//! often, and under which fencing token.

mod config;
mod faults;
mod fencing;
mod forwarded;
mod locks;
mod page;
mod takeover;
mod tls;
mod watch;

/// `a → b → c`; `b` writes when it starts, then waits for `LEDGER.go` before it ends. Each
/// line carries the run id and the fencing token the step ran under.
pub(crate) const CHAIN: &str = r#"version: 1
name: chain
steps:
  a:
    uses: exec
    with:
      script: |
        echo "a {{ run.id }} {{ run.fence }}" >> '{{LEDGER}}'
  b:
    needs: [a]
    uses: exec
    with:
      script: |
        echo "b-start {{ run.id }} {{ run.fence }}" >> '{{LEDGER}}'
        while [ ! -e '{{LEDGER}}.go' ]; do sleep 0.05; done
        echo "b-done {{ run.id }} {{ run.fence }}" >> '{{LEDGER}}'
  c:
    needs: [b]
    uses: exec
    with:
      script: |
        echo "c {{ run.id }} {{ run.fence }}" >> '{{LEDGER}}'
"#;

/// [`CHAIN`] whose `b` is not idempotent (a DNS switch, say).
pub(crate) fn switch() -> String {
    CHAIN.replace("name: chain", "name: switch").replace("  b:\n    needs: [a]\n", "  b:\n    needs: [a]\n    idempotent: false\n")
}
