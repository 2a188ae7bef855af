//! `phoenix graph`: the DAG in Graphviz dot and in Mermaid, signals and `score` included.

use crate::support::Test;

const SMALL: &str = "\
version: 1
name: small
signals:
  api:
    uses: http
    with: { url: \"http://127.0.0.1:1/health\" }
    weight:
      - { when: \"outputs.status == 200\", weight: 0 }
      - { weight: 5 }
  disk:
    uses: exec
    with: { cmd: [./disk.sh] }
    weight:
      - { weight: 1 }
levels:
  - { name: ok, max: 3 }
  - { name: failover }
steps:
  confirm:
    needs: [score]
    uses: assert
    with: { that: \"score.level == 'failover'\" }
  switch:
    needs: [confirm]
    uses: exec
    with: { cmd: [./switch.sh] }
on_failure:
  page:
    uses: noop
";

#[test]
fn dot_draws_signals_score_steps_and_on_failure() {
    Test::new().file("small.yaml", SMALL).args(["graph", "small.yaml", "--format", "dot"]).run().success().stderr_is("").stdout_is(
        r#"digraph "small" {
  rankdir=LR;
  node [shape=box, style=rounded, fontname="Helvetica"];
  "api" [label="api\nsignal: http", shape=ellipse];
  "disk" [label="disk\nsignal: exec", shape=ellipse];
  "score" [label="score\n2 levels", shape=diamond];
  "confirm" [label="confirm\nassert"];
  "switch" [label="switch\nexec"];
  "api" -> "score";
  "disk" -> "score";
  "score" -> "confirm";
  "confirm" -> "switch";
  subgraph cluster_on_failure {
    label="on_failure";
    style=dashed;
    "on_failure.page" [label="page\nnoop"];
  }
}
"#,
    );
}

#[test]
fn dot_is_the_default_format() {
    Test::new()
        .file("small.yaml", SMALL)
        .args(["graph", "small.yaml"])
        .run()
        .success()
        .stdout_contains("digraph \"small\" {")
        .stdout_contains("\"score\" [label=\"score\\n2 levels\", shape=diamond];")
        .stdout_contains("\"api\" -> \"score\";");
}

#[test]
fn mermaid_draws_signals_score_and_steps() {
    Test::new()
        .file("small.yaml", SMALL)
        .args(["graph", "small.yaml", "--format", "mermaid"])
        .run()
        .success()
        .stdout_contains("flowchart LR\n")
        .stdout_contains("  api([\"api<br/>signal: http\"])\n")
        .stdout_contains("  disk([\"disk<br/>signal: exec\"])\n")
        .stdout_contains("  score{\"score<br/>2 levels\"}\n")
        .stdout_contains("  confirm[\"confirm<br/>assert\"]\n")
        .stdout_contains("  api --> score\n  disk --> score\n  score --> confirm\n  confirm --> switch\n")
        .stdout_contains("  subgraph on_failure\n");
}

#[test]
fn a_chain_without_signals_has_no_score() {
    Test::new()
        .file("r.yaml", "version: 1\nname: chain\nsteps:\n  a: { uses: noop }\n  b: { needs: a, uses: noop }\n")
        .args(["graph", "r.yaml", "--format", "mermaid"])
        .run()
        .success()
        .stdout_is("flowchart LR\n  a[\"a<br/>noop\"]\n  b[\"b<br/>noop\"]\n  a --> b\n");
}

#[test]
fn an_invalid_runbook_is_not_drawn() {
    Test::new()
        .file("r.yaml", "version: 1\nname: cyc\nsteps:\n  a: { uses: noop, needs: [b] }\n  b: { uses: noop, needs: [a] }\n")
        .args(["graph", "r.yaml"])
        .run()
        .code(2)
        .stdout_empty()
        .stderr_contains("error[PHX0204]: these steps need each other in a cycle: a -> b -> a");
}
