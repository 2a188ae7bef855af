//! Phoenix's integration tests: one binary that drives the real `phoenix` executable
//! through the fluent harness in `support`, one module per feature.

#[path = "support/azurite.rs"]
mod azurite;
#[path = "support/cdp.rs"]
mod cdp;
#[path = "support/chromium.rs"]
mod chromium;
#[path = "support/cluster.rs"]
mod cluster_support;
#[path = "support/health_server.rs"]
mod health_server;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/postgres.rs"]
mod postgres;
#[path = "support/process.rs"]
mod process;
#[path = "support/prometheus_server.rs"]
mod prometheus_server;
#[path = "support/scripted.rs"]
mod scripted;
#[path = "support/serve.rs"]
mod serve_support;
#[path = "support/stub_http.rs"]
mod stub_http;
mod support;

// One module per feature file (`tests/<feature>.rs`), in alphabetical order.
// Add new features here: `mod run;`, `mod resume;`, `mod locks;`, …
mod analysis_gate;
mod approval;
mod approval_policy;
mod attacks;
mod audit;
mod aws_data;
mod aws_health;
mod aws_probes;
mod azure_blob;
mod child_runs;
mod cluster;
mod cluster_status;
mod control;
mod display;
mod dr_failover;
mod drill;
mod drill_alert;
mod drill_child;
mod drill_sandbox;
mod drill_serve;
mod drill_stored;
mod dry_run;
mod edited_resume;
mod effects;
mod evidence_plugins;
mod exec_plugin;
mod exec_shell_safety;
mod finish;
mod forwarding;
mod full_disk;
mod graph;
mod hangup;
mod health;
mod health_seed;
mod http_plugin;
mod invariants;
mod llm;
mod locks;
mod loki_query;
mod notify;
mod observer;
mod output_kept;
mod page;
mod page_drill;
mod plugins_cli;
mod postgres_probe;
mod postgres_replicate;
mod prometheus_query;
mod report;
mod resume;
mod retries;
mod route53;
mod run;
mod runbooks;
mod say_why;
mod schema;
mod secret_stores;
mod serve;
mod stale_decision;
mod state;
mod storage_lag;
mod storage_sync;
mod targets;
mod tracing;
mod validate;
mod watch;
mod workdir;
