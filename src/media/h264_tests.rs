use super::*;
use crate::media::reorder::{ReorderBuffer, ReorderConfig};
use crate::media::rtp::write_packet;
use crate::media::sps::tests::{PPS, SPS_320X240};
use proptest::prelude::*;

const IDR: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x33, 0xff];
const NON_IDR: &[u8] = &[0x41, 0x9a, 0x02, 0x04];
const SPROP: &str = "Z0LADdkBQfsBEAAAAwAQAAADAyDxQqSA,aMuDyyA=";

fn packet(sequence: u16, timestamp: u32, marker: bool, payload: &[u8]) -> RtpPacket<'_> {
    RtpPacket {
        marker,
        payload_type: 96,
        sequence,
        timestamp,
        ssrc: 1,
        payload,
    }
}

fn avcc_of(nals: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for nal in nals {
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
    out
}

fn stap_a(nals: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![0x18];
    for nal in nals {
        out.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        out.extend_from_slice(nal);
    }
    out
}

/// Splits a NAL unit into FU-A fragments of `chunk` payload bytes.
fn fu_a(nal: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let body = &nal[1..];
    let pieces: Vec<_> = body.chunks(chunk).collect();
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let start = if i == 0 { 0x80 } else { 0 };
            let end = if i == pieces.len() - 1 { 0x40 } else { 0 };
            let mut out = vec![(nal[0] & 0xe0) | 28, start | end | (nal[0] & 0x1f)];
            out.extend_from_slice(piece);
            out
        })
        .collect()
}

fn drain(depacketizer: &mut H264Depacketizer) -> Vec<H264Output> {
    std::iter::from_fn(|| depacketizer.poll_output()).collect()
}

fn units(outputs: &[H264Output]) -> Vec<(u32, bool)> {
    outputs
        .iter()
        .filter_map(|o| match o {
            H264Output::AccessUnit {
                rtp_timestamp,
                keyframe,
                ..
            } => Some((*rtp_timestamp, *keyframe)),
            _ => None,
        })
        .collect()
}

fn with_sprop() -> H264Depacketizer {
    let mut d = H264Depacketizer::new();
    d.set_sprop_parameter_sets(SPROP).unwrap();
    d
}

#[test]
fn single_nal_packets_wait_for_the_first_idr() {
    let mut d = with_sprop();
    assert_eq!(d.dimensions(), Some((320, 240)));
    d.push(&packet(1, 0, true, NON_IDR), 0).unwrap();
    assert_eq!(drain(&mut d), vec![]);
    d.push(&packet(2, 3600, true, IDR), 0).unwrap();
    let out = drain(&mut d);
    assert!(matches!(
        out[0],
        H264Output::Config {
            width: 320,
            height: 240,
            ..
        }
    ));
    assert_eq!(
        out[1],
        H264Output::AccessUnit {
            rtp_timestamp: 3600,
            keyframe: true,
            data: avcc_of(&[IDR]).into()
        }
    );
    d.push(&packet(3, 7200, true, NON_IDR), 0).unwrap();
    assert_eq!(units(&drain(&mut d)), vec![(7200, false)]);
    assert_eq!(d.dropped_access_units, 1);
}

#[test]
fn stap_a_carries_parameter_sets_out_of_band_of_the_access_unit() {
    let mut d = H264Depacketizer::new();
    let sei: &[u8] = &[0x06, 0x05, 0x01, 0x80];
    let stap = stap_a(&[SPS_320X240, PPS, sei, IDR]);
    d.push(&packet(1, 90, true, &stap), 0).unwrap();
    let out = drain(&mut d);
    assert!(matches!(out[0], H264Output::Config { .. }));
    let H264Output::AccessUnit { data, keyframe, .. } = &out[1] else {
        panic!("{out:?}")
    };
    assert!(keyframe);
    assert_eq!(&data[..], &avcc_of(&[sei, IDR])[..]);
}

#[test]
fn fu_a_fragments_are_reassembled() {
    let mut d = with_sprop();
    let idr: Vec<u8> = [0x65]
        .into_iter()
        .chain((0..200u8).map(|b| b | 1))
        .collect();
    let fragments = fu_a(&idr, 64);
    assert_eq!(fragments.len(), 4);
    for (i, fragment) in fragments.iter().enumerate() {
        d.push(&packet(i as u16, 0, i == 3, fragment), 0).unwrap();
    }
    let out = drain(&mut d);
    let H264Output::AccessUnit { data, .. } = &out[1] else {
        panic!("{out:?}")
    };
    assert_eq!(&data[..], &avcc_of(&[&idr])[..]);
}

