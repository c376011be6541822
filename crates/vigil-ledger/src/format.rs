//! On-disk encoding of segment headers and records (see `FORMAT.md`).

use std::ops::Range;

/// First bytes of every segment file.
pub(crate) const MAGIC: [u8; 8] = *b"VIGILSEG";
/// Segment format version of a plain segment.
pub(crate) const FORMAT_VERSION: u32 = 1;
/// Version of a compressed segment's stream whose record checksums were
/// checked before compression and then zeroed (see [`SegmentHeader::crc_elided`]).
pub(crate) const FORMAT_VERSION_CRC_ELIDED: u32 = 2;
/// Size of the segment header in bytes.
pub(crate) const HEADER_LEN: usize = 40;
/// Size of the per-record header (`len | crc | seq`).
pub(crate) const RECORD_HEADER_LEN: usize = 16;
/// Largest payload a record may carry.
///
/// A bound keeps a corrupt length field from making a reader allocate gigabytes;
/// canonical events are far smaller.
pub const MAX_PAYLOAD_LEN: usize = 16 << 20;

/// Suffix of an open or sealed but uncompressed segment.
pub(crate) const SEG_SUFFIX: &str = ".seg";
/// Suffix of a sealed, zstd-compressed segment.
pub(crate) const ZST_SUFFIX: &str = ".seg.zst";
/// Suffix of files being written that are not yet in place.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// The fixed header at the start of each segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub first_seq: u64,
    pub created_unix: u64,
    /// Whether records may carry a zero checksum field: the compressor
    /// checks each record's crc and then zeroes it, because four random
    /// bytes per event are about a twelfth of a compressed segment, while
    /// zstd's frame checksums already cover the bytes from then on (and the
    /// Merkle tree every payload). Only a `.seg.zst` stream has it.
    pub crc_elided: bool,
}

impl SegmentHeader {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        let version = if self.crc_elided {
            FORMAT_VERSION_CRC_ELIDED
        } else {
            FORMAT_VERSION
        };
        b[8..12].copy_from_slice(&version.to_le_bytes());
        // 12..16 reserved (flags), zero.
        b[16..24].copy_from_slice(&self.first_seq.to_le_bytes());
        b[24..32].copy_from_slice(&self.created_unix.to_le_bytes());
        let crc = crc32c::crc32c(&b[0..32]);
        b[32..36].copy_from_slice(&crc.to_le_bytes());
        // 36..40 reserved, zero.
        b
    }

    /// Decodes a header; the error is a human-readable reason.
    pub(crate) fn decode(b: &[u8]) -> Result<SegmentHeader, String> {
        if b.len() < HEADER_LEN {
            return Err(format!(
                "segment header is {} bytes, expected {HEADER_LEN}",
                b.len()
            ));
        }
        if b[0..8] != MAGIC {
            return Err("bad magic: not a Vigil ledger segment".to_string());
        }
        let crc = le_u32(&b[32..36]);
        if crc != crc32c::crc32c(&b[0..32]) {
            return Err("segment header checksum mismatch".to_string());
        }
        let version = le_u32(&b[8..12]);
        if version != FORMAT_VERSION && version != FORMAT_VERSION_CRC_ELIDED {
            return Err(format!(
                "unsupported segment format version {version} (this build reads {FORMAT_VERSION} and {FORMAT_VERSION_CRC_ELIDED})"
            ));
        }
        Ok(SegmentHeader {
            first_seq: le_u64(&b[16..24]),
            created_unix: le_u64(&b[24..32]),
            crc_elided: version == FORMAT_VERSION_CRC_ELIDED,
        })
    }
}

pub(crate) fn le_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

pub(crate) fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// The checksum of a record: crc32c over the seq bytes then the payload, so a
/// record copied to another position (another seq) does not verify.
#[inline]
pub(crate) fn record_crc(seq: u64, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&seq.to_le_bytes()), payload)
}

/// Appends one encoded record to `buf`. Allocation-free once `buf` has grown.
#[inline]
pub(crate) fn encode_record(buf: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let len = payload.len() as u32;
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&record_crc(seq, payload).to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(payload);
}

/// Outcome of decoding one record from a byte slice.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// A valid record: its seq, the payload range within the slice, and the
    /// total encoded length.
    Record {
        seq: u64,
        payload: Range<usize>,
        len: usize,
    },
    /// The slice holds fewer bytes than the record needs (`need` in total).
    Short { need: usize },
    /// The bytes are not a valid record.
    Invalid(String),
}

