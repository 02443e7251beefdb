use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use bytes::Bytes;

use super::router;
use crate::frame::MediaFrame;
use crate::output::PreviewHub;
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

#[tokio::test]
async fn the_status_page_is_html_and_says_whether_previews_are_on() {
    let board = board_with(&["a"]);
    let app = router(board.reader(), Default::default());
    let (status, body) = call(&app, Method::GET, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with("<!doctype html>"));
    assert!(body.contains("data-preview=\"off\""));
    let on = super::router_with_preview(board.reader(), Default::default(), PreviewHub::enabled());
    let (_, body) = call(&on, Method::GET, "/").await;
    assert!(body.contains("data-preview=\"on\""));
    for path in ["/", "/v1/events", "/v1/broadcasts/a/preview.mp4"] {
        let (status, _) = call(&on, Method::POST, path).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "POST {path}");
    }
}

#[tokio::test]
async fn events_start_with_a_snapshot_of_every_broadcast() {
    let board = board_with(&["a", "b"]);
    let app = router(board.reader(), Default::default());
    let request = Request::get("/v1/events").body(Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
    let text = String::from_utf8(frame.to_vec()).unwrap();
    let data = text
        .strip_prefix("event: snapshot\ndata: ")
        .and_then(|t| t.strip_suffix("\n\n"))
        .expect(&text);
    let json: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(json["broadcasts"][1]["name"], "b");
    assert_eq!(json["broadcasts"][0]["phase"], "idle");
}

#[tokio::test]
async fn preview_is_404_without_a_tap_or_when_turned_off_and_fmp4_with_one() {
    let board = board_with(&["a"]);
    let hub = PreviewHub::enabled();
    let app = super::router_with_preview(board.reader(), Default::default(), hub.clone());
    let (status, body) = call(&app, Method::GET, "/v1/broadcasts/a/preview.mp4").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("publishes nothing"), "{body}");

    let tap = hub.tap("a");
    tap.send(&MediaFrame::VideoConfig(Bytes::from_static(&[
        1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 2, 0x67, 0x42, 1, 0, 1, 0x68,
    ])));
    tap.send(&MediaFrame::AudioConfig(Bytes::from_static(&[0x12, 0x10])));
    let request = Request::get("/v1/broadcasts/a/preview.mp4")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "video/mp4; codecs=\"avc1.42C01E, mp4a.40.2\""
    );
    let mut body = response.into_body();
    let init = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&init[4..8], b"ftyp");
    for (i, keyframe) in [true, false, true].into_iter().enumerate() {
        tap.send(&MediaFrame::Video {
            dts_ms: i as u32 * 40,
            cts_ms: 0,
            keyframe,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
        });
    }
    let fragment = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&fragment[4..8], b"moof");
    drop(tap); // the output stopped: the stream ends
    assert!(body.frame().await.is_none());

    let off = router(board.reader(), Default::default());
    let (status, body) = call(&off, Method::GET, "/v1/broadcasts/a/preview.mp4").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("turned off"), "{body}");
}

#[tokio::test]
async fn a_preview_viewer_that_lags_restarts_at_the_next_keyframe() {
    let board = board_with(&["a"]);
    let hub = PreviewHub::enabled();
    let app = super::router_with_preview(board.reader(), Default::default(), hub.clone());
    let tap = hub.tap("a");
    tap.send(&MediaFrame::VideoConfig(Bytes::from_static(&[
        1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 2, 0x67, 0x42, 1, 0, 1, 0x68,
    ])));
    let request = Request::get("/v1/broadcasts/a/preview.mp4")
        .body(Body::empty())
        .unwrap();
    let mut body = app.oneshot(request).await.unwrap().into_body();
    body.frame().await.unwrap().unwrap(); // the init segment
    let video = |i: u32, keyframe: bool| MediaFrame::Video {
        dts_ms: i * 40,
        cts_ms: 0,
        keyframe,
        data: Bytes::from(vec![0, 0, 0, 1, if keyframe { 0x65 } else { 0x41 }]),
    };
    // The viewer reads nothing while far more frames than its backlog go by: the tap never
    // waits for it.
    for i in 0..2000 {
        tap.send(&video(i, i % 25 == 0));
    }
    for i in 2000..2060 {
        tap.send(&video(i, i % 25 == 0));
    }
    let fragment = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&fragment[4..8], b"moof");
    // trun of the video traf: the first sample's flags say keyframe.
    let trun = fragment
        .windows(4)
        .position(|w| w == b"trun")
        .expect("a trun");
    let flags = u32::from_be_bytes(fragment[trun + 24..trun + 28].try_into().unwrap());
    assert_eq!(flags, 0x0200_0000, "starts at a keyframe");
    let count = u32::from_be_bytes(fragment[trun + 8..trun + 12].try_into().unwrap());
    assert_eq!(count, 13, "cut after half a second (13 frames of 40 ms)");
}
