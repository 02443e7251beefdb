//! systemd service notifications (`sd_notify(3)`) without libsystemd.
//!
//! The protocol is one Unix datagram per notification, sent to the socket named by
//! `$NOTIFY_SOCKET`: a filesystem path, or an abstract socket written with a leading `@`.
//! The payload is newline-separated `KEY=VALUE` assignments (`READY=1`, `WATCHDOG=1`, ...).
//! See `sd_notify(3)` and systemd's "NOTIFY_SOCKET" interface documentation.
//!
//! How the daemon drives it (unit `Type=notify`, `WatchdogSec=30s`):
//! - [`Notifier::ready`] once the first directory scan is done and the API is bound;
//! - [`Notifier::watchdog`] from the reconcile loop at half of [`Notifier::watchdog_interval`];
//! - on SIGHUP: [`Notifier::reloading`], reload, then [`Notifier::ready`] again;
//! - on SIGTERM: [`Notifier::stopping`] before tearing calls down;
//! - [`Notifier::status`] with a one-line summary ("3 broadcasts, 2 live") when it changes.
//!
//! Outside systemd (`$NOTIFY_SOCKET` unset) every call is a no-op, so callers never branch.
//! We do not unset `$NOTIFY_SOCKET` as `sd_notify(unset_environment=1)` would: changing the
//! environment is `unsafe` in edition 2024 and the daemon spawns no children that could inherit it.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Sends state changes to the service manager; a no-op when not started by one.
#[derive(Debug, Default)]
pub struct Notifier {
    target: Option<NotifyTarget>,
    watchdog_interval: Option<Duration>,
}

