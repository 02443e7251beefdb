//! G.711 µ-law and A-law decoding (ITU-T G.711; RTP payload types 0 and 8, RFC 3551 §4.5.14).
//!
//! 256-entry tables built at compile time: decoding is one lookup per sample. The encoders exist
//! for tests and tools that need G.711 input; the media path only decodes.

/// Which G.711 law a stream uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum G711Law {
    MuLaw,
    ALaw,
}

const fn mulaw_to_linear(byte: u8) -> i16 {
    let u = !byte;
    let exponent = (u >> 4) & 7;
    let mantissa = (u & 0x0f) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

const fn alaw_to_linear(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let exponent = (a >> 4) & 7;
    let mantissa = (a & 0x0f) as i32;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

const fn table(law: G711Law) -> [i16; 256] {
    let mut out = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        out[i] = match law {
            G711Law::MuLaw => mulaw_to_linear(i as u8),
            G711Law::ALaw => alaw_to_linear(i as u8),
        };
        i += 1;
    }
    out
}

static MULAW: [i16; 256] = table(G711Law::MuLaw);
static ALAW: [i16; 256] = table(G711Law::ALaw);

/// Decodes `payload` into 16-bit PCM, appending to `out`.
pub fn decode(law: G711Law, payload: &[u8], out: &mut Vec<i16>) {
    let table = match law {
        G711Law::MuLaw => &MULAW,
        G711Law::ALaw => &ALAW,
    };
    out.extend(payload.iter().map(|&b| table[usize::from(b)]));
}

/// Encodes one sample (the classic segment search; tests and tools only).
pub fn encode_sample(law: G711Law, sample: i16) -> u8 {
    match law {
        G711Law::MuLaw => {
            let sign = if sample < 0 { 0x80 } else { 0 };
            let magnitude = (i32::from(sample).abs().min(32635) + 0x84) as u32;
            let exponent = (31 - magnitude.leading_zeros()).saturating_sub(7).min(7);
            let mantissa = (magnitude >> (exponent + 3)) & 0x0f;
            !(sign | (exponent << 4) as u8 | mantissa as u8)
        }
        G711Law::ALaw => {
            let (sign, magnitude) = if sample >= 0 {
                (0x80u8, i32::from(sample))
            } else {
                (0, -i32::from(sample) - 1)
            };
            let magnitude = magnitude.min(32767) as u32;
            let exponent = (31 - (magnitude | 1).leading_zeros())
                .saturating_sub(7)
                .min(7);
            let mantissa = if exponent == 0 {
                (magnitude >> 4) & 0x0f
            } else {
                (magnitude >> (exponent + 3)) & 0x0f
            };
            (sign | (exponent << 4) as u8 | mantissa as u8) ^ 0x55
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_code_points() {
        assert_eq!(MULAW[0xff], 0);
        assert_eq!(MULAW[0x80], 32124);
        assert_eq!(MULAW[0x00], -32124);
        assert_eq!(ALAW[0xd5], 8);
        assert_eq!(ALAW[0x55], -8);
        assert_eq!(ALAW[0xaa], 32256);
        assert_eq!(ALAW[0x2a], -32256);
    }

    #[test]
    fn every_code_round_trips_through_the_encoder() {
        for law in [G711Law::MuLaw, G711Law::ALaw] {
            for code in 0..=255u8 {
                let mut pcm = Vec::new();
                decode(law, &[code], &mut pcm);
                let again = encode_sample(law, pcm[0]);
                let mut back = Vec::new();
                decode(law, &[again], &mut back);
                assert_eq!(back, pcm, "{law:?} code {code:#04x}");
            }
        }
    }

    #[test]
    fn encoding_error_is_within_the_segment_step() {
        for law in [G711Law::MuLaw, G711Law::ALaw] {
            for sample in (-32000i16..32000).step_by(97) {
                let mut pcm = Vec::new();
                decode(law, &[encode_sample(law, sample)], &mut pcm);
                let error = (i32::from(pcm[0]) - i32::from(sample)).abs();
                assert!(
                    error <= i32::from(sample).abs() / 16 + 16,
                    "{law:?} {sample} -> {}",
                    pcm[0]
                );
            }
        }
    }
}
