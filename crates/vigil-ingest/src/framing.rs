//! Cutting a TCP byte stream into syslog messages (RFC 6587).
//!
//! Senders use one of two framings and never say which: octet counting
//! (`"<len> <msg>"`, RFC 6587 §3.4.1, what RFC 5425 mandates) or
//! non-transparent framing (messages ended by LF, or NUL for some senders).
//! The [`Framer`] decides per connection from the first bytes: a non-zero
//! digit run, a space and `<` means octet counting; anything else means
//! trailer-delimited lines. Requiring the `<` keeps plain-text streams that
//! happen to start with a number (`2024-03-01 …`) in line mode.

/// The framing a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Not yet known: too few bytes seen.
    Unknown,
    /// RFC 6587 octet counting.
    OctetCounting,
    /// Messages terminated by LF or NUL.
    NonTransparent,
}

/// One message cut from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The message, without length prefix or trailer.
    pub bytes: Vec<u8>,
    /// The message was longer than the limit; `bytes` holds its start.
    pub truncated: bool,
}

/// What the framer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameEvent {
    /// A complete message.
    Frame(Frame),
    /// The stream is malformed at `offset` (bytes from the connection start);
    /// the connection cannot be resynchronized and should be closed.
    Error {
        /// Byte offset in the stream.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
}

/// Incremental stream framer: [`push`](Framer::push) bytes as they arrive,
/// then drain [`next_event`](Framer::next_event).
#[derive(Debug)]
pub struct Framer {
    mode: Framing,
    buf: Vec<u8>,
    start: usize,
    consumed: u64,
    max: usize,
    /// Remaining bytes of an over-long message to skip.
    skip: usize,
    /// In line mode, discarding the tail of an over-long line.
    skip_line: bool,
    failed: bool,
}

/// The longest length prefix accepted (RFC 6587 allows any; 9 digits is 1 GB).
const MAX_LEN_DIGITS: usize = 9;

