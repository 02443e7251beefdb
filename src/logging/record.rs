//! One log event flattened into plain strings, shared by the journald and JSON writers.
//!
//! Fields of enclosing spans are inherited (root first, innermost and the event itself win), so
//! a supervisor's `broadcast` span puts `BROADCAST=` on every line it logs. Values are captured
//! with `Debug`/`Display`, so a `crate::secret::Secret` prints as `****`; `rtmp_url` is
//! additionally passed through [`redact_rtmp_url`] in case a caller hands over a raw URL.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Writes a finished [`LogRecord`] somewhere (journald socket, stderr as JSON).
pub(crate) trait RecordSink: Send + Sync + 'static {
    fn write(&self, record: &LogRecord);
}

/// A `tracing` layer that turns each event into a [`LogRecord`] for its sink.
pub(crate) struct StructuredLayer<S> {
    sink: S,
}

impl<S> StructuredLayer<S> {
    pub(crate) fn new(sink: S) -> Self {
        StructuredLayer { sink }
    }
}

/// The flattened fields of one span, kept in the span's extensions.
struct SpanFields(Fields);

impl<S, Sub> Layer<Sub> for StructuredLayer<S>
where
    S: RecordSink,
    Sub: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, Sub>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, Sub>,
    ) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<SpanFields>() {
            Some(SpanFields(fields)) => values.record(fields),
            None => {
                let mut fields = Fields::default();
                values.record(&mut fields);
                extensions.insert(SpanFields(fields));
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, Sub>) {
        let mut fields = Fields::default();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(span_fields)) = span.extensions().get::<SpanFields>() {
                    fields.extend(span_fields);
                }
            }
        }
        event.record(&mut fields);
        self.sink.write(&LogRecord::new(event.metadata(), fields));
    }
}

/// Everything a writer needs about one event, as owned strings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct LogRecord {
    pub level: Level,
    pub target: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub message: String,
    /// User fields in first-seen order, names as written in the code (`broadcast`, `call_id`).
    pub fields: Vec<(&'static str, FieldValue)>,
}

/// A field's value, keeping numbers and booleans typed for JSON.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldValue {
    Text(String),
    Int(i64),
    Uint(u64),
    Float(f64),
    Bool(bool),
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Text(text) => f.write_str(text),
            FieldValue::Int(n) => write!(f, "{n}"),
            FieldValue::Uint(n) => write!(f, "{n}"),
            FieldValue::Float(x) => write!(f, "{x}"),
            FieldValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl From<&str> for FieldValue {
    fn from(text: &str) -> Self {
        FieldValue::Text(text.to_owned())
    }
}

impl LogRecord {
    fn new(metadata: &tracing::Metadata<'_>, fields: Fields) -> Self {
        let Fields {
            message,
            log,
            values,
        } = fields;
        // Events bridged from the `log` crate carry their real origin in `log.*` fields.
        LogRecord {
            level: *metadata.level(),
            target: log.target.unwrap_or_else(|| metadata.target().to_owned()),
            file: log.file.or_else(|| metadata.file().map(str::to_owned)),
            line: log.line.or(metadata.line()),
            message: message.unwrap_or_default(),
            fields: values,
        }
    }

    /// The message followed by ` name=value` per field: what a human reads in `journalctl`.
    pub fn human_line(&self) -> String {
        let mut line = self.message.clone();
        for (name, value) in &self.fields {
            line.push(' ');
            line.push_str(name);
            line.push('=');
            line.push_str(&value.to_string());
        }
        line
    }
}

#[derive(Debug, Default, Clone)]
struct LogOrigin {
    target: Option<String>,
    file: Option<String>,
    line: Option<u32>,
}

