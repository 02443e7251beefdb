//! Canary secrets never reach the API, the metrics or the logs, whatever happens to the spec.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use sipcast::clock::WallClock;
use support::{start, wait_for, write_atomic};
use tower::ServiceExt;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const CANARY_PASSWORD: &str = "canary-pw-7f3a";
const CANARY_KEY: &str = "canary-key-91bc";
const CANARY_URL_KEY: &str = "canary-urlkey-55de";
const CANARY_NUMBER: &str = "80417365";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_password_and_stream_keys_appear_nowhere() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();

    let dir = tempfile::tempdir().unwrap();
    let (engine, dialer) = start(dir.path(), WallClock::System).await;
    let spec = format!(
        "[sip]\nuser = \"u\"\ndomain = \"d\"\npassword = \"{CANARY_PASSWORD}\"\n[call]\nto = \"1\"\n\
         [[rtmp]]\nurl = \"rtmps://a.rtmps.youtube.com/live2\"\nstream_key = \"{CANARY_KEY}\"\n\
         [[rtmp]]\nurl = \"rtmp://127.0.0.1/live/{CANARY_URL_KEY}?token={CANARY_URL_KEY}\"\n"
    );
    write_atomic(&dir.path().join("canary.toml"), &spec);
    wait_for(Duration::from_secs(2), || dialer.dials().len() == 1).await;
    // A broken edit that puts a secret where the type is wrong.
    write_atomic(
        &dir.path().join("canary.toml"),
        &spec.replace(&format!("\"{CANARY_PASSWORD}\""), CANARY_NUMBER),
    );
    wait_for(Duration::from_secs(2), || {
        engine
            .status
            .with(|s| s.broadcasts.get("canary").is_some_and(|b| !b.accepted))
    })
    .await;

    let app = sipcast::api::router(engine.status.clone(), engine.tasks.clone());
    let mut seen = String::new();
    for path in [
        "/v1/broadcasts",
        "/v1/broadcasts/canary",
        "/metrics",
        "/livez",
        "/readyz",
    ] {
        let response = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        seen.push_str(&String::from_utf8_lossy(&body));
    }
    assert!(
        seen.contains("rtmps://a.rtmps.youtube.com/live2/****"),
        "{seen}"
    );
    assert!(seen.contains("rtmp://127.0.0.1/live/****"), "{seen}");
    assert!(
        seen.contains("invalid type"),
        "the rejected edit is reported: {seen}"
    );
    engine.shutdown().await;

    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
    assert!(
        logged.contains("spec rejected"),
        "logs were captured: {logged}"
    );
    for canary in [CANARY_PASSWORD, CANARY_KEY, CANARY_URL_KEY, CANARY_NUMBER] {
        assert!(
            !seen.contains(canary),
            "{canary} leaked into the API: {seen}"
        );
        assert!(!logged.contains(canary), "{canary} leaked into the logs");
    }
}

/// SRTP master keys (SDES, in the SDP) never show in what the daemon prints, reports or
/// returns as an error: `Debug` of everything that carries them, and the errors and reasons
/// made from crypto lines, including malformed ones.
#[test]
fn srtp_keys_appear_in_no_debug_output_error_or_reason() {
    use base64::Engine;
    use sipcast::media::{MediaSrtp, RemoteMedia, RemoteStream};
    use sipcast::sip::core::sdp;
    use sipcast::srtp::sdes::{self, CryptoAttribute};
    use sipcast::srtp::{SrtpSession, SrtpSuite};

    // 30 bytes of key and salt that spell a canary, as AES_CM_128 wants.
    let canary =
        base64::engine::general_purpose::STANDARD.encode(b"canary-srtp-key-3e1d-salt-0042");
    assert_eq!(canary.len(), 40);
    let line = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{canary}");
    let attribute = CryptoAttribute::parse(&line).unwrap();
    let answer = format!(
        "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/SAVP 0\r\n{line}\r\n\
         a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{canary}|2^31|junk\r\n\
         a=crypto:3 AEAD_AES_256_GCM inline:{canary}{canary}\r\n\
         a=crypto:4 AES_256_CM_HMAC_SHA1_80 inline:{canary}\r\n"
    );
    let media = sdp::negotiate(answer.as_bytes()).unwrap();
    let stream = media.audio.clone().unwrap();
    assert_eq!(stream.crypto.len(), 1, "{:?}", stream.crypto_unusable);
    let offer = sdes::SdesOffer::generate(&[SrtpSuite::AesCm128HmacSha1_80]).unwrap();
    let negotiated = offer.accept_answer(&stream.crypto).unwrap();
    let session = SrtpSession::new(&negotiated).unwrap();
    let mut remote_stream = RemoteStream::new("127.0.0.1:4000".parse().unwrap(), 0, "PCMU", 8000);
    remote_stream.srtp = Some(Box::new(negotiated.clone()));
    let remote = RemoteMedia {
        audio: Some(remote_stream),
        video: None,
    };
    let mut shown = format!(
        "{attribute:?} {media:?} {negotiated:?} {session:?} {remote:?} {:?} {:?}",
        MediaSrtp::new(&remote),
        stream.crypto_unusable,
    );
    for bad in [
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{canary}AAAA"),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{canary};inline:{canary}"),
        format!("a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{canary}"),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{canary}|{canary}"),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{canary} KDR=1"),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 {canary}"),
        format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{canary}|1:{canary}"),
    ] {
        let error = CryptoAttribute::parse(&bad).unwrap_err();
        shown.push_str(&format!("{error} {error:?}"));
    }
    if let Err(error) = offer.accept_answer(std::slice::from_ref(&attribute)) {
        shown.push_str(&error.to_string());
    }
    let key_bytes = "canary-srtp-key";
    assert!(!shown.contains(&canary), "a key leaked: {shown}");
    assert!(!shown.contains(key_bytes), "a key leaked: {shown}");
    assert!(
        !shown.contains(&canary[..20]),
        "part of a key leaked: {shown}"
    );
}
