//! A drill refuses a target named in `protect` (in any of its spellings) or shared with
//! production, and nothing else; it never shows a protected DSN's password.

use phoenix_plugins::Target;

use super::{Collision, StepTargets, Why, collisions};

fn step(id: &str, targets: Vec<Target>) -> StepTargets {
    StepTargets { step: id.into(), targets }
}

fn protect(entries: &[&str]) -> Vec<String> {
    entries.iter().map(|e| e.to_string()).collect()
}

/// The entries that refuse `target` (each alone), out of `entries`.
fn refusing(target: Target, entries: &[&str]) -> Vec<String> {
    entries
        .iter()
        .filter(|e| !collisions(&[step("s", vec![target.clone()])], &[], &protect(&[e])).is_empty())
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn dns_names_match_without_case_or_final_dot() {
    let t = Target::dns("Z123", "app.example.com.", "A");
    let all = ["app.example.com", "APP.example.com.", " App.Example.Com ", "www.example.com", "example.com", "app.example.co"];
    assert_eq!(refusing(t, &all), ["app.example.com", "APP.example.com.", " App.Example.Com "]);
}

#[test]
fn buckets_and_containers_by_name_url_or_account() {
    let b = Target::s3_bucket("prod-assets");
    // Another scheme's URL names another kind of store.
    assert_eq!(
        refusing(b, &["prod-assets", "s3://prod-assets/", "azblob://prod-assets", "prod", "dr-assets"]),
        ["prod-assets", "s3://prod-assets/"]
    );
    let c = Target::blob_container("https://prodacct.blob.core.windows.net", "prodacct", "assets");
    assert_eq!(
        refusing(c, &["assets", "azblob://assets", "prodacct/assets", "otheracct/assets", "s3://assets", "asset"]),
        ["assets", "azblob://assets", "prodacct/assets"]
    );
}

#[test]
fn databases_by_host_and_name_or_by_dsn_never_showing_its_password() {
    let db = Target::database("db.prod.internal", 5432, "app");
    let entries = [
        "db.prod.internal/app",
        "DB.prod.internal:5432/app",
        "postgresql://admin:hunter2@db.prod.internal/app",
        "host=db.prod.internal user=admin password=hunter2 dbname=app",
        "db.prod.internal:6432/app",
        "db.prod.internal/other",
        // Exact hosts: an alias is not the same spelling (documented).
        "10.0.0.5/app",
        "app",
    ];
    assert_eq!(refusing(db.clone(), &entries), entries[..4]);
    let found = collisions(&[step("restore", vec![db])], &[], &protect(&["postgresql://admin:hunter2@db.prod.internal:5432/app"]));
    let shown = format!("{} {:?}", found[0], found[0]);
    assert!(!shown.contains("hunter2") && !shown.contains("admin"), "{shown}");
    assert_eq!(
        found[0].to_string(),
        "step `restore` would change database app on db.prod.internal:5432, which is in `protect` (`db.prod.internal:5432/app`)"
    );
    // `localhost` is not `127.0.0.1`: no name is resolved.
    assert!(refusing(Target::database("127.0.0.1", 5432, "app"), &["localhost:5432/app", "localhost/app"]).is_empty());
}

#[test]
fn releases_namespaces_directories_and_endpoints() {
    let rel = Target::helm_release("east", "prod", "web");
    assert_eq!(
        refusing(rel, &["east/prod/web", "prod/web", "Prod/Web", "web", "west/prod/web", "drill/web"]),
        ["east/prod/web", "prod/web", "Prod/Web"]
    );
    let ns = Target::kube_namespace("east", "prod");
    assert_eq!(refusing(ns, &["prod", "east/prod", "west/prod", "drill"]), ["prod", "east/prod"]);
    // `kubectl -A` changes every namespace of its context, protected ones among them.
    let every = Target::kube_namespace("east", "*");
    assert_eq!(refusing(every, &["prod", "east/prod", "west/prod", "app.example.com", "east/a/b"]), ["prod", "east/prod"]);
    // A namespace left to kubeconfig has no name to protect; only production can refuse it.
    assert!(refusing(Target::kube_namespace("", ""), &["", "/", "default"]).is_empty());
    let tf = Target::terraform_dir("/srv/tf/aws", "");
    assert_eq!(refusing(tf, &["/srv/tf/aws/", "/srv/tf/azure/../aws", "/srv/tf", "aws"]), ["/srv/tf/aws/", "/srv/tf/azure/../aws"]);
    let here = std::env::current_dir().unwrap();
    let tf = Target::terraform_dir(&here.join("infra").display().to_string(), "");
    assert_eq!(refusing(tf, &["./infra", "infra/", "../infra"]), ["./infra"]);
    let http = Target::http_endpoint("POST", "https://lb.example.com/v1/drain");
    assert_eq!(
        refusing(http, &["lb.example.com", "lb.example.com/v1/drain", "lb.example.com/v1", "example.com"]),
        ["lb.example.com", "lb.example.com/v1/drain"]
    );
}

#[test]
fn what_production_resolves_to_is_refused_from_any_step() {
    let prod = [
        step("switch_dns", vec![Target::dns("Z1", "app.example.com", "A")]),
        step("restore", vec![Target::database("db.prod", 5432, "app")]),
    ];
    let drill = [
        // The overlay changed the record: fine.
        step("switch_dns", vec![Target::dns("Z1", "drill-app.example.com", "A")]),
        // The overlay forgot the DSN: refused.
        step("restore", vec![Target::database("db.prod", 5432, "app")]),
        // Another step that writes to production's record: refused, naming production's step.
        step("cleanup", vec![Target::dns("/hostedzone/Z1", "APP.example.com.", "a")]),
        // Same name, other zone: another record.
        step("other_zone", vec![Target::dns("Z2", "app.example.com", "A")]),
    ];
    let found = collisions(&drill, &prod, &[]);
    assert_eq!(
        found,
        vec![
            Collision {
                step: "restore".into(),
                target: Target::database("db.prod", 5432, "app"),
                why: Why::Production { step: "restore".into() }
            },
            Collision {
                step: "cleanup".into(),
                target: Target::dns("Z1", "app.example.com", "A"),
                why: Why::Production { step: "switch_dns".into() }
            },
        ]
    );
    assert_eq!(found[0].to_string(), "step `restore` would change database app on db.prod:5432, which is what production resolves to");
    assert_eq!(
        found[1].to_string(),
        "step `cleanup` would change DNS app.example.com A in zone Z1, which is what production resolves to (in step `switch_dns`)"
    );
}

#[test]
fn a_target_both_protected_and_shared_is_reported_for_both_reasons_and_a_clean_drill_for_none() {
    let t = Target::s3_bucket("prod-assets");
    let found = collisions(&[step("sync", vec![t.clone()])], &[step("sync", vec![t.clone()])], &protect(&["prod-assets"]));
    let whys: Vec<&Why> = found.iter().map(|c| &c.why).collect();
    assert_eq!(whys, [&Why::Protected { entry: "prod-assets".into() }, &Why::Production { step: "sync".into() }]);
    let clean = collisions(
        &[step("sync", vec![Target::s3_bucket("drill-assets")])],
        &[step("sync", vec![t])],
        &protect(&["prod-assets", "app.example.com"]),
    );
    assert!(clean.is_empty(), "{clean:?}");
}
