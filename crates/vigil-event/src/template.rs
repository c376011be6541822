//! Canonical bytes with a hole for `vigil.seq`.
//!
//! The sequence number is assigned by the single ledger writer, but
//! serializing an event is the expensive part of storing it. A
//! [`SeqTemplate`] is the event's canonical bytes made on any thread with
//! the place of `vigil.seq` left open; the writer only copies the bytes and
//! writes the number, producing exactly what [`Event::canonical_bytes`] would
//! after `event.set("vigil.seq", seq)`.

use std::cell::RefCell;

use serde_json::Value;

use crate::Event;

thread_local! {
    /// The buffer [`SeqTemplate::new`] writes into, reused.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Canonical bytes of an event, missing only the digits of `vigil.seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqTemplate {
    bytes: Vec<u8>,
    hole: usize,
}

impl SeqTemplate {
    /// Builds the template; any `vigil.seq` already present is ignored.
    pub fn new(ev: &Event) -> SeqTemplate {
        // Built in a buffer kept per thread and copied out once at its
        // final length: growing a fresh vector to an event's kilobyte or
        // two took a reallocation and a copy per doubling.
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut out) => {
                out.clear();
                let hole = SeqTemplate::write(ev, &mut out);
                SeqTemplate {
                    bytes: out.to_vec(),
                    hole,
                }
            }
            Err(_) => {
                let mut out = Vec::with_capacity(512);
                let hole = SeqTemplate::write(ev, &mut out);
                SeqTemplate { bytes: out, hole }
            }
        })
    }

    /// Writes the template's bytes into `out`; returns where the digits go.
    fn write(ev: &Event, out: &mut Vec<u8>) -> usize {
        let mut hole = None;
        let mut scratch = Vec::new();
        out.push(b'{');
        let mut first = true;
        for (k, v) in crate::canonical::sorted(&ev.root) {
            if hole.is_none() && k.as_str() > "vigil" {
                comma(out, &mut first);
                out.extend_from_slice(b"\"vigil\":{\"seq\":");
                hole = Some(out.len());
                out.push(b'}');
            }
            if k == "vigil" {
                comma(out, &mut first);
                out.extend_from_slice(b"\"vigil\":{");
                let mut inner_first = true;
                if let Value::Object(m) = v {
                    for (k2, v2) in crate::canonical::sorted(m) {
                        if k2 == "seq" {
                            continue;
                        }
                        if hole.is_none() && k2.as_str() > "seq" {
                            comma(out, &mut inner_first);
                            out.extend_from_slice(b"\"seq\":");
                            hole = Some(out.len());
                        }
                        comma(out, &mut inner_first);
                        crate::canonical::write_key(out, k2);
                        crate::canonical::write_value(out, v2, &mut scratch);
                    }
                }
                if hole.is_none() {
                    comma(out, &mut inner_first);
                    out.extend_from_slice(b"\"seq\":");
                    hole = Some(out.len());
                }
                out.push(b'}');
                continue;
            }
            comma(out, &mut first);
            crate::canonical::write_key(out, k);
            crate::canonical::write_value(out, v, &mut scratch);
        }
        let hole = match hole {
            Some(h) => h,
            None => {
                comma(out, &mut first);
                out.extend_from_slice(b"\"vigil\":{\"seq\":");
                let h = out.len();
                out.push(b'}');
                h
            }
        };
        out.push(b'}');
        hole
    }

    /// Writes the canonical bytes for sequence number `seq` into `buf` (cleared first).
    pub fn fill(&self, seq: u64, buf: &mut Vec<u8>) {
        buf.clear();
        buf.reserve(self.bytes.len() + 20);
        buf.extend_from_slice(&self.bytes[..self.hole]);
        let mut digits = [0u8; 20];
        let mut n = seq;
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        buf.extend_from_slice(&digits[i..]);
        buf.extend_from_slice(&self.bytes[self.hole..]);
    }

    /// Length of the template without the digits.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never true: a template always holds at least `{"vigil":{"seq":}}`.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

fn comma(out: &mut Vec<u8>, first: &mut bool) {
    if !*first {
        out.push(b',');
    }
    *first = false;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value) {
        let ev = Event::from_json(v, 64).unwrap();
        let t = SeqTemplate::new(&ev);
        for seq in [0u64, 1, 9, 10, 12345, u64::MAX] {
            let mut expect = ev.clone();
            expect.set("vigil.seq", seq);
            let mut buf = Vec::new();
            t.fill(seq, &mut buf);
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                String::from_utf8(expect.canonical_bytes()).unwrap()
            );
        }
    }

    #[test]
    fn matches_canonical_bytes() {
        check(json!({}));
        check(json!({"a": 1}));
        check(json!({"zzz": 1}));
        check(json!({"a": 1, "zzz": {"b": [1, "x\n"]}}));
        check(json!({"vigil": {}}));
        check(json!({"vigil": {"input": "http"}}));
        check(json!({"vigil": {"truncated": true}}));
        check(json!({"vigil": {"input": "http", "seq": 7, "source": "s", "zz": null}}));
        check(
            json!({"vigil": {"input": "http", "received_at": "t"}, "winlog": {"x": "\u{1b}"}, "@timestamp": "t"}),
        );
        check(json!({"vigil": "not an object", "a": 1}));
    }
}
