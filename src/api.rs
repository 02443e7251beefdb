//! The read-only status API (DESIGN.md, "Status API"). GET and HEAD only; any other method is
//! 405. The router reads [`Snapshot`]s and can change nothing.

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde::Serialize;

use crate::clock;
use crate::status::{BroadcastStatus, Snapshot, StatusReader, render_metrics};

/// The loop ticks every second; silence this long means it is stuck.
const LIVENESS_LIMIT: Duration = Duration::from_secs(30);

pub fn router(status: StatusReader) -> Router {
    Router::new()
        .route("/v1/broadcasts", get(list))
        .route("/v1/broadcasts/{name}", get(one))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(status)
}

#[derive(Serialize)]
struct BroadcastList<'a> {
    broadcasts: Vec<&'a BroadcastStatus>,
}

async fn list(State(status): State<StatusReader>) -> Response {
    status.with(|s| {
        Json(BroadcastList {
            broadcasts: s.broadcasts.values().collect(),
        })
        .into_response()
    })
}

async fn one(State(status): State<StatusReader>, Path(name): Path<String>) -> Response {
    status.with(|s| match s.broadcasts.get(&name) {
        Some(b) => Json(b).into_response(),
        None => problem(
            StatusCode::NOT_FOUND,
            &format!("no broadcast named {name:?}"),
        ),
    })
}

async fn livez(State(status): State<StatusReader>) -> Response {
    let alive = status.with(|s: &Snapshot| {
        s.last_tick
            .is_some_and(|t| clock::monotonic().saturating_duration_since(t) < LIVENESS_LIMIT)
    });
    if alive {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the reconcile loop is not ticking",
        )
    }
}

async fn readyz(State(status): State<StatusReader>) -> Response {
    if status.with(|s| s.ready) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the first directory scan is not done yet",
        )
    }
}

async fn metrics(State(status): State<StatusReader>) -> Response {
    let body = status.with(render_metrics);
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
