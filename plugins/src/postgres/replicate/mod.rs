//! `postgres.replicate`: copies a database with the PostgreSQL programs themselves.
//!
//! `input` reads `with` and decides how the dump is staged → `tools` finds pg_dump and
//! pg_restore → `command` builds their command lines (no password on them) → `transfer`
//! runs them in one process group (streamed, through a directory, or through a file), where
//! `kept` lets a finished dump on disk outlive a failed or killed attempt → `verify` counts
//! the target's tables and compares row counts.

mod command;
mod group;
mod input;
mod kept;
mod tools;
mod transfer;
mod verify;

use std::time::Instant;

use serde_json::{Value, json};

pub use input::{ReplicateInput, Via, ViaFile};

/// Whether pg_dump and pg_restore are found as a step would find them (for tests that need them).
#[cfg(test)]
pub(crate) fn tools_on_path() -> Option<()> {
    tools::locate(None).ok().map(|_| ())
}

use super::dsn::Dsn;
use super::plan_dsn_at;
use super::session::connect;
use crate::duration::Dur;
use crate::{ActionCtx, ActionError, ActionInfo, Capabilities, Effect, Field, Issue, Kind, Plugin, Stream, Target};
use command::{Format, Job};
use input::Staging;

/// Copies a database from `source` to `target` with pg_dump and pg_restore.
pub struct Replicate;

impl Plugin for Replicate {
    type Input = ReplicateInput;
    fn info(&self) -> ActionInfo {
        ActionInfo {
            name: "postgres.replicate",
            summary: "Copies a PostgreSQL database: pg_dump streamed into pg_restore --clean (or staged in a directory for parallel jobs, or in a file), then compares row counts.",
            kind: Kind::Plugin,
            outputs: &[
                Field { name: "tables", doc: "user tables in the target after the restore (information_schema, system schemas excluded)" },
                Field {
                    name: "rows",
                    doc: "for each of `verify_tables`, its row count (the same on both sides); {} without `verify_tables`",
                },
                Field { name: "bytes", doc: "the dump's size: streamed through Phoenix, or on disk for a directory or a file" },
                Field { name: "duration_ms", doc: "how long the copy and the verification took" },
                Field { name: "format", doc: "the dump's format: `custom` (streamed, or a file) or `directory` (jobs > 1)" },
                Field { name: "verified", doc: "whether `verify_tables` were counted and all matched (false when none were listed)" },
                Field { name: "file", doc: "the kept dump file with `via: { file }`, else null" },
                Field {
                    name: "dump_reused",
                    doc: "true when an earlier attempt's finished dump was restored without dumping again (see `reuse_dump`)",
                },
                Field {
                    name: "snapshot_at",
                    doc: "when the restored dump's pg_dump started (its snapshot), in ms since the epoch: the target lacks what the source wrote after it",
                },
            ],
            caps: Capabilities { probe: false, effect: Effect::Idempotent, general: false, spawns: true, network: true },
            example: "replicate_db:\n  uses: postgres.replicate\n  timeout: 30m\n  with:\n    source: \"{{ secrets.source_dsn }}\"\n    target: \"{{ secrets.target_dsn }}\"\n    jobs: 4\n    verify_tables: [users, public.orders]",
        }
    }

    fn check(&self, with: &Value) -> Vec<Issue> {
        input::check(with)
    }

    fn targets(&self, with: &Value) -> Vec<Target> {
        let mut targets = with.get("target").and_then(Value::as_str).map(super::dsn::targets).unwrap_or_default();
        // Objects the dump is staged in are written too.
        let via = match with.get("via") {
            Some(Value::String(url)) => vec![url.as_str()],
            Some(Value::Array(urls)) => urls.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        targets.extend(via.into_iter().filter_map(|url| crate::storage::location_target(url, with.get("azure"))));
        targets
    }
    fn targets_doc(&self) -> &'static str {
        "the `target` database (host, port, dbname; never the user or password), and the buckets or containers of `via`"
    }

    fn plan(&self, with: &Value) -> String {
        let (source, target) = (plan_dsn_at(with, "source"), plan_dsn_at(with, "target"));
        let jobs = with.get("jobs").map_or_else(|| "1".to_string(), |j| j.as_str().map_or_else(|| j.to_string(), str::to_string));
        let how = match with.get("via") {
            Some(Value::Object(o)) => {
                let file = o.get("file").and_then(Value::as_str).unwrap_or("?");
                format!("pg_dump --format=custom into {file} (kept), then pg_restore --clean --if-exists --no-owner --jobs={jobs} from it")
            }
            Some(Value::String(url)) => {
                format!("pg_dump --format=custom, uploaded to {url}, downloaded, then pg_restore --clean --if-exists --no-owner")
            }
            Some(Value::Array(urls)) => {
                let hops: Vec<String> = urls.iter().map(|u| u.as_str().unwrap_or("?").to_string()).collect();
                format!("pg_dump --format=custom, staged through {}, then pg_restore --clean --if-exists --no-owner", hops.join(" → "))
            }
            _ if jobs == "1" => "pg_dump --format=custom | pg_restore --clean --if-exists --no-owner, streamed".to_string(),
            _ => format!(
                "pg_dump --format=directory --jobs={jobs} into a temporary directory, then pg_restore --clean --if-exists --no-owner --jobs={jobs}"
            ),
        };
        let mut plan = format!("copy {source} to {target}: {how}");
        if let Some(tables) = with.get("verify_tables").and_then(Value::as_array).filter(|t| !t.is_empty()) {
            let names: Vec<String> = tables.iter().map(|t| t.as_str().map_or_else(|| t.to_string(), str::to_string)).collect();
            plan += &format!("; then compare the row counts of {}", names.join(", "));
        }
        plan
    }

