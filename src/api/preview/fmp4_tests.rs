use std::process::Command;

use super::boxes::{DELTA_FLAGS, KEYFRAME_FLAGS};
use super::*;

/// A real baseline avcC prefix (profile 0x42, compat 0xC0, level 0x1E) with made-up SPS/PPS.
fn avcc() -> Bytes {
    Bytes::from_static(&[
        1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0, 0x1E, 1, 0, 2, 0x68, 0xCE,
    ])
}

fn config(aac: bool) -> TrackConfig {
    TrackConfig {
        avc_config: avcc(),
        // AAC-LC, 44.1 kHz, stereo.
        aac_config: aac.then(|| Bytes::from_static(&[0x12, 0x10])),
        width: 320,
        height: 240,
    }
}

/// Top-level boxes of `data`: (type, body). Panics on a malformed size (our own output).
fn boxes(data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let size = u32::from_be_bytes(rest[0..4].try_into().unwrap()) as usize;
        assert!(size >= 8 && size <= rest.len(), "box size {size}");
        out.push((rest[4..8].try_into().unwrap(), &rest[8..size]));
        rest = &rest[size..];
    }
    out
}

/// The body of the box at `path` (children of containers are found by walking).
fn find<'a>(data: &'a [u8], path: &[&[u8; 4]]) -> Option<&'a [u8]> {
    let (first, rest) = path.split_first()?;
    let (_, body) = boxes(data).into_iter().find(|(k, _)| k == *first)?;
    if rest.is_empty() {
        Some(body)
    } else {
        find(body, rest)
    }
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(data[at..at + 4].try_into().unwrap())
}

fn video(dts_ms: u32, keyframe: bool, fill: u8) -> Sample {
    Sample::Video {
        dts_ms,
        cts_ms: 0,
        keyframe,
        data: Bytes::from(vec![0, 0, 0, 2, 0x65, fill]),
    }
}

#[test]
fn codec_string_comes_from_the_avcc_profile_and_the_aac_object_type() {
    assert_eq!(config(true).codecs().unwrap(), "avc1.42C01E, mp4a.40.2");
    assert_eq!(config(false).codecs().unwrap(), "avc1.42C01E");
    let short = TrackConfig {
        avc_config: Bytes::from_static(&[1, 2]),
        ..config(false)
    };
    assert_eq!(short.codecs(), Err(Fmp4Error::ShortAvcConfig));
    assert!(Fmp4Muxer::new(short).is_err());
}

#[test]
fn audio_specific_config_gives_rate_and_channels_and_never_panics() {
    let p = AacParams::parse(&[0x12, 0x10]).unwrap();
    assert_eq!((p.object_type, p.sample_rate, p.channels), (2, 44100, 2));
    let p = AacParams::parse(&[0x11, 0x88]).unwrap(); // 48 kHz mono
    assert_eq!((p.sample_rate, p.channels), (48000, 1));
    assert!(AacParams::parse(&[0x17]).is_err());
    assert!(AacParams::parse(&[0x17, 0x80]).is_err()); // explicit rate, cut short
    for a in 0..=255u8 {
        for b in [0u8, 0x80, 0xff] {
            let _ = AacParams::parse(&[a, b, 0xff]);
        }
    }
}

#[test]
fn init_segment_round_trips_both_sample_entries() {
    let init = Fmp4Muxer::new(config(true)).unwrap().init_segment();
    let kinds: Vec<[u8; 4]> = boxes(&init).iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, [*b"ftyp", *b"moov"]);
    let moov = find(&init, &[b"moov"]).unwrap();
    let traks: Vec<&[u8]> = boxes(moov)
        .into_iter()
        .filter(|(k, _)| k == b"trak")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(traks.len(), 2);
    let stsd = find(traks[0], &[b"mdia", b"minf", b"stbl", b"stsd"]).unwrap();
    // version/flags, entry count, then the avc1 box: 78 bytes of fields before its avcC.
    let avc1 = find(&stsd[8..], &[b"avc1"]).unwrap();
    assert_eq!(u16::from_be_bytes([avc1[24], avc1[25]]), 320);
    assert_eq!(find(&avc1[78..], &[b"avcC"]).unwrap(), &avcc()[..]);
    let stsd = find(traks[1], &[b"mdia", b"minf", b"stbl", b"stsd"]).unwrap();
    let mp4a = find(&stsd[8..], &[b"mp4a"]).unwrap();
    assert_eq!(u32_at(mp4a, 24) >> 16, 44100);
    let esds = find(&mp4a[28..], &[b"esds"]).unwrap();
    assert!(
        esds.windows(4).any(|w| w == [0x05, 2, 0x12, 0x10]),
        "{esds:?}"
    );
    let mdhd = find(traks[1], &[b"mdia", b"mdhd"]).unwrap();
    assert_eq!(u32_at(mdhd, 12), 44100);
    assert!(find(moov, &[b"mvex", b"trex"]).is_some());
}