impl Framer {
    /// A framer that cuts messages longer than `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> Self {
        Self {
            mode: Framing::Unknown,
            buf: Vec::with_capacity(64 * 1024),
            start: 0,
            consumed: 0,
            max: max_message_bytes.max(1),
            skip: 0,
            skip_line: false,
            failed: false,
        }
    }

    /// The framing detected so far.
    pub fn framing(&self) -> Framing {
        self.mode
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        if self.failed {
            return;
        }
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Bytes buffered but not yet framed.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }

    fn advance(&mut self, n: usize) {
        self.start += n;
        self.consumed += n as u64;
    }

    /// The next complete frame or error, or `None` when more bytes are needed.
    pub fn next_event(&mut self) -> Option<FrameEvent> {
        if self.failed {
            return None;
        }
        if self.mode == Framing::Unknown {
            self.mode = detect(&self.buf[self.start..])?;
        }
        match self.mode {
            Framing::OctetCounting => self.next_octet(),
            Framing::NonTransparent => self.next_line(),
            Framing::Unknown => None,
        }
    }

    fn next_octet(&mut self) -> Option<FrameEvent> {
        loop {
            if self.skip > 0 {
                let n = self.skip.min(self.pending());
                self.advance(n);
                self.skip -= n;
                if self.skip > 0 {
                    return None;
                }
            }
            let data = &self.buf[self.start..];
            // Some senders put a newline after each octet-counted frame.
            let lead = data
                .iter()
                .take_while(|b| matches!(b, b'\n' | b'\r'))
                .count();
            if lead > 0 {
                self.advance(lead);
                continue;
            }
            let data = &self.buf[self.start..];
            if data.is_empty() {
                return None;
            }
            let digits = data.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 || data[0] == b'0' {
                return Some(self.fail(format!(
                    "expected a message length, found {}",
                    describe(data[0])
                )));
            }
            if digits > MAX_LEN_DIGITS {
                return Some(self.fail("message length has too many digits".into()));
            }
            if digits == data.len() {
                return None;
            }
            if data[digits] != b' ' {
                return Some(self.fail(format!(
                    "expected a space after the message length, found {}",
                    describe(data[digits])
                )));
            }
            let len: usize = std::str::from_utf8(&data[..digits])
                .ok()
                .and_then(|s| s.parse().ok())
                .expect("ASCII digits parse");
            let body = &data[digits + 1..];
            let keep = len.min(self.max);
            if body.len() < keep {
                return None;
            }
            let frame = Frame {
                bytes: body[..keep].to_vec(),
                truncated: len > self.max,
            };
            self.advance(digits + 1 + keep);
            self.skip = len - keep;
            return Some(FrameEvent::Frame(frame));
        }
    }

    fn next_line(&mut self) -> Option<FrameEvent> {
        loop {
            let data = &self.buf[self.start..];
            let end = memchr::memchr2(b'\n', 0, data);
            if self.skip_line {
                match end {
                    Some(i) => {
                        self.advance(i + 1);
                        self.skip_line = false;
                        continue;
                    }
                    None => {
                        let n = data.len();
                        self.advance(n);
                        return None;
                    }
                }
            }
            return match end {
                Some(i) if i <= self.max => {
                    let mut line = &data[..i];
                    if line.last() == Some(&b'\r') {
                        line = &line[..line.len() - 1];
                    }
                    if line.is_empty() {
                        self.advance(i + 1);
                        continue;
                    }
                    let frame = Frame {
                        bytes: line.to_vec(),
                        truncated: false,
                    };
                    self.advance(i + 1);
                    Some(FrameEvent::Frame(frame))
                }
                _ if data.len() > self.max => {
                    let frame = Frame {
                        bytes: data[..self.max].to_vec(),
                        truncated: true,
                    };
                    self.advance(self.max);
                    self.skip_line = true;
                    Some(FrameEvent::Frame(frame))
                }
                _ => None,
            };
        }
    }

    /// At end of stream: the unterminated last message, if any.
    ///
    /// A sender that closes without a final newline still meant that message,
    /// so it is delivered rather than dropped. An incomplete octet-counted
    /// frame is reported as an error with its offset.
    pub fn finish(&mut self) -> Option<FrameEvent> {
        if self.failed || self.pending() == 0 {
            return None;
        }
        match self.mode {
            Framing::OctetCounting => {
                if self.skip > 0 {
                    return None;
                }
                let offset = self.consumed;
                let n = self.pending();
                self.advance(n);
                Some(FrameEvent::Error {
                    offset,
                    reason: format!(
                        "connection closed inside an octet-counted frame ({n} bytes pending)"
                    ),
                })
            }
            _ => {
                if self.skip_line {
                    return None;
                }
                let data = &self.buf[self.start..];
                let mut line = data;
                while matches!(line.last(), Some(b'\r' | b'\n' | 0)) {
                    line = &line[..line.len() - 1];
                }
                // Still undetected (a run of up to MAX_LEN_DIGITS digits that
                // might have been a length prefix) the tail was never cut to
                // the limit by `next_line`, so cut it here.
                let frame = Frame {
                    bytes: line[..line.len().min(self.max)].to_vec(),
                    truncated: line.len() > self.max,
                };
                let n = data.len();
                self.advance(n);
                if frame.bytes.is_empty() {
                    None
                } else {
                    Some(FrameEvent::Frame(frame))
                }
            }
        }
    }

    fn fail(&mut self, reason: String) -> FrameEvent {
        self.failed = true;
        FrameEvent::Error {
            offset: self.consumed,
            reason,
        }
    }
}

