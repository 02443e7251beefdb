//! Kamailio (Debian's `kamailio` and `kamailio-tls-modules`) as a registrar and record-routing
//! proxy on 127.0.0.1, listening on UDP, TCP and TLS ports picked free at start, with a
//! throw-away CA and server certificate made by openssl. It keeps REGISTER bindings in memory
//! (usrloc without a database) and sends INVITEs for `callee` to one UDP address (a sipp UAS);
//! everything inside a dialog follows the Route headers. Killed on drop; its log is printed
//! when the test fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const MODULES: &str = "/usr/lib/x86_64-linux-gnu/kamailio/modules";

/// How the proxy behaves toward its clients.
#[derive(Debug, Clone, Copy)]
pub struct KamailioOptions {
    /// `tcp_accept_aliases`: honour RFC 5923 `alias` in Via and reach clients over the
    /// connection they opened; off, it connects to their Contact address.
    pub accept_aliases: bool,
    /// A `Flow-Timer` (seconds) added to 200 OK of REGISTER (RFC 5626 §5.4).
    pub flow_timer: Option<u32>,
    /// Mutual TLS: TLS clients must present a certificate from the test CA.
    pub require_client_cert: bool,
}

pub struct Kamailio {
    child: Child,
    pub dir: tempfile::TempDir,
    pub udp: u16,
    pub tcp: u16,
    pub tls: u16,
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free TCP port")
}

/// A free port for both UDP and TCP.
fn free_port() -> u16 {
    loop {
        let port = free_tcp_port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A CA and a certificate for 127.0.0.1 and `localhost` (for servers and clients), in `dir`:
/// `ca.crt`, `server.crt`, `server.key`.
pub fn make_pki(dir: &Path) {
    let run = |args: &[&str]| {
        let status = Command::new("openssl")
            .current_dir(dir)
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
    let ca = [
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=sipcast kamailio test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=keyCertSign",
    ];
    run(&[&["req", "-x509"][..], &ec, &ca].concat());
    let csr = [
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ];
    run(&[&["req"][..], &ec, &csr].concat());
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth,clientAuth\n",
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
}

impl Kamailio {
    /// Starts Kamailio routing `callee` to the UDP address `callee`; waits until it listens.
    pub fn start(callee: &str, options: KamailioOptions) -> Kamailio {
        assert!(
            Path::new("/usr/sbin/kamailio").exists(),
            "kamailio is required for this test (Debian: kamailio kamailio-tls-modules)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        make_pki(dir.path());
        let (udp, tcp, tls) = (free_port(), free_tcp_port(), free_tcp_port());
        let d = dir.path().display();
        let flow_timer = options
            .flow_timer
            .map(|s| format!("append_to_reply(\"Flow-Timer: {s}\\r\\n\");"))
            .unwrap_or_default();
        let aliases = if options.accept_aliases { "yes" } else { "no" };
        let mutual = u8::from(options.require_client_cert);
        let config = format!(
            r#"#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
enable_tls=yes
listen=udp:127.0.0.1:{udp}
listen=tcp:127.0.0.1:{tcp}
listen=tls:127.0.0.1:{tls}
tcp_accept_aliases={aliases}
tcp_connect_timeout=2
tcp_crlf_ping=yes
dns=no
rev_dns=no
mpath="{MODULES}"
loadmodule "tls.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
modparam("tls", "tls_method", "TLSv1.2+")
modparam("tls", "certificate", "{d}/server.crt")
modparam("tls", "private_key", "{d}/server.key")
modparam("tls", "ca_list", "{d}/ca.crt")
modparam("tls", "verify_certificate", {mutual})
modparam("tls", "require_certificate", {mutual})
modparam("usrloc", "db_mode", 0)
modparam("registrar", "max_expires", 3600)

request_route {{
    xlog("L_INFO", "$rm $ru from $proto:$si:$sp\n");
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("REGISTER")) {{
        {flow_timer}
        if (!save("location")) {{
            sl_reply_error();
        }}
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{
            if (!t_relay()) {{
                sl_reply_error();
            }}
            exit;
        }}
        if (is_method("ACK")) {{
            if (t_check_trans()) {{
                t_relay();
            }}
            exit;
        }}
        sl_send_reply("404", "Not here");
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
    if (is_method("INVITE")) {{
        record_route();
        if ($rU == "callee") {{
            $du = "sip:{callee};transport=udp";
        }} else if (!lookup("location")) {{
            sl_send_reply("404", "Not Found");
            exit;
        }}
        if (!t_relay()) {{
            sl_reply_error();
        }}
        exit;
    }}
    sl_send_reply("405", "Method Not Allowed");
}}

onreply_route {{
    xlog("L_INFO", "reply $rs $rm from $proto:$si:$sp\n");
}}
"#
        );
        let cfg = dir.path().join("kamailio.cfg");
        std::fs::write(&cfg, config).unwrap();
        let child = spawn(dir.path());
        let mut kamailio = Kamailio {
            child,
            dir,
            udp,
            tcp,
            tls,
        };
        kamailio.wait_listening();
        kamailio
    }

    /// Stops it (its connections close) and starts it again on the same ports, appending to
    /// the same log. Bindings and transactions are lost, as in a real restart.
    pub fn restart(&mut self) {
        super::stop(&mut self.child, Duration::from_secs(2));
        self.child = spawn(self.dir.path());
        self.wait_listening();
    }

    /// The log written since `from` bytes (see [`Self::log`]).
    pub fn log_since(&self, from: usize) -> String {
        self.log().get(from..).unwrap_or_default().to_string()
    }

    fn wait_listening(&mut self) {
        for _ in 0..100 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("kamailio exited with {status}:\n{}", self.log());
            }
            let up = |port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            if up(self.tcp) && up(self.tls) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("kamailio did not listen within 5 s:\n{}", self.log());
    }

    /// The CA that signed its certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }
}

/// Kamailio in the foreground on `dir/kamailio.cfg`, logging to `dir/kamailio.log` (appended).
fn spawn(dir: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("kamailio.log"))
        .unwrap();
    Command::new("/usr/sbin/kamailio")
        .arg("-f")
        .arg(dir.join("kamailio.cfg"))
        .args(["-DD", "-E", "-m", "32", "-M", "8"])
        .arg("-Y")
        .arg(dir)
        .arg("-P")
        .arg(dir.join("kamailio.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start kamailio")
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        super::stop(&mut self.child, Duration::from_secs(2));
        if std::thread::panicking() {
            let log = self.log();
            let start = log.len().saturating_sub(8000);
            let start = (start..log.len())
                .find(|i| log.is_char_boundary(*i))
                .unwrap_or(log.len());
            eprintln!("==== kamailio log (tail) ====\n{}", &log[start..]);
        }
    }
}
