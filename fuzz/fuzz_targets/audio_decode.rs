//! Audio RTP payloads into every decoder that sees them: Speex (the frame walk, then libspeex
//! on what the walk lets through, in each band), Opus and G.722. The first byte picks the
//! decoder; the rest is the payload, decoded twice so carried-over decoder state is exercised.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipcast::media::decode::{AudioCodec, PcmDecoder};
use sipcast::media::opus::MAX_PACKET_SAMPLES;
use sipcast::media::speex::{MAX_FRAMES_PER_PACKET, SpeexBand, SpeexDecoder, SpeexError};

fn speex(band: SpeexBand, payload: &[u8]) {
    let mut decoder = SpeexDecoder::new(band);
    let mut out = Vec::new();
    for _ in 0..2 {
        out.clear();
        let result = decoder.decode(payload, &mut out);
        assert_ne!(result, Err(SpeexError::Refused), "libspeex refused a walked frame");
        let frames = result.unwrap_or(0);
        assert!(frames <= MAX_FRAMES_PER_PACKET);
        assert_eq!(out.len(), frames * decoder.frame_size());
    }
}

fn other(codec: AudioCodec, payload: &[u8], max_samples: usize) {
    let mut decoder = PcmDecoder::new(codec).expect("a decoder");
    let mut out = Vec::new();
    for _ in 0..2 {
        let _ = decoder.decode(payload, &mut out);
        assert!(out.len() <= max_samples);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    match selector % 5 {
        0 => speex(SpeexBand::Narrow, payload),
        1 => speex(SpeexBand::Wide, payload),
        2 => speex(SpeexBand::UltraWide, payload),
        3 => other(AudioCodec::Opus, payload, MAX_PACKET_SAMPLES),
        // G.722: two samples per byte.
        _ => other(AudioCodec::G722, payload, payload.len() * 2),
    }
});