#[test]
fn fragments_start_at_a_keyframe_cut_at_keyframes_and_point_at_their_samples() {
    let mut muxer = Fmp4Muxer::new(config(true)).unwrap();
    // Before the first keyframe nothing is kept, audio included.
    assert!(muxer.push(video(1000, false, 1)).is_none());
    assert!(
        muxer
            .push(Sample::Aac {
                ts_ms: 1000,
                data: Bytes::from_static(b"early")
            })
            .is_none()
    );
    let mut fragments = Vec::new();
    for i in 0..40u32 {
        let ts = 2000 + i * 50;
        fragments.extend(muxer.push(video(ts, i % 20 == 0, i as u8)));
        fragments.extend(muxer.push(Sample::Aac {
            ts_ms: ts,
            data: Bytes::from(vec![0xA0, i as u8]),
        }));
    }
    // Keyframes at 0 and 20: fragments cut at 10 (500 ms), 20 (keyframe) and 30.
    assert_eq!(fragments.len(), 3, "{}", fragments.len());
    let first = &fragments[0];
    let moof = find(first, &[b"moof"]).unwrap();
    let trafs: Vec<&[u8]> = boxes(moof)
        .into_iter()
        .filter(|(k, _)| k == b"traf")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(trafs.len(), 2);
    let tfdt = find(trafs[0], &[b"tfdt"]).unwrap();
    assert_eq!(&tfdt[4..12], &0u64.to_be_bytes(), "timeline starts at 0");
    let trun = find(trafs[0], &[b"trun"]).unwrap();
    let count = u32_at(trun, 4) as usize;
    assert_eq!(count, 10);
    let offset = u32_at(trun, 8) as usize;
    // First sample: duration 50 ms, size 6, keyframe flags; the offset points at its bytes.
    assert_eq!(u32_at(trun, 12), 50);
    assert_eq!(u32_at(trun, 16), 6);
    assert_eq!(u32_at(trun, 20), KEYFRAME_FLAGS);
    assert_eq!(u32_at(trun, 28 + 4), 6);
    assert_eq!(u32_at(trun, 28 + 8), DELTA_FLAGS);
    assert_eq!(&first[offset..offset + 6], &[0, 0, 0, 2, 0x65, 0]);
    // Audio: ten AUs after the video bytes, durations in 44.1 kHz units.
    let trun = find(trafs[1], &[b"trun"]).unwrap();
    assert_eq!(u32_at(trun, 4), 10);
    let offset = u32_at(trun, 8) as usize;
    assert_eq!(&first[offset..offset + 2], &[0xA0, 0]);
    assert_eq!(u32_at(trun, 12), 2205);
    let tfdt = find(trafs[1], &[b"tfdt"]).unwrap();
    assert_eq!(&tfdt[4..12], &0u64.to_be_bytes());
    // The second fragment continues the timeline at 500 ms.
    let moof = find(&fragments[1], &[b"moof"]).unwrap();
    let tfdt = find(moof, &[b"traf", b"tfdt"]).unwrap();
    assert_eq!(&tfdt[4..12], &500u64.to_be_bytes());
    let kinds: Vec<[u8; 4]> = boxes(&fragments[1]).iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, [*b"moof", *b"mdat"]);
}

