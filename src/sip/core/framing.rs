//! Framing of a SIP byte stream (TCP/TLS, RFC 3261 §18.3) in bounded memory and linear time.
//!
//! A stream peer may trickle a message a byte at a time or never finish it. The framer keeps
//! at most [`MAX_MESSAGE_LEN`] bytes of an unfinished message (then the stream is invalid and
//! the connection must go), scans for the end of the head only over bytes it has not scanned
//! yet, and parses once the head and Content-Length bytes of body are there — never once per
//! read, which would make a slow peer cost us quadratic work.

use super::message::{Framed, MAX_MESSAGE_LEN, ParseError, SipMessage, parse_stream};
use bytes::{Buf, BytesMut};

#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: BytesMut,
    /// Bytes of `buf` already searched for the end of the head.
    scanned: usize,
    /// Length of the whole first message, once its head is known.
    need: Option<usize>,
    /// The longest run of bare CR/LF bytes consumed between messages since
    /// [`StreamFramer::take_crlf_run`] last asked (RFC 5626 keep-alive pings and pongs).
    crlf_run: usize,
}

impl StreamFramer {
    pub fn new() -> Self {
        StreamFramer::default()
    }

    /// Bytes held for a message not complete yet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Appends bytes read from the stream. `TooLarge` when an unfinished message would pass
    /// [`MAX_MESSAGE_LEN`]: the stream cannot be resynchronised, close it.
    pub fn push(&mut self, data: &[u8]) -> Result<(), ParseError> {
        if self.buf.len().saturating_add(data.len()) > MAX_MESSAGE_LEN.saturating_mul(2) {
            return Err(ParseError::TooLarge);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// The next whole message, `None` until more bytes are needed. CRLF keep-alives are
    /// consumed. An error means the stream is unusable.
    pub fn next_message(&mut self) -> Result<Option<Box<SipMessage>>, ParseError> {
        loop {
            let crlf = self
                .buf
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            if crlf > 0 {
                self.crlf_run = self.crlf_run.max(crlf);
                self.consume(crlf);
            }
            if self.buf.is_empty() {
                return Ok(None);
            }
            match self.need {
                Some(need) if self.buf.len() < need => return Ok(None),
                Some(_) => {}
                None => {
                    let Some(head_end) = self.find_head_end() else {
                        return if self.buf.len() > MAX_MESSAGE_LEN {
                            Err(ParseError::TooLarge)
                        } else {
                            Ok(None)
                        };
                    };
                    let need = head_end.saturating_add(content_length(&self.buf[..head_end]));
                    if need > MAX_MESSAGE_LEN {
                        return Err(ParseError::TooLarge);
                    }
                    self.need = Some(need);
                    if self.buf.len() < need {
                        return Ok(None);
                    }
                }
            }
            match parse_stream(&self.buf) {
                Ok(Framed::Message(msg, used)) => {
                    self.consume(used);
                    return Ok(Some(msg));
                }
                Ok(Framed::KeepAlive(used)) => self.consume(used),
                Err(ParseError::Incomplete) => {
                    // Our quick Content-Length read disagreed with the parser: wait for more,
                    // still bounded.
                    if self.buf.len() >= MAX_MESSAGE_LEN {
                        return Err(ParseError::TooLarge);
                    }
                    self.need = Some(self.buf.len() + 1);
                    return Ok(None);
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// The longest CR/LF run seen between messages since the last call (0 if none): the
    /// driver answers a ping ([`super::keepalive::is_ping`]) with a pong.
    pub fn take_crlf_run(&mut self) -> usize {
        std::mem::take(&mut self.crlf_run)
    }

    fn consume(&mut self, n: usize) {
        self.buf.advance(n.min(self.buf.len()));
        self.scanned = 0;
        self.need = None;
    }

    /// Where the head ends (after its empty line: `\n\n` or `\n\r\n`), scanning only new bytes.
    fn find_head_end(&mut self) -> Option<usize> {
        let from = self.scanned.saturating_sub(2);
        let found = self
            .buf
            .get(from..)
            .unwrap_or_default()
            .windows(2)
            .enumerate()
            .find_map(|(i, w)| {
                let at = from + i;
                match w {
                    [b'\n', b'\n'] => Some(at + 2),
                    [b'\n', b'\r'] if self.buf.get(at + 2) == Some(&b'\n') => Some(at + 3),
                    _ => None,
                }
            });
        if found.is_none() {
            self.scanned = self.buf.len();
        }
        found
    }
}

/// Content-Length (or `l`) of a head, 0 when absent or unreadable (the parser then decides).
fn content_length(head: &[u8]) -> usize {
    head.split(|&b| b == b'\n')
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let (name, value) = line.split_at(colon);
            let name = name.trim_ascii();
            (name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l"))
                .then(|| {
                    std::str::from_utf8(value.get(1..)?)
                        .ok()?
                        .trim()
                        .parse()
                        .ok()
                })
                .flatten()
        })
        .next()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &str = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
        From: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n\
        Content-Length: 5\r\n\r\nhello";

    #[test]
    fn messages_split_anywhere_come_out_whole() {
        let stream = format!("\r\n\r\n{OPTIONS}{OPTIONS}\r\n");
        for chunk in [1, 2, 3, 7, 64, 1000] {
            let mut framer = StreamFramer::new();
            let mut seen = Vec::new();
            for piece in stream.as_bytes().chunks(chunk) {
                framer.push(piece).unwrap();
                while let Some(msg) = framer.next_message().unwrap() {
                    seen.push(msg);
                }
            }
            assert_eq!(seen.len(), 2, "chunks of {chunk}");
            assert_eq!(&seen[1].body[..], b"hello");
            assert_eq!(framer.buffered(), 0);
        }
    }

    #[test]
    fn keepalive_pings_and_pongs_are_seen_between_messages() {
        let mut framer = StreamFramer::new();
        framer.push(b"\r\n\r\n").unwrap();
        assert!(framer.next_message().unwrap().is_none());
        assert_eq!(framer.take_crlf_run(), 4, "a ping");
        assert_eq!(framer.take_crlf_run(), 0);
        framer.push(format!("{OPTIONS}\r\n").as_bytes()).unwrap();
        assert!(framer.next_message().unwrap().is_some());
        assert!(framer.next_message().unwrap().is_none());
        assert_eq!(framer.take_crlf_run(), 2, "a pong");
    }

    #[test]
    fn an_endless_head_or_a_lying_content_length_is_too_large() {
        let mut framer = StreamFramer::new();
        let line = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        let mut result = Ok(None);
        for _ in 0..2000 {
            if framer.push(line).is_err() {
                result = Err(ParseError::TooLarge);
                break;
            }
            result = framer.next_message();
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result.unwrap_err(), ParseError::TooLarge);
        assert!(framer.buffered() <= 2 * MAX_MESSAGE_LEN);

        let mut framer = StreamFramer::new();
        let lie = OPTIONS.replace("Content-Length: 5", "Content-Length: 999999999999");
        framer.push(lie.as_bytes()).unwrap();
        assert_eq!(framer.next_message().unwrap_err(), ParseError::TooLarge);
    }

    #[test]
    fn a_short_content_length_leaves_the_rest_as_the_next_message() {
        let mut framer = StreamFramer::new();
        let short = OPTIONS.replace("Content-Length: 5", "Content-Length: 2");
        framer.push(short.as_bytes()).unwrap();
        let msg = framer.next_message().unwrap().unwrap();
        assert_eq!(&msg.body[..], b"he");
        assert!(
            matches!(framer.next_message(), Ok(None)),
            "llo may be a head's start"
        );
        framer.push(b"\r\n\r\n").unwrap();
        assert!(framer.next_message().is_err(), "llo is not a SIP message");
    }

    #[test]
    fn multi_byte_and_invalid_utf8_never_panic() {
        for garbage in [
            "Authorization: abcdefé\r\n\r\n".as_bytes(),
            b"\xff\xfe\r\n\r\n",
            "\u{1f389}\n\n".as_bytes(),
            b"INVITE sip:a SIP/2.0\r\nl: \xc3\xa9\r\n\r\n",
        ] {
            let mut framer = StreamFramer::new();
            framer.push(garbage).unwrap();
            let _ = framer.next_message();
        }
    }
}