    async fn run(&self, ctx: &ActionCtx, input: ReplicateInput) -> Result<Value, ActionError> {
        let started = Instant::now();
        let source = Dsn::parse(&input.source).map_err(|e| ActionError::Input(e.replace("`dsn`", "`source`")))?;
        let target = Dsn::parse(&input.target).map_err(|e| ActionError::Input(e.replace("`dsn`", "`target`")))?;
        if input::same_database(&source, &target) {
            return Err(ActionError::Input(input::same_message(&target)));
        }
        let staging = input.staging().map_err(ActionError::Input)?;
        if input.pg_bin.as_deref().is_some_and(|p| p.trim().is_empty()) {
            return Err(ActionError::Input("`pg_bin` is empty".into()));
        }
        let tools = tools::locate(input.pg_bin.as_deref()).map_err(|message| ActionError::Failed {
            message,
            outputs: None,
            retryable: false,
            before_effect: false,
        })?;
        ctx.log(Stream::Info, format!("using {} and {}", tools::version(&tools.pg_dump).await, tools::version(&tools.pg_restore).await));
        let wait = input.connect_timeout.map(Dur::get);
        let job = Job {
            tools,
            source: &source,
            target: &target,
            input: &input,
            jobs: input.jobs.unwrap_or(1),
            connect_timeout: wait,
            reuse: input.reuse_dump.map_or(input::REUSE_DUMP, Dur::get),
        };

        // Streamed or staged in objects, the snapshot is taken as pg_dump starts, now.
        let begun = kept::now_ms();
        let fresh = |bytes| transfer::Dumped { bytes, snapshot_at: begun, reused: false, kept: None };
        let (dumped, format, file) = match &staging {
            Staging::Stream => (fresh(transfer::stream(ctx, &job).await?), Format::Custom, None),
            Staging::Directory => (transfer::through_directory(ctx, &job).await?, Format::Directory, None),
            Staging::File(path) => {
                let path = std::path::absolute(path).map_err(|e| ActionError::Input(format!("`via.file` ({}): {e}", path.display())))?;
                (transfer::through_file(ctx, &job, &path).await?, Format::Custom, Some(path))
            }
            Staging::Object(hops) => (fresh(transfer::through_objects(ctx, &job, hops).await?), Format::Custom, None),
        };
        let bytes = dumped.bytes;
        ctx.log(
            Stream::Info,
            format!(
                "restored {} → {}: {} in {}ms",
                source.described,
                target.described,
                crate::size::format_bytes(bytes),
                started.elapsed().as_millis()
            ),
        );

        let session = connect(ctx, &target, target.connect_timeout(wait)).await?;
        let tables = verify::user_tables(ctx, &session, &target).await?;
        let mut outputs = json!({
            "tables": tables,
            "rows": {},
            "bytes": bytes,
            "duration_ms": 0,
            "format": format.name(),
            "verified": false,
            "file": file.map(|f| f.display().to_string()),
            "dump_reused": dumped.reused,
            "snapshot_at": dumped.snapshot_at,
        });
        if !input.verify_tables.is_empty() {
            let counts = verify::compare(ctx, &source, &target, &session, &input.verify_tables, source.connect_timeout(wait)).await?;
            match verify::judge(ctx, &counts) {
                Ok(rows) => {
                    outputs["rows"] = rows;
                    outputs["verified"] = json!(true);
                }
                Err((message, found)) => {
                    // The source differs from what the dump holds: the next attempt dumps again.
                    forget(ctx, &staging, &dumped);
                    outputs["rows"] = found["rows"].clone();
                    outputs["mismatches"] = found["mismatches"].clone();
                    outputs["duration_ms"] = json!(started.elapsed().as_millis() as u64);
                    return Err(ActionError::Failed { message, outputs: Some(outputs), retryable: true, before_effect: false });
                }
            }
        }
        forget(ctx, &staging, &dumped);
        outputs["duration_ms"] = json!(started.elapsed().as_millis() as u64);
        Ok(outputs)
    }
}

/// Once the target is verified (or found to differ), no later attempt restores this dump:
/// a directory is deleted, a kept file loses its manifest.
fn forget(ctx: &ActionCtx, staging: &Staging, dumped: &transfer::Dumped) {
    let Some(kept) = &dumped.kept else { return };
    if *staging == Staging::Directory {
        kept.remove();
        if let Some(parent) = kept.dump.parent() {
            let _ = std::fs::remove_dir(parent); // `dumps/`, when no other step keeps one
        }
        ctx.log(Stream::Info, format!("removed {}", kept.dump.display()));
    } else {
        kept.unseal();
    }
}
