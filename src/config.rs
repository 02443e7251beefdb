//! `sipcast.toml`: the daemon's own settings. Every key is optional; flags override them.
//!
//! ```toml
//! dir = "/etc/sipcast/broadcasts.d"   # relative paths are relative to this file
//! api = "127.0.0.1:8090"
//! sip_listen = "0.0.0.0:5060"
//! rtp_ports = "16384-16999"
//! public_address = "203.0.113.7"       # put in SDP and Contact instead of the local address
//! log_format = "auto"                  # auto | text | json | journald
//! resync = "30s"                       # full re-read of `dir` even without file events
//! preview = true                       # live preview on the status page (false: off, 404)
//! sip_tls_listen = "0.0.0.0:5061"      # inbound SIP over TLS (needs the two files below)
//! sip_tls_cert_file = "/etc/sipcast/tls/sip.crt"
//! sip_tls_key_file = "/etc/sipcast/tls/sip.key"
//! ```

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

use crate::logging::LogFormat;

/// The settings the daemon runs with, after defaults, file and flags.
#[derive(Clone, Debug, PartialEq)]
pub struct DaemonConfig {
    pub dir: PathBuf,
    pub api: SocketAddr,
    pub sip_listen: SocketAddr,
    pub rtp_ports: PortRange,
    pub public_address: Option<IpAddr>,
    pub log_format: LogFormat,
    pub resync: Duration,
    /// Whether the API serves live previews of what broadcasts publish (they show meeting
    /// content to anyone who can reach the API address).
    pub preview: bool,
    /// Inbound SIP over TLS: where, and the certificate we present. TCP is always accepted on
    /// `sip_listen`'s port.
    pub sip_tls: Option<crate::sip::TlsListen>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            dir: PathBuf::from("broadcasts.d"),
            api: SocketAddr::from(([127, 0, 0, 1], 8090)),
            sip_listen: SocketAddr::from(([0, 0, 0, 0], 5060)),
            rtp_ports: PortRange {
                low: 16384,
                high: 16999,
            },
            public_address: None,
            log_format: LogFormat::Auto,
            resync: Duration::from_secs(30),
            preview: true,
            sip_tls: None,
        }
    }
}

/// An inclusive UDP port range for RTP (even) and RTCP (odd) ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (low, high) = s
            .split_once('-')
            .ok_or_else(|| format!("{s:?} is not LOW-HIGH"))?;
        let parse = |p: &str| {
            p.trim()
                .parse::<u16>()
                .map_err(|_| format!("{p:?} is not a port"))
        };
        let (low, high) = (parse(low)?, parse(high)?);
        if low < 1024 || high <= low || (high - low) < 3 {
            return Err(format!(
                "{s:?}: need 1024 <= LOW < HIGH with room for at least two RTP/RTCP pairs"
            ));
        }
        Ok(PortRange { low, high })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    dir: Option<PathBuf>,
    api: Option<String>,
    sip_listen: Option<String>,
    rtp_ports: Option<String>,
    public_address: Option<String>,
    log_format: Option<LogFormat>,
    resync: Option<String>,
    preview: Option<bool>,
    sip_tls_listen: Option<String>,
    sip_tls_cert_file: Option<PathBuf>,
    sip_tls_key_file: Option<PathBuf>,
}

