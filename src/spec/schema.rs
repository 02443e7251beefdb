//! The JSON Schema of a spec file, as printed by `sipcast schema`.

use super::raw::RawSpec;

/// Pretty-printed JSON Schema, newline-terminated: `schemas/broadcast.schema.json` is exactly
/// this.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(RawSpec);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema always serializes");
    text.push('\n');
    text
}