#[test]
fn loss_inside_fu_a_drops_the_frame_and_waits_for_the_next_idr() {
    let mut d = with_sprop();
    d.push(&packet(1, 0, true, IDR), 0).unwrap();
    drain(&mut d);
    let p_frame: Vec<u8> = [0x41].into_iter().chain(1..=150u8).collect();
    let fragments = fu_a(&p_frame, 50);
    d.push(&packet(2, 3000, false, &fragments[0]), 0).unwrap();
    // fragments[1] lost
    d.push(&packet(4, 3000, true, &fragments[2]), 1).unwrap();
    d.push(&packet(5, 6000, true, NON_IDR), 0).unwrap();
    let out = drain(&mut d);
    assert_eq!(out, vec![H264Output::KeyframeNeeded]);
    d.push(&packet(6, 9000, true, IDR), 0).unwrap();
    d.push(&packet(7, 12000, true, NON_IDR), 0).unwrap();
    assert_eq!(units(&drain(&mut d)), vec![(9000, true), (12000, false)]);
    assert_eq!(d.dropped_access_units, 2);
}

#[test]
fn a_lost_fu_a_start_is_detected_even_without_a_reported_gap() {
    let mut d = with_sprop();
    let idr: Vec<u8> = [0x65].into_iter().chain(1..=100u8).collect();
    let fragments = fu_a(&idr, 40);
    assert!(d.push(&packet(2, 0, false, &fragments[1]), 0).is_err());
    d.push(&packet(3, 0, true, &fragments[2]), 0).unwrap();
    assert_eq!(units(&drain(&mut d)), vec![]);
}

#[test]
fn reordered_packets_through_the_reorder_buffer_give_the_same_frames() {
    let idr: Vec<u8> = [0x65]
        .into_iter()
        .chain((0..250u8).map(|b| b | 1))
        .collect();
    let mut datagrams = Vec::new();
    let mut seq = 100u16;
    let mut add = |ts: u32, payloads: Vec<Vec<u8>>| {
        let count = payloads.len();
        for (i, payload) in payloads.into_iter().enumerate() {
            let mut out = Vec::new();
            write_packet(&mut out, &packet(seq, ts, i + 1 == count, &payload));
            datagrams.push((seq, ts, out));
            seq += 1;
        }
    };
    add(0, vec![stap_a(&[SPS_320X240, PPS])]);
    add(0, fu_a(&idr, 60));
    add(3600, vec![NON_IDR.to_vec()]);
    add(7200, fu_a(&[0x41, 1, 2, 3, 4, 5, 6, 7, 8, 9], 3));
    let mut shuffled = datagrams.clone();
    shuffled.swap(1, 3);
    shuffled.swap(6, 8);
    shuffled.swap(7, 9);

    let run = |order: &[(u16, u32, Vec<u8>)]| {
        let start = crate::clock::monotonic().into_std();
        let mut reorder = ReorderBuffer::new(ReorderConfig::default(), 90_000, start);
        let mut d = H264Depacketizer::new();
        for (seq, ts, datagram) in order {
            reorder.push(start, *seq, *ts, datagram, &mut |bytes, lost| {
                d.push(&RtpPacket::parse(bytes).unwrap(), lost).unwrap();
            });
        }
        drain(&mut d)
    };
    let in_order = run(&datagrams);
    assert_eq!(
        units(&in_order),
        vec![(0, true), (3600, false), (7200, false)]
    );
    assert_eq!(run(&shuffled), in_order);
}

#[test]
fn an_sps_change_republishes_the_config_before_the_next_frame() {
    let mut d = with_sprop();
    d.push(&packet(1, 0, true, IDR), 0).unwrap();
    drain(&mut d);
    // The same parameter sets repeated in band change nothing.
    d.push(&packet(2, 3000, false, &stap_a(&[SPS_320X240, PPS])), 0)
        .unwrap();
    d.push(&packet(3, 3000, true, IDR), 0).unwrap();
    assert_eq!(units(&drain(&mut d)), vec![(3000, true)]);
    // x264 baseline 640x480.
    let bigger: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d, 0xb0, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01,
        0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2e, 0x48,
    ];
    d.push(&packet(4, 6000, false, bigger), 0).unwrap();
    d.push(&packet(5, 6000, true, IDR), 0).unwrap();
    let out = drain(&mut d);
    let H264Output::Config { avcc, width, .. } = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(*width, 640);
    assert_eq!(&avcc[8..8 + bigger.len()], bigger);
    assert_eq!(units(&out), vec![(6000, true)]);
}

