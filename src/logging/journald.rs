//! journald's native protocol: one datagram per entry to `/run/systemd/journal/socket`.
//!
//! Each field is `NAME=value\n`, or, when the value contains a newline,
//! `NAME\n` + the value's length as a little-endian u64 + value + `\n`
//! (systemd "Native Journal Protocol"). Field names must be `[A-Z0-9_]`, must not start with
//! `_` or a digit and are at most 64 bytes; journald silently drops others, so we sanitize.

use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use tracing::Level;

use super::record::{LogRecord, RecordSink};

/// Where systemd-journald listens for native entries.
pub const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// Values longer than this are cut: an entry must fit one datagram (we pass no memfd).
const MAX_VALUE_BYTES: usize = 16 * 1024;

/// Fields we set ourselves; a user field mapping to one of these is renamed `F_<NAME>`.
const RESERVED: [&str; 6] = [
    "MESSAGE",
    "PRIORITY",
    "SYSLOG_IDENTIFIER",
    "TARGET",
    "CODE_FILE",
    "CODE_LINE",
];

/// Sends records to journald; falls back to a stderr line if the socket refuses one.
pub(crate) struct JournaldSink {
    socket: UnixDatagram,
    identifier: String,
}

impl JournaldSink {
    pub(crate) fn connect(path: &Path, identifier: &str) -> std::io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        Ok(JournaldSink {
            socket,
            identifier: identifier.to_owned(),
        })
    }
}

impl RecordSink for JournaldSink {
    fn write(&self, record: &LogRecord) {
        let entry = encode_entry(record, &self.identifier);
        if self.socket.send(&entry).is_err() {
            // journald restarting or the entry too large: keep the line rather than lose it.
            let line = format!("{} {}\n", record.level, record.human_line());
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
    }
}

/// journald priorities (syslog levels): err, warning, info, debug.
fn priority(level: Level) -> &'static str {
    match level {
        Level::ERROR => "3",
        Level::WARN => "4",
        Level::INFO => "6",
        Level::DEBUG | Level::TRACE => "7",
    }
}

/// The datagram for one record.
pub(crate) fn encode_entry(record: &LogRecord, identifier: &str) -> Vec<u8> {
    let mut entry = Vec::with_capacity(256);
    put_field(&mut entry, "MESSAGE", &record.human_line());
    put_field(&mut entry, "PRIORITY", priority(record.level));
    put_field(&mut entry, "SYSLOG_IDENTIFIER", identifier);
    put_field(&mut entry, "TARGET", &record.target);
    if let Some(file) = &record.file {
        put_field(&mut entry, "CODE_FILE", file);
    }
    if let Some(line) = record.line {
        put_field(&mut entry, "CODE_LINE", &line.to_string());
    }
    for (name, value) in &record.fields {
        if let Some(name) = field_name(name) {
            put_field(&mut entry, &name, &value.to_string());
        }
    }
    entry
}

/// `call_id` → `CALL_ID`; `None` when nothing valid is left.
pub(crate) fn field_name(name: &str) -> Option<String> {
    let upper: String = name
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' => c.to_ascii_uppercase(),
            _ => '_',
        })
        .skip_while(|c| *c == '_' || c.is_ascii_digit())
        .take(64)
        .collect();
    if upper.is_empty() {
        None
    } else if RESERVED.contains(&upper.as_str()) {
        Some(format!("F_{upper}").chars().take(64).collect())
    } else {
        Some(upper)
    }
}

fn put_field(entry: &mut Vec<u8>, name: &str, value: &str) {
    let value = truncate(value, MAX_VALUE_BYTES);
    entry.extend_from_slice(name.as_bytes());
    if value.contains('\n') {
        entry.push(b'\n');
        entry.extend_from_slice(&(value.len() as u64).to_le_bytes());
        entry.extend_from_slice(value.as_bytes());
    } else {
        entry.push(b'=');
        entry.extend_from_slice(value.as_bytes());
    }
    entry.push(b'\n');
}

