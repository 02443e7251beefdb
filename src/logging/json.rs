//! One JSON object per line on stderr, span fields flattened next to the event's own:
//! `{"timestamp":"…","level":"INFO","target":"…","message":"…","broadcast":"allhands",…}`.

use std::io::Write;
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::record::{FieldValue, LogRecord, RecordSink};
use crate::clock::WallClock;

/// Writes records as JSON lines to any writer (stderr in the daemon, a buffer in tests).
pub(crate) struct JsonSink {
    out: Mutex<Box<dyn Write + Send>>,
    clock: WallClock,
}

impl JsonSink {
    pub(crate) fn new(out: Box<dyn Write + Send>, clock: WallClock) -> Self {
        JsonSink {
            out: Mutex::new(out),
            clock,
        }
    }
}

impl RecordSink for JsonSink {
    fn write(&self, record: &LogRecord) {
        let mut line = json_line(record, &self.clock.now().to_string());
        line.push('\n');
        // A poisoned lock only means another thread panicked mid-write; keep logging.
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    }
}

/// The JSON object for one record. Fixed keys win over user fields of the same name.
pub(crate) fn json_line(record: &LogRecord, timestamp: &str) -> String {
    let mut object = Map::new();
    for (name, value) in &record.fields {
        object.insert((*name).to_owned(), json_value(value));
    }
    object.insert("timestamp".into(), timestamp.into());
    object.insert("level".into(), record.level.as_str().into());
    object.insert("target".into(), record.target.clone().into());
    object.insert("message".into(), record.message.clone().into());
    Value::Object(object).to_string()
}

fn json_value(value: &FieldValue) -> Value {
    match value {
        FieldValue::Text(text) => Value::String(text.clone()),
        FieldValue::Int(n) => Value::from(*n),
        FieldValue::Uint(n) => Value::from(*n),
        // NaN and infinities have no JSON number: keep them readable as strings.
        FieldValue::Float(x) => serde_json::Number::from_f64(*x)
            .map_or_else(|| Value::String(x.to_string()), Value::Number),
        FieldValue::Bool(b) => Value::Bool(*b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn flattens_fields_beside_the_fixed_keys() {
        let record = LogRecord {
            level: Level::INFO,
            target: "sipcast::rtmp".into(),
            file: None,
            line: None,
            message: "publishing".into(),
            fields: vec![
                ("broadcast", "allhands".into()),
                ("level", "shadowed".into()),
                ("sip_status", FieldValue::Uint(200)),
                ("loss", FieldValue::Float(f64::NAN)),
                ("video", FieldValue::Bool(false)),
            ],
        };
        let line = json_line(&record, "2026-11-23T06:00:00Z");
        let value: Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(value["timestamp"], "2026-11-23T06:00:00Z");
        assert_eq!(value["level"], "INFO");
        assert_eq!(value["target"], "sipcast::rtmp");
        assert_eq!(value["message"], "publishing");
        assert_eq!(value["broadcast"], "allhands");
        assert_eq!(value["sip_status"], 200);
        assert_eq!(value["loss"], "NaN");
        assert_eq!(value["video"], false);
        assert!(!line.contains('\n'));
    }
}
