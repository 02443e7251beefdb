//! sipcast's telephone-band AAC-LC encoder judged by ffmpeg's AAC decoder (the one players and
//! CDN transcoders are built on): every frame decodes without a complaint, the output lines up
//! with the input one frame late as documented, and it is the input — a tone and a sweep
//! across the telephone band come back at their level with the coding noise far below them.

mod peers;

use std::process::Command;

use sipcast::media::speech_aac::{DELAY_SAMPLES, SpeechEncoder};

const RATE: u32 = 48_000;
const FRAME: usize = 1024;

/// ADTS header (ISO/IEC 13818-7 §6.2) for one raw AAC-LC 48 kHz mono frame of `len` bytes.
fn adts_header(len: usize) -> [u8; 7] {
    let total = len + 7;
    [
        0xff,
        0xf1,                                    // MPEG-4, layer 0, no CRC
        (1 << 6) | (3 << 2), // AAC LC, 48 kHz, channel configuration's high bit 0
        (1 << 6) | ((total >> 11) & 0x03) as u8, // one channel
        ((total >> 3) & 0xff) as u8,
        (((total & 0x07) << 5) | 0x1f) as u8,
        0xfc, // buffer fullness 0x7ff (VBR), one raw data block
    ]
}

/// Encodes `input` and decodes it with ffmpeg; returns the decoded samples.
fn through_ffmpeg(input: &[i16]) -> Vec<i16> {
    peers::require("ffmpeg");
    let mut encoder = SpeechEncoder::new(RATE, 64_000, 4_000).unwrap();
    let mut stream = Vec::new();
    let mut out = vec![0u8; 768];
    for frame in input.chunks(FRAME) {
        let written = encoder.encode(frame, &mut out);
        stream.extend_from_slice(&adts_header(written));
        stream.extend_from_slice(&out[..written]);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("speech.aac");
    std::fs::write(&path, &stream).unwrap();
    let output = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-f", "aac", "-i"])
        .arg(&path)
        .args(["-f", "s16le", "-ac", "1", "-ar", "48000", "-"])
        .output()
        .unwrap();
    let complaints = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && complaints.trim().is_empty(),
        "{complaints}"
    );
    output
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// SNR in dB of `decoded` shifted back by `delay` against `input`, over `range` of the input.
fn snr_db(input: &[i16], decoded: &[i16], delay: usize, range: std::ops::Range<usize>) -> f64 {
    let (mut signal, mut noise) = (0.0, 0.0);
    for i in range {
        let (x, y) = (f64::from(input[i]), f64::from(decoded[i + delay]));
        signal += x * x;
        noise += (x - y) * (x - y);
    }
    10.0 * (signal / noise.max(1e-9)).log10()
}

fn check(name: &str, input: &[i16], min_snr_db: f64) {
    let decoded = through_ffmpeg(input);
    assert!(
        decoded.len() >= input.len(),
        "{name}: {} samples",
        decoded.len()
    );
    // Find the alignment on a stretch of the sweep or tone, then judge the whole steady middle.
    let probe = 8 * FRAME..16 * FRAME;
    let best = (0..2 * FRAME)
        .map(|delay| (delay, snr_db(input, &decoded, delay, probe.clone())))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap()
        .0;
    let snr = snr_db(input, &decoded, best, 4 * FRAME..input.len() - 4 * FRAME);
    eprintln!("{name}: {snr:.1} dB SNR through ffmpeg, {best} samples late");
    assert_eq!(best, DELAY_SAMPLES as usize, "{name}: the documented delay");
    assert!(snr > min_snr_db, "{name}: {snr:.1} dB");
}

#[test]
fn ffmpeg_decodes_a_tone_at_its_level_one_frame_late() {
    let input: Vec<i16> = (0..RATE as usize * 2)
        .map(|n| (9_000.0 * (std::f64::consts::TAU * 440.0 * n as f64 / 48_000.0).sin()) as i16)
        .collect();
    check("440 Hz tone", &input, 60.0);
}

#[test]
fn ffmpeg_decodes_a_sweep_across_the_telephone_band() {
    // 100 Hz to 3.8 kHz in two seconds, loud: every coded band is exercised in turn.
    let seconds = 2.0;
    let (low, high) = (100.0f64, 3_800.0f64);
    let input: Vec<i16> = (0..(f64::from(RATE) * seconds) as usize)
        .map(|n| {
            let t = n as f64 / f64::from(RATE);
            let phase = std::f64::consts::TAU * (low * t + (high - low) * t * t / (2.0 * seconds));
            (16_000.0 * phase.sin()) as i16
        })
        .collect();
    check("sweep", &input, 55.0);
}
