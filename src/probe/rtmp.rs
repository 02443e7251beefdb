//! Does an RTMP target accept a publish of our stream key? TCP (and TLS), the RTMP handshake,
//! `connect` to the app, `publish` of the key up to `NetStream.Publish.Start`, a short wait for
//! a server that accepts and then hangs up (nginx-rtmp's denial), then FCUnpublish and
//! deleteStream — the same [`PublishSession`] the publishers run, with no media.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::Check;
use crate::clock::monotonic;
use crate::rtmp::session::{PublishSession, SessionError, SessionEvent, SessionParams, Step};
use crate::rtmp::tls;
use crate::rtmp::url::RtmpUrl;
use crate::spec::RtmpTarget;

/// After `NetStream.Publish.Start`, how long we listen for a hang-up that means "denied".
const ACCEPT_GRACE: Duration = Duration::from_millis(500);

/// What a refused publish is called on the checklist (the server's own words follow).
pub const REFUSED_PUBLISH: &str = "target refused publish of the stream key";

trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// Probes one endpoint (`url`: the target's URL or its backup's) of `target`.
pub async fn check(name: String, url: &str, target: &RtmpTarget, step: Duration) -> Check {
    let key = match target.stream_key.as_ref().map(|s| s.read()).transpose() {
        Ok(key) => key,
        Err(error) => return Check::fail(name, format!("stream key: {error}")),
    };
    let parsed = match RtmpUrl::parse(url, key.as_ref()) {
        Ok(parsed) => parsed,
        Err(error) => return Check::fail(name, error.to_string()),
    };
    let shown = parsed.redacted();
    match publish_once(&parsed, target, step).await {
        Ok(()) => Check::ok(name, format!("{shown}: publish accepted, then unpublished")),
        Err(cause) => Check::fail(name, format!("{shown}: {cause}")),
    }
}

async fn publish_once(url: &RtmpUrl, target: &RtmpTarget, step: Duration) -> Result<(), String> {
    let addr = format!("{}:{}", url.host, url.port);
    let mut stream = connect(url, target, step).await?;
    let params = SessionParams {
        app: url.app.clone(),
        tc_url: url.tc_url.clone(),
        stream_key: url.stream_key.clone(),
        setup_timeout: step,
    };
    let mut session = PublishSession::new(monotonic().into_std(), params)
        .map_err(|e| cause(&e, &addr, &url.app))?;
    let mut buf = vec![0u8; 16 * 1024];
    // Up to NetStream.Publish.Start (or the session's deadline, `step`).
    loop {
        write_all(&mut stream, &mut session, step).await?;
        if let Some(SessionEvent::Publishing) = session.poll_event() {
            break;
        }
        let deadline = session
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| monotonic() + step);
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) => return Err(cause(&session.closed_by_server(), &addr, &url.app)),
                Ok(n) => session
                    .handle_input(monotonic().into_std(), buf.get(..n).unwrap_or_default())
                    .map_err(|e| cause(&e, &addr, &url.app))?,
                Err(e) => return Err(format!("connection to {addr} failed: {e}")),
            },
            _ = tokio::time::sleep_until(deadline) => {
                session
                    .handle_timeout(monotonic().into_std())
                    .map_err(|e| cause(&e, &addr, &url.app))?;
            }
        }
    }
    // Accepted; a server that denies by hanging up does so at once.
    let grace = monotonic() + ACCEPT_GRACE;
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) => return Err(format!(
                    "{REFUSED_PUBLISH} (the server closed the connection right after accepting it)"
                )),
                Ok(n) => session
                    .handle_input(monotonic().into_std(), buf.get(..n).unwrap_or_default())
                    .map_err(|e| cause(&e, &addr, &url.app))?,
                Err(e) => return Err(format!("connection to {addr} failed: {e}")),
            },
            _ = tokio::time::sleep_until(grace) => break,
        }
        write_all(&mut stream, &mut session, step).await?;
    }
    session.finish().map_err(|e| cause(&e, &addr, &url.app))?;
    write_all(&mut stream, &mut session, step).await?;
    let _ = timeout(step, stream.shutdown()).await;
    Ok(())
}

/// TCP, then TLS for `rtmps://`, within `step` together.
async fn connect(
    url: &RtmpUrl,
    target: &RtmpTarget,
    step: Duration,
) -> Result<Box<dyn Transport>, String> {
    let addr = format!("{}:{}", url.host, url.port);
    let open = async {
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        if !url.tls {
            return Ok(Box::new(tcp) as Box<dyn Transport>);
        }
        let connector = tls::connector(target.ca_file.as_ref()).map_err(|e| e.to_string())?;
        let stream = tls::handshake(&connector, &url.host, tcp)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        Ok(Box::new(stream) as Box<dyn Transport>)
    };
    match timeout(step, open).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer from {addr} within {step:?} (connect)")),
    }
}

async fn write_all(
    stream: &mut Box<dyn Transport>,
    session: &mut PublishSession,
    step: Duration,
) -> Result<(), String> {
    while let Some(bytes) = session.poll_transmit() {
        match timeout(step, stream.write_all(&bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("write failed: {e}")),
            Err(_) => return Err(format!("write stalled for {step:?}")),
        }
    }
    match timeout(step, stream.flush()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write failed: {e}")),
        Err(_) => Err(format!("write stalled for {step:?}")),
    }
}

/// A session error in the checklist's words.
fn cause(error: &SessionError, addr: &str, app: &str) -> String {
    match error {
        SessionError::Refused { .. } | SessionError::ClosedBy(Step::AwaitingPublish) => {
            format!("{REFUSED_PUBLISH} ({error})")
        }
        SessionError::ConnectRejected(_) | SessionError::ClosedBy(Step::Connecting) => {
            format!("target refused connect to app \"{app}\" ({error})")
        }
        SessionError::Timeout(step) => format!("no answer from {addr} while {step}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_named_for_what_was_refused() {
        let refused = SessionError::Refused {
            code: "NetStream.Publish.BadName".into(),
            description: "Already publishing".into(),
        };
        let text = cause(&refused, "127.0.0.1:1935", "live");
        assert!(text.starts_with(REFUSED_PUBLISH), "{text}");
        assert!(text.contains("BadName"), "{text}");
        let text = cause(
            &SessionError::ClosedBy(Step::AwaitingPublish),
            "127.0.0.1:1935",
            "live",
        );
        assert!(text.starts_with(REFUSED_PUBLISH), "{text}");
        let text = cause(
            &SessionError::ClosedBy(Step::Connecting),
            "127.0.0.1:1935",
            "nope",
        );
        assert!(
            text.starts_with("target refused connect to app \"nope\""),
            "{text}"
        );
        let text = cause(
            &SessionError::Timeout(Step::Handshaking),
            "127.0.0.1:1935",
            "live",
        );
        assert_eq!(text, "no answer from 127.0.0.1:1935 while handshaking");
    }
}
