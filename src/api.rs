//! The read-only status API (DESIGN.md, "Status API"). GET and HEAD only; any other method is
//! 405. The router reads [`Snapshot`]s and can change nothing; [`serve`] bounds what a client
//! can hold (connections, time to send headers).

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde::Serialize;

use crate::clock;
use crate::internal_tasks::InternalTasks;
use crate::status::{BroadcastStatus, Snapshot, StatusReader, render_metrics};

mod serve;
pub use serve::{ServeLimits, serve};

/// What every handler reads.
#[derive(Clone)]
struct ApiState {
    status: StatusReader,
    tasks: InternalTasks,
}

/// The loop ticks every second; silence this long means it is stuck.
const LIVENESS_LIMIT: Duration = Duration::from_secs(30);

pub fn router(status: StatusReader, tasks: InternalTasks) -> Router {
    Router::new()
        .route("/v1/broadcasts", get(list))
        .route("/v1/broadcasts/{name}", get(one))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(ApiState { status, tasks })
}

#[derive(Serialize)]
struct BroadcastList<'a> {
    broadcasts: Vec<&'a BroadcastStatus>,
}

async fn list(State(ApiState { status, .. }): State<ApiState>) -> Response {
    status.with(|s| {
        Json(BroadcastList {
            broadcasts: s.broadcasts.values().collect(),
        })
        .into_response()
    })
}

async fn one(
    State(ApiState { status, .. }): State<ApiState>,
    Path(name): Path<String>,
) -> Response {
    status.with(|s| match s.broadcasts.get(&name) {
        Some(b) => Json(b).into_response(),
        None => problem(
            StatusCode::NOT_FOUND,
            &format!("no broadcast named {name:?}"),
        ),
    })
}

async fn livez(State(ApiState { status, tasks }): State<ApiState>) -> Response {
    let ticking = status.with(|s: &Snapshot| {
        s.last_tick
            .is_some_and(|t| clock::monotonic().saturating_duration_since(t) < LIVENESS_LIMIT)
    });
    let down = tasks.down();
    if !ticking {
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the reconcile loop is not ticking",
        )
    } else if !down.is_empty() {
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("internal task down, restarting: {}", down.join(", ")),
        )
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

async fn readyz(State(ApiState { status, .. }): State<ApiState>) -> Response {
    if status.with(|s| s.ready) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the first directory scan is not done yet",
        )
    }
}

async fn metrics(State(ApiState { status, tasks }): State<ApiState>) -> Response {
    let mut body = status.with(render_metrics);
    tasks.render_metrics(&mut body);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "no such endpoint")
}

fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

#[cfg(test)]
mod tests;
