//! Reading log lines with a size limit.

use std::io::BufRead;

/// Reads one line into `out` without its `\n`, keeping at most `limit`
/// bytes (the rest is skipped), so a huge line cannot exhaust memory.
/// Returns the bytes read (0 at the end) and whether the line was cut.
pub fn read_line_limited(
    r: &mut impl BufRead,
    out: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<(usize, bool)> {
    let (mut read, mut truncated) = (0usize, false);
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok((read, truncated));
        }
        let (chunk, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], true),
            None => (buf, false),
        };
        let room = limit.saturating_sub(out.len()).min(chunk.len());
        out.extend_from_slice(&chunk[..room]);
        truncated |= chunk[room..].iter().any(|&b| b != b'\r');
        let n = chunk.len() + usize::from(done);
        read += n;
        r.consume(n);
        if done {
            return Ok((read, truncated));
        }
    }
}
