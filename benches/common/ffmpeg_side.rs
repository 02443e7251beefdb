//! The reference side: per stream, an ffmpeg receiver doing the same job as a sipcast pipeline
//! (`-c:v copy -c:a aac -f flv`), measured from /proc.

use std::path::Path;
use std::process::Command;

use sipcast::media::aac::AacConfig;

use crate::measure::{measure, wait_until_published};
use crate::nginx::{describe_sink, find_stream, sink_ok};
use crate::peers::{Process, reserve_udp_pair, start_sender, words};
use crate::{Fallible, Setup, SideResult};

pub async fn run(setup: &Setup<'_>) -> Fallible<SideResult> {
    let nginx = setup.nginx;
    // Every port pair reserved at once, so no two receivers are handed the same one.
    let reserved = (0..2 * setup.streams)
        .map(|_| reserve_udp_pair())
        .collect::<Fallible<Vec<_>>>()?;
    let ports: Vec<u16> = reserved
        .iter()
        .map(|(rtp, _)| rtp.local_addr().map_or(0, |a| a.port()))
        .collect();
    drop(reserved);
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    let mut names = Vec::new();
    for (i, pair) in ports.chunks(2).enumerate() {
        let name = format!("ffmpeg{i}");
        let sender = start_sender(setup.source, setup.dir, &name, (pair[0], pair[1]), None).await?;
        let log = setup.dir.join(format!("{name}-receiver.log"));
        let url = nginx.url(&name);
        receivers.push(Process::spawn(receiver(&sender.sdp_path, &url), &log)?);
        senders.push(sender);
        names.push(name);
    }
    // A receiver that never starts is the reference's failure, not the run's: it is reported
    // with the reference's damaged recordings.
    if let Err(e) = wait_until_published(nginx, &names, || true).await {
        eprintln!("ffmpeg: {e}");
    }
    // Only the receivers still running are measured (one that failed to start, e.g. on a port
    // taken meanwhile, has no /proc entry); the CPU is still divided by every stream, which can
    // only flatter the reference.
    let pids: Vec<String> = receivers
        .iter_mut()
        .filter_map(|r| r.alive().then(|| r.pid()))
        .collect();
    let sources: Vec<String> = senders.iter().map(|s| s.pid()).collect();
    let window = measure(setup, &names, &pids, &sources).await?;

    let mut checks = Vec::new();
    let mut broken = Vec::new();
    for (name, receiver) in names.iter().zip(&mut receivers) {
        let sink = find_stream(&window.sink, name);
        let alive = receiver.alive();
        let state = if alive { "running" } else { "EXITED" };
        let got = describe_sink(sink);
        checks.push(format!("ffmpeg  {name}: receiver {state}; nginx got {got}"));
        if !alive || !sink_ok(sink) {
            let log = receiver.log.display();
            broken.push(format!("{name} published nothing usable; see {log}"));
        }
    }
    Ok(SideResult::new("ffmpeg", names, window, checks, broken))
}

/// `ffmpeg -i SDP -c:v copy -c:a aac -f flv URL`, with sipcast's default AAC settings so both
/// sides encode the same audio.
fn receiver(sdp: &Path, url: &str) -> Command {
    let aac = AacConfig::default();
    let mut command = Command::new("ffmpeg");
    command
        .args(words("-nostdin -hide_banner -loglevel error"))
        .args(words("-protocol_whitelist file,udp,rtp -i"))
        .arg(sdp)
        .args(words("-map 0:v -map 0:a -c:v copy -c:a aac"))
        .args(["-ar", &aac.sample_rate.to_string(), "-ac", "1"])
        .args(["-b:a", &aac.bitrate.to_string(), "-f", "flv", url]);
    command
}