impl DaemonConfig {
    /// Reads a config file on top of the defaults. Errors are `FILE:LINE:COL: message` where
    /// the position is known.
    pub fn load(path: &Path) -> Result<DaemonConfig, String> {
        let shown = path.display().to_string();
        let text = crate::spec::read_bounded(path).map_err(|e| format!("{shown}: {e}"))?;
        let raw: RawConfig = toml::from_str(&text).map_err(|e| {
            let (line, col) = e
                .span()
                .map_or((1, 1), |s| crate::spec::line_col(&text, s.start));
            format!("{shown}:{line}:{col}: {}", e.message().trim_end())
        })?;
        let bad = |key: &str, e: String| format!("{shown}: {key}: {e}");
        let mut config = DaemonConfig::default();
        if let Some(dir) = raw.dir {
            config.dir = match path.parent() {
                Some(base) if dir.is_relative() => base.join(dir),
                _ => dir,
            };
        }
        if let Some(api) = raw.api {
            config.api = api.parse().map_err(|e| bad("api", format!("{e}")))?;
        }
        if let Some(listen) = raw.sip_listen {
            config.sip_listen = listen
                .parse()
                .map_err(|e| bad("sip_listen", format!("{e}")))?;
        }
        if let Some(ports) = raw.rtp_ports {
            config.rtp_ports = ports.parse().map_err(|e| bad("rtp_ports", e))?;
        }
        if let Some(address) = raw.public_address {
            config.public_address = Some(
                address
                    .parse()
                    .map_err(|e| bad("public_address", format!("{e}")))?,
            );
        }
        if let Some(format) = raw.log_format {
            config.log_format = format;
        }
        if let Some(resync) = raw.resync {
            config.resync = humantime::parse_duration(&resync)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| bad("resync", format!("{resync:?} is not a positive duration")))?;
        }
        if let Some(preview) = raw.preview {
            config.preview = preview;
        }
        let relative = |file: PathBuf| match path.parent() {
            Some(base) if file.is_relative() => base.join(file),
            _ => file,
        };
        config.sip_tls = match (raw.sip_tls_cert_file, raw.sip_tls_key_file) {
            (Some(cert), Some(key)) => Some(crate::sip::TlsListen {
                addr: match raw.sip_tls_listen {
                    Some(addr) => addr
                        .parse()
                        .map_err(|e| bad("sip_tls_listen", format!("{e}")))?,
                    None => SocketAddr::new(config.sip_listen.ip(), 5061),
                },
                cert_file: relative(cert),
                key_file: relative(key),
            }),
            (None, None) if raw.sip_tls_listen.is_none() => None,
            _ => {
                return Err(bad(
                    "sip_tls_listen",
                    "needs both sip_tls_cert_file and sip_tls_key_file".into(),
                ));
            }
        };
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_override_defaults_and_relative_dirs_follow_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sipcast.toml");
        std::fs::write(
            &path,
            "dir = \"specs\"\napi = \"127.0.0.1:9000\"\nrtp_ports = \"20000-20099\"\nlog_format = \"json\"\nresync = \"10s\"\npublic_address = \"203.0.113.7\"\n",
        )
        .unwrap();
        let c = DaemonConfig::load(&path).unwrap();
        assert_eq!(c.dir, dir.path().join("specs"));
        assert_eq!(c.api.port(), 9000);
        assert_eq!(
            c.rtp_ports,
            PortRange {
                low: 20000,
                high: 20099
            }
        );
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.resync, Duration::from_secs(10));
        assert_eq!(c.sip_listen, DaemonConfig::default().sip_listen);
        assert!(c.preview, "previews are on unless turned off");
        std::fs::write(&path, "preview = false\n").unwrap();
        assert!(!DaemonConfig::load(&path).unwrap().preview);
        std::fs::write(&path, "preview = \"no\"\n").unwrap();
        let err = DaemonConfig::load(&path).unwrap_err();
        assert!(err.contains("sipcast.toml:1:11"), "{err}");
    }

    #[test]
    fn inbound_tls_needs_a_certificate_and_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sipcast.toml");
        std::fs::write(
            &path,
            "sip_listen = \"127.0.0.1:5070\"\nsip_tls_cert_file = \"tls/sip.crt\"\nsip_tls_key_file = \"/k.pem\"\n",
        )
        .unwrap();
        let tls = DaemonConfig::load(&path).unwrap().sip_tls.unwrap();
        assert_eq!(tls.addr, "127.0.0.1:5061".parse().unwrap());
        assert_eq!(tls.cert_file, dir.path().join("tls/sip.crt"));
        assert_eq!(tls.key_file, PathBuf::from("/k.pem"));
        std::fs::write(&path, "sip_tls_listen = \"127.0.0.1:5071\"\n").unwrap();
        let err = DaemonConfig::load(&path).unwrap_err();
        assert!(err.contains("sip_tls_listen: needs both"), "{err}");
        assert_eq!(DaemonConfig::default().sip_tls, None);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_located() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sipcast.toml");
        std::fs::write(&path, "api = \"127.0.0.1:1\"\nlisten = 1\n").unwrap();
        let err = DaemonConfig::load(&path).unwrap_err();
        assert!(
            err.contains("sipcast.toml:2:1: unknown field `listen`"),
            "{err}"
        );
        std::fs::write(&path, "rtp_ports = \"9-5\"\n").unwrap();
        assert!(DaemonConfig::load(&path).unwrap_err().contains("rtp_ports"));
    }

    #[test]
    fn port_ranges_need_room_for_pairs() {
        assert!("16384-16999".parse::<PortRange>().is_ok());
        assert!("16384-16385".parse::<PortRange>().is_err());
        assert!("80-90".parse::<PortRange>().is_err());
        assert!("x".parse::<PortRange>().is_err());
    }
}