fn detect(data: &[u8]) -> Option<Framing> {
    let first = *data.first()?;
    if !(b'1'..=b'9').contains(&first) {
        return Some(Framing::NonTransparent);
    }
    let digits = data.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > MAX_LEN_DIGITS {
        return Some(Framing::NonTransparent);
    }
    match (data.get(digits), data.get(digits + 1)) {
        (None, _) | (Some(b' '), None) => None,
        (Some(b' '), Some(b'<')) => Some(Framing::OctetCounting),
        _ => Some(Framing::NonTransparent),
    }
}

fn describe(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8], max: usize, chunk: usize) -> Vec<FrameEvent> {
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        for c in input.chunks(chunk.max(1)) {
            f.push(c);
            while let Some(e) = f.next_event() {
                out.push(e);
            }
        }
        out.extend(f.finish());
        out
    }

    fn frames(ev: &[FrameEvent]) -> Vec<String> {
        ev.iter()
            .filter_map(|e| match e {
                FrameEvent::Frame(f) => Some(String::from_utf8_lossy(&f.bytes).into_owned()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn octet_counting_any_chunking() {
        let input = b"16 <1>1 - - - - - -18 <2>1 - - - - - - x";
        for chunk in 1..input.len() {
            let ev = run(input, 100, chunk);
            assert_eq!(
                frames(&ev),
                vec!["<1>1 - - - - - -", "<2>1 - - - - - - x"],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn lines_lf_crlf_nul() {
        let ev = run(b"<1>a\r\n<2>b\0<3>c\n\n<4>d", 100, 3);
        assert_eq!(frames(&ev), vec!["<1>a", "<2>b", "<3>c", "<4>d"]);
    }

    #[test]
    fn plain_text_starting_with_digits_is_lines() {
        let ev = run(b"2024-03-01 started\n42 things\n", 100, 100);
        assert_eq!(frames(&ev), vec!["2024-03-01 started", "42 things"]);
    }

    #[test]
    fn long_line_truncated_rest_skipped() {
        let ev = run(b"abcdefghij\nok\n", 4, 2);
        assert_eq!(
            ev,
            vec![
                FrameEvent::Frame(Frame {
                    bytes: b"abcd".to_vec(),
                    truncated: true
                }),
                FrameEvent::Frame(Frame {
                    bytes: b"ok".to_vec(),
                    truncated: false
                }),
            ]
        );
    }

    #[test]
    fn long_octet_frame_truncated() {
        let ev = run(b"10 <1>abcdefg5 <2>xy", 5, 1);
        assert_eq!(
            ev,
            vec![
                FrameEvent::Frame(Frame {
                    bytes: b"<1>ab".to_vec(),
                    truncated: true
                }),
                FrameEvent::Frame(Frame {
                    bytes: b"<2>xy".to_vec(),
                    truncated: false
                }),
            ]
        );
    }

    #[test]
    fn bad_header_is_error_with_offset() {
        let ev = run(b"16 <1>1 - - - - - -xaaa", 100, 100);
        assert_eq!(frames(&ev), vec!["<1>1 - - - - - -"]);
        assert_eq!(
            ev[1],
            FrameEvent::Error {
                offset: 19,
                reason: "expected a message length, found 'x'".into()
            }
        );
    }

    #[test]
    fn finish_cuts_undetected_digit_run_to_max() {
        // Found by fuzzing (fuzz/ framing): a stream of only digits never
        // picks a framing, and `finish` delivered it whole, past the limit.
        let ev = run(b"3333333", 5, 5);
        assert_eq!(
            ev,
            vec![FrameEvent::Frame(Frame {
                bytes: b"33333".to_vec(),
                truncated: true
            })]
        );
        assert_eq!(frames(&run(b"33", 1, 1)), vec!["3"]);
        assert_eq!(frames(&run(b"42", 100, 1)), vec!["42"]);
    }

    #[test]
    fn truncated_octet_frame_at_eof() {
        let ev = run(b"16 <1>1", 100, 100);
        assert!(
            matches!(&ev[0], FrameEvent::Error { offset: 0, .. }),
            "{ev:?}"
        );
    }
}
