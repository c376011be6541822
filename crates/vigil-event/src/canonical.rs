//! Canonical JSON: compact, object keys in byte order at every level.

use serde_json::{Map, Value};

/// The entries of the maps being written, outermost first: one buffer
/// for a whole event rather than one allocation per nested object.
pub(crate) type Scratch<'a> = Vec<(&'a String, &'a Value)>;

/// Writes `v` canonically.
pub(crate) fn write_value<'a>(out: &mut Vec<u8>, v: &'a Value, scratch: &mut Scratch<'a>) {
    match v {
        Value::Object(m) => write_map(out, m, scratch),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item, scratch);
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
pub(crate) fn write_map<'a>(
    out: &mut Vec<u8>,
    m: &'a Map<String, Value>,
    scratch: &mut Scratch<'a>,
) {
    out.push(b'{');
    let base = scratch.len();
    scratch.extend(m.iter());
    sort_entries(&mut scratch[base..]);
    let end = scratch.len();
    // Nested maps push their entries past `end` and take them off again.
    for i in base..end {
        let (k, v) = scratch[i];
        if i > base {
            out.push(b',');
        }
        write_key(out, k);
        write_value(out, v, scratch);
    }
    scratch.truncate(base);
    out.push(b'}');
}

/// Writes `"key":`.
pub(crate) fn write_key(out: &mut Vec<u8>, k: &str) {
    write_str(out, k);
    out.push(b':');
}

/// Writes a JSON string exactly as `serde_json` does (`\"`, `\\`, `\b`,
/// `\f`, `\n`, `\r`, `\t`, other control bytes as `\u00xx`, everything
/// else as is), looking at eight bytes at a time: string escaping was the
/// largest single cost of serializing an event.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let n = (b.len() - i).min(8);
        // The tail is padded with a byte that needs no escape.
        let mut w = [b'a'; 8];
        w[..n].copy_from_slice(&b[i..i + n]);
        let m = escape_mask(u64::from_le_bytes(w));
        if m == 0 {
            i += n;
            continue;
        }
        let at = i + (m.trailing_zeros() / 8) as usize;
        out.extend_from_slice(&b[start..at]);
        write_escape(out, b[at]);
        start = at + 1;
        i = at + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// The high bit of each of the eight bytes that may need escaping (below
/// 0x20, `"` or `\`), by the classic "has a zero byte" / "has a byte
/// below n" tricks. Those may also flag bytes above a real hit, never
/// below one, and flag every real hit: the lowest flag is the first byte
/// to escape.
fn escape_mask(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    below_space
        | zero_bytes(w ^ (ONES * u64::from(b'"')))
        | zero_bytes(w ^ (ONES * u64::from(b'\\')))
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
    sort_entries(&mut entries);
    entries
}

/// Sorts entries by key bytes.
fn sort_entries(entries: &mut [(&String, &Value)]) {
    // Already sorted whenever serde_json's map is a BTreeMap; cheap then.
    if !entries.windows(2).all(|w| w[0].0 <= w[1].0) {
        entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    }
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

#[cfg(test)]
mod order_tests {
    use super::*;
    use serde_json::json;

    /// The canonical form as first written: a sorted copy of each map's
    /// entries and serde_json for every key and scalar.
    fn reference(out: &mut Vec<u8>, v: &Value) {
        match v {
            Value::Object(m) => {
                out.push(b'{');
                for (i, (k, v)) in sorted(m).into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut *out, k).unwrap();
                    out.push(b':');
                    reference(out, v);
                }
                out.push(b'}');
            }
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    reference(out, item);
                }
                out.push(b']');
            }
            scalar => serde_json::to_writer(&mut *out, scalar).unwrap(),
        }
    }

    #[test]
    fn nested_maps_share_one_buffer_and_write_the_same_bytes() {
        for v in [
            json!({}),
            json!({"z": {"y": {"x": 1, "a": [{"q": 1, "b": {"d": null, "c": true}}, 2]}, "b": "s"}, "a": {}, "m": [[], {}]}),
            json!({"log": {"syslog": {"severity": {"name": "info", "code": 6}, "facility": {"code": 4, "name": "auth"}}}, "event": {"category": ["authentication"], "action": "x\n\"y\""}, "@timestamp": "t", "é": 1.5, "E": -3}),
        ] {
            let Value::Object(m) = &v else {
                unreachable!("objects only")
            };
            let mut ours = Vec::new();
            write_map(&mut ours, m, &mut Vec::new());
            let mut theirs = Vec::new();
            reference(&mut theirs, &v);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
        }
    }
}
