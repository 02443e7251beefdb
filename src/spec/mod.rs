//! Broadcast specs: `broadcasts.d/NAME.toml` parsed, validated and typed.
//!
//! [`parse_bytes`] is the one entry point from a file's bytes, used by the directory source,
//! [`load`] (`sipcast validate`) and the fuzz target, so all three judge a file exactly alike;
//! [`read_spec_file`] is the one way to read those bytes from disk. Problems come back as
//! `FILE:LINE:COL: message`.

mod convert;
mod error;
mod file;
pub mod raw;
mod schema;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use error::{SpecError, SpecErrors, line_col};
pub use file::{Unreadable, read_spec_file};
pub use raw::{AudioCodec, DtmfMethod, MediaEncryption, OnRemoteHangup, Transport, VideoContent};
pub use schema::schema_json;

use crate::schedule::Schedule;
use crate::secret::SecretSource;

/// Spec files larger than this are refused unread: a spec is a page, not a data set.
pub const MAX_SPEC_BYTES: usize = 256 * 1024;

/// A validated broadcast spec: what the operator wants.
#[derive(Clone, Debug, PartialEq)]
pub struct BroadcastSpec {
    /// The file name without `.toml`.
    pub name: String,
    /// The file name, as shown in status.
    pub file: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub sip: SipSpec,
    pub call: CallSpec,
    pub schedule: Option<Schedule>,
    pub rtmp: Vec<RtmpTarget>,
    pub redial: RedialPolicy,
    pub output: OutputPolicy,
    /// Non-fatal findings (e.g. an inline password), shown by `validate`.
    pub warnings: Vec<SpecError>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SipSpec {
    pub user: String,
    pub domain: String,
    pub auth_user: String,
    pub password: Option<SecretSource>,
    pub register: bool,
    pub registrar: Option<String>,
    pub proxy: Option<String>,
    pub transport: Transport,
    pub display_name: Option<String>,
    /// TLS: CA file, and client certificate and key for mutual TLS.
    pub ca_file: Option<PathBuf>,
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CallSpec {
    /// Always a full `sip:`/`sips:` URI (a bare user is expanded at `sip.domain`).
    pub to: String,
    pub dtmf: String,
    pub dtmf_method: DtmfMethod,
    pub dtmf_delay: Duration,
    pub audio: bool,
    pub video: bool,
    pub answer_timeout: Duration,
    pub media_timeout: Duration,
    pub on_remote_hangup: OnRemoteHangup,
    pub video_content: VideoContent,
    /// SRTP or not, with the default already applied.
    pub media_encryption: MediaEncryption,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RtmpTarget {
    /// The URL as written (may include the stream key as its last segment).
    pub url: String,
    /// The stream key, when given separately; appended to `url` as its last segment.
    pub stream_key: Option<SecretSource>,
    pub audio_codec: AudioCodec,
    pub keyframe_interval: Duration,
    pub ca_file: Option<PathBuf>,
    /// A second ingest fed the same frames (same stream key).
    pub backup_url: Option<String>,
}

/// `[output]`: what the targets publish while the call gives no video, and for how long.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OutputPolicy {
    /// A slate file instead of the built-in ones.
    pub slate: Option<PathBuf>,
    /// Publish the slate before the first call is answered.
    pub before_call: bool,
    /// Unpublish when the call has been down this long (`None`: never while desired live).
    pub unpublish_after: Option<Duration>,
}

impl Default for OutputPolicy {
    fn default() -> Self {
        OutputPolicy {
            slate: None,
            before_call: true,
            unpublish_after: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RedialPolicy {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for RedialPolicy {
    fn default() -> Self {
        RedialPolicy {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(60),
        }
    }
}

/// How two versions of one broadcast differ, from the wire's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecChange {
    /// Nothing that matters (identical, or only `description`/comments).
    None,
    /// Schedule, `enabled` or redial policy: re-evaluated in place, the call is kept if still
    /// desired.
    InPlace,
    /// Only `[[rtmp]]` or `[output]`: targets are updated without redialing.
    Targets,
    /// SIP identity or call parameters: the call must be redialed.
    Call,
}

impl BroadcastSpec {
    /// What changing from `self` to `next` requires.
    pub fn change_to(&self, next: &BroadcastSpec) -> SpecChange {
        if std::ptr::eq(self, next) {
            return SpecChange::None; // the reconciler compares every spec on every tick
        }
        if self.sip != next.sip || self.call != next.call {
            SpecChange::Call
        } else if self.rtmp != next.rtmp || self.output != next.output {
            SpecChange::Targets
        } else if self.enabled != next.enabled
            || self.schedule != next.schedule
            || self.redial != next.redial
        {
            SpecChange::InPlace
        } else {
            SpecChange::None
        }
    }
}

/// Parses and validates one spec file's text. `file` is the name used in messages and status.
pub fn parse(file: &str, text: &str) -> Result<BroadcastSpec, SpecErrors> {
    convert::parse(file, text)
}

/// Parses and validates one spec file's bytes, as read from disk: larger than
/// [`MAX_SPEC_BYTES`] or not UTF-8 is an error at 1:1, anything else goes to [`parse`].
pub fn parse_bytes(file: &str, bytes: &[u8]) -> Result<BroadcastSpec, SpecErrors> {
    if bytes.len() > MAX_SPEC_BYTES {
        return Err(SpecErrors::whole_file(
            file,
            format!("file is larger than {MAX_SPEC_BYTES} bytes"),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, col) = line_col(
            std::str::from_utf8(bytes.get(..e.valid_up_to()).unwrap_or_default())
                .unwrap_or_default(),
            e.valid_up_to(),
        );
        SpecErrors(vec![SpecError {
            file: file.to_string(),
            line,
            col,
            message: format!("not UTF-8 (byte {})", e.valid_up_to()),
        }])
    })?;
    convert::parse(file, text)
}

/// Reads and validates one spec file from disk.
pub fn load(path: &std::path::Path) -> Result<Arc<BroadcastSpec>, SpecErrors> {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let shown = path.display().to_string();
    let bytes = read_spec_file(path).map_err(|e| SpecErrors::whole_file(&shown, e.to_string()))?;
    parse_bytes(&file, &bytes)
        .map(Arc::new)
        .map_err(|SpecErrors(errors)| {
            SpecErrors(
                errors
                    .into_iter()
                    .map(|e| SpecError {
                        file: shown.clone(),
                        ..e
                    })
                    .collect(),
            )
        })
}

/// Reads a file of at most [`MAX_SPEC_BYTES`] as UTF-8 (the daemon's own settings file).
pub fn read_bounded(path: &std::path::Path) -> Result<String, String> {
    let bytes = read_spec_file(path).map_err(|e| e.to_string())?;
    String::from_utf8(bytes)
        .map_err(|e| format!("not UTF-8 (byte {})", e.utf8_error().valid_up_to()))
}

/// The broadcast name for a directory entry, if it is a spec file at all: `*.toml`, not a
/// dotfile. Editor and package-manager leftovers (`~`, `.swp`, `.bak`, `.dpkg-*`, `.rpmnew`,
/// `..data`) never end in `.toml`, so they never are. Whether the name is *valid* is checked
/// by [`parse`], which reports it like any other problem.
pub fn broadcast_name(file_name: &str) -> Option<&str> {
    let stem = file_name.strip_suffix(".toml")?;
    (!stem.is_empty() && !stem.starts_with('.')).then_some(stem)
}

/// Names appear in URLs, metrics labels and journald fields: keep them plain.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests;

impl RtmpTarget {
    /// The URL as status and logs show it: `rtmps://host/app/****`, the stream key and any
    /// query string hidden.
    pub fn redacted_url(&self) -> String {
        crate::rtmp::url::redacted_url(&self.url, self.stream_key.is_some())
    }

    /// Where this target publishes: its URL, then its backup's, if any (`true` = backup).
    pub fn endpoints(&self) -> impl Iterator<Item = (&str, bool)> {
        std::iter::once((self.url.as_str(), false))
            .chain(self.backup_url.as_deref().map(|u| (u, true)))
    }
}
