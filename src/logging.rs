//! Logging setup: journald's native protocol under systemd, text or JSON on stderr otherwise.
//!
//! Field names callers should use so operators can filter (`journalctl BROADCAST=allhands`):
//! `broadcast`, `call_id`, `sip_status`, `rtmp_url` (journald upper-cases them). Log one line
//! per state change, never one per packet. `rtmp_url` values are passed through
//! [`redact_rtmp_url`] in the text, JSON and journald outputs alike, as a second line of defence
//! behind `crate::secret::Secret`.
//!
//! Filtering follows `RUST_LOG` (`tracing_subscriber::EnvFilter` syntax), default `info`.

mod journald;
mod json;
mod record;

use std::ffi::OsStr;
use std::fmt;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layered, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

pub use journald::JOURNAL_SOCKET;
pub use record::redact_rtmp_url;

use journald::JournaldSink;
use json::JsonSink;
use record::StructuredLayer;

/// Where log lines go. `sipcast.toml`: `log_format = "json"`; CLI: `--log-format json`.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Deserialize,
    serde::Serialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// journald when stderr is the journal stream systemd gave us (`$JOURNAL_STREAM`), else text.
    #[default]
    Auto,
    /// Human-readable lines on stderr.
    Text,
    /// One JSON object per line on stderr.
    Json,
    /// journald's native protocol with structured fields (fails if journald is unreachable).
    Journald,
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Auto => "auto",
            LogFormat::Text => "text",
            LogFormat::Json => "json",
            LogFormat::Journald => "journald",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("cannot reach journald at {path}: {source}")]
    Journald {
        path: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid RUST_LOG filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::FromEnvError),
    #[error("a global logger is already installed: {0}")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// What the chosen layer stacks on: the registry behind the `RUST_LOG` filter.
type Base = Layered<EnvFilter, Registry>;
type BoxedLayer = Box<dyn Layer<Base> + Send + Sync>;

/// Installs the global logger and returns the format actually used (`Auto` resolved).
pub fn init(format: LogFormat) -> Result<LogFormat, LoggingError> {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env()?;
    let journal_stream = std::env::var_os("JOURNAL_STREAM");
    let (layer, used) = output_layer(format, journal_stream.as_deref())?;
    tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init()?;
    Ok(used)
}

fn output_layer(
    format: LogFormat,
    journal_stream: Option<&OsStr>,
) -> Result<(BoxedLayer, LogFormat), LoggingError> {
    let connect_journald =
        || JournaldSink::connect(Path::new(JOURNAL_SOCKET), env!("CARGO_PKG_NAME"));
    match resolve(format, journal_stream) {
        LogFormat::Journald => match connect_journald() {
            Ok(sink) => Ok((StructuredLayer::new(sink).boxed(), LogFormat::Journald)),
            // Auto falls back quietly: stderr still reaches the journal, just without fields.
            Err(_) if format == LogFormat::Auto => Ok((stderr_text_layer(), LogFormat::Text)),
            Err(source) => Err(LoggingError::Journald {
                path: JOURNAL_SOCKET,
                source,
            }),
        },
        LogFormat::Json => {
            let sink = JsonSink::new(Box::new(std::io::stderr()), crate::clock::WallClock::System);
            Ok((StructuredLayer::new(sink).boxed(), LogFormat::Json))
        }
        LogFormat::Text | LogFormat::Auto => Ok((stderr_text_layer(), LogFormat::Text)),
    }
}

/// `Auto` means journald exactly when our stderr is the stream systemd connected to the journal
/// (`$JOURNAL_STREAM` = `DEV:INODE` of it), as `systemd.exec(5)` recommends checking.
fn resolve(format: LogFormat, journal_stream: Option<&OsStr>) -> LogFormat {
    match format {
        LogFormat::Auto if journal_stream.is_some_and(stderr_is_journal_stream) => {
            LogFormat::Journald
        }
        LogFormat::Auto => LogFormat::Text,
        explicit => explicit,
    }
}

fn stderr_is_journal_stream(journal_stream: &OsStr) -> bool {
    let Some((dev, ino)) = journal_stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    stderr_identity().is_some_and(|identity| identity == (dev, ino))
}

/// `(st_dev, st_ino)` of our stderr, read through a duplicated descriptor.
fn stderr_identity() -> Option<(u64, u64)> {
    let fd = std::io::stderr().as_fd().try_clone_to_owned().ok()?;
    let metadata = std::fs::File::from(fd).metadata().ok()?;
    Some((metadata.dev(), metadata.ino()))
}

fn stderr_text_layer() -> BoxedLayer {
    text_layer(std::io::stderr, std::io::stderr().is_terminal()).boxed()
}