#[test]
fn a_new_source_drops_the_half_done_frame_and_starts_from_its_first_idr() {
    let mut d = with_sprop();
    d.push(&packet(1, 0, true, IDR), 0).unwrap();
    let p_frame: Vec<u8> = [0x41].into_iter().chain(1..=100u8).collect();
    d.push(&packet(2, 3000, false, &fu_a(&p_frame, 40)[0]), 0)
        .unwrap();
    d.source_changed();
    d.push(&packet(9000, 777, true, NON_IDR), 0).unwrap();
    d.push(&packet(9001, 4377, true, IDR), 0).unwrap();
    let out = drain(&mut d);
    assert!(out.contains(&H264Output::KeyframeNeeded), "{out:?}");
    assert_eq!(units(&out), vec![(0, true), (4377, true)]);
}

#[test]
fn a_missing_marker_ends_the_access_unit_at_the_timestamp_change() {
    let mut d = with_sprop();
    d.push(&packet(1, 0, false, IDR), 0).unwrap();
    d.push(&packet(2, 3000, false, NON_IDR), 0).unwrap();
    assert_eq!(units(&drain(&mut d)), vec![(0, true)]);
}

#[test]
fn mode_zero_only_streams_and_unsupported_types() {
    let mut d = with_sprop();
    let err = d.push(&packet(1, 0, true, &[0x19, 0, 0]), 0).unwrap_err();
    assert!(matches!(
        err,
        H264Error::Unsupported {
            nal_type: 25,
            sequence: 1
        }
    ));
    assert!(d.set_sprop_parameter_sets("not base64!").is_err());
}

#[test]
fn malformed_aggregates_and_fragments_are_errors_and_break_the_frame() {
    let mut d = with_sprop();
    d.push(&packet(1, 0, true, IDR), 0).unwrap();
    drain(&mut d);
    let cases: [&[u8]; 7] = [
        &[0x18, 0x00],             // STAP-A with half a size field
        &[0x18, 0x00, 0x00],       // a zero-length unit
        &[0x18, 0xff, 0xff, 0x41], // a unit longer than the packet
        &[0x7c],                   // FU-A without its header
        &[0x7c, 0x05, 0x88],       // a continuation without a start
        &[0xe5, 0x88],             // forbidden_zero_bit
        &[],                       // empty
    ];
    for (i, payload) in cases.into_iter().enumerate() {
        let sequence = 2 + i as u16;
        assert!(
            d.push(&packet(sequence, 3000 * sequence as u32, true, payload), 0)
                .is_err(),
            "{payload:?}"
        );
    }
    // Nothing is published until the next IDR; that one is.
    d.push(&packet(20, 90_000, true, NON_IDR), 0).unwrap();
    d.push(&packet(21, 93_000, true, IDR), 0).unwrap();
    assert_eq!(units(&drain(&mut d)), vec![(93_000, true)]);
}

#[test]
fn a_fragmented_parameter_set_of_one_byte_is_corrupt_not_a_crash() {
    let mut d = with_sprop();
    // FU-A start and end at once carrying only the reconstructed SPS header byte: the SPS
    // cannot be read, so its access unit is dropped and the next IDR starts the video.
    d.push(&packet(1, 0, false, &[0x7c, 0xc7]), 0).unwrap();
    d.push(&packet(2, 0, true, IDR), 0).unwrap();
    d.push(&packet(3, 3000, true, IDR), 0).unwrap();
    assert_eq!(units(&drain(&mut d)), vec![(3000, true)]);
    assert_eq!(d.dimensions(), Some((320, 240)), "the known SPS stays");
}

proptest! {
    #[test]
    fn arbitrary_payloads_never_panic(
        payloads in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..64), any::<bool>(), 0u32..3, 0u32..3),
            0..40,
        )
    ) {
        let mut d = with_sprop();
        for (i, (payload, marker, ts, lost)) in payloads.iter().enumerate() {
            let _ = d.push(&packet(i as u16, *ts, *marker, payload), *lost);
            while d.poll_output().is_some() {}
        }
    }
}