fn truncate(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// Parses a native-protocol datagram back into fields (for tests).
#[cfg(test)]
pub(crate) fn decode_entry(mut data: &[u8]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    while !data.is_empty() {
        let line_end = data.iter().position(|b| *b == b'\n').expect("newline");
        let line = &data[..line_end];
        if let Some(eq) = line.iter().position(|b| *b == b'=') {
            let name = String::from_utf8(line[..eq].to_vec()).expect("utf-8 name");
            let value = String::from_utf8(line[eq + 1..].to_vec()).expect("utf-8 value");
            fields.push((name, value));
            data = &data[line_end + 1..];
        } else {
            let name = String::from_utf8(line.to_vec()).expect("utf-8 name");
            let rest = &data[line_end + 1..];
            let len_bytes: [u8; 8] = rest[..8].try_into().expect("length");
            let len = u64::from_le_bytes(len_bytes) as usize;
            let value = String::from_utf8(rest[8..8 + len].to_vec()).expect("utf-8 value");
            assert_eq!(rest[8 + len], b'\n', "binary field ends with a newline");
            fields.push((name, value));
            data = &rest[8 + len + 1..];
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logging::record::FieldValue;

    fn record(message: &str) -> LogRecord {
        LogRecord {
            level: Level::WARN,
            target: "sipcast::call".into(),
            file: Some("src/call.rs".into()),
            line: Some(42),
            message: message.into(),
            fields: vec![
                ("broadcast", "allhands".into()),
                ("call_id", "abc@h".into()),
                ("sip_status", FieldValue::Uint(486)),
                ("priority", "user value".into()),
                ("_private", "x".into()),
                ("__", "dropped".into()),
            ],
        }
    }

    #[test]
    fn encodes_standard_and_user_fields() {
        let fields = decode_entry(&encode_entry(&record("call failed"), "sipcast"));
        let get = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            get("MESSAGE"),
            Some(
                "call failed broadcast=allhands call_id=abc@h sip_status=486 \
                 priority=user value _private=x __=dropped"
            )
        );
        assert_eq!(get("PRIORITY"), Some("4"));
        assert_eq!(get("SYSLOG_IDENTIFIER"), Some("sipcast"));
        assert_eq!(get("TARGET"), Some("sipcast::call"));
        assert_eq!(get("CODE_FILE"), Some("src/call.rs"));
        assert_eq!(get("CODE_LINE"), Some("42"));
        assert_eq!(get("BROADCAST"), Some("allhands"));
        assert_eq!(get("CALL_ID"), Some("abc@h"));
        assert_eq!(get("SIP_STATUS"), Some("486"));
        assert_eq!(get("F_PRIORITY"), Some("user value"));
        assert_eq!(get("PRIVATE"), Some("x"));
        assert_eq!(fields.iter().filter(|(n, _)| n == "PRIORITY").count(), 1);
        assert_eq!(fields.len(), 11);
    }

    #[test]
    fn multi_line_values_use_the_length_prefixed_form() {
        let entry = encode_entry(&record("line one\nline two"), "sipcast");
        assert!(entry.starts_with(b"MESSAGE\n"));
        let fields = decode_entry(&entry);
        assert!(fields[0].1.starts_with("line one\nline two broadcast="));
    }

    #[test]
    fn field_names_follow_journald_rules() {
        assert_eq!(field_name("call_id").as_deref(), Some("CALL_ID"));
        assert_eq!(field_name("rtmp.url").as_deref(), Some("RTMP_URL"));
        assert_eq!(field_name("9lives").as_deref(), Some("LIVES"));
        assert_eq!(field_name("message").as_deref(), Some("F_MESSAGE"));
        assert_eq!(field_name("___"), None);
        assert_eq!(field_name(&"x".repeat(100)).map(|n| n.len()), Some(64));
    }

    #[test]
    fn oversized_values_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_VALUE_BYTES);
        let cut = truncate(&long, MAX_VALUE_BYTES);
        assert!(cut.len() <= MAX_VALUE_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
