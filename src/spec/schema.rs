//! The JSON Schema of a spec file, as printed by `sipcast schema`.

use serde_json::Value;

use super::raw::RawSpec;

/// Pretty-printed JSON Schema, newline-terminated: `schemas/broadcast.schema.json` is exactly
/// this.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(RawSpec);
    let mut value = schema.to_value();
    drop_nulls(&mut value);
    let mut text = serde_json::to_string_pretty(&value).expect("a schema always serializes");
    text.push('\n');
    text
}

/// TOML has no null (an absent key asks for the default), so `Option` fields are described
/// by their inner type: `"type": ["string", "null"]` → `"string"`, and `anyOf: [X, null]` → X.
fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(alternatives)) = map.get_mut("anyOf") {
                alternatives.retain(|a| a.get("type").is_none_or(|t| t != "null"));
                if alternatives.len() == 1 {
                    let Some(Value::Object(inner)) = alternatives.pop() else {
                        unreachable!("one alternative remains")
                    };
                    map.remove("anyOf");
                    for (k, v) in inner {
                        map.entry(k).or_insert(v);
                    }
                }
            }
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_schema_is_the_printed_one() {
        let committed = include_str!("../../schemas/broadcast.schema.json");
        assert!(
            committed == super::schema_json(),
            "schemas/broadcast.schema.json is stale: run `sipcast schema > schemas/broadcast.schema.json`"
        );
    }

    #[test]
    fn the_schema_has_no_nulls_and_requires_the_three_tables() {
        let schema: serde_json::Value = serde_json::from_str(&super::schema_json()).unwrap();
        assert!(!schema.to_string().contains("null"));
        assert_eq!(
            schema["required"],
            serde_json::json!(["sip", "call", "rtmp"])
        );
        assert_eq!(schema["additionalProperties"], false);
    }

    #[test]
    fn every_shipped_example_is_valid() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/broadcasts.d");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                seen += 1;
                if let Err(e) = crate::spec::load(&path) {
                    panic!("{e}");
                }
            }
        }
        assert!(seen >= 2);
    }
}
