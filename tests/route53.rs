//! `route53.*` through `phoenix run` against the moto server (`tests/support/moto.rs`): an
//! upsert and what it replaced, a delete of what it reads, waiting for INSYNC.

use serde_json::{Value, json};

use crate::aws_data::{aws_test, log_of, outputs, run};
use crate::moto::Moto;
use crate::process::{self, step};

/// A Route 53 step's `with` against moto.
fn r53(moto: &Moto, zone: &str, rest: &str) -> String {
    format!("{{ endpoint_url: \"{}\", zone_id: \"{zone}\", {rest} }}", moto.url())
}

#[test]
fn an_upsert_reports_the_record_it_replaced_and_a_later_step_can_restore_it() {
    let moto = Moto::start();
    let zone = moto.route53_zone("example.com");
    let yaml = format!(
        r#"version: 1
name: dns
steps:
  first:
    uses: route53.upsert
    with: {first}
  dns:
    needs: [first]
    uses: route53.upsert
    with: {second}
  read:
    needs: [dns]
    uses: route53.get
    with: {read}
  missing:
    needs: [dns]
    uses: route53.get
    with: {missing}
  failback:
    needs: [read]
    uses: route53.upsert
    with: {failback}
  check:
    needs: [failback]
    uses: assert
    with: {{ that: "steps.failback.outputs.record['values'] == ['192.0.2.10'] and steps.failback.outputs.record.ttl == 60" }}
  txt:
    needs: [dns]
    uses: route53.upsert
    with: {txt}
  txt_read:
    needs: [txt]
    uses: route53.get
    with: {txt_read}
"#,
        first = r53(&moto, &zone, "name: app.example.com, type: A, ttl: 60, values: [192.0.2.10]"),
        // Another spelling of the same name, and the zone id as the API writes it.
        second = r53(
            &moto,
            &format!("/hostedzone/{zone}"),
            "name: APP.Example.com., type: a, ttl: 30, values: [198.51.100.7, 198.51.100.8], comment: to DR"
        ),
        read = r53(&moto, &zone, "name: app.example.com, type: A"),
        missing = r53(&moto, &zone, "name: nothing.example.com, type: A"),
        failback = r53(
            &moto,
            &zone,
            r#"name: app.example.com, type: A, ttl: "{{ steps.dns.outputs.previous.ttl }}", values: ["{{ steps.dns.outputs.previous.values[0] }}"]"#
        ),
        txt = r53(&moto, &zone, r#"name: _dr.example.com, type: TXT, ttl: 300, values: ['site=eastus "b"']"#),
        txt_read = r53(&moto, &zone, "name: _dr.example.com, type: TXT"),
    );
    let (out, s) = run(aws_test(), &yaml, 0);

    let first = outputs(&s, "first");
    assert_eq!(first["previous"], Value::Null, "{first:#}");
    assert_eq!(first["status"], "INSYNC");
    assert_eq!(first["changed"], true);
    assert!(first["change_id"].as_str().is_some_and(|c| !c.is_empty()), "{first:#}");
    assert_eq!(first["record"], json!({ "name": "app.example.com.", "type": "A", "ttl": 60, "values": ["192.0.2.10"] }));

    let dns = outputs(&s, "dns");
    assert_eq!(dns["previous"]["values"], json!(["192.0.2.10"]), "{dns:#}");
    assert_eq!(dns["previous"]["ttl"], 60);
    assert_eq!(dns["previous"]["type"], "A");
    assert_eq!(dns["record"]["values"], json!(["198.51.100.7", "198.51.100.8"]));
    assert_eq!(dns["zone_id"], zone.as_str());

    let read = outputs(&s, "read");
    assert_eq!((read["exists"].clone(), read["ttl"].clone()), (json!(true), json!(30)), "{read:#}");
    assert_eq!(read["values"], json!(["198.51.100.7", "198.51.100.8"]));
    let missing = outputs(&s, "missing");
    assert_eq!((missing["exists"].clone(), missing["values"].clone(), missing["ttl"].clone()), (json!(false), json!([]), Value::Null));

    // The failback wrote back what the switch replaced, and reports the switch's values.
    let failback = outputs(&s, "failback");
    assert_eq!(failback["previous"]["values"], json!(["198.51.100.7", "198.51.100.8"]), "{failback:#}");
    assert_eq!(step(&s, "check")["status"], "succeeded");

    // TXT values are written as text and read back as text (Route 53 stores them quoted).
    assert_eq!(outputs(&s, "txt_read")["values"], json!(["site=eastus \"b\""]));

    // The record replaced is in the event log before the change was sent.
    let run_id = process::latest_run(&out.state_dir());
    let logs = process::json(&out.state_dir(), &["logs", &run_id]);
    let note = logs["events"].as_array().unwrap().iter().find(|e| e["kind"] == "note" && e["step"] == "dns").cloned().unwrap_or_default();
    assert_eq!(note["data"]["previous"]["values"], json!(["192.0.2.10"]), "{logs:#}");
}

#[test]
fn a_delete_removes_the_record_it_reads_only_if_it_holds_the_values_and_a_second_finds_nothing() {
    let moto = Moto::start();
    let zone = moto.route53_zone("example.net");
    let yaml = format!(
        r#"version: 1
name: dns-cleanup
steps:
  create:
    uses: route53.upsert
    with: {create}
  guarded:
    needs: [create]
    uses: route53.delete
    continue_on_error: true
    with: {guarded}
  delete:
    needs: [guarded]
    uses: route53.delete
    with: {delete}
  again:
    needs: [delete]
    uses: route53.delete
    with: {again}
  read:
    needs: [again]
    uses: route53.get
    with: {read}
"#,
        create = r53(&moto, &zone, "name: dr.example.net, type: A, ttl: 120, values: [203.0.113.5, 203.0.113.6]"),
        guarded = r53(&moto, &zone, "name: dr.example.net, type: A, values: [203.0.113.5]"),
        delete = r53(&moto, &zone, "name: DR.example.net., type: a, values: [203.0.113.6, 203.0.113.5]"),
        again = r53(&moto, &zone, "name: dr.example.net, type: A"),
        read = r53(&moto, &zone, "name: dr.example.net, type: A"),
    );
    let (out, s) = run(aws_test(), &yaml, 0);

    // A record that does not hold the values given is left alone, and the step says why.
    let guarded = step(&s, "guarded");
    assert_eq!(guarded["status"], "failed", "{guarded:#}");
    assert_eq!(guarded["attempts"], 1, "not retried: {guarded:#}");
    assert!(guarded["error"].as_str().unwrap().contains("not deleted"), "{guarded:#}");

    let delete = outputs(&s, "delete");
    assert_eq!(delete["deleted"], true, "{delete:#}");
    assert_eq!(delete["status"], "INSYNC");
    assert_eq!(delete["previous"], json!({ "name": "dr.example.net.", "type": "A", "ttl": 120, "values": ["203.0.113.5", "203.0.113.6"] }));
    let again = outputs(&s, "again");
    assert_eq!((again["deleted"].clone(), again["previous"].clone(), again["change_id"].clone()), (json!(false), Value::Null, Value::Null));
    assert_eq!(outputs(&s, "read")["exists"], false);

    // What was deleted is in the event log before the change was sent.
    let run_id = process::latest_run(&out.state_dir());
    let logs = process::json(&out.state_dir(), &["logs", &run_id]);
    let note =
        logs["events"].as_array().unwrap().iter().find(|e| e["kind"] == "note" && e["step"] == "delete").cloned().unwrap_or_default();
    assert_eq!(note["data"]["previous"]["ttl"], 120, "{logs:#}");
}

#[test]
fn an_upsert_waits_for_insync_and_a_change_still_pending_fails_without_a_retry() {
    let moto = Moto::start();
    let zone = moto.route53_zone("example.org");
    moto.route53_pending(2);
    let yaml = format!(
        "version: 1\nname: wait\nsteps:\n  slow:\n    uses: route53.upsert\n    with: {}\n",
        r53(&moto, &zone, "name: www.example.org, type: CNAME, ttl: 60, values: [dr.example.net]")
    );
    let (out, s) = run(aws_test(), &yaml, 0);
    assert_eq!(outputs(&s, "slow")["status"], "INSYNC");
    let log = log_of(&out, "slow");
    assert!(log.contains("waiting up to 5m for change") && log.contains("is INSYNC"), "{log}");

    moto.route53_pending(-1);
    let yaml = format!(
        "version: 1\nname: stuck\nsteps:\n  stuck:\n    uses: route53.upsert\n    retry: {{ attempts: 3, delay: 100ms }}\n    with: {}\n  nowait:\n    uses: route53.upsert\n    with: {}\n",
        r53(&moto, &zone, "name: www.example.org, type: CNAME, ttl: 60, values: [dr2.example.net], wait_timeout: 2s"),
        r53(&moto, &zone, "name: api.example.org, type: CNAME, ttl: 60, values: [dr.example.net], wait: false"),
    );
    let (_, s) = run(aws_test(), &yaml, 1);
    let stuck = step(&s, "stuck");
    assert_eq!(stuck["status"], "failed", "{stuck:#}");
    assert_eq!(stuck["attempts"], 1, "a change Route 53 accepted is not sent again: {stuck:#}");
    let error = stuck["error"].as_str().unwrap_or_default();
    assert!(error.contains("is still PENDING after 2s") && error.contains("`previous` is in the step's outputs"), "{error}");
    assert_eq!(stuck["outputs"]["previous"]["values"], json!(["dr.example.net"]), "{stuck:#}");
    assert_eq!(stuck["outputs"]["status"], "PENDING");
    assert_eq!(outputs(&s, "nowait")["status"], "PENDING");
}
