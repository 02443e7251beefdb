//! Opus (RFC 6716, RFC 7587) to mono PCM with the pure-Rust `opus-rs` decoder.
//!
//! Every packet Opus allows decodes: 2.5 to 120 ms, one frame or several, mono or stereo (a
//! mono decoder mixes stereo down). The RTP clock of Opus is always 48 kHz (RFC 7587 §4.1), so
//! PCM comes out at 48 kHz whatever bandwidth the sender used.

/// 120 ms at 48 kHz, the longest packet RFC 6716 §3.2.5 allows.
pub const MAX_PACKET_SAMPLES: usize = 5760;

pub struct OpusMonoDecoder {
    decoder: Box<opus_rs::OpusDecoder>,
    /// The decoder's float output; sized once for the longest packet.
    decoded: Vec<f32>,
}

impl std::fmt::Debug for OpusMonoDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OpusMonoDecoder")
    }
}

impl Default for OpusMonoDecoder {
    fn default() -> Self {
        let decoder = opus_rs::OpusDecoder::new(48_000, 1).expect("48 kHz mono is valid");
        OpusMonoDecoder {
            decoder: Box::new(decoder),
            decoded: vec![0.0; MAX_PACKET_SAMPLES],
        }
    }
}

impl OpusMonoDecoder {
    /// Appends the packet's PCM to `out`; false if it could not be decoded. An empty payload is
    /// refused (opus-rs would conceal it as a lost 120 ms).
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> bool {
        if payload.is_empty() {
            return false;
        }
        match self
            .decoder
            .decode(payload, MAX_PACKET_SAMPLES, &mut self.decoded)
        {
            Ok(samples) => {
                let pcm = self.decoded[..samples.min(MAX_PACKET_SAMPLES)].iter();
                out.extend(pcm.map(|&x| (x * 32768.0).clamp(-32768.0, 32767.0) as i16));
                true
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opus_rs::{Application, OpusEncoder};

    fn tone(samples: usize, channels: usize) -> Vec<i16> {
        (0..samples * channels)
            .map(|i| {
                let n = (i / channels) as f64;
                (8000.0 * (n * 440.0 * std::f64::consts::TAU / 48_000.0).sin()) as i16
            })
            .collect()
    }

    fn energy(pcm: &[i16]) -> f64 {
        pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len().max(1) as f64
    }

    #[test]
    fn every_packet_duration_and_channel_count_decodes_to_mono() {
        for channels in [1, 2] {
            for ms in [10, 20, 40, 60] {
                let per_packet = 48 * ms;
                let mut encoder = OpusEncoder::new(48_000, channels, Application::Voip).unwrap();
                let mut decoder = OpusMonoDecoder::default();
                let input = tone(48_000, channels);
                let mut decoded = Vec::new();
                let mut packet = vec![0; 4000];
                for chunk in input.chunks_exact(per_packet * channels) {
                    let len = encoder.encode_i16(chunk, per_packet, &mut packet).unwrap();
                    let before = decoded.len();
                    assert!(
                        decoder.decode(&packet[..len], &mut decoded),
                        "{channels} ch {ms} ms"
                    );
                    assert_eq!(decoded.len() - before, per_packet, "{channels} ch {ms} ms");
                }
                let mono_input: Vec<i16> = input.iter().step_by(channels).copied().collect();
                let ratio = energy(&decoded[9600..]) / energy(&mono_input[9600..decoded.len()]);
                assert!(
                    (0.3..3.0).contains(&ratio),
                    "{channels} ch {ms} ms: {ratio}"
                );
            }
        }
    }

    #[test]
    fn garbage_is_refused_and_decoding_goes_on() {
        let mut decoder = OpusMonoDecoder::default();
        let mut out = Vec::new();
        for garbage in [&[0xff, 0xff, 0xff][..], &[0xfc; 40], &[0x03, 0xff, 0x00]] {
            let _ = decoder.decode(garbage, &mut out);
        }
        assert!(out.len() <= 3 * MAX_PACKET_SAMPLES);
        let mut encoder = OpusEncoder::new(48_000, 1, Application::Voip).unwrap();
        let mut packet = vec![0; 4000];
        let len = encoder.encode_i16(&tone(960, 1), 960, &mut packet).unwrap();
        out.clear();
        assert!(decoder.decode(&packet[..len], &mut out));
        assert_eq!(out.len(), 960);
    }
}
