//! The encoder judged by what a decoder makes of it: FDK's AAC decoder (an independent
//! implementation) decodes every frame, and the result is compared with the input.

use super::*;
use crate::media::aac::audio_specific_config;
use crate::media::fdk::FdkDecoder;

const RATE: u32 = 48_000;
const BITRATE: u32 = 64_000;
const TELEPHONE_BAND: u32 = 4_000;

/// Encodes `input` frame by frame, checking each frame's size, and decodes it again; the
/// result is aligned with the input (the encoder's delay removed).
fn round_trip(input: &[i16], sample_rate: u32, band_hz: u32) -> (Vec<i16>, Vec<usize>) {
    let mut encoder = SpeechEncoder::new(sample_rate, BITRATE, band_hz).unwrap();
    let mut decoder = FdkDecoder::new(&audio_specific_config(sample_rate).unwrap());
    let mut out = vec![0u8; 768];
    let (mut decoded, mut sizes) = (Vec::new(), Vec::new());
    for frame in input.chunks(LINES) {
        let written = encoder.encode(frame, &mut out);
        assert!(
            written * 8 <= encoder.budget_bits.next_multiple_of(8),
            "{written} bytes"
        );
        sizes.push(written);
        decoded.extend(decoder.decode(&out[..written]).expect("decodes"));
    }
    let delay = DELAY_SAMPLES as usize + decoder.output_delay();
    (decoded.split_off(delay.min(decoded.len())), sizes)
}

/// Signal-to-noise ratio of `decoded` against `reference` in dB, over `range`.
fn snr_db(reference: &[i16], decoded: &[i16], range: std::ops::Range<usize>) -> f64 {
    let (mut signal, mut noise) = (0.0, 0.0);
    for i in range {
        let (r, d) = (f64::from(reference[i]), f64::from(decoded[i]));
        signal += r * r;
        noise += (r - d) * (r - d);
    }
    10.0 * (signal / noise.max(1e-9)).log10()
}

fn tone(hz: f64, amplitude: f64, samples: usize) -> Vec<i16> {
    (0..samples)
        .map(|n| {
            (amplitude * (2.0 * std::f64::consts::PI * hz * n as f64 / f64::from(RATE)).sin())
                as i16
        })
        .collect()
}

/// A voiced-speech stand-in inside the telephone band: a glottal-like harmonic series on a
/// gliding pitch, shaped by a syllable envelope, with a little noise.
fn speech_like(samples: usize) -> Vec<i16> {
    let mut seed = 7u32;
    let mut phase = 0.0f64;
    (0..samples)
        .map(|n| {
            let t = n as f64 / f64::from(RATE);
            let pitch = 120.0 + 40.0 * (t * 3.0).sin();
            phase += pitch / f64::from(RATE);
            let envelope = 0.2 + 0.8 * (t * 4.0 * std::f64::consts::PI).sin().abs();
            let voiced: f64 = (1..)
                .map(f64::from)
                .take_while(|h| h * pitch < 3_800.0)
                .map(|h| (2.0 * std::f64::consts::PI * h * phase).sin() / h)
                .sum();
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let noise = f64::from((seed >> 16) as u16) / 65_536.0 - 0.5;
            (envelope * (4_000.0 * voiced + 200.0 * noise)) as i16
        })
        .collect()
}

#[test]
fn a_tone_decodes_at_its_level_and_well_above_g711_s_own_noise() {
    let input = tone(1_000.0, 8_000.0, RATE as usize * 2);
    let (decoded, _) = round_trip(&input, RATE, TELEPHONE_BAND);
    let steady = 4 * LINES..decoded.len() - LINES;
    let snr = snr_db(&input, &decoded, steady.clone());
    // G.711 μ-law itself is ~38 dB for such a tone: the AAC step must stay clear of it.
    assert!(snr > 45.0, "tone SNR {snr:.1} dB");
    let level = |s: &[i16]| {
        s[steady.clone()]
            .iter()
            .map(|&x| f64::from(x).abs())
            .sum::<f64>()
    };
    let ratio = level(&decoded) / level(&input);
    assert!((0.99..1.01).contains(&ratio), "level ratio {ratio}");
}

#[test]
fn speech_like_audio_survives_at_44_1_and_48_khz() {
    for rate in [44_100, 48_000] {
        let input = speech_like(rate as usize * 2);
        let (decoded, _) = round_trip(&input, rate, TELEPHONE_BAND);
        let snr = snr_db(&input, &decoded, 4 * LINES..decoded.len() - LINES);
        assert!(snr > 30.0, "{rate} Hz: speech SNR {snr:.1} dB");
    }
}

#[test]
fn silence_costs_a_few_bytes_and_decodes_to_silence() {
    let input = vec![0i16; 10 * LINES];
    let (decoded, sizes) = round_trip(&input, RATE, TELEPHONE_BAND);
    assert!(sizes.iter().all(|&size| size == 4), "{sizes:?}");
    assert!(decoded.iter().all(|&sample| sample == 0));
}

