//! What each action says it changes (`Action::targets`, for drills): shown by
//! `phoenix plugins NAME`, and never carrying a secret from the rendered `with`.

use serde_json::{Value, json};

use crate::support::Test;

#[test]
fn plugins_name_shows_what_a_drill_can_tell_of_the_targets() {
    let shown = |name: &str| Test::new().args(["plugins", name]).run().success();
    shown("route53.upsert").stdout_contains("Targets (what a drill checks): the record: `DNS NAME TYPE in zone ZONE`");
    shown("exec").stdout_contains("Targets (what a drill checks): for a `cmd` argv of helm").stdout_contains("nothing for a `script`");
    shown("storage.sync").stdout_contains("Targets (what a drill checks): the destination (`to`) only");
    shown("storage.lag").stdout_contains("Targets (what a drill checks): none: it only reads");
    shown("notify").stdout_contains("Targets (what a drill checks): none declared: a drill cannot tell what it changes");
    let json = Test::new().args(["plugins", "postgres.replicate", "--output", "json"]).run().success().stdout_json();
    assert!(json["targets"].as_str().is_some_and(|t| t.contains("never the user or password")), "{json:#}");
}

const PASSWORD: &str = "Hunter2Secret";
/// A base64 key (an Azure access key's shape) holding the password.
const KEY: &str = "SHVudGVyMlNlY3JldA==";

/// A rendered `with` holding the secret in every field an action could take it from.
fn secret_with() -> Value {
    let dsn = format!("postgresql://admin:{PASSWORD}@db.prod.internal:5432/app?password={PASSWORD}");
    json!({
        "dsn": dsn, "source": dsn,
        "target": format!("host=db.drill port=6432 user=admin password='{PASSWORD}' dbname=app"),
        "connection_string": format!("AccountName=prod;AccountKey={KEY};BlobEndpoint=http://admin:{PASSWORD}@127.0.0.1:10000/prod"),
        "access_key": KEY, "sas_token": format!("sv=1&sig={PASSWORD}"),
        "container": "assets", "name": "x", "body": PASSWORD, "bucket": "prod-assets", "key": "k",
        "zone_id": "Z1", "type": "A", "ttl": 60, "values": ["10.0.0.1"],
        "method": "POST", "url": format!("https://admin:{PASSWORD}@api.example.com/v1/drain?token={PASSWORD}"),
        "headers": { "authorization": PASSWORD },
        "from": "s3://prod-assets", "to": "azblob://dr-assets",
        "azure": { "connection_string": format!("AccountName=dr;AccountKey={KEY}") },
        "via": ["s3://stage/dump", "azblob://stage/dump"],
        "cmd": ["helm", "upgrade", "web", "chart", "--password", PASSWORD, "--kube-context", "east", "-n", "prod"],
        "env": { "TF_VAR_password": PASSWORD },
    })
}

#[test]
fn no_target_of_any_action_carries_a_secret_of_its_with() {
    let with = secret_with();
    let mut seen = 0;
    for action in phoenix_plugins::registry() {
        for t in action.targets(&with) {
            seen += 1;
            let forms = format!("{t}\n{t:?}\n{}", serde_json::to_string(&t).unwrap());
            for secret in [PASSWORD, KEY, "admin"] {
                assert!(!forms.contains(secret), "{}: a target holds `{secret}`:\n{forms}", action.info().name);
            }
        }
    }
    // The with above reaches every kind the secret could travel through.
    assert!(seen >= 12, "only {seen} targets: the with does not exercise the actions");
    let replicate = phoenix_plugins::find("postgres.replicate").unwrap().targets(&with);
    let shown: Vec<String> = replicate.iter().map(ToString::to_string).collect();
    assert_eq!(shown[0], "database app on db.drill:6432");
}