/// tracing-subscriber's text format, with `rtmp_url` values redacted.
fn text_layer<W>(writer: W, ansi: bool) -> impl Layer<Base> + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fields =
        tracing_subscriber::fmt::format::debug_fn(|out, field, value| match field.name() {
            "message" => write!(out, "{value:?}"),
            "rtmp_url" => {
                let shown = format!("{value:?}");
                let redacted = redact_rtmp_url(shown.trim_matches('"'));
                write!(out, "rtmp_url={redacted}")
            }
            name => write!(out, "{name}={value:?}"),
        })
        .delimited(" ");
    tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi)
        .fmt_fields(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixDatagram;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// A writer the tests can read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf-8")
        }
    }

    fn base() -> Base {
        tracing_subscriber::registry().with(EnvFilter::new("info"))
    }

    /// One state change inside a supervisor-style span, plus a debug line the filter drops.
    fn log_a_call_state_change() {
        let span = tracing::info_span!("supervisor", broadcast = "allhands");
        let _entered = span.enter();
        tracing::debug!("per-packet noise");
        tracing::info!(
            call_id = "a84b4c76e66710",
            sip_status = 200,
            rtmp_url = "rtmp://127.0.0.1/live/stream-key",
            "call established"
        );
    }

    #[test]
    fn journald_entries_carry_span_and_event_fields() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("journal.sock");
        let journal = UnixDatagram::bind(&path).expect("bind fake journal socket");
        journal
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let sink = JournaldSink::connect(&path, "sipcast").expect("connect");
        let subscriber = base().with(StructuredLayer::new(sink));

        tracing::subscriber::with_default(subscriber, log_a_call_state_change);

        let mut buf = vec![0u8; 65536];
        let n = journal.recv(&mut buf).expect("one entry");
        let fields = journald::decode_entry(&buf[..n]);
        let get = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("field {name} in {fields:?}"))
        };
        assert!(get("MESSAGE").starts_with("call established broadcast=allhands"));
        assert_eq!(get("PRIORITY"), "6");
        assert_eq!(get("BROADCAST"), "allhands");
        assert_eq!(get("CALL_ID"), "a84b4c76e66710");
        assert_eq!(get("SIP_STATUS"), "200");
        assert_eq!(get("RTMP_URL"), "rtmp://127.0.0.1/live/****");
        assert_eq!(get("TARGET"), module_path!());
        assert_eq!(get("CODE_FILE"), file!());
        assert!(get("CODE_LINE").parse::<u32>().is_ok());
        assert!(!String::from_utf8_lossy(&buf[..n]).contains("stream-key"));

        journal.set_nonblocking(true).expect("nonblocking");
        assert!(
            journal.recv(&mut buf).is_err(),
            "the debug line was filtered"
        );
    }

    #[test]
    fn json_lines_flatten_span_fields() {
        let captured = Captured::default();
        let sink = JsonSink::new(Box::new(captured.clone()), crate::clock::WallClock::System);
        let subscriber = base().with(StructuredLayer::new(sink));

        tracing::subscriber::with_default(subscriber, log_a_call_state_change);

        let text = captured.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let value: serde_json::Value = serde_json::from_str(lines[0]).expect("JSON");
        assert_eq!(value["message"], "call established");
        assert_eq!(value["broadcast"], "allhands");
        assert_eq!(value["sip_status"], 200);
        assert_eq!(value["rtmp_url"], "rtmp://127.0.0.1/live/****");
        assert_eq!(value["level"], "INFO");
        assert!(
            value["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
    }

    #[test]
    fn text_lines_redact_rtmp_urls() {
        let captured = Captured::default();
        let writer = {
            let captured = captured.clone();
            move || captured.clone()
        };
        let subscriber = base().with(text_layer(writer, false));

        tracing::subscriber::with_default(subscriber, log_a_call_state_change);

        let text = captured.text();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("call established"), "{text}");
        assert!(text.contains("broadcast=\"allhands\""), "{text}");
        assert!(
            text.contains("rtmp_url=rtmp://127.0.0.1/live/****"),
            "{text}"
        );
        assert!(!text.contains("stream-key"), "{text}");
    }

    #[test]
    fn auto_picks_journald_only_for_our_own_journal_stream() {
        let (dev, ino) = stderr_identity().expect("stderr has an identity");
        let ours = format!("{dev}:{ino}");
        let other = format!("{dev}:{}", ino.wrapping_add(1));
        let auto = |stream: Option<&str>| resolve(LogFormat::Auto, stream.map(OsStr::new));

        assert_eq!(auto(Some(&ours)), LogFormat::Journald);
        assert_eq!(auto(Some(&other)), LogFormat::Text);
        assert_eq!(auto(Some("garbage")), LogFormat::Text);
        assert_eq!(auto(None), LogFormat::Text);
        assert_eq!(
            resolve(LogFormat::Json, Some(OsStr::new(&ours))),
            LogFormat::Json
        );
    }

    #[test]
    fn log_format_reads_from_toml_and_the_command_line() {
        #[derive(serde::Deserialize)]
        struct Config {
            log_format: LogFormat,
        }
        for (text, expected) in [
            ("auto", LogFormat::Auto),
            ("text", LogFormat::Text),
            ("json", LogFormat::Json),
            ("journald", LogFormat::Journald),
        ] {
            let config: Config =
                toml::from_str(&format!("log_format = \"{text}\"")).expect("valid");
            assert_eq!(config.log_format, expected);
            let flag = <LogFormat as clap::ValueEnum>::from_str(text, false).expect("flag value");
            assert_eq!(flag, expected);
            assert_eq!(expected.to_string(), text);
        }
        assert!(toml::from_str::<Config>("log_format = \"JSON\"").is_err());
    }
}
