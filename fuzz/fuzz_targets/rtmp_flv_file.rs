//! Arbitrary bytes as an FLV file: read every tag and demux it into a frame.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sipcast::rtmp::flv::demux;
use sipcast::rtmp::flv_file::FlvReader;

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = FlvReader::new(Bytes::copy_from_slice(data)) else {
        return;
    };
    for tag in reader.take(10_000) {
        let Ok(tag) = tag else { return };
        let _ = demux(tag.kind, tag.timestamp_ms, &tag.body());
    }
});