#[test]
fn a_resync_waits_for_the_next_keyframe_and_keeps_the_timeline() {
    let mut muxer = Fmp4Muxer::new(config(false)).unwrap();
    assert!(muxer.push(video(100, true, 0)).is_none());
    muxer.resync();
    assert!(muxer.push(video(150, false, 1)).is_none());
    assert!(muxer.push(video(200, true, 2)).is_none(), "nothing pending");
    let fragment = muxer.push(video(250, true, 3)).expect("a fragment");
    let tfdt = find(&fragment, &[b"moof", b"traf", b"tfdt"]).unwrap();
    assert_eq!(&tfdt[4..12], &100u64.to_be_bytes());
}

#[test]
fn timestamps_wrapping_at_2_pow_32_continue_the_timeline() {
    let mut muxer = Fmp4Muxer::new(config(false)).unwrap();
    muxer.push(video(u32::MAX - 40, true, 0));
    let fragment = muxer.push(video(59, true, 1)).expect("a fragment");
    let trun = find(&fragment, &[b"moof", b"traf", b"trun"]).unwrap();
    assert_eq!(u32_at(trun, 12), 100, "duration across the wrap");
}

/// Annex B → AVCC access units, one per picture (the encoder puts SPS/PPS before each IDR).
fn annex_b_access_units(stream: &[u8]) -> (Bytes, Vec<(bool, Bytes)>) {
    let mut nals: Vec<&[u8]> = Vec::new();
    let mut start = None;
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i..i + 3] == [0, 0, 1] {
            if let Some(s) = start {
                let mut end = i;
                while end > s && stream[end - 1] == 0 {
                    end -= 1;
                }
                nals.push(&stream[s..end]);
            }
            start = Some(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        nals.push(&stream[s..]);
    }
    let (mut sps, mut pps) = (None, None);
    let mut units = Vec::new();
    for nal in nals {
        match nal[0] & 0x1f {
            7 => sps = Some(nal),
            8 => pps = Some(nal),
            kind @ (1 | 5) => {
                let mut au = BytesMut::new();
                au.put_u32(nal.len() as u32);
                au.put_slice(nal);
                units.push((kind == 5, au.freeze()));
            }
            _ => {}
        }
    }
    let (sps, pps) = (sps.unwrap(), pps.unwrap());
    let mut record = BytesMut::new();
    record.put_slice(&[1, sps[1], sps[2], sps[3], 0xFF, 0xE1]);
    record.put_u16(sps.len() as u16);
    record.put_slice(sps);
    record.put_u8(1);
    record.put_u16(pps.len() as u16);
    record.put_slice(pps);
    (record.freeze(), units)
}

/// ADTS → raw AAC access units and the AudioSpecificConfig.
fn adts_access_units(stream: &[u8]) -> (Bytes, Vec<Bytes>) {
    let mut units = Vec::new();
    let mut asc = None;
    let mut at = 0;
    while at + 7 <= stream.len() {
        let h = &stream[at..at + 7];
        assert_eq!(h[0], 0xFF);
        let profile = (h[2] >> 6) + 1;
        let index = (h[2] >> 2) & 0x0f;
        let channels = ((h[2] & 1) << 2) | (h[3] >> 6);
        asc.get_or_insert_with(|| {
            Bytes::from(vec![
                (profile << 3) | (index >> 1),
                ((index & 1) << 7) | (channels << 3),
            ])
        });
        let len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        let header = if h[1] & 1 == 1 { 7 } else { 9 };
        units.push(Bytes::copy_from_slice(&stream[at + header..at + len]));
        at += len;
    }
    (asc.unwrap(), units)
}

fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error"])
        .args(args)
        .output()
        .expect("ffmpeg (Debian package ffmpeg) must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// ffprobe decodes every frame of a file written by the muxer from a real x264 + AAC encode.
#[test]
fn ffprobe_decodes_a_file_the_muxer_wrote() {
    let h264 = ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=15",
        "-t",
        "3",
        "-c:v",
        "libx264",
        "-profile:v",
        "baseline",
        "-g",
        "15",
        "-pix_fmt",
        "yuv420p",
        "-f",
        "h264",
        "-",
    ]);
    let aac = ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=44100",
        "-t",
        "3",
        "-c:a",
        "aac",
        "-ac",
        "1",
        "-f",
        "adts",
        "-",
    ]);
    let (avc_config, pictures) = annex_b_access_units(&h264);
    let (asc, audio) = adts_access_units(&aac);
    assert_eq!(pictures.len(), 45);
    let mut muxer = Fmp4Muxer::new(TrackConfig {
        avc_config,
        aac_config: Some(asc),
        width: 320,
        height: 240,
    })
    .unwrap();
    let mut file = muxer.init_segment().to_vec();
    // Interleave in time order: video every 66.67 ms, audio every 23.2 ms.
    let mut a = 0usize;
    for (i, (keyframe, data)) in pictures.iter().enumerate() {
        let dts = (i as u64 * 1000 / 15) as u32;
        while a < audio.len() && (a as u64 * 1024 * 1000 / 44100) as u32 <= dts {
            let ts_ms = (a as u64 * 1024 * 1000 / 44100) as u32;
            file.extend(
                muxer
                    .push(Sample::Aac {
                        ts_ms,
                        data: audio[a].clone(),
                    })
                    .unwrap_or_default(),
            );
            a += 1;
        }
        let sample = Sample::Video {
            dts_ms: dts,
            cts_ms: 0,
            keyframe: *keyframe,
            data: data.clone(),
        };
        file.extend(muxer.push(sample).unwrap_or_default());
    }
    file.extend(muxer.push(video(3000, true, 0)).unwrap_or_default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("preview.mp4");
    std::fs::write(&path, &file).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .args([
            "stream=codec_name,width,height,nb_read_frames,sample_rate",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .expect("ffprobe must be installed");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let errors = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success() && errors.is_empty(), "{errors}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0], "h264,320,240,45", "{text}");
    let audio_line: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(audio_line[0], "aac");
    assert_eq!(audio_line[1], "44100");
    let frames: usize = audio_line[2].parse().unwrap();
    assert!(frames >= 120, "{text}");
}

#[test]
fn a_new_video_configuration_flushes_then_sends_a_new_init_segment_on_the_same_timeline() {
    let mut muxer = Fmp4Muxer::new(config(true)).unwrap();
    muxer.push(video(1000, true, 0));
    muxer.push(video(1040, false, 1));
    let slate = TrackConfig {
        avc_config: Bytes::from_static(&[
            1, 0x4D, 0x40, 0x1F, 0xFF, 0xE1, 0, 1, 0x67, 1, 0, 1, 0x68,
        ]),
        width: 1280,
        height: 720,
        ..config(true)
    };
    let out = muxer.reconfigure(slate.clone()).unwrap();
    let kinds: Vec<[u8; 4]> = boxes(&out).iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, [*b"moof", *b"mdat", *b"ftyp", *b"moov"]);
    let trun = find(&out, &[b"moof", b"traf", b"trun"]).unwrap();
    assert_eq!(u32_at(trun, 4), 2, "both pending samples");
    assert_eq!(
        u32_at(trun, 12 + 16),
        40,
        "the last one lasts as long as the one before"
    );
    let moov = find(&out, &[b"moov"]).unwrap();
    assert!(
        moov.windows(4).any(|w| w == [1, 0x4D, 0x40, 0x1F]),
        "the new avcC"
    );
    // The next fragment starts at a keyframe and continues the timeline.
    assert!(muxer.push(video(1080, false, 2)).is_none());
    assert!(muxer.push(video(1120, true, 3)).is_none());
    let fragment = muxer.push(video(1160, true, 4)).unwrap();
    let tfdt = find(&fragment, &[b"moof", b"traf", b"tfdt"]).unwrap();
    assert_eq!(&tfdt[4..12], &120u64.to_be_bytes());
    // Losing the audio track cannot be expressed in the same stream.
    let silent = TrackConfig {
        aac_config: None,
        ..slate
    };
    assert_eq!(
        muxer.reconfigure(silent).err(),
        Some(Fmp4Error::TracksChanged)
    );
}