/// Whether a record's stored checksum field accepts it: the checksum
/// itself, or zero in a compressed stream, where the compressor checked it
/// before zeroing it (see [`SegmentHeader::crc_elided`]).
#[inline]
pub(crate) fn crc_accepts(stored: u32, seq: u64, payload: &[u8], zero_ok: bool) -> bool {
    (zero_ok && stored == 0) || stored == record_crc(seq, payload)
}

/// Decodes the record at the start of `b`, expecting sequence number
/// `expect`; `zero_crc_ok` for a compressed stream (see [`crc_accepts`]).
#[inline]
pub(crate) fn decode_record(b: &[u8], expect: u64, zero_crc_ok: bool) -> Decoded {
    if b.len() < RECORD_HEADER_LEN {
        return Decoded::Short {
            need: RECORD_HEADER_LEN,
        };
    }
    let len = le_u32(&b[0..4]) as usize;
    if len > MAX_PAYLOAD_LEN {
        return Decoded::Invalid(format!(
            "record length {len} exceeds the maximum of {MAX_PAYLOAD_LEN}"
        ));
    }
    let total = RECORD_HEADER_LEN + len;
    if b.len() < total {
        return Decoded::Short { need: total };
    }
    let crc = le_u32(&b[4..8]);
    let seq = le_u64(&b[8..16]);
    let payload = RECORD_HEADER_LEN..total;
    if !crc_accepts(crc, seq, &b[payload.clone()], zero_crc_ok) {
        return Decoded::Invalid(format!("checksum mismatch in record claiming seq {seq}"));
    }
    if seq != expect {
        return Decoded::Invalid(format!("sequence number {seq} where {expect} was expected"));
    }
    Decoded::Record {
        seq,
        payload,
        len: total,
    }
}

/// File name of the plain segment starting at `first_seq`.
pub(crate) fn seg_name(first_seq: u64) -> String {
    format!("{first_seq:020}{SEG_SUFFIX}")
}

/// File name of the compressed segment starting at `first_seq`.
pub(crate) fn zst_name(first_seq: u64) -> String {
    format!("{first_seq:020}{ZST_SUFFIX}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_damage() {
        for crc_elided in [false, true] {
            let h = SegmentHeader {
                first_seq: 42,
                created_unix: 1_700_000_000,
                crc_elided,
            };
            let mut b = h.encode();
            assert_eq!(le_u32(&b[8..12]), 1 + u32::from(crc_elided));
            assert_eq!(SegmentHeader::decode(&b), Ok(h));
            b[20] ^= 1;
            assert!(SegmentHeader::decode(&b).is_err());
            assert!(SegmentHeader::decode(&b[..10]).is_err());
        }
        let mut future = SegmentHeader {
            first_seq: 1,
            created_unix: 0,
            crc_elided: false,
        }
        .encode();
        future[8] = 3;
        let crc = crc32c::crc32c(&future[0..32]);
        future[32..36].copy_from_slice(&crc.to_le_bytes());
        let e = SegmentHeader::decode(&future).unwrap_err();
        assert!(e.contains("version 3"), "{e}");
    }

    #[test]
    fn record_round_trip_and_damage() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 7, b"hello");
        for zero_ok in [false, true] {
            assert_eq!(
                decode_record(&buf, 7, zero_ok),
                Decoded::Record {
                    seq: 7,
                    payload: 16..21,
                    len: 21
                }
            );
            assert!(matches!(
                decode_record(&buf, 8, zero_ok),
                Decoded::Invalid(_)
            ));
            assert_eq!(
                decode_record(&buf[..20], 7, zero_ok),
                Decoded::Short { need: 21 }
            );
            assert_eq!(
                decode_record(&buf[..3], 7, zero_ok),
                Decoded::Short { need: 16 }
            );
        }
        let mut flipped = buf.clone();
        flipped[18] ^= 0x40;
        assert!(matches!(
            decode_record(&flipped, 7, true),
            Decoded::Invalid(_)
        ));

        // A zeroed checksum passes only where the compressor may zero it.
        let mut zeroed = buf.clone();
        zeroed[4..8].fill(0);
        assert!(matches!(
            decode_record(&zeroed, 7, false),
            Decoded::Invalid(_)
        ));
        assert!(matches!(
            decode_record(&zeroed, 7, true),
            Decoded::Record { seq: 7, .. }
        ));
        // The seq is still checked when the crc is elided.
        assert!(matches!(
            decode_record(&zeroed, 8, true),
            Decoded::Invalid(_)
        ));
    }

    #[test]
    fn names_sort_by_seq() {
        assert_eq!(seg_name(1), "00000000000000000001.seg");
        assert_eq!(zst_name(u64::MAX), "18446744073709551615.seg.zst");
        assert!(seg_name(9) < seg_name(10));
    }
}