#[derive(Debug)]
struct NotifyTarget {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`.
    ///
    /// An unusable `$NOTIFY_SOCKET` is logged and yields a no-op notifier: a daemon that cannot
    /// notify still runs (systemd will then time it out, which is the visible symptom).
    pub fn from_env() -> Notifier {
        let notify_socket = std::env::var_os("NOTIFY_SOCKET");
        let watchdog_usec = std::env::var_os("WATCHDOG_USEC");
        let watchdog_pid = std::env::var_os("WATCHDOG_PID");
        Notifier::from_vars(
            notify_socket.as_deref(),
            watchdog_usec.as_deref(),
            watchdog_pid.as_deref(),
            std::process::id(),
        )
    }

    /// [`Notifier::from_env`] with the environment passed in, so tests need not mutate it.
    pub fn from_vars(
        notify_socket: Option<&OsStr>,
        watchdog_usec: Option<&OsStr>,
        watchdog_pid: Option<&OsStr>,
        own_pid: u32,
    ) -> Notifier {
        let target = match notify_socket.map(NotifyTarget::open) {
            None => None,
            Some(Ok(target)) => Some(target),
            Some(Err(error)) => {
                tracing::warn!(%error, "NOTIFY_SOCKET is set but unusable; not notifying systemd");
                None
            }
        };
        Notifier {
            target,
            watchdog_interval: parse_watchdog(watchdog_usec, watchdog_pid, own_pid),
        }
    }

    /// Whether notifications go anywhere (i.e. we run under a service manager).
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// `READY=1`: start-up (or a reload) is complete.
    pub fn ready(&self) {
        self.send("READY=1");
    }

    /// `RELOADING=1` with `MONOTONIC_USEC`, as `Type=notify-reload` expects; follow with
    /// [`Notifier::ready`] when the reload is done.
    pub fn reloading(&self) {
        let now = monotonic_usec();
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={now}"));
    }

    /// `STOPPING=1`: shutdown has begun.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// `STATUS=...`: a one-line summary shown by `systemctl status`. Newlines become spaces.
    pub fn status(&self, summary: &str) {
        let line: String = summary
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.send(&format!("STATUS={line}"));
    }

    /// `WATCHDOG=1`: the main loop is alive.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// The watchdog timeout systemd enforces on us, if any. Ping at half of it.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog_interval
    }

    fn send(&self, state: &str) {
        let Some(target) = &self.target else {
            return;
        };
        if let Err(error) = target.socket.send_to_addr(state.as_bytes(), &target.addr) {
            let first_line = state.lines().next().unwrap_or_default();
            tracing::warn!(%error, notification = first_line, "sd_notify failed");
        }
    }
}

impl NotifyTarget {
    fn open(name: &OsStr) -> io::Result<NotifyTarget> {
        let bytes = name.as_bytes();
        let addr = match bytes.first() {
            Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..])?,
            Some(b'/') => SocketAddr::from_pathname(name)?,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "NOTIFY_SOCKET must be an absolute path or start with '@'",
                ));
            }
        };
        Ok(NotifyTarget {
            socket: UnixDatagram::unbound()?,
            addr,
        })
    }
}

/// `WATCHDOG_USEC` applies to us only when `WATCHDOG_PID` is absent or names our process.
fn parse_watchdog(usec: Option<&OsStr>, pid: Option<&OsStr>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid {
        let pid: u32 = pid.to_str()?.trim().parse().ok()?;
        if pid != own_pid {
            return None;
        }
    }
    let usec: u64 = usec?.to_str()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// CLOCK_MONOTONIC in microseconds, the clock systemd compares `MONOTONIC_USEC` against.
///
/// `crate::clock::monotonic()` cannot serve here: a tokio `Instant` hides its absolute value,
/// and systemd needs exactly CLOCK_MONOTONIC (not boottime, not `/proc/uptime`).
fn monotonic_usec() -> u64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let micros = u64::try_from(now.tv_nsec / 1_000).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receive(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("a notification");
        String::from_utf8(buf[..n].to_vec()).expect("utf-8 notification")
    }

    fn listener() -> (tempfile::TempDir, std::path::PathBuf, UnixDatagram) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set timeout");
        (dir, path, socket)
    }

    #[test]
    fn sends_each_state_to_a_path_socket() {
        let (_dir, path, socket) = listener();
        let notifier = Notifier::from_vars(Some(path.as_os_str()), None, None, 1);
        assert!(notifier.is_enabled());

        notifier.ready();
        assert_eq!(receive(&socket), "READY=1");
        notifier.watchdog();
        assert_eq!(receive(&socket), "WATCHDOG=1");
        notifier.stopping();
        assert_eq!(receive(&socket), "STOPPING=1");
        notifier.status("3 broadcasts,\n2 live");
        assert_eq!(receive(&socket), "STATUS=3 broadcasts, 2 live");
    }

    #[test]
    fn reloading_carries_the_current_monotonic_time() {
        let (_dir, path, socket) = listener();
        let notifier = Notifier::from_vars(Some(path.as_os_str()), None, None, 1);
        let before = monotonic_usec();
        notifier.reloading();
        let after = monotonic_usec();

        let message = receive(&socket);
        let mut lines = message.lines();
        assert_eq!(lines.next(), Some("RELOADING=1"));
        let usec: u64 = lines
            .next()
            .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
            .and_then(|v| v.parse().ok())
            .expect("MONOTONIC_USEC=<number>");
        assert!(
            (before..=after).contains(&usec),
            "{before} <= {usec} <= {after}"
        );
        assert_eq!(lines.next(), None);
    }

    #[test]
    fn sends_to_an_abstract_socket() {
        let name = format!(
            "sipcast-test-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("abstract name");
        let socket = UnixDatagram::bind_addr(&addr).expect("bind abstract socket");
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("set timeout");

        let env_value = format!("@{name}");
        let notifier = Notifier::from_vars(Some(OsStr::new(&env_value)), None, None, 1);
        notifier.ready();
        assert_eq!(receive(&socket), "READY=1");
    }

    #[test]
    fn unset_or_unusable_socket_is_a_no_op() {
        let unset = Notifier::from_vars(None, None, None, 1);
        assert!(!unset.is_enabled());
        unset.ready();

        let relative = Notifier::from_vars(Some(OsStr::new("relative/path")), None, None, 1);
        assert!(!relative.is_enabled());
        let empty = Notifier::from_vars(Some(OsStr::new("")), None, None, 1);
        assert!(!empty.is_enabled());
    }

    #[test]
    fn a_vanished_listener_does_not_panic() {
        let (dir, path, socket) = listener();
        let notifier = Notifier::from_vars(Some(path.as_os_str()), None, None, 1);
        drop(socket);
        drop(dir);
        notifier.ready();
        notifier.watchdog();
    }

    #[test]
    fn watchdog_interval_applies_only_to_the_named_pid() {
        let usec = Some(OsStr::new("30000000"));
        let wd = |usec, pid| Notifier::from_vars(None, usec, pid, 42).watchdog_interval();

        assert_eq!(wd(usec, None), Some(Duration::from_secs(30)));
        assert_eq!(
            wd(usec, Some(OsStr::new("42"))),
            Some(Duration::from_secs(30))
        );
        assert_eq!(wd(usec, Some(OsStr::new("43"))), None);
        assert_eq!(wd(usec, Some(OsStr::new("x"))), None);
        assert_eq!(wd(None, Some(OsStr::new("42"))), None);
        assert_eq!(wd(Some(OsStr::new("0")), None), None);
        assert_eq!(wd(Some(OsStr::new("-5")), None), None);
    }
}
