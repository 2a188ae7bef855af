//! Starting and resuming runs in the server: each run is a task; the caller gets its id once
//! its state is durable, or the reason it could not start.

use std::sync::Arc;

use phoenix_engine::Runbook;
use phoenix_engine::exec::{Outcome, ResumeOptions, RunError, StartOptions};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::App;

type RunTask = JoinHandle<Result<Outcome, RunError>>;

/// Starts a run of `rb`; its id once it has started.
pub(crate) async fn launch(app: &App, rb: Arc<Runbook>, opts: StartOptions) -> Result<String, RunError> {
    let _one_at_a_time = app.launching.lock().await;
    let (id_tx, id_rx) = oneshot::channel::<String>();
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let engine = app.engine.clone();
    let mut task: RunTask = tokio::spawn(async move {
        engine
            .start_with(rb, opts, move |id| {
                let _ = id_tx.send(id);
                go_rx
            })
            .await
    });
    let Ok(id) = id_rx.await else {
        return Err(ended(task.await));
    };
    let started = app.observer.expect_start(&id);
    let _ = go_tx.send(());
    settle(started, &mut task).await?;
    app.tasks.lock().expect("poisoned").push(task);
    Ok(id)
}

/// Resumes a run that no process drives. `Some(why)`: the resume halted before the run
/// started again, asking the operator (a non-idempotent step stopped mid-way): nothing ran.
pub(crate) async fn resume(app: &App, id: &str, opts: ResumeOptions) -> Result<Option<String>, RunError> {
    let _one_at_a_time = app.launching.lock().await;
    if app.engine.in_progress(id) {
        return Err(RunError::BadInput(format!("run {id} is in progress in `phoenix serve`: nothing to resume (phoenix status {id})")));
    }
    let started = app.observer.expect_start(id);
    let engine = app.engine.clone();
    let run = id.to_string();
    let mut task: RunTask = tokio::spawn(async move { engine.resume(&run, opts).await });
    tokio::select! {
        // A run that started and then halted (an approval) has started: that comes first.
        biased;
        _ = started => {}
        r = &mut task => return match r {
            Ok(Ok(Outcome::Halted(why))) => Ok(Some(why)),
            Ok(Ok(_)) => Ok(None),
            other => Err(ended(other)),
        },
    }
    app.tasks.lock().expect("poisoned").push(task);
    Ok(None)
}

/// Waits until the run has started, or its task has ended (an error before it started).
async fn settle(started: oneshot::Receiver<()>, task: &mut RunTask) -> Result<(), RunError> {
    tokio::select! {
        _ = started => Ok(()),
        r = &mut *task => match r {
            Ok(Ok(_)) => Ok(()),
            other => Err(ended(other)),
        },
    }
}

fn ended(r: Result<Result<Outcome, RunError>, tokio::task::JoinError>) -> RunError {
    match r {
        Ok(Err(e)) => e,
        Ok(Ok(_)) => RunError::BadInput("the run ended before it started".into()),
        Err(e) => RunError::BadInput(format!("the run's task failed: {e}")),
    }
}
