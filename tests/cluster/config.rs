//! serve.yaml's `store:` and `ha:`: checked before anything listens.

use crate::support::Test;

#[test]
fn bad_cluster_settings_are_refused_with_where_and_how() {
    let cases = [
        ("ha:\n  node: \"dr eu\"\n", "ha.node"),
        ("ha:\n  lease_ttl: 500ms\n", "ha.lease_ttl"),
        ("ha:\n  advertise: 10.0.1.5:8080\n", "ha.advertise"),
        ("ha:\n  leader: yes\n", "leader"),
        ("store: mysql://db\n", "is not a store"),
    ];
    for (yaml, says) in cases {
        Test::new()
            .file("runbooks/.keep", "")
            .file("serve.yaml", yaml)
            .args(["serve", "--config", "serve.yaml", "--check"])
            .run()
            .code(2)
            .stderr_contains(says);
    }
    Test::new()
        .file("runbooks/.keep", "")
        .file("serve.yaml", "ha:\n  node: dr-eu-west-1\n  advertise: http://10.0.1.5:8080\n  lease_ttl: 4s\n")
        .args(["serve", "--config", "serve.yaml", "--check"])
        .run()
        .success();
}
