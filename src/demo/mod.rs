//! `sipcast demo`: the whole chain on 127.0.0.1 with nothing else installed.
//!
//! A built-in test [`callee`] answers and plays a bundled H.264 + G.711 [`clip`] as RTP in a
//! loop; a built-in RTMP [`receiver`] records what it is sent into an FLV file; in between runs
//! the daemon's own engine (directory source, reconciler, supervisor, the live dialer with the
//! SIP user agent, media path and RTMP publisher) on a generated spec that dials the callee,
//! sends DTMF and publishes to the receiver. [`run`] prints progress as it happens and returns
//! a [`DemoSummary`].

pub mod callee;
pub mod callee_driver;
pub mod clip;
pub mod packetize;
pub mod progress;
pub mod receiver;
pub mod recording;
pub mod summary;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::call::live::{LiveDialer, MediaPorts};
use crate::clock::{self, WallClock};
use crate::daemon::Engine;
use crate::source::SourceConfig;
use crate::spec::DtmfMethod;
use crate::status::{BroadcastStatus, CallState};

pub use summary::DemoSummary;

/// The digits the demo's spec dials after answer.
pub const DEMO_DTMF: &str = "1234#";
const BROADCAST: &str = "demo";
/// How often the receiver's frame counts are printed.
const FRAMES_EVERY: Duration = Duration::from_secs(2);
/// Longest wait for the hang-up and the streams to close after the run time is up.
const STOP_GRACE: Duration = Duration::from_secs(12);
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The daemon's default RTP range; bind picks a free pair in it.
const RTP_PORTS: std::ops::RangeInclusive<u16> = 16384..=16999;

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// How long to stream before hanging up.
    pub run_for: Duration,
    /// Where to write the FLV; a new temporary directory when None.
    pub out: Option<PathBuf>,
    /// How the spec sends its DTMF.
    pub dtmf_method: DtmfMethod,
}

/// What the callee and the receiver report as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemoEvent {
    CalleeInvited,
    CalleePlaying {
        audio: SocketAddr,
        video: SocketAddr,
    },
    /// The callee's video starts (it answers with audio only for its first seconds).
    CalleeCameraOn,
    CalleeDigit(char, callee::DtmfVia),
    CalleeHungUp,
    ReceiverConnected(SocketAddr),
    /// A publish was accepted on this RTMP app.
    ReceiverPublishing(String),
    /// The publisher went away (with the protocol error, if any).
    ReceiverClosed(Option<String>),
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("bundled clip: {0}")]
    Clip(#[from] clip::ClipError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("SIP user agent: {0}")]
    Sip(#[from] crate::sip::UaError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DemoError {
    let what = what.into();
    move |source| DemoError::Io { what, source }
}

/// Runs the demo, calling `print` with one progress line per change.
pub async fn run(
    options: DemoOptions,
    mut print: impl FnMut(&str),
) -> Result<DemoSummary, DemoError> {
    let clip = Arc::new(clip::Clip::bundled()?);
    let work_dir = make_work_dir().map_err(io("cannot create a temporary directory"))?;
    let flv = options
        .out
        .clone()
        .unwrap_or_else(|| work_dir.join("demo.flv"));
    let spec_dir = work_dir.join("broadcasts.d");
    std::fs::create_dir_all(&spec_dir).map_err(io(spec_dir.display().to_string()))?;

    let (events_tx, mut events) = mpsc::unbounded_channel();
    let callee = callee_driver::start(LOOPBACK, clip.clone(), events_tx.clone())
        .await
        .map_err(io("cannot start the test callee"))?;
    let receiver = receiver::start(LOOPBACK, &flv, events_tx)
        .await
        .map_err(io("cannot start the RTMP receiver"))?;
    print(&format!(
        "test callee: sip:callee@{} (H.264 {}x{} {} fps + PCMU, {} s loop)",
        callee.sip_addr,
        clip.sps_info.width,
        clip.sps_info.height,
        clip.fps,
        clip.access_units.len() as u32 / clip.fps
    ));
    print(&format!(
        "RTMP receiver: rtmp://{}/live, recording to {}",
        receiver.addr,
        flv.display()
    ));

    let spec_path = spec_dir.join(format!("{BROADCAST}.toml"));
    std::fs::write(
        &spec_path,
        spec_text(callee.sip_addr, receiver.addr, options.dtmf_method),
    )
    .map_err(io(spec_path.display().to_string()))?;
    print(&format!("spec: {}", spec_path.display()));

    let ua = crate::sip::UserAgent::bind(crate::sip::UaConfig::new(SocketAddr::new(LOOPBACK, 0)))
        .await?;
    let dialer = Arc::new(LiveDialer::new(
        ua,
        MediaPorts {
            ip: LOOPBACK,
            range: RTP_PORTS,
        },
    ));
    let engine = Engine::start(
        SourceConfig::new(&spec_dir),
        dialer,
        WallClock::System,
        |_| {},
    );

    let mut tracker = progress::ProgressTracker::default();
    let mut status = engine.status.clone();
    let mut frames = tokio::time::interval(FRAMES_EVERY);
    let deadline = clock::monotonic() + options.run_for;
    let mut last = BroadcastStatus::new(BROADCAST, "demo.toml");
    loop {
        tokio::select! {
            changed = status.changed() => {
                if !changed {
                    break;
                }
                if let Some(b) = status.with(|s| s.broadcasts.get(BROADCAST).cloned()) {
                    tracker.status_lines(&b).iter().for_each(|l| print(l));
                    last = b;
                }
            }
            Some(event) = events.recv() => print(&progress::event_line(&event)),
            _ = frames.tick() => {
                if let Some(line) = tracker.frames_line(&receiver.stats()) {
                    print(&line);
                }
            }
            _ = tokio::time::sleep_until(deadline) => break,
            _ = tokio::signal::ctrl_c() => {
                print("interrupted: stopping early");
                break;
            }
        }
    }

    print(&format!(
        "{} s are up: hanging up",
        options.run_for.as_secs()
    ));
    let call_state = last.call.state;
    if tokio::time::timeout(STOP_GRACE, engine.shutdown())
        .await
        .is_err()
    {
        print("the daemon took too long to hang up; stopping anyway");
    }
    // The BYE has been answered by now; let the publisher's close reach the receiver.
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(300), events.recv()).await
    {
        print(&progress::event_line(&event));
    }
    let recording = receiver
        .finish()
        .await
        .map_err(io(format!("cannot finish {}", flv.display())))?;
    callee.stop();
    let _ = std::fs::remove_dir_all(&spec_dir);
    if options.out.is_some() {
        // Nothing else was written there.
        let _ = std::fs::remove_dir(&work_dir);
    }
    Ok(DemoSummary {
        call_state,
        established: tracker.established || call_state == CallState::Established,
        call_reason: last.call.reason.clone(),
        dtmf_planned: DEMO_DTMF.into(),
        dtmf_sent: last.call.dtmf_sent.clone(),
        callee: callee.report(),
        recording,
        flv,
    })
}