#[test]
fn the_loudest_and_noisiest_input_fits_the_budget_and_decodes() {
    // Full-scale square wave (harmonics far above the band) and full-scale white noise.
    let square: Vec<i16> = (0..20 * LINES)
        .map(|n| {
            if (n / 37) % 2 == 0 {
                i16::MAX
            } else {
                i16::MIN
            }
        })
        .collect();
    let mut seed = 99u32;
    let noise: Vec<i16> = (0..20 * LINES)
        .map(|_| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (seed >> 16) as i16
        })
        .collect();
    for input in [square, noise] {
        // round_trip asserts every frame's size and that it decodes.
        let (decoded, _) = round_trip(&input, RATE, TELEPHONE_BAND);
        assert!(decoded.iter().any(|&sample| sample.unsigned_abs() > 10_000));
    }
}

#[test]
fn nothing_above_the_band_is_coded() {
    // A 6 kHz tone is outside a G.711 call's band: it is left out entirely.
    let input = tone(6_000.0, 8_000.0, 10 * LINES);
    let (decoded, _) = round_trip(&input, RATE, TELEPHONE_BAND);
    let peak = decoded[2 * LINES..]
        .iter()
        .map(|&s| s.unsigned_abs())
        .max()
        .unwrap();
    assert!(peak < 100, "{peak}");
}

#[test]
fn only_44_1_and_48_khz_are_offered() {
    assert!(SpeechEncoder::new(32_000, BITRATE, TELEPHONE_BAND).is_none());
    let encoder = SpeechEncoder::new(48_000, BITRATE, TELEPHONE_BAND).unwrap();
    assert_eq!((encoder.bands, encoder.budget_bits), (23, 1365));
    let wide = SpeechEncoder::new(44_100, BITRATE, 8_000).unwrap();
    assert_eq!(usize::from(BAND_OFFSETS[wide.bands]), 384);
}

/// FDK's encoding of `input` at the same rate, decoded and aligned like [`round_trip`]'s.
fn fdk_round_trip(input: &[i16]) -> (Vec<i16>, usize) {
    use crate::media::fdk::{EncoderSettings, FdkEncoder};
    let mut encoder = FdkEncoder::new(EncoderSettings {
        sample_rate: RATE,
        bitrate: BITRATE,
        bandwidth_hz: Some(TELEPHONE_BAND),
    })
    .unwrap();
    let mut decoder = FdkDecoder::new(&audio_specific_config(RATE).unwrap());
    let mut out = vec![0u8; 8192];
    let (mut decoded, mut bytes) = (Vec::new(), 0);
    for frame in input.chunks(LINES) {
        let (_, written) = encoder.encode(frame, &mut out).unwrap();
        if written > 0 {
            bytes += written;
            decoded.extend(decoder.decode(&out[..written]).expect("decodes"));
        }
    }
    let delay = encoder.delay_samples().unwrap() as usize + decoder.output_delay();
    (decoded.split_off(delay), bytes)
}

#[test]
fn closer_to_the_call_than_fdk_at_the_same_rate() {
    // FDK shapes its noise for the ear over the whole band; on telephone audio, coded evenly
    // where the call has something, the speech encoder's output is the more faithful at no
    // more bits.
    for (name, input) in [
        ("tone", tone(1_000.0, 8_000.0, RATE as usize * 2)),
        ("speech", speech_like(RATE as usize * 2)),
    ] {
        let (ours, sizes) = round_trip(&input, RATE, TELEPHONE_BAND);
        let (fdk, fdk_bytes) = fdk_round_trip(&input);
        let steady = 4 * LINES..ours.len().min(fdk.len()) - LINES;
        let (snr, fdk_snr) = (
            snr_db(&input, &ours, steady.clone()),
            snr_db(&input, &fdk, steady),
        );
        let bytes: usize = sizes.iter().sum();
        eprintln!("{name}: {snr:.1} dB in {bytes} bytes; FDK {fdk_snr:.1} dB in {fdk_bytes}");
        assert!(snr > fdk_snr, "{name}: {snr:.1} dB vs FDK {fdk_snr:.1} dB");
        assert!(
            bytes <= fdk_bytes * 21 / 20,
            "{name}: {bytes} bytes vs FDK {fdk_bytes}"
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever PCM arrives (hostile RTP decodes to any samples), every frame fits the budget
    /// and decodes.
    #[test]
    fn any_pcm_encodes_to_frames_that_fit_and_decode(
        frames in proptest::collection::vec(
            proptest::collection::vec(proptest::prelude::any::<i16>(), 0..=LINES),
            1..12,
        ),
        loud in proptest::prelude::any::<bool>(),
    ) {
        let mut input = Vec::new();
        for mut frame in frames {
            if loud {
                // Push toward full scale, where the escapes and the largest magnitudes are.
                frame.iter_mut().for_each(|s| *s = if *s < 0 { i16::MIN } else { i16::MAX });
            }
            frame.resize(LINES, 0);
            input.extend(frame);
        }
        // round_trip checks each frame's size and that FDK decodes it.
        let (_, sizes) = round_trip(&input, RATE, TELEPHONE_BAND);
        proptest::prop_assert_eq!(sizes.len(), input.len() / LINES);
    }
}
