//! Speex RTP payloads: the frame walk, and libspeex decoding what the walk lets through, in
//! every band. The first byte picks the band; the rest is the payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipcast::media::speex::{MAX_FRAMES_PER_PACKET, SpeexBand, SpeexDecoder, SpeexError};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let band = match selector % 3 {
        0 => SpeexBand::Narrow,
        1 => SpeexBand::Wide,
        _ => SpeexBand::UltraWide,
    };
    let mut decoder = SpeexDecoder::new(band);
    let mut out = Vec::new();
    // Twice, so decoder state carried from one payload to the next is exercised too.
    for _ in 0..2 {
        out.clear();
        let result = decoder.decode(payload, &mut out);
        assert_ne!(result, Err(SpeexError::Refused), "libspeex refused a walked frame");
        let frames = result.unwrap_or(0);
        assert!(frames <= MAX_FRAMES_PER_PACKET);
        assert_eq!(out.len(), frames * decoder.frame_size());
    }
});
