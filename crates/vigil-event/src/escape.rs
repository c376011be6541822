//! JSON string literals, byte for byte as serde_json writes them.
//!
//! Strings are most of an event's canonical bytes and almost never hold a
//! byte that needs escaping; serde_json looks each byte up in a table, this
//! tests eight at a time (a short string or tail in one padded word) and
//! copies unchanged runs whole.

/// What a byte to escape becomes after a backslash: `u` for `\u00XX`.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 0x20 {
        t[c] = b'u';
        c += 1;
    }
    t[0x08] = b'b';
    t[0x09] = b't';
    t[0x0a] = b'n';
    t[0x0c] = b'f';
    t[0x0d] = b'r';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `w` (read little-endian) that is a control
/// byte, `"` or `\`. Borrows only travel upwards, so the lowest bit set is
/// exactly the first such byte (bits above it may be spurious), and none
/// is set when there is no such byte.
fn to_escape(w: u64) -> u64 {
    // A byte below n sets its high bit in (w - n…) & !w (n ≤ 128); a zero
    // byte of w ^ c is a byte equal to c.
    let below_space = w.wrapping_sub(ONES * 0x20) & !w;
    let q = w ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q;
    let s = w ^ (ONES * u64::from(b'\\'));
    let backslash = s.wrapping_sub(ONES) & !s;
    (below_space | quote | backslash) & HIGH
}

/// Appends `s` as a quoted JSON string.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut run = 0;
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    while let Some(block) = b.get(i..i + 16) {
        // Every byte to escape in the block at once, so a string full of
        // quotes (a JSON line in `event.original`) is not tested again
        // after each one.
        let mut m = block_to_escape(block.try_into().expect("a slice of sixteen bytes"));
        while m != 0 {
            let at = i + m.trailing_zeros() as usize;
            out.extend_from_slice(&b[run..at]);
            push_escaped(out, b[at]);
            run = at + 1;
            m &= m - 1;
        }
        i += 16;
    }
    while i < b.len() {
        let w = match b.get(i..i + 8) {
            Some(word) => u64::from_le_bytes(word.try_into().expect("a slice of eight bytes")),
            None => {
                // The last few bytes, padded with a letter that needs no escape.
                let mut word = [b'a'; 8];
                word[..b.len() - i].copy_from_slice(&b[i..]);
                u64::from_le_bytes(word)
            }
        };
        let m = to_escape(w);
        if m == 0 {
            i += 8;
            continue;
        }
        let at = i + (m.trailing_zeros() / 8) as usize;
        out.extend_from_slice(&b[run..at]);
        push_escaped(out, b[at]);
        run = at + 1;
        i = at + 1;
    }
    out.extend_from_slice(&b[run..]);
    out.push(b'"');
}

/// Appends the escape sequence of `c`, a byte [`to_escape`] flags.
#[inline]
fn push_escaped(out: &mut Vec<u8>, c: u8) {
    match ESCAPE[usize::from(c)] {
        b'u' => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(c >> 4)],
            HEX[usize::from(c & 0xf)],
        ]),
        e => out.extend_from_slice(&[b'\\', e]),
    }
}

/// One bit per byte of `block` that is a control byte, `"` or `\`.
#[cfg(target_arch = "x86_64")]
#[inline]
fn block_to_escape(block: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of the x86_64 baseline, and the unaligned load
    // reads exactly the sixteen bytes of `block`.
    unsafe {
        let v = _mm_loadu_si128(block.as_ptr().cast());
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // Unsigned v <= 0x1f exactly when max(v, 0x1f) == 0x1f.
        let limit = _mm_set1_epi8(0x1f);
        let control = _mm_cmpeq_epi8(_mm_max_epu8(v, limit), limit);
        _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(s: &str) {
        let mut ours = Vec::new();
        write_str(&mut ours, s);
        let theirs = serde_json::to_vec(s).expect("a string serializes");
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs),
            "{s:?}"
        );
    }

    #[test]
    fn every_ascii_byte_at_every_place_in_a_word() {
        for c in 0u8..0x80 {
            for len in 0..40 {
                for at in 0..len {
                    let mut s: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
                    s[at] = c;
                    check(std::str::from_utf8(&s).expect("ASCII"));
                }
            }
        }
    }

    #[test]
    fn two_bytes_to_escape_in_one_word() {
        let special = [
            0u8, 0x08, 0x0b, 0x1f, b'"', b'\\', b' ', b'!', b'#', b'[', b']', 0x7f,
        ];
        for &c in &special {
            for &d in &special {
                for at in 0..30 {
                    for gap in 1..18 {
                        let mut s = vec![b'x'; 48];
                        s[at] = c;
                        s[at + gap] = d;
                        check(std::str::from_utf8(&s).expect("ASCII"));
                    }
                }
            }
        }
    }

    #[test]
    fn runs_escapes_and_non_ascii() {
        for s in [
            "",
            "\"",
            "\\\\\\\"",
            "\u{7f}\u{80}\u{ff}é€😀",
            "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
            "line one\nline two\r\n\ttabbed \u{1b}[31mred\u{1b}[0m \u{0}\u{1f}",
            "{\"a\":\"b\"} plain text long enough for several words of eight bytes",
            "ab\"cdefgh\"ijklmnop\\qrstuvwx\u{8}yz\u{c}0123456\u{b}",
        ] {
            check(s);
        }
        // Every byte value below 0x80 next to multi-byte characters.
        let all: String = (0u8..0x80).map(char::from).collect();
        check(&all);
        check(&format!("é{all}€{all}😀"));
    }

    #[test]
    fn random_mixes_of_plain_escaped_and_multi_byte_text() {
        let pieces = [
            "a",
            "Zz",
            "\"",
            "\\",
            "\n",
            "\u{1}",
            "\u{1f}",
            " ",
            "\u{7f}",
            "é",
            "€",
            "😀",
            "\u{80}",
            "0123456789abcdef",
        ];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let n = (next() % 40) as usize;
            let s: String = (0..n)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            check(&s);
        }
    }
}
