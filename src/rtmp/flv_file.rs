//! FLV files (Adobe "Video File Format Specification" v10, annex E.2 header, E.3 body, E.4.1
//! tags): a writer and a bounded reader, used to feed recordings into publishers in tests and
//! tools, and to check what nginx-rtmp recorded.
//!
//! The reader never panics on input and tells *incomplete* (a file still being written, or cut
//! off) from *invalid*.

use bytes::Bytes;

use super::flv::{FlvTag, TagKind};

const HEADER_LEN: usize = 9;
const TAG_HEADER_LEN: usize = 11;
const BACK_POINTER_LEN: usize = 4;

/// An FLV file header plus `PreviousTagSize0`.
pub fn file_header(audio: bool, video: bool) -> [u8; HEADER_LEN + BACK_POINTER_LEN] {
    let flags = u8::from(audio) << 2 | u8::from(video);
    [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// Appends one tag and its back-pointer (`PreviousTagSize`) to `out`. Bodies over the 24-bit
/// limit are refused.
pub fn write_tag(out: &mut Vec<u8>, tag: &FlvTag) -> Result<(), FlvFileError> {
    let len = tag.body_len();
    if len > 0xff_ffff {
        return Err(FlvFileError::TagTooLarge(len));
    }
    out.push(tag.kind as u8);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    let ts = tag.timestamp_ms.to_be_bytes();
    // Lower 24 bits, then the extension byte with the upper 8.
    out.extend_from_slice(&[ts[1], ts[2], ts[3], ts[0]]);
    out.extend_from_slice(&[0, 0, 0]);
    for part in tag.body_parts() {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&((TAG_HEADER_LEN + len) as u32).to_be_bytes());
    Ok(())
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FlvFileError {
    #[error("need more bytes: the file ends inside a header or tag")]
    Incomplete,
    #[error("not an FLV file (signature {0:02x?})")]
    BadSignature([u8; 3]),
    #[error("FLV header size {0} is smaller than 9")]
    BadHeaderSize(u32),
    #[error("tag at byte {offset} has unknown type {tag_type}")]
    UnknownTagType { offset: usize, tag_type: u8 },
    #[error("tag at byte {offset} is encrypted or filtered, which is not supported")]
    Filtered { offset: usize },
    #[error("tag body of {0} bytes exceeds FLV's 24-bit limit")]
    TagTooLarge(usize),
}

/// Reads tags out of an FLV file held in memory.
pub struct FlvReader {
    data: Bytes,
    position: usize,
}

impl FlvReader {
    /// Checks the file header and positions the reader at the first tag.
    pub fn new(data: Bytes) -> Result<FlvReader, FlvFileError> {
        let Some(header) = data.get(..HEADER_LEN) else {
            return Err(FlvFileError::Incomplete);
        };
        if &header[..3] != b"FLV" {
            return Err(FlvFileError::BadSignature([
                header[0], header[1], header[2],
            ]));
        }
        let header_size = u32::from_be_bytes([header[5], header[6], header[7], header[8]]);
        if header_size < HEADER_LEN as u32 {
            return Err(FlvFileError::BadHeaderSize(header_size));
        }
        // Skip the header and PreviousTagSize0; the back-pointers are not needed to read forward.
        let position = (header_size as usize).saturating_add(BACK_POINTER_LEN);
        Ok(FlvReader { data, position })
    }

    /// The next tag, `Ok(None)` at a clean end of file, `Err(Incomplete)` inside a tag.
    pub fn next_tag(&mut self) -> Result<Option<FlvTag>, FlvFileError> {
        let offset = self.position;
        if offset >= self.data.len() {
            return Ok(None);
        }
        let Some(h) = self.data.get(offset..offset + TAG_HEADER_LEN) else {
            return Err(FlvFileError::Incomplete);
        };
        if h[0] & 0x20 != 0 {
            return Err(FlvFileError::Filtered { offset });
        }
        let kind = TagKind::from_type_id(h[0] & 0x1f).ok_or(FlvFileError::UnknownTagType {
            offset,
            tag_type: h[0],
        })?;
        let len = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        let timestamp_ms = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let start = offset + TAG_HEADER_LEN;
        let end = start + len;
        if end + BACK_POINTER_LEN > self.data.len() {
            return Err(FlvFileError::Incomplete);
        }
        self.position = end + BACK_POINTER_LEN;
        Ok(Some(FlvTag::from_body(
            kind,
            timestamp_ms,
            self.data.slice(start..end),
        )))
    }
}

impl Iterator for FlvReader {
    type Item = Result<FlvTag, FlvFileError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.next_tag().transpose();
        if matches!(item, Some(Err(_))) {
            // Stop after an error instead of reporting it forever.
            self.position = self.data.len();
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(kind: TagKind, timestamp_ms: u32, body: &'static [u8]) -> FlvTag {
        FlvTag::from_body(kind, timestamp_ms, Bytes::from_static(body))
    }

    #[test]
    fn written_file_reads_back_tag_for_tag() {
        let tags = [
            tag(TagKind::Script, 0, b"meta"),
            tag(TagKind::Video, 0, &[0x17, 0, 0, 0, 0]),
            // Past 2^24 the extension byte carries the upper bits.
            tag(TagKind::Audio, 0x0123_4567, &[0x82, 1, 2]),
        ];
        let mut file = file_header(true, true).to_vec();
        for t in &tags {
            write_tag(&mut file, t).unwrap();
        }
        assert_eq!(
            &file[..13],
            &[b'F', b'L', b'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0]
        );
        // Tag header golden bytes: type, size, ts (lower 24 + ext), stream id.
        assert_eq!(&file[13..24], &[18, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&file[28..32], &[0, 0, 0, 15]);
        let read: Vec<_> = FlvReader::new(Bytes::from(file))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(read, tags);
    }

    #[test]
    fn truncation_is_incomplete_and_garbage_is_invalid() {
        let mut file = file_header(false, true).to_vec();
        write_tag(&mut file, &tag(TagKind::Video, 5, &[0x17, 1, 0, 0, 0])).unwrap();
        for cut in [3, 14, file.len() - 1] {
            let result =
                FlvReader::new(Bytes::copy_from_slice(&file[..cut])).and_then(|mut r| r.next_tag());
            assert_eq!(result, Err(FlvFileError::Incomplete), "cut at {cut}");
        }
        assert!(matches!(
            FlvReader::new(Bytes::from_static(b"GIF89a\0\0\0")),
            Err(FlvFileError::BadSignature(_))
        ));
        file[13] = 7;
        let mut reader = FlvReader::new(Bytes::from(file)).unwrap();
        assert!(matches!(
            reader.next(),
            Some(Err(FlvFileError::UnknownTagType { offset: 13, .. }))
        ));
        assert_eq!(reader.next(), None);
    }
}

#[cfg(test)]
mod arbitrary_input {
    use super::*;
    use crate::rtmp::flv::demux;
    use proptest::collection::vec;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes after a valid header: tags come out or a typed error does; no panic.
        #[test]
        fn reader_and_demuxer_never_panic(body in vec(any::<u8>(), 0..2000)) {
            let mut file = file_header(true, true).to_vec();
            file.extend_from_slice(&body);
            let reader = FlvReader::new(Bytes::from(file)).unwrap();
            for tag in reader {
                let Ok(tag) = tag else { break };
                let _ = demux(tag.kind, tag.timestamp_ms, &tag.body());
            }
        }
    }
}
