use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::router;
use crate::status::{BroadcastStatus, StatusBoard};

async fn call(app: &axum::Router, method: Method, path: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn board_with(names: &[&str]) -> StatusBoard {
    let (board, _) = StatusBoard::new();
    board.update(|s| {
        for name in names {
            s.broadcasts.insert(
                name.to_string(),
                BroadcastStatus::new(name, &format!("{name}.toml")),
            );
        }
    });
    board
}

#[tokio::test]
async fn lists_broadcasts_sorted_with_the_design_fields() {
    let board = board_with(&["zeta", "alpha"]);
    let app = router(board.reader(), Default::default());
    let (status, body) = call(&app, Method::GET, "/v1/broadcasts").await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let list = json["broadcasts"].as_array().unwrap();
    assert_eq!(list[0]["name"], "alpha");
    assert_eq!(list[1]["name"], "zeta");
    for key in [
        "name",
        "file",
        "generation",
        "accepted",
        "error",
        "desired",
        "phase",
        "schedule",
        "call",
        "rtmp",
        "attempts",
        "next_attempt_at",
        "conditions",
    ] {
        assert!(list[0].get(key).is_some(), "missing {key}");
    }
    assert_eq!(list[0]["phase"], "idle");
    assert_eq!(list[0]["call"]["state"], "idle");
    assert!(list[0].get("counters").is_none());
}

#[tokio::test]
async fn one_broadcast_or_404() {
    let app = router(board_with(&["allhands"]).reader(), Default::default());
    let (status, body) = call(&app, Method::GET, "/v1/broadcasts/allhands").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("\"file\":\"allhands.toml\""));
    let (status, _) = call(&app, Method::GET, "/v1/broadcasts/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&app, Method::GET, "/v2/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn only_get_and_head_are_allowed() {
    let app = router(board_with(&["a"]).reader(), Default::default());
    for path in [
        "/v1/broadcasts",
        "/v1/broadcasts/a",
        "/livez",
        "/readyz",
        "/metrics",
    ] {
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            let (status, _) = call(&app, method.clone(), path).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        }
        let (status, body) = call(&app, Method::HEAD, path).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::SERVICE_UNAVAILABLE,
            "HEAD {path}"
        );
        assert!(body.is_empty());
    }
}

#[tokio::test]
async fn readyz_turns_200_after_the_first_scan_and_livez_follows_the_loop() {
    let board = board_with(&[]);
    let app = router(board.reader(), Default::default());
    assert_eq!(
        call(&app, Method::GET, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        call(&app, Method::GET, "/livez").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    board.update(|s| {
        s.ready = true;
        s.last_tick = Some(crate::clock::monotonic());
    });
    assert_eq!(call(&app, Method::GET, "/readyz").await.0, StatusCode::OK);
    assert_eq!(call(&app, Method::GET, "/livez").await.0, StatusCode::OK);
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_help_and_type_for_every_family() {
    let app = router(board_with(&["allhands"]).reader(), Default::default());
    let (status, body) = call(&app, Method::GET, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let mut helped = std::collections::BTreeSet::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.insert(rest.split(' ').next().unwrap().to_string());
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(name.starts_with("sipcast_"), "{line}");
            assert!(helped.contains(name), "no HELP before {line}");
        }
    }
    assert!(body.contains("sipcast_broadcast_phase{broadcast=\"allhands\",phase=\"idle\"} 1"));
    assert!(body.contains("# TYPE sipcast_call_attempts_total counter"));
}
