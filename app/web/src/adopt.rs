//! Resuming runs other tasks left behind: with a shared DynamoDB store, each task looks for
//! running runs whose lease expired (their task died, or handed them back at SIGTERM), takes
//! the lease with a conditional write, and resumes the run from its stored rows.
//!
//! Invariant: a run is resumed only by the task whose conditional lease write succeeded, so two
//! tasks never execute one run; what was stored stays, and only missing rows are evaluated.
//!
//! Poison runs: each adoption of a run whose task died (not one handed back at SIGTERM) is
//! counted in the run's stored summary (`restarts`); the adoption that would be the
//! [`crate::WebConfig::max_run_restarts`]-th marks the run failed with the reason instead, so a
//! run that takes its task down cannot take every task down one after another.

use std::sync::Arc;

use crate::state::AppState;
use engine::plan::{EvalRequest, build_plan};
use store::{RunStatus, UserId};

/// Takes and resumes every orphaned run it can; returns the ids of the runs resumed. Failures
/// are logged and the run is left for a later round (or marked failed when it cannot be
/// planned again).
pub async fn adopt_orphans(state: &AppState) -> Vec<String> {
    let Some(leases) = state.runs.leases() else {
        return Vec::new();
    };
    let orphans = match state.store.orphaned_runs().await {
        Ok(orphans) => orphans,
        Err(error) => {
            tracing::warn!(error = %store::error_chain(&error), "looking for orphaned runs failed");
            return Vec::new();
        }
    };
    let mut adopted = Vec::new();
    for (owner, run_id) in orphans {
        if state.runs.is_active(&owner, &run_id) {
            continue;
        }
        match state
            .store
            .acquire_lease(&owner, &run_id, &leases.holder, leases.ttl_secs)
            .await
        {
            Ok(true) => {}
            Ok(false) => continue,
            Err(error) => {
                tracing::warn!(run_id = %run_id, error = %store::error_chain(&error), "taking an orphaned run's lease failed");
                continue;
            }
        }
        match adopt(state, &owner, &run_id).await {
            Ok(()) => {
                tracing::info!(run_id = %run_id, "resumed a run whose lease had expired");
                adopted.push(run_id);
            }
            Err(message) => {
                tracing::warn!(run_id = %run_id, error = %message, "an orphaned run cannot be resumed; marking it failed");
                let summary = serde_json::json!({"error": message});
                let _ = state
                    .store
                    .finish_run(&owner, &run_id, RunStatus::Failed, &summary)
                    .await;
            }
        }
    }
    adopted
}

/// How many times tasks died running a run, counting the death that orphaned it now: the
/// stored count, plus one unless the last task handed the run back.
fn task_deaths(summary: Option<&serde_json::Value>) -> u32 {
    let stored = summary
        .and_then(|summary| summary.get("restarts"))
        .and_then(serde_json::Value::as_u64)
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let handed_back = summary
        .and_then(|summary| summary.get("handed_back"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    if handed_back {
        stored
    } else {
        stored.saturating_add(1)
    }
}

async fn adopt(state: &AppState, owner: &UserId, run_id: &str) -> Result<(), String> {
    let run = state
        .store
        .run(owner, run_id)
        .await
        .map_err(|error| error.to_string())?
        .ok_or_else(|| "the run is gone".to_string())?;
    let deaths = task_deaths(run.summary.as_ref());
    if deaths >= state.config.max_run_restarts {
        return Err(format!(
            "the server task running it stopped {deaths} times while it ran, so it is not resumed again (something in the run, such as its template or a record, may bring the task down; the limit is LLM_EVAL_MAX_RUN_RESTARTS = {})",
            state.config.max_run_restarts
        ));
    }
    // A batch run keeps its jobs: this task polls them, never looks for them again.
    let summary = crate::registry::with_batch_state(
        run.summary.as_ref(),
        serde_json::json!({"restarts": deaths}),
    );
    state
        .store
        .finish_run(owner, run_id, RunStatus::Running, &summary)
        .await
        .map_err(|error| error.to_string())?;
    let mut request = EvalRequest::from_config(&run.config)
        .map_err(|error| format!("its configuration cannot be read: {error}"))?;
    // An uploaded dataset lives under the task that received it: fetch this task's copy.
    if !request.dataset.exists()
        && let Some(id) = request.dataset.file_stem().and_then(|stem| stem.to_str())
        && let Some(dataset) = state
            .store
            .dataset(owner, id)
            .await
            .map_err(|error| error.to_string())?
    {
        request.dataset = dataset.path;
    }
    let request = crate::safety::within_server_limits(state, request);
    let plan = build_plan(&request, &state.catalog, &state.providers)
        .await
        .map_err(|error| format!("{}: {error}", error.field.as_str()))?;
    // A batch run polls its jobs again (never calls its models a second time).
    if run.config.get("mode").and_then(|mode| mode.as_str()) == Some("batch") {
        return state
            .runs
            .adopt_batch(
                state.store.clone(),
                owner.clone(),
                run_id.to_string(),
                Arc::new(plan),
            )
            .await
            .map_err(|error| error.to_string());
    }
    state
        .runs
        .adopt(
            state.store.clone(),
            state.cache.clone(),
            owner.clone(),
            run_id.to_string(),
            Arc::new(plan),
        )
        .await
        .map_err(|error| error.to_string())
}
