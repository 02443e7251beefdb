//! Peers for the `sipcast probe` tests: nginx-rtmp whose `on_publish` callback (an HTTP
//! location of the same nginx) lets one stream key through and refuses every other with 403,
//! and Kamailio as a digest-authenticating registrar. Both on 127.0.0.1, on free ports, in a
//! temp dir, stopped on drop.
#![allow(dead_code)]

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use crate::e2e_support::free_udp_port;
pub use crate::e2e_support::rtmp_support::free_port as free_tcp_port;
use crate::peers::{require, stop};

const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
const KAMAILIO: &str = "/usr/sbin/kamailio";
const KAMAILIO_MODULES: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules/";

fn wait_until(what: &str, log: &Path, ready: impl Fn() -> bool) {
    for _ in 0..100 {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(log).unwrap_or_default();
    panic!("{what} did not come up:\n{log}");
}

/// nginx-rtmp application `live` on `rtmp_port`, whose `on_publish` asks `/publish` on
/// `http_port`: 204 for `allowed_key`, 403 for any other (nginx-rtmp then drops the publisher).
pub struct PublishGate {
    pub dir: PathBuf,
    pub rtmp_port: u16,
    child: Child,
}

impl PublishGate {
    pub fn start(dir: &Path, allowed_key: &str) -> PublishGate {
        require("nginx");
        let rtmp_port = free_tcp_port();
        let http_port = free_tcp_port();
        let conf = format!(
            "load_module {RTMP_MODULE};\ndaemon off;\nmaster_process off;\npid {dir}/nginx.pid;\n\
             error_log {dir}/error.log info;\nevents {{ worker_connections 64; }}\n\
             http {{ access_log {dir}/access.log; server {{ listen 127.0.0.1:{http_port};\n\
               location = /publish {{ if ($arg_name = \"{allowed_key}\") {{ return 204; }} return 403; }}\n\
             }} }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{rtmp_port}; chunk_size 4096;\n\
               application live {{ live on; notify_method get;\n\
                 on_publish http://127.0.0.1:{http_port}/publish; }}\n\
             }} }}\n",
            dir = dir.display(),
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let gate = PublishGate {
            dir: dir.to_path_buf(),
            rtmp_port,
            child,
        };
        for port in [rtmp_port, http_port] {
            wait_until("nginx", &dir.join("error.log"), || {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
        }
        gate
    }

    /// What the HTTP callback was asked, one line per request (never shown by sipcast).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }
}

impl Drop for PublishGate {
    fn drop(&mut self) {
        stop(&mut self.child, Duration::from_secs(2));
    }
}

/// Kamailio as a registrar for user `user` with digest password `password` (realm = the To
/// domain): anything else is challenged again; OPTIONS is answered 200.
pub struct Registrar {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Registrar {
    pub fn start(user: &str, password: &str) -> Registrar {
        assert!(
            Path::new(KAMAILIO).exists(),
            "{KAMAILIO} is required for this test (install kamailio; CI does)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_udp_port();
        let cfg = format!(
            "#!KAMAILIO\ndebug=2\nlog_stderror=yes\nfork=yes\nchildren=1\ndisable_tcp=yes\n\
             listen=udp:127.0.0.1:{port}\nmpath=\"{KAMAILIO_MODULES}\"\n\
             loadmodule \"sl.so\"\nloadmodule \"tm.so\"\nloadmodule \"pv.so\"\n\
             loadmodule \"textops.so\"\nloadmodule \"auth.so\"\nloadmodule \"usrloc.so\"\n\
             loadmodule \"registrar.so\"\n\
             request_route {{\n\
               if (is_method(\"REGISTER\")) {{\n\
                 if ($au != \"{user}\" || !pv_www_authenticate(\"$td\", \"{password}\", \"0\")) {{\n\
                   www_challenge(\"$td\", \"0\");\n    exit;\n  }}\n\
                 save(\"location\");\n  exit;\n}}\n\
               if (is_method(\"OPTIONS\")) {{ sl_send_reply(\"200\", \"OK\"); exit; }}\n\
               sl_send_reply(\"404\", \"Not Found\");\n}}\n"
        );
        let cfg_path = dir.path().join("kamailio.cfg");
        std::fs::write(&cfg_path, cfg).unwrap();
        let log = dir.path().join("kamailio.log");
        let child = Command::new(KAMAILIO)
            .arg("-f")
            .arg(&cfg_path)
            .args(["-DD", "-E", "-m", "32", "-M", "8"])
            .arg("-Y")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start kamailio");
        // Up once it answers an OPTIONS (binding its port to look could race its own bind).
        let pinger = UdpSocket::bind("127.0.0.1:0").unwrap();
        pinger
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let me = pinger.local_addr().unwrap();
        let options = format!(
            "OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKready\r\n\
             Max-Forwards: 70\r\nFrom: <sip:test@127.0.0.1>;tag=ready\r\nTo: <sip:127.0.0.1:{port}>\r\n\
             Call-ID: ready@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        );
        wait_until("kamailio", &log, || {
            let _ = pinger.send_to(options.as_bytes(), ("127.0.0.1", port));
            let mut buf = [0u8; 2048];
            pinger
                .recv(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"SIP/2.0 200"))
        });
        Registrar { port, dir, child }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        stop(&mut self.child, Duration::from_secs(3));
        if std::thread::panicking() {
            eprintln!("==== kamailio log ====\n{}", self.log());
        }
    }
}
