//! A small AMF0 writer (Adobe "Action Message Format -- AMF 0", §2) for the few values we send
//! ourselves: `@setDataFrame onMetaData` and the releaseStream / FCPublish / FCUnpublish
//! commands.
//!
//! `rml_amf0` keeps object properties in a `HashMap`, so its output order changes from run to
//! run; our metadata is written in a fixed order so its bytes can be compared with golden
//! captures.

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const NULL: u8 = 0x05;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: [u8; 3] = [0x00, 0x00, 0x09];

/// One value of an ECMA array property.
#[derive(Clone, Debug, PartialEq)]
pub enum Property {
    Number(f64),
    Boolean(bool),
    String(String),
}

pub fn write_number(out: &mut Vec<u8>, value: f64) {
    out.push(NUMBER);
    out.extend_from_slice(&value.to_be_bytes());
}

pub fn write_null(out: &mut Vec<u8>) {
    out.push(NULL);
}

/// Writes a short string; text longer than 65535 bytes is cut at a character boundary (AMF0's
/// short string has a 16-bit length, and nothing we send comes close).
pub fn write_string(out: &mut Vec<u8>, value: &str) {
    out.push(STRING);
    write_utf8(out, value);
}

fn write_utf8(out: &mut Vec<u8>, value: &str) {
    let mut end = value.len().min(u16::MAX as usize);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_be_bytes());
    out.extend_from_slice(&value.as_bytes()[..end]);
}

/// Writes an ECMA array, the type encoders use for `onMetaData`.
pub fn write_ecma_array(out: &mut Vec<u8>, properties: &[(&str, Property)]) {
    out.push(ECMA_ARRAY);
    out.extend_from_slice(&(properties.len() as u32).to_be_bytes());
    for (name, value) in properties {
        write_utf8(out, name);
        match value {
            Property::Number(n) => write_number(out, *n),
            Property::Boolean(b) => {
                out.push(BOOLEAN);
                out.push(u8::from(*b));
            }
            Property::String(s) => write_string(out, s),
        }
    }
    out.extend_from_slice(&OBJECT_END);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_rml_amf0() {
        let mut out = Vec::new();
        write_string(&mut out, "FCPublish");
        write_number(&mut out, 1e6);
        write_null(&mut out);
        write_ecma_array(
            &mut out,
            &[
                ("width", Property::Number(320.0)),
                ("stereo", Property::Boolean(false)),
            ],
        );
        let values = rml_rtmp::rml_amf0::deserialize(&mut &out[..]).unwrap();
        use rml_rtmp::rml_amf0::Amf0Value;
        assert_eq!(values[0], Amf0Value::Utf8String("FCPublish".into()));
        assert_eq!(values[1], Amf0Value::Number(1e6));
        assert_eq!(values[2], Amf0Value::Null);
        let Amf0Value::Object(props) = &values[3] else {
            panic!("ECMA array reads back as an object: {:?}", values[3]);
        };
        assert_eq!(props["width"], Amf0Value::Number(320.0));
        assert_eq!(props["stereo"], Amf0Value::Boolean(false));
    }

    #[test]
    fn overlong_string_is_cut_at_a_char_boundary() {
        let text = "é".repeat(40_000);
        let mut out = Vec::new();
        write_string(&mut out, &text);
        let len = u16::from_be_bytes([out[1], out[2]]) as usize;
        assert_eq!(len, 65534);
        assert!(std::str::from_utf8(&out[3..]).is_ok());
    }
}
