//! Canonical JSON: compact, object keys in byte order at every level.

use serde_json::{Map, Value};

/// Writes `v` canonically.
pub(crate) fn write_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Object(m) => write_map(out, m),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::String(s) => write_str(out, s),
        scalar => {
            serde_json::to_writer(&mut *out, scalar).expect("serializing a JSON scalar cannot fail")
        }
    }
}

/// Writes a map canonically.
pub(crate) fn write_map(out: &mut Vec<u8>, m: &Map<String, Value>) {
    out.push(b'{');
    for (i, (k, v)) in sorted(m).into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_key(out, k);
        write_value(out, v);
    }
    out.push(b'}');
}

/// Writes `"key":`.
pub(crate) fn write_key(out: &mut Vec<u8>, k: &str) {
    write_str(out, k);
    out.push(b':');
}

/// Writes a JSON string exactly as `serde_json` does (`\"`, `\\`, `\b`,
/// `\f`, `\n`, `\r`, `\t`, other control bytes as `\u00xx`, everything
/// else as is), skipping eight plain bytes at a time: string escaping was
/// the largest single cost of serializing an event.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        if let Some(word) = b.get(i..i + 8) {
            let mut w = [0u8; 8];
            w.copy_from_slice(word);
            if !word_needs_escape(u64::from_le_bytes(w)) {
                i += 8;
                continue;
            }
        }
        let c = b[i];
        if needs_escape(c) {
            out.extend_from_slice(&b[start..i]);
            write_escape(out, c);
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

fn needs_escape(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\'
}

/// Whether any of the eight bytes needs escaping (exact, by the classic
/// "has a zero byte" / "has a byte below n" bit tricks).
fn word_needs_escape(w: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGHS != 0;
    below_space || has_zero(w ^ (ONES * u64::from(b'"'))) || has_zero(w ^ (ONES * u64::from(b'\\')))
}

fn write_escape(out: &mut Vec<u8>, c: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match c {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(c >> 4)]);
            out.push(HEX[usize::from(c & 0xf)]);
            return;
        }
    };
    out.push(b'\\');
    out.push(short);
}

/// The map's entries in byte order of their keys.
pub(crate) fn sorted(m: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    // Already sorted whenever serde_json's map is a BTreeMap; cheap then.
    if !entries.windows(2).all(|w| w[0].0 <= w[1].0) {
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde(s: &str) -> Vec<u8> {
        serde_json::to_vec(s).unwrap()
    }

    fn ours(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_str(&mut out, s);
        out
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        // Every byte value below 0x80 alone, and at every offset of a
        // 17-byte run (so in each lane of a word and in the tail).
        for c in 0u8..0x80 {
            let ch = char::from(c);
            assert_eq!(ours(&ch.to_string()), serde(&ch.to_string()), "{c:#x}");
            for at in 0..17 {
                let mut s: Vec<char> = "abcdefghijklmnopq".chars().collect();
                s[at] = ch;
                let s: String = s.into_iter().collect();
                assert_eq!(ours(&s), serde(&s), "{c:#x} at {at}");
            }
        }
        for s in [
            "",
            "plain ascii that is long enough for several words",
            "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe",
            "quote \" in the middle, \\ and \u{7f} and \u{1b}[31m",
            "ünïcödé ✓ 日本語 \u{2028}\u{2029} 😀",
            "\n\r\t\u{8}\u{c}\u{0}\u{1f}",
        ] {
            assert_eq!(ours(s), serde(s), "{s:?}");
        }
        // Pseudo-random mixes of plain, special and multi-byte characters.
        const PIECES: &[&str] = &[
            "a", "Z", " ", "\"", "\\", "\n", "\u{1}", "é", "😀", "\u{7f}", "0123456",
        ];
        let mut state = 0x853c_49e6_748f_ea9bu64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5000 {
            let s: String = (0..next() % 24)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect();
            assert_eq!(ours(&s), serde(&s), "{s:?}");
        }
    }
}
