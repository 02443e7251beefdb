//! The read-only status API (DESIGN.md, "Status API"). GET and HEAD only; any other method is
//! 405. The router reads [`Snapshot`]s and can change nothing; [`serve`] bounds what a client
//! can hold (connections, time to send headers).
//!
//! Besides the JSON endpoints: the status page at `/` ([`page`]), status changes as
//! Server-Sent Events at `/v1/events` ([`sse`]), and each broadcast's live preview as
//! fragmented MP4 at `/v1/broadcasts/{name}/preview.mp4` ([`preview`]).

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde::Serialize;

use crate::clock;
use crate::internal_tasks::InternalTasks;
use crate::output::PreviewHub;
use crate::status::{BroadcastStatus, Snapshot, StatusReader, render_metrics};

mod page;
pub mod preview;
mod serve;
mod sse;
pub use serve::{ServeLimits, serve};

/// What every handler reads.
#[derive(Clone)]
struct ApiState {
    status: StatusReader,
    tasks: InternalTasks,
    preview: PreviewHub,
}

/// The loop ticks every second; silence this long means it is stuck.
const LIVENESS_LIMIT: Duration = Duration::from_secs(30);

/// The API without live previews (the preview endpoint answers 404).
pub fn router(status: StatusReader, tasks: InternalTasks) -> Router {
    router_with_preview(status, tasks, PreviewHub::disabled())
}

/// The API with live previews from `preview` (a disabled hub turns them off).
pub fn router_with_preview(
    status: StatusReader,
    tasks: InternalTasks,
    preview: PreviewHub,
) -> Router {
    Router::new()
        .route("/", get(page::page))
        .route("/v1/events", get(events))
        .route("/v1/broadcasts", get(list))
        .route("/v1/broadcasts/{name}", get(one))
        .route("/v1/broadcasts/{name}/preview.mp4", get(preview_mp4))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(ApiState {
            status,
            tasks,
            preview,
        })
}

async fn events(State(ApiState { status, .. }): State<ApiState>) -> Response {
    sse::events(status)
}

async fn preview_mp4(
    State(ApiState { preview, .. }): State<ApiState>,
    Path(name): Path<String>,
) -> Response {
    preview::stream(&preview, &name).await
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

async fn livez(State(ApiState { status, tasks, .. }): State<ApiState>) -> Response {
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

async fn metrics(State(ApiState { status, tasks, .. }): State<ApiState>) -> Response {
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
