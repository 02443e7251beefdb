//! The test sources' audio is a 440 Hz sine (ffmpeg's `sine` at its default amplitude, -21 dBFS
//! RMS): after any decode → AAC chain it must still be that tone, loud and at 440 Hz. Silence
//! or noise is what a broken decoder gives.

use std::path::Path;
use std::process::Command;

/// `path`'s audio decoded by ffmpeg to 16 kHz mono samples; `window` optionally limits it to
/// (start s, length s).
pub fn decode_pcm(path: &Path, window: Option<(f64, f64)>) -> Vec<f64> {
    let mut command = Command::new("ffmpeg");
    command.args(["-nostdin", "-v", "error"]);
    if let Some((from, length)) = window {
        command.args(["-ss", &format!("{from:.2}"), "-t", &format!("{length:.2}")]);
    }
    let output = command
        .arg("-i")
        .arg(path)
        .args(["-vn", "-ac", "1", "-ar", "16000", "-f", "s16le", "-"])
        .output()
        .expect("ffmpeg is required for this test");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
        .stdout
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])))
        .collect()
}

/// Decodes `path`'s audio with ffmpeg and checks the middle half of it is the 440 Hz tone: its
/// level within -30..-12 dBFS and its power at 440 Hz 30 dB (1000×) above 700 and 1250 Hz.
pub fn check_440_hz(path: &Path) {
    let pcm = decode_pcm(path, None);
    // The middle, away from the encoder's start-up and the end of the call.
    let middle = &pcm[pcm.len() / 4..pcm.len() * 3 / 4];
    let rms = (middle.iter().map(|x| x * x).sum::<f64>() / middle.len().max(1) as f64).sqrt();
    let dbfs = 20.0 * (rms / 32768.0).log10();
    let (tone, other) = (
        power_at(middle, 440.0),
        power_at(middle, 1250.0).max(power_at(middle, 700.0)),
    );
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    eprintln!(
        "{name}: {dbfs:.1} dBFS, 440 Hz is {:.0} dB above 700/1250 Hz",
        10.0 * (tone / other).log10()
    );
    assert!(
        (-30.0..-12.0).contains(&dbfs),
        "{name}: tone level {dbfs:.1} dBFS"
    );
    assert!(
        tone > 1000.0 * other,
        "{name}: 440 Hz {tone:e} vs elsewhere {other:e}"
    );
}

/// For each whole second of `path`'s audio: is the 440 Hz tone there (level above -30 dBFS
/// and 440 Hz 30 dB above 700 and 1250 Hz)? Silence and noise are `false`.
pub fn tone_by_second(path: &Path) -> Vec<bool> {
    let pcm = decode_pcm(path, None);
    pcm.chunks_exact(16_000)
        .map(|second| {
            let rms = (second.iter().map(|x| x * x).sum::<f64>() / 16_000.0).sqrt();
            let loud = 20.0 * (rms.max(1e-9) / 32768.0).log10() > -30.0;
            let tone = power_at(second, 440.0);
            let other = power_at(second, 1250.0).max(power_at(second, 700.0));
            loud && tone > 1000.0 * other
        })
        .collect()
}

/// Goertzel power of `hz` in 16 kHz `pcm`.
pub fn power_at(pcm: &[f64], hz: f64) -> f64 {
    let coefficient = 2.0 * (std::f64::consts::TAU * hz / 16_000.0).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in pcm {
        let s = x + coefficient * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - coefficient * s1 * s2
}