/// A field visitor that keeps the last value per name.
#[derive(Debug, Default, Clone)]
struct Fields {
    message: Option<String>,
    log: LogOrigin,
    values: Vec<(&'static str, FieldValue)>,
}

impl Fields {
    fn set(&mut self, name: &'static str, value: FieldValue) {
        match name {
            "message" => self.message = Some(value.to_string()),
            "log.target" => self.log.target = Some(value.to_string()),
            "log.file" => self.log.file = Some(value.to_string()),
            "log.line" => self.log.line = value.to_string().parse().ok(),
            "log.module_path" => {}
            "rtmp_url" => {
                let redacted = redact_rtmp_url(&value.to_string());
                self.upsert(name, FieldValue::Text(redacted));
            }
            _ => self.upsert(name, value),
        }
    }

    fn upsert(&mut self, name: &'static str, value: FieldValue) {
        match self.values.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.values.push((name, value)),
        }
    }

    fn extend(&mut self, other: &Fields) {
        if let Some(message) = &other.message {
            self.message = Some(message.clone());
        }
        for (name, value) in &other.values {
            self.upsert(name, value.clone());
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name(), value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), FieldValue::Int(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name(), FieldValue::Uint(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name(), FieldValue::Float(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), FieldValue::Bool(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.set(field.name(), FieldValue::Text(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.set(field.name(), FieldValue::Text(format!("{value:?}")));
    }
}

/// Hides whatever in an RTMP URL could be a credential: user info, the query, and every path
/// segment after the application name (where stream keys live):
/// `rtmp://u:p@host/live/KEY?x=1` → `rtmp://****@host/live/****?****`.
pub fn redact_rtmp_url(url: &str) -> String {
    const HIDDEN: &str = "****";
    let Some((scheme, rest)) = url.split_once("://") else {
        return HIDDEN.to_owned();
    };
    let (before_query, query) = match rest.find(['?', '#']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let (authority, path) = match before_query.find('/') {
        Some(at) => before_query.split_at(at),
        None => (before_query, ""),
    };
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("{HIDDEN}@{host}"),
        None => authority.to_owned(),
    };
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let mut redacted = format!("{scheme}://{host}");
    if let Some(app) = segments.next() {
        redacted.push('/');
        redacted.push_str(app);
    }
    if segments.next().is_some() {
        redacted.push('/');
        redacted.push_str(HIDDEN);
    }
    if !query.is_empty() {
        redacted.push('?');
        redacted.push_str(HIDDEN);
    }
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_host_and_application_only() {
        let cases = [
            (
                "rtmps://a.rtmps.youtube.com/live2",
                "rtmps://a.rtmps.youtube.com/live2",
            ),
            (
                "rtmps://a.rtmps.youtube.com/live2/****",
                "rtmps://a.rtmps.youtube.com/live2/****",
            ),
            (
                "rtmp://127.0.0.1:1935/live/abc-123",
                "rtmp://127.0.0.1:1935/live/****",
            ),
            ("rtmp://h/app/instance/key", "rtmp://h/app/****"),
            ("rtmp://user:pw@h/live/key", "rtmp://****@h/live/****"),
            ("rtmp://h/live?secret=1", "rtmp://h/live?****"),
            ("rtmp://h/live/key#frag", "rtmp://h/live/****?****"),
            ("rtmp://h", "rtmp://h"),
            ("not a url with a key", "****"),
            ("", "****"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_rtmp_url(input), expected, "{input}");
        }
    }

    #[test]
    fn redaction_is_idempotent() {
        for url in ["rtmp://u@h/a/b/c?d", "rtmps://h:443/live2/k", "x://y"] {
            let once = redact_rtmp_url(url);
            assert_eq!(redact_rtmp_url(&once), once);
        }
    }

    #[test]
    fn human_line_appends_fields_in_order() {
        let record = LogRecord {
            level: Level::INFO,
            target: "sipcast".into(),
            file: None,
            line: None,
            message: "call established".into(),
            fields: vec![
                ("broadcast", "allhands".into()),
                ("sip_status", FieldValue::Uint(200)),
                ("audio", FieldValue::Bool(true)),
            ],
        };
        assert_eq!(
            record.human_line(),
            "call established broadcast=allhands sip_status=200 audio=true"
        );
    }
}
