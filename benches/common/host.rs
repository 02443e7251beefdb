//! What the benchmark programs and the real-peer tests (`tests/peers`) both need from this
//! machine: whether a peer program is installed, whether sipp may play pcaps, a polite stop
//! for a child process, and a one-shot HTTP GET on the status API or nginx's statistics.
//! Nothing here panics: the tests assert on the answers, the benchmarks report them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Whether `program` (ffmpeg, ffprobe, nginx, sipp, …) runs here.
pub fn installed(program: &str) -> bool {
    Command::new(program)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// sipp plays pcaps through a raw socket: it needs CAP_NET_RAW (root has it), from us or as a
/// file capability on the sipp binary. Without it sipp plays nothing and says so only in its
/// error log.
pub fn sipp_can_play_pcaps() -> bool {
    const CAP_NET_RAW: u64 = 1 << 13;
    let ours = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & CAP_NET_RAW != 0);
    ours || Command::new("sh")
        .args(["-c", "getcap \"$(command -v sipp)\" 2>/dev/null"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("cap_net_raw"))
        .unwrap_or(false)
}

/// SIGTERM, up to `grace` for the process to exit, then SIGKILL. Always reaps it.
pub fn stop(child: &mut Child, grace: Duration) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    while waited < grace {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(step);
        waited += step;
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A one-shot HTTP/1.0 GET: (status code, body), or None if it failed or timed out.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}
