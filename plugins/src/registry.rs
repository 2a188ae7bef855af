//! The one table of actions.

use crate::Action;
use crate::analysis::{Analyze, Llm};
use crate::aws::{EksNodegroups, HealthEvents, Reachable, Route53Delete, Route53Get, Route53Upsert, S3Delete, S3Get, S3List, S3Put};
use crate::azure::{BlobDelete, BlobGet, BlobList, BlobPut};
use crate::builtin::{Approval, Assert, Noop, RunbookAction, Sleep};
use crate::evidence::{LokiQuery, PrometheusQuery, Statuspage};
use crate::net::{Http, Notify};
use crate::postgres::{Query as PostgresQuery, Replicate as PostgresReplicate, ReplicationLag};
use crate::storage::{StorageLag, StorageSync};
use crate::system::Exec;

static NOOP: Noop = Noop;
static SLEEP: Sleep = Sleep;
static ASSERT: Assert = Assert;
static APPROVAL: Approval = Approval;
static RUNBOOK: RunbookAction = RunbookAction;
static EXEC: Exec = Exec;
static STORAGE_SYNC: StorageSync = StorageSync;
static STORAGE_LAG: StorageLag = StorageLag;
static HTTP: Http = Http;
static NOTIFY: Notify = Notify;
static POSTGRES_QUERY: PostgresQuery = PostgresQuery;
static POSTGRES_REPLICATION_LAG: ReplicationLag = ReplicationLag;
static POSTGRES_REPLICATE: PostgresReplicate = PostgresReplicate;
static AWS_EKS_NODEGROUPS: EksNodegroups = EksNodegroups;
static AWS_REACHABLE: Reachable = Reachable;
static AWS_HEALTH_EVENTS: HealthEvents = HealthEvents;
static AZURE_BLOB_PUT: BlobPut = BlobPut;
static AZURE_BLOB_GET: BlobGet = BlobGet;
static AZURE_BLOB_LIST: BlobList = BlobList;
static AZURE_BLOB_DELETE: BlobDelete = BlobDelete;
static S3_PUT: S3Put = S3Put;
static S3_GET: S3Get = S3Get;
static S3_LIST: S3List = S3List;
static S3_DELETE: S3Delete = S3Delete;
static ROUTE53_UPSERT: Route53Upsert = Route53Upsert;
static ROUTE53_GET: Route53Get = Route53Get;
static ROUTE53_DELETE: Route53Delete = Route53Delete;
static LLM: Llm = Llm;
static INCIDENT_ANALYZE: Analyze = Analyze;
static STATUSPAGE: Statuspage = Statuspage;
static PROMETHEUS_QUERY: PrometheusQuery = PrometheusQuery;
static LOKI_QUERY: LokiQuery = LokiQuery;

static REGISTRY: &[(&str, &(dyn Action + 'static))] = &[
    ("noop", &NOOP),
    ("sleep", &SLEEP),
    ("assert", &ASSERT),
    ("approval", &APPROVAL),
    ("runbook", &RUNBOOK),
    ("exec", &EXEC),
    ("http", &HTTP),
    ("notify", &NOTIFY),
    ("postgres.query", &POSTGRES_QUERY),
    ("postgres.replication_lag", &POSTGRES_REPLICATION_LAG),
    ("postgres.replicate", &POSTGRES_REPLICATE),
    ("aws.eks_nodegroups", &AWS_EKS_NODEGROUPS),
    ("aws.reachable", &AWS_REACHABLE),
    ("aws.health_events", &AWS_HEALTH_EVENTS),
    ("azure_blob.put", &AZURE_BLOB_PUT),
    ("azure_blob.get", &AZURE_BLOB_GET),
    ("azure_blob.list", &AZURE_BLOB_LIST),
    ("azure_blob.delete", &AZURE_BLOB_DELETE),
    ("storage.sync", &STORAGE_SYNC),
    ("storage.lag", &STORAGE_LAG),
    ("s3.put", &S3_PUT),
    ("s3.get", &S3_GET),
    ("s3.list", &S3_LIST),
    ("s3.delete", &S3_DELETE),
    ("route53.upsert", &ROUTE53_UPSERT),
    ("route53.get", &ROUTE53_GET),
    ("route53.delete", &ROUTE53_DELETE),
    ("llm", &LLM),
    ("incident.analyze", &INCIDENT_ANALYZE),
    ("statuspage", &STATUSPAGE),
    ("prometheus.query", &PROMETHEUS_QUERY),
    ("loki.query", &LOKI_QUERY),
];

/// Every action, built-ins first.
pub fn registry() -> impl Iterator<Item = &'static dyn Action> {
    REGISTRY.iter().map(|(_, a)| *a)
}

/// The action named in `uses`.
pub fn find(name: &str) -> Option<&'static dyn Action> {
    REGISTRY.iter().find(|(n, _)| *n == name).map(|(_, a)| *a)
}

/// Every action's name.
pub fn names() -> impl Iterator<Item = &'static str> + Clone {
    REGISTRY.iter().map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Effect;

    #[test]
    fn names_match_info_and_every_action_has_an_object_schema() {
        for (name, action) in REGISTRY {
            let info = action.info();
            assert_eq!(*name, info.name);
            let schema = serde_json::to_value(action.input_schema()).unwrap();
            assert_eq!(schema["type"], "object", "{name}: `with` must be an object schema");
            assert!(!info.summary.is_empty(), "{name} needs a summary");
            assert!(!info.example.is_empty(), "{name} needs an example");
        }
    }

    #[test]
    fn every_action_that_changes_something_says_what_unless_listed() {
        // A notification goes to people, not to a system a drill could break.
        const SILENT: &[&str] = &["notify"];
        for (name, action) in REGISTRY {
            let changes = action.info().caps.effect > Effect::Read;
            assert_eq!(changes && !SILENT.contains(name), !action.targets_doc().is_empty(), "{name}: effect and targets_doc disagree");
        }
    }
}
