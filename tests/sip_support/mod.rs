//! Shared helpers for the SIP integration tests: a real sipp on 127.0.0.1, killed on drop.
#![allow(dead_code)]

use sipcast::sip::{
    Account, CallConfig, CallEvent, DtmfPlan, LocalMedia, Transport, UaConfig, UserAgent,
};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

pub struct Sipp {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

pub fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

/// A port that was free a moment ago (sipp binds it itself).
pub fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("no free UDP port")
}

impl Sipp {
    /// Starts sipp as a UAS running `name` once, over UDP.
    pub fn uas(name: &str, extra: &[&str]) -> Sipp {
        Sipp::start(name, free_port(), extra)
    }

    /// The same over TCP (`-t t1`: one connection, the one we open).
    pub fn uas_tcp(name: &str) -> Sipp {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("no free TCP port");
        Sipp::start(name, port, &["-t", "t1"])
    }

    fn start(name: &str, port: u16, extra: &[&str]) -> Sipp {
        let dir = tempfile::tempdir().expect("tempdir");
        if let Err(err) = Command::new("sipp")
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
        {
            panic!(
                "sipp (Debian package sip-tester) is required for this test and could not be run: {err}"
            );
        }
        let child = spawn_foreground(name, port, dir.path(), extra);
        // sipp needs a moment to bind before we send to it.
        std::thread::sleep(Duration::from_millis(300));
        Sipp { child, port, dir }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Waits for sipp to finish its scenario; panics with its error log if it failed.
    pub async fn finish(mut self) {
        let status = self.wait(Duration::from_secs(45)).await;
        if !status.is_some_and(|s| s.success()) {
            let logs: String = std::fs::read_dir(self.dir.path())
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with("errors.log"))
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect();
            panic!("sipp did not run its scenario to the end (status {status:?}):\n{logs}");
        }
    }

    async fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let step = Duration::from_millis(50);
        for _ in 0..(limit.as_millis() / step.as_millis()) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(step).await;
        }
        None
    }
}

fn spawn_foreground(name: &str, port: u16, dir: &std::path::Path, extra: &[&str]) -> Child {
    Command::new("sipp")
        .current_dir(dir)
        .arg("-sf")
        .arg(scenario(name))
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            "1",
            "-timeout",
            "30s",
            "-timeout_error",
            "-trace_err",
            "-nostdin",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sipp")
}

impl Drop for Sipp {
    fn drop(&mut self) {
        // SIGTERM first so sipp flushes its logs; then make sure it is gone.
        crate::peers::stop(&mut self.child, Duration::from_secs(1));
        if std::env::var_os("SIPCAST_KEEP_SIPP_LOGS").is_some() {
            eprintln!("sipp logs kept in {}", self.dir.path().display());
            std::mem::forget(std::mem::replace(
                &mut self.dir,
                tempfile::tempdir().expect("tempdir"),
            ));
        }
        if std::thread::panicking() {
            // Show what sipp saw: the test failed before sipp could say so itself.
            for entry in std::fs::read_dir(self.dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = entry.file_name().to_string_lossy().to_string();
                if name.ends_with("messages.log") || name.ends_with("errors.log") {
                    let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                    let tail: String = text
                        .chars()
                        .rev()
                        .take(6000)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    eprintln!("==== sipp {name} (tail) ====\n{tail}");
                }
            }
        }
    }
}

pub async fn user_agent() -> UserAgent {
    UserAgent::bind(UaConfig::new("127.0.0.1:0".parse().unwrap()))
        .await
        .expect("bind SIP UA")
}

pub fn account(sipp: &Sipp) -> Account {
    Account {
        user: "sipcast".into(),
        domain: format!("127.0.0.1:{}", sipp.port),
        auth_user: None,
        password: None,
        register: false,
        registrar: None,
        proxy: None,
        transport: Transport::Udp,
        display_name: Some("Broadcast".into()),
        tls: Default::default(),
    }
}

pub fn call_config(sipp: &Sipp) -> CallConfig {
    CallConfig {
        account: account(sipp),
        to: "service".into(),
        answer_timeout: Duration::from_secs(20),
        local_media: LocalMedia {
            audio_rtp_port: Some(40000),
            video_rtp_port: Some(40002),
            ..LocalMedia::default()
        },
        dtmf: DtmfPlan::default(),
        dtmf_rtp: None,
    }
}

/// The next event, or a panic after `secs`.
pub async fn next_event(events: &mut UnboundedReceiver<CallEvent>, secs: u64) -> CallEvent {
    tokio::time::timeout(Duration::from_secs(secs), events.recv())
        .await
        .expect("timed out waiting for a call event")
        .expect("event channel closed")
}

/// Events until one matches; panics if the call ends first.
pub async fn wait_for(
    events: &mut UnboundedReceiver<CallEvent>,
    secs: u64,
    wanted: impl Fn(&CallEvent) -> bool,
) -> CallEvent {
    loop {
        let event = next_event(events, secs).await;
        if wanted(&event) {
            return event;
        }
        if let CallEvent::Ended(end) = &event {
            panic!("call ended before the awaited event: {end:?}");
        }
    }
}

/// nginx terminating TLS in front of a sipp over TCP, with a certificate for 127.0.0.1 from a
/// throw-away CA. Killed on drop.
pub struct TlsFront {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl TlsFront {
    pub fn new(backend_port: u16) -> TlsFront {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = |args: &[&str]| {
            let status = Command::new("openssl")
                .current_dir(dir.path())
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "openssl {args:?} failed (openssl is required for this test)"
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=sipcast test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=keyCertSign",
            ],
        ]
        .concat());
        run(&[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat());
        std::fs::write(
            dir.path().join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let d = dir.path().display();
        let conf = format!(
            "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\ndaemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\n\
             stream {{ server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {d}/server.crt; ssl_certificate_key {d}/server.key; proxy_pass 127.0.0.1:{backend_port}; }} }}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .args([
                "-p",
                &d.to_string(),
                "-c",
                &format!("{d}/nginx.conf"),
                "-e",
                &format!("{d}/error.log"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx (with libnginx-mod-stream) is required for this test");
        for _ in 0..50 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsFront { child, port, dir }
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
