//! The daemon speaks sd_notify the way `packaging/sipcast.service` (Type=notify, WatchdogSec=30s,
//! ExecReload=kill -HUP) expects: READY=1 after the first scan, WATCHDOG=1 at half the watchdog
//! interval, RELOADING=1 + MONOTONIC_USEC then READY=1 on SIGHUP, STOPPING=1 and exit 0 on
//! SIGTERM. The test plays systemd: it owns the notify socket and sends the signals.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

/// The daemon under test; killed if the test fails half-way.
struct Daemon {
    child: Child,
}

impl Daemon {
    /// `sipcast run` on an empty spec directory, with the environment systemd would set.
    /// `WATCHDOG_PID` must be the daemon's own pid, which only exists after the spawn: a shell
    /// sets it to `$$` and then `exec`s the daemon, keeping that pid.
    fn start(spec_dir: &Path, notify_socket: &Path) -> Daemon {
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#"WATCHDOG_PID=$$ exec "$0" run --dir "$1" --api 127.0.0.1:0 --sip-listen 127.0.0.1:0"#)
            .arg(env!("CARGO_BIN_EXE_sipcast"))
            .arg(spec_dir)
            .env("NOTIFY_SOCKET", notify_socket)
            .env("WATCHDOG_USEC", "2000000")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sipcast run");
        Daemon { child }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    fn wait_for_exit(&mut self, within: Duration) -> ExitStatus {
        let step = Duration::from_millis(50);
        let mut waited = Duration::ZERO;
        while waited < within {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            std::thread::sleep(step);
            waited += step;
        }
        panic!("sipcast did not exit within {within:?} of SIGTERM");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The systemd side of the notify socket.
struct NotifyListener {
    socket: UnixDatagram,
}

impl NotifyListener {
    fn bind(path: &Path) -> NotifyListener {
        let socket = UnixDatagram::bind(path).expect("bind notify socket");
        NotifyListener { socket }
    }

    /// Receives notifications until one satisfies `wanted`, returning it; every notification
    /// seen on the way is appended to `log` for the failure message.
    fn wait_for(
        &self,
        what: &str,
        within: Duration,
        log: &mut Vec<String>,
        wanted: impl Fn(&str) -> bool,
    ) -> String {
        self.socket
            .set_read_timeout(Some(within))
            .expect("set read timeout");
        let mut buf = [0u8; 4096];
        loop {
            let n = match self.socket.recv(&mut buf) {
                Ok(n) => n,
                Err(e) => panic!("no {what} within {within:?} ({e}); received so far: {log:#?}"),
            };
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            log.push(message.clone());
            if wanted(&message) {
                return message;
            }
        }
    }
}

fn has_line(message: &str, line: &str) -> bool {
    message.lines().any(|l| l == line)
}

fn monotonic_usec() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    u64::try_from(now.tv_sec).expect("positive") * 1_000_000
        + u64::try_from(now.tv_nsec / 1_000).expect("positive")
}

#[test]
fn daemon_notifies_ready_watchdog_reload_and_stop() {
    let specs = tempfile::tempdir().expect("spec dir");
    let sockets = tempfile::tempdir().expect("socket dir");
    let notify_path = sockets.path().join("notify");
    let listener = NotifyListener::bind(&notify_path);
    let mut log = Vec::new();
    let mut daemon = Daemon::start(specs.path(), &notify_path);

    // Start-up: READY=1 once the (empty) directory has been scanned and the API bound.
    listener.wait_for("READY=1", Duration::from_secs(20), &mut log, |m| {
        has_line(m, "READY=1")
    });

    // WATCHDOG_USEC=2s: pings at about 1 s, so three arrive well within 6 s.
    for _ in 0..3 {
        listener.wait_for("WATCHDOG=1", Duration::from_secs(3), &mut log, |m| {
            has_line(m, "WATCHDOG=1")
        });
    }

    // SIGHUP: RELOADING=1 with our CLOCK_MONOTONIC, then READY=1 again.
    let before = monotonic_usec();
    daemon.signal("HUP");
    let reloading = listener.wait_for("RELOADING=1", Duration::from_secs(10), &mut log, |m| {
        has_line(m, "RELOADING=1")
    });
    let after = monotonic_usec();
    let stamp: u64 = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("RELOADING=1 without MONOTONIC_USEC: {reloading:?}"));
    assert!(
        (before..=after).contains(&stamp),
        "MONOTONIC_USEC={stamp} outside [{before}, {after}]"
    );
    listener.wait_for(
        "READY=1 after reload",
        Duration::from_secs(10),
        &mut log,
        |m| has_line(m, "READY=1"),
    );

    // SIGTERM: STOPPING=1, then a clean exit.
    daemon.signal("TERM");
    listener.wait_for("STOPPING=1", Duration::from_secs(10), &mut log, |m| {
        has_line(m, "STOPPING=1")
    });
    let status = daemon.wait_for_exit(Duration::from_secs(15));
    assert!(
        status.success(),
        "sipcast exited with {status}; notifications: {log:#?}"
    );
}