/// The broadcast spec the demo drops into its directory.
pub fn spec_text(callee: SocketAddr, receiver: SocketAddr, dtmf_method: DtmfMethod) -> String {
    let dtmf_method = match dtmf_method {
        DtmfMethod::Rfc4733 => "rfc4733",
        DtmfMethod::Info => "info",
    };
    format!(
        "# Generated by `sipcast demo`: dial the built-in test callee, enter DTMF, publish to the\n\
         # built-in RTMP receiver with AAC audio.\n\
         description = \"sipcast demo\"\n\
         \n\
         [sip]\n\
         user = \"demo\"\n\
         domain = \"{callee_ip}\"\n\
         \n\
         [call]\n\
         to = \"sip:callee@{callee}\"\n\
         dtmf = \"{DEMO_DTMF}\"\n\
         dtmf_method = \"{dtmf_method}\"\n\
         dtmf_delay = \"1s\"\n\
         \n\
         [[rtmp]]\n\
         url = \"rtmp://{receiver}/live/demo\"\n\
         audio_codec = \"aac\"\n",
        callee_ip = callee.ip(),
    )
}

/// A fresh directory under the system temporary directory, kept after the demo (the FLV is
/// in it unless `--out` says otherwise).
fn make_work_dir() -> std::io::Result<PathBuf> {
    let base = std::env::temp_dir();
    for _ in 0..16 {
        let dir = base.join(format!("sipcast-demo-{:08x}", rand::random::<u32>()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary directory name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_spec_is_valid_and_dials_the_callee_with_dtmf() {
        let text = spec_text(
            "127.0.0.1:5070".parse().unwrap(),
            "127.0.0.1:1935".parse().unwrap(),
            DtmfMethod::Info,
        );
        let spec = crate::spec::parse("demo.toml", &text).unwrap();
        assert_eq!(spec.call.dtmf, DEMO_DTMF);
        assert_eq!(spec.call.dtmf_method, DtmfMethod::Info);
        assert_eq!(spec.call.to, "sip:callee@127.0.0.1:5070");
        assert_eq!(spec.rtmp.len(), 1);
    }
}
