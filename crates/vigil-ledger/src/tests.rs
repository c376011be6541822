//! Behavioural tests of the writer and reader together.

use std::fs;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::compress::compress_segment;
use crate::format::{HEADER_LEN, RECORD_HEADER_LEN};
use crate::{Ledger, LedgerError, LedgerOptions, LedgerReader, Record};

/// Deterministic payload for `seq`, so readers can check content without a model.
fn payload(seq: u64, len: usize) -> Vec<u8> {
    let mut p = format!("{{\"seq\":{seq},\"pad\":\"").into_bytes();
    while p.len() + 2 < len {
        p.push(b'a' + (seq % 26) as u8);
    }
    p.extend_from_slice(b"\"}");
    p
}

fn opts(seg_bytes: u64, compress: bool) -> LedgerOptions {
    LedgerOptions {
        segment_max_bytes: seg_bytes,
        compress_sealed: compress,
        ..LedgerOptions::default()
    }
}

fn read_all(dir: &Path) -> Vec<Record> {
    LedgerReader::open(dir)
        .unwrap()
        .iter_range(1, u64::MAX)
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn assert_records(dir: &Path, n: u64, len: usize) {
    let recs = read_all(dir);
    assert_eq!(recs.len() as u64, n, "record count");
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
        assert_eq!(r.payload, payload(r.seq, len), "payload of seq {}", r.seq);
    }
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(suffix))
        .collect();
    v.sort();
    v
}

fn append_n(l: &mut Ledger, n: u64, len: usize) {
    for _ in 0..n {
        let seq = l.next_seq();
        assert_eq!(l.append(&payload(seq, len)).unwrap(), seq);
    }
}

#[test]
fn append_commit_reopen_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ledger");
    {
        let mut l = Ledger::open(&dir, LedgerOptions::default()).unwrap();
        assert_eq!(l.next_seq(), 1);
        assert_eq!(l.commit().unwrap(), 0, "nothing to commit");
        append_n(&mut l, 100, 300);
        assert_eq!(l.durable_seq(), 0);
        assert_eq!(l.commit().unwrap(), 100);
        assert_eq!(l.durable_seq(), 100);
        let s = l.stats();
        assert_eq!(s.commits, 1);
        assert_eq!(s.segments, 1);
        assert!(s.bytes_on_disk > 100 * 300);
    }
    let l = Ledger::open(&dir, LedgerOptions::default()).unwrap();
    assert_eq!(l.recovery().last_seq, 100);
    assert_eq!(l.recovery().truncated_bytes, 0);
    assert_eq!(l.recovery().segments, 1);
    assert_eq!(l.next_seq(), 101);
    assert_eq!(l.durable_seq(), 100);
    assert_records(&dir, 100, 300);
    let reader = LedgerReader::open(&dir).unwrap();
    assert_eq!(reader.last_seq().unwrap(), 100);
    let mid: Vec<u64> = reader.iter_range(40, 45).map(|r| r.unwrap().seq).collect();
    assert_eq!(mid, vec![40, 41, 42, 43, 44, 45]);
    assert_eq!(reader.iter_range(101, 200).count(), 0);
    assert_eq!(reader.iter_range(5, 4).count(), 0);
}

#[test]
fn drop_commits_buffered_records() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let mut l = Ledger::open(tmp.path(), LedgerOptions::default()).unwrap();
        append_n(&mut l, 7, 50);
    }
    assert_records(tmp.path(), 7, 50);
}

#[test]
fn empty_payload_and_too_large() {
    let tmp = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(tmp.path(), LedgerOptions::default()).unwrap();
    assert_eq!(l.append(b"").unwrap(), 1);
    let big = vec![0u8; crate::MAX_PAYLOAD_LEN + 1];
    let err = l.append(&big).unwrap_err();
    assert!(matches!(err, LedgerError::PayloadTooLarge { .. }), "{err}");
    assert_eq!(l.append(b"x").unwrap(), 2);
    l.commit().unwrap();
    let recs = read_all(tmp.path());
    assert_eq!(recs[0].payload, b"");
    assert_eq!(recs[1].payload, b"x");
}

#[test]
fn seqs_gap_free_across_restarts_and_rolls() {
    for compress in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let mut total = 0;
        for round in 0..5u64 {
            let mut l = Ledger::open(tmp.path(), opts(1000, compress)).unwrap();
            assert_eq!(l.next_seq(), total + 1, "round {round}");
            for batch in 0..(round + 1) {
                append_n(&mut l, 3 + batch, 100);
                total += 3 + batch;
                assert_eq!(l.commit().unwrap(), total);
            }
        }
        assert!(files(tmp.path(), ".seg").len() + files(tmp.path(), ".seg.zst").len() > 5);
        assert_records(tmp.path(), total, 100);
    }
}

#[test]
fn rolls_by_size() {
    let tmp = tempfile::tempdir().unwrap();
    let max = 4096u64;
    {
        let mut l = Ledger::open(tmp.path(), opts(max, false)).unwrap();
        append_n(&mut l, 100, 400);
        l.commit().unwrap();
        // 400-byte records: 9 fit under 4096 with the header (40 + 9*416).
        assert_eq!(l.stats().segments, 12);
    }
    for seg in files(tmp.path(), ".seg") {
        assert!(
            fs::metadata(&seg).unwrap().len() <= max,
            "{}",
            seg.display()
        );
    }
    assert_records(tmp.path(), 100, 400);

    // A record bigger than a segment gets a segment of its own.
    let tmp = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(tmp.path(), opts(100, false)).unwrap();
    append_n(&mut l, 3, 500);
    l.commit().unwrap();
    assert_eq!(l.stats().segments, 3);
    drop(l);
    assert_records(tmp.path(), 3, 500);
}

#[test]
fn rolls_by_age() {
    let tmp = tempfile::tempdir().unwrap();
    let o = LedgerOptions {
        segment_max_age: Duration::from_secs(1),
        compress_sealed: false,
        ..LedgerOptions::default()
    };
    let mut l = Ledger::open(tmp.path(), o.clone()).unwrap();
    // An empty segment never rolls, however old.
    std::thread::sleep(Duration::from_millis(2100));
    l.maybe_roll().unwrap();
    assert_eq!(l.stats().segments, 1);

    append_n(&mut l, 5, 100);
    l.commit().unwrap();
    assert_eq!(l.stats().segments, 2, "commit rolls the aged segment");
    l.maybe_roll().unwrap();
    assert_eq!(l.stats().segments, 2, "the new segment is young and empty");

    append_n(&mut l, 5, 100);
    std::thread::sleep(Duration::from_millis(2100));
    l.maybe_roll().unwrap();
    assert_eq!(l.stats().segments, 3, "timer roll");
    assert_eq!(l.durable_seq(), 10, "rolling syncs what was buffered");

    std::thread::sleep(Duration::from_millis(2100));
    append_n(&mut l, 1, 100); // first append of a batch rolls too? segment empty: no
    assert_eq!(l.stats().segments, 3);
    std::thread::sleep(Duration::from_millis(2100));
    l.commit().unwrap();
    append_n(&mut l, 1, 100);
    assert_eq!(
        l.stats().segments,
        4,
        "append at batch start rolls the aged segment"
    );
    drop(l);
    assert_records(tmp.path(), 12, 100);
}

#[test]
fn sealed_segments_are_compressed_and_readable() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let mut l = Ledger::open(tmp.path(), opts(20_000, true)).unwrap();
        for _ in 0..10 {
            append_n(&mut l, 50, 400);
            l.commit().unwrap();
        }
    } // drop waits for compression
    let zst = files(tmp.path(), ".seg.zst");
    let plain = files(tmp.path(), ".seg");
    assert!(zst.len() >= 9, "{zst:?}");
    assert_eq!(plain.len(), 1, "only the open segment stays plain");
    assert!(files(tmp.path(), ".tmp").is_empty());
    assert_records(tmp.path(), 500, 400);

    // Reopen continues after compressed segments; stats count them.
    let mut l = Ledger::open(tmp.path(), opts(20_000, true)).unwrap();
    assert_eq!(l.next_seq(), 501);
    append_n(&mut l, 10, 400);
    l.commit().unwrap();
    let s = l.stats();
    assert_eq!(s.compressed_segments, zst.len());
    drop(l);
    assert_records(tmp.path(), 510, 400);
}

#[test]
fn closing_while_the_idle_thread_compresses_still_compresses_everything() {
    let tmp = tempfile::tempdir().unwrap();
    // Level 19 is slow enough that the idle thread is surely mid-segment.
    let o = LedgerOptions {
        zstd_level: 19,
        ..opts(4 << 20, true)
    };
    let mut l = Ledger::open(tmp.path(), o).unwrap();
    while l.stats().segments < 2 {
        append_n(&mut l, 500, 1000);
        l.commit().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while l.compressing_for_tests() == 0 {
        assert!(Instant::now() < deadline, "the idle thread never started");
        std::thread::sleep(Duration::from_millis(2));
    }
    // Stops the idle thread; the backlog thread must take its segment over.
    drop(l);
    assert_eq!(files(tmp.path(), ".seg.zst").len(), 1);
    assert_eq!(files(tmp.path(), ".seg").len(), 1, "only the open segment");
    assert!(files(tmp.path(), ".tmp").is_empty());
}

#[test]
fn sealed_plain_segments_left_by_a_crash_are_compressed_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let mut l = Ledger::open(tmp.path(), opts(5000, false)).unwrap();
        append_n(&mut l, 60, 400);
        l.commit().unwrap();
    }
    let before = files(tmp.path(), ".seg").len();
    assert!(before > 3);
    drop(Ledger::open(tmp.path(), opts(5000, true)).unwrap());
    assert_eq!(files(tmp.path(), ".seg").len(), 1);
    assert_eq!(files(tmp.path(), ".seg.zst").len(), before - 1);
    assert_records(tmp.path(), 60, 400);
}

#[test]
fn crash_leftovers_of_compression_are_cleaned() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let mut l = Ledger::open(tmp.path(), opts(5000, false)).unwrap();
        append_n(&mut l, 40, 400);
        l.commit().unwrap();
    }
    let segs = files(tmp.path(), ".seg");
    // Died after rename, before delete: both forms of segs[0].
    let copy = fs::read(&segs[0]).unwrap();
    compress_segment(tmp.path(), &segs[0], 3).unwrap();
    fs::write(&segs[0], &copy).unwrap();
    // Died after rename with a damaged .zst (cannot happen after fsync, but
    // never delete the only good copy on trust): both forms of segs[1].
    let copy1 = fs::read(&segs[1]).unwrap();
    compress_segment(tmp.path(), &segs[1], 3).unwrap();
    fs::write(&segs[1], &copy1).unwrap();
    let z1 = files(tmp.path(), ".seg.zst")[1].clone();
    let mut zb = fs::read(&z1).unwrap();
    let n = zb.len();
    zb.truncate(n / 2);
    fs::write(&z1, &zb).unwrap();
    // Died mid-compression: a temp file.
    let tmpfile = tmp.path().join("00000000000000000099.seg.zst.tmp");
    fs::write(&tmpfile, b"partial").unwrap();

    let l = Ledger::open(tmp.path(), opts(5000, false)).unwrap();
    assert!(!tmpfile.exists());
    assert!(!segs[0].exists(), "plain copy of a good .zst is removed");
    assert!(segs[1].exists(), "plain copy kept when the .zst is bad");
    assert!(!z1.exists(), "bad .zst removed");
    assert_eq!(l.recovery().last_seq, 40);
    drop(l);
    assert_records(tmp.path(), 40, 400);
}

#[test]
fn newest_segment_compressed_continues_in_a_new_one() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let mut l = Ledger::open(tmp.path(), opts(1 << 20, false)).unwrap();
        append_n(&mut l, 10, 100);
        l.commit().unwrap();
    }
    let seg = files(tmp.path(), ".seg").remove(0);
    compress_segment(tmp.path(), &seg, 3).unwrap();
    let mut l = Ledger::open(tmp.path(), opts(1 << 20, false)).unwrap();
    assert_eq!(l.next_seq(), 11);
    append_n(&mut l, 5, 100);
    l.commit().unwrap();
    drop(l);
    assert!(tmp.path().join("00000000000000000011.seg").exists());
    assert_records(tmp.path(), 15, 100);
}

/// Builds a one-segment ledger with `committed` records, then one more record;
/// returns the segment bytes and the offset where that last record starts.
fn segment_with_tail(committed: u64, len: usize) -> (Vec<u8>, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(tmp.path(), opts(1 << 20, false)).unwrap();
    append_n(&mut l, committed, len);
    l.commit().unwrap();
    let start = l.stats().active_segment_bytes as usize;
    append_n(&mut l, 1, len);
    l.commit().unwrap();
    drop(l);
    let bytes = fs::read(&files(tmp.path(), ".seg")[0]).unwrap();
    assert_eq!(
        start,
        HEADER_LEN + committed as usize * (RECORD_HEADER_LEN + len)
    );
    (bytes, start)
}

#[test]
fn torn_tail_at_every_offset_is_cut() {
    let (bytes, start) = segment_with_tail(10, 60);
    for cut in start..bytes.len() {
        let tmp = tempfile::tempdir().unwrap();
        let seg = tmp.path().join("00000000000000000001.seg");
        fs::write(&seg, &bytes[..cut]).unwrap();
        let reader = LedgerReader::open(tmp.path()).unwrap();
        assert_eq!(
            reader.last_seq().unwrap(),
            10,
            "reader before recovery, cut {cut}"
        );
        let mut l = Ledger::open(tmp.path(), opts(1 << 20, false)).unwrap();
        assert_eq!(
            l.recovery().truncated_bytes,
            (cut - start) as u64,
            "cut {cut}"
        );
        assert_eq!(l.recovery().last_seq, 10);
        assert_eq!(l.next_seq(), 11);
        append_n(&mut l, 2, 60);
        assert_eq!(l.commit().unwrap(), 12);
        drop(l);
        assert_records(tmp.path(), 12, 60);
    }
}

#[test]
fn garbage_and_corrupt_tails_are_cut() {
    let (bytes, start) = segment_with_tail(10, 60);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "garbage appended",
            [&bytes[..], &b"\x01\x02garbage!"[..]].concat(),
        ),
        ("zeros appended", [&bytes[..], &[0u8; 4096][..]].concat()),
        ("flipped payload byte", {
            let mut b = bytes.clone();
            let i = b.len() - 3;
            b[i] ^= 0x20;
            b
        }),
        ("huge length field", {
            let mut b = bytes.clone();
            b[start..start + 4].copy_from_slice(&u32::MAX.to_le_bytes());
            b
        }),
        ("seq not consecutive", {
            // A valid record whose seq skips ahead.
            let mut b = bytes[..start].to_vec();
            crate::format::encode_record(&mut b, 12, &payload(12, 60));
            b
        }),
    ];
    for (name, data) in cases {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("00000000000000000001.seg"), &data).unwrap();
        let mut l = Ledger::open(tmp.path(), opts(1 << 20, false)).unwrap();
        let expect_cut = data.len() as u64
            - if name.ends_with("appended") {
                bytes.len()
            } else {
                start
            } as u64;
        assert_eq!(l.recovery().truncated_bytes, expect_cut, "{name}");
        let last = l.recovery().last_seq;
        assert_eq!(
            last,
            if name.ends_with("appended") { 11 } else { 10 },
            "{name}"
        );
        append_n(&mut l, 1, 60);
        l.commit().unwrap();
        drop(l);
        assert_records(tmp.path(), last + 1, 60);
    }
}

#[test]
fn corrupt_byte_in_sealed_segment_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let mut l = Ledger::open(tmp.path(), opts(5000, false)).unwrap();
        append_n(&mut l, 30, 400);
        l.commit().unwrap();
    }
    let first = files(tmp.path(), ".seg")[0].clone();
    let mut b = fs::read(&first).unwrap();
    let rec = 3; // fourth record
    let off = HEADER_LEN + rec * (RECORD_HEADER_LEN + 400);
    b[off + RECORD_HEADER_LEN + 10] ^= 0xff;
    fs::write(&first, &b).unwrap();

    let reader = LedgerReader::open(tmp.path()).unwrap();
    let results: Vec<_> = reader.iter_range(1, u64::MAX).collect();
    assert_eq!(
        results.len(),
        4,
        "3 good records, then the error, then nothing"
    );
    match &results[3] {
        Err(LedgerError::Corrupt {
            segment, offset, ..
        }) => {
            assert_eq!(segment, &first);
            assert_eq!(*offset, off as u64);
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let msg = results[3].as_ref().unwrap_err().to_string();
    assert!(
        msg.contains("00000000000000000001.seg") && msg.contains(&off.to_string()),
        "{msg}"
    );
    // Reading past it is refused too, not silently skipped.
    let err = reader
        .for_each_range(1, u64::MAX, |_, _| ControlFlow::<()>::Continue(()))
        .unwrap_err();
    assert!(matches!(err, LedgerError::Corrupt { .. }));
    // The writer only scans the open segment, so it still opens.
    assert_eq!(
        Ledger::open(tmp.path(), opts(5000, false))
            .unwrap()
            .next_seq(),
        31
    );
}

#[test]
fn corrupt_compressed_segment_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let mut l = Ledger::open(tmp.path(), opts(20_000, true)).unwrap();
        append_n(&mut l, 200, 400);
        l.commit().unwrap();
    }
    let z = files(tmp.path(), ".seg.zst")[0].clone();
    let mut b = fs::read(&z).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x55;
    fs::write(&z, &b).unwrap();
    let err = LedgerReader::open(tmp.path())
        .unwrap()
        .iter_range(1, u64::MAX)
        .find_map(Result::err)
        .expect("an error");
    match &err {
        LedgerError::Corrupt { segment, .. } => assert_eq!(segment, &z),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn gap_between_segments_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let mut l = Ledger::open(tmp.path(), opts(5000, false)).unwrap();
        append_n(&mut l, 40, 400);
        l.commit().unwrap();
    }
    let segs = files(tmp.path(), ".seg");
    fs::remove_file(&segs[1]).unwrap();
    let err = LedgerReader::open(tmp.path())
        .unwrap()
        .iter_range(1, u64::MAX)
        .find_map(Result::err)
        .expect("an error");
    assert!(
        matches!(err, LedgerError::Corrupt { ref segment, .. } if segment == &segs[2]),
        "{err}"
    );
}

#[test]
fn lock_refuses_a_second_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let l = Ledger::open(tmp.path(), LedgerOptions::default()).unwrap();
    let err = Ledger::open(tmp.path(), LedgerOptions::default()).unwrap_err();
    assert!(matches!(err, LedgerError::Locked { .. }));
    assert!(
        err.to_string()
            .contains("data dir is in use by another Vigil process"),
        "{err}"
    );
    // Readers need no lock.
    assert_eq!(
        LedgerReader::open(tmp.path()).unwrap().last_seq().unwrap(),
        0
    );
    drop(l);
    Ledger::open(tmp.path(), LedgerOptions::default()).unwrap();
}

#[test]
fn for_each_range_lends_and_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(tmp.path(), opts(3000, true)).unwrap();
    append_n(&mut l, 50, 200);
    l.commit().unwrap();
    let r = LedgerReader::open(tmp.path()).unwrap();
    let mut seen = Vec::new();
    let flow = r
        .for_each_range(10, 40, |seq, p| {
            assert_eq!(p, &payload(seq, 200)[..]);
            seen.push(seq);
            if seq == 30 {
                ControlFlow::Break(seq)
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(flow, ControlFlow::Break(30));
    assert_eq!(seen, (10..=30).collect::<Vec<_>>());
    let mut n = 0;
    let flow = r
        .for_each_range(0, 1000, |_, _| {
            n += 1;
            ControlFlow::<()>::Continue(())
        })
        .unwrap();
    assert_eq!(flow, ControlFlow::Continue(()));
    assert_eq!(n, 50);
}

#[test]
fn reader_beside_writer_sees_a_consistent_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let mut l = Ledger::open(&dir, opts(64 * 1024, true)).unwrap();
    let durable = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let total = 20_000u64;

    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (dir, durable, stop) = (dir.clone(), durable.clone(), stop.clone());
            std::thread::spawn(move || {
                let reader = LedgerReader::open(&dir).unwrap();
                let mut passes = 0;
                while !stop.load(Ordering::Acquire) || passes == 0 {
                    let d = durable.load(Ordering::Acquire);
                    let mut next = 1;
                    let _ = reader
                        .for_each_range(1, u64::MAX, |seq, p| {
                            assert_eq!(seq, next, "gap-free prefix");
                            assert_eq!(p, &payload(seq, 120)[..]);
                            next += 1;
                            ControlFlow::<()>::Continue(())
                        })
                        .unwrap();
                    assert!(next > d, "reader saw {} < durable {d}", next - 1);
                    // Bounded by durable: exactly that many.
                    let d = durable.load(Ordering::Acquire);
                    assert_eq!(reader.iter_range(1, d).count() as u64, d);
                    passes += 1;
                }
                passes
            })
        })
        .collect();

    while l.next_seq() <= total {
        append_n(&mut l, 97, 120);
        durable.store(l.commit().unwrap(), Ordering::Release);
    }
    stop.store(true, Ordering::Release);
    for r in readers {
        assert!(r.join().unwrap() > 0);
    }
    drop(l);
    assert!(files(&dir, ".seg.zst").len() > 10);
    assert_records(&dir, (total / 97 + 1) * 97, 120);
}

#[test]
fn invalid_options_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for o in [
        LedgerOptions {
            segment_max_bytes: 0,
            ..LedgerOptions::default()
        },
        LedgerOptions {
            zstd_level: 99,
            ..LedgerOptions::default()
        },
    ] {
        let err = Ledger::open(tmp.path(), o).unwrap_err();
        assert!(matches!(err, LedgerError::InvalidOptions(_)), "{err}");
    }
}

#[derive(Debug, Clone)]
enum Op {
    Append(usize),
    Commit,
    Reopen,
    /// `kill -9` in the middle of writing the buffer: only its first `n`
    /// bytes reach the file.
    Crash(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0usize..700).prop_map(Op::Append),
        3 => Just(Op::Commit),
        1 => Just(Op::Reopen),
        1 => (0usize..2000).prop_map(Op::Crash),
    ]
}

/// Opens a writer, waiting briefly if the lock is still held: another test in
/// this process may be spawning a child, and a forked child holds copies of
/// our descriptors (and so the `flock`) until it execs.
fn open_retry(dir: &Path, o: &LedgerOptions) -> Ledger {
    for _ in 0..200 {
        match Ledger::open(dir, o.clone()) {
            Err(LedgerError::Locked { .. }) => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            other => return other.unwrap(),
        }
    }
    panic!("ledger lock still held after 2 s");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Against a model: committed records always survive, seqs stay gap-free,
    /// and the reader returns exactly the model's records.
    #[test]
    fn model_check(ops in proptest::collection::vec(op(), 1..60), compress in any::<bool>()) {
        let tmp = tempfile::tempdir().unwrap();
        let o = opts(3000, compress);
        let mut model: Vec<Vec<u8>> = Vec::new();
        let mut durable = 0usize;
        let mut l = Some(Ledger::open(tmp.path(), o.clone()).unwrap());
        for op in ops {
            match op {
                Op::Append(len) => {
                    let w = l.as_mut().unwrap();
                    let p = payload(model.len() as u64 + 1, len);
                    prop_assert_eq!(w.append(&p).unwrap(), model.len() as u64 + 1);
                    model.push(p);
                }
                Op::Commit => {
                    durable = l.as_mut().unwrap().commit().unwrap() as usize;
                    prop_assert_eq!(durable, model.len());
                }
                Op::Reopen => {
                    drop(l.take());
                    durable = model.len();
                    l = Some(open_retry(tmp.path(), &o));
                }
                Op::Crash(partial) => {
                    let w = l.take().unwrap();
                    let d = w.durable_seq() as usize;
                    w.crash_for_tests(partial);
                    let nl = open_retry(tmp.path(), &o);
                    let last = nl.recovery().last_seq as usize;
                    prop_assert!(last >= d, "lost committed records: {} < {}", last, d);
                    prop_assert!(last <= model.len());
                    model.truncate(last);
                    durable = last;
                    l = Some(nl);
                }
            }
        }
        drop(l);
        let _ = durable;
        let got: Vec<Vec<u8>> = read_all(tmp.path()).into_iter().map(|r| r.payload).collect();
        prop_assert_eq!(got, model);
    }
}

/// Rough throughput numbers; run by hand:
/// `cargo test -p vigil-ledger --release -- --ignored throughput --nocapture`
/// (`VIGIL_LEDGER_BENCH_BATCH=100` sets records per commit; default 1000).
#[test]
#[ignore]
fn throughput() {
    let tmp = tempfile::tempdir_in(".").unwrap();
    let n = 1_000_000u64;
    let batch: u64 = std::env::var("VIGIL_LEDGER_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    // Event-like payloads with pseudo-random fields, more distinct bytes than
    // zstd's window, so compression is not flattered by repetition.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let payloads: Vec<Vec<u8>> = (0..16_384)
        .map(|i| {
            let mut p = Vec::with_capacity(400);
            while p.len() < 400 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                p.extend_from_slice(
                    format!(
                        "{{\"event\":{{\"id\":\"{x:016x}\",\"n\":{i}}},\"source\":{{\"ip\":\"10.{}.{}.{}\"}},",
                        x % 256,
                        (x >> 8) % 256,
                        (x >> 16) % 256
                    )
                    .as_bytes(),
                );
            }
            p.truncate(400);
            p
        })
        .collect();
    let t = Instant::now();
    {
        let mut l = Ledger::open(tmp.path(), LedgerOptions::default()).unwrap();
        let mut worst = Duration::ZERO;
        for i in 0..n {
            l.append(&payloads[i as usize % payloads.len()]).unwrap();
            if i % batch == batch - 1 {
                l.commit().unwrap();
                worst = worst.max(l.stats().last_commit_duration);
            }
        }
        l.commit().unwrap();
        let el = t.elapsed();
        println!(
            "append+commit: {n} x 400 B in {el:?} = {:.0} rec/s, {:.1} MB/s, {} commits, worst commit {worst:?}",
            n as f64 / el.as_secs_f64(),
            (n * 416) as f64 / el.as_secs_f64() / 1e6,
            n / batch
        );
        let t2 = Instant::now();
        drop(l);
        println!("close (waits for compression): {:?}", t2.elapsed());
    }
    let reader = LedgerReader::open(tmp.path()).unwrap();
    let t = Instant::now();
    let mut count = 0u64;
    let mut bytes = 0usize;
    let _ = reader
        .for_each_range(1, u64::MAX, |_, pl| {
            count += 1;
            bytes += pl.len();
            ControlFlow::<()>::Continue(())
        })
        .unwrap();
    let el = t.elapsed();
    assert_eq!(count, n);
    println!(
        "scan (for_each_range, mostly .seg.zst): {count} in {el:?} = {:.0} rec/s",
        count as f64 / el.as_secs_f64()
    );
    let t = Instant::now();
    let mut c = 0;
    for r in reader.iter_range(1, u64::MAX) {
        c += r.unwrap().payload.len().min(1);
    }
    let el = t.elapsed();
    println!(
        "scan (iter_range, owned Records): {c} in {el:?} = {:.0} rec/s",
        c as f64 / el.as_secs_f64()
    );
    assert!(bytes > 0);
}

#[test]
fn types_cross_threads() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<Ledger>();
    send::<LedgerReader>();
    sync::<LedgerReader>();
    send::<crate::RecordIter>();
    send::<LedgerError>();
    sync::<LedgerError>();
}

/// Child side of [`kill_9_loses_nothing_acknowledged`]: writes until killed,
/// printing each durable seq after its commit returns.
#[test]
#[ignore]
fn kill9_child() {
    let Some(dir) = std::env::var_os("VIGIL_LEDGER_KILL9_DIR") else {
        return;
    };
    let mut l = Ledger::open(Path::new(&dir), opts(64 * 1024, true)).unwrap();
    let mut out = std::io::stdout().lock();
    let mut batch = 1;
    loop {
        append_n(&mut l, batch, 300);
        let d = l.commit().unwrap();
        writeln!(out, "ACK {d}").unwrap();
        out.flush().unwrap();
        batch = batch % 50 + 1;
    }
}

#[test]
fn kill_9_loses_nothing_acknowledged() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut acked = 0u64;
    for round in 0..4 {
        let mut child = Command::new(&exe)
            .args(["--ignored", "--exact", "tests::kill9_child", "--nocapture"])
            .args(["--test-threads", "1"])
            .env("VIGIL_LEDGER_KILL9_DIR", tmp.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        // Let it run for a varying number of commits, then SIGKILL it.
        let target = 50 + round * 37;
        let mut seen = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("ACK ") {
                acked = acked.max(n.trim().parse().unwrap());
                seen += 1;
                if seen == target {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL on Unix
                               // Acks printed before the kill landed still count.
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("ACK ") {
                acked = acked.max(n.trim().parse().unwrap());
            }
        }
        child.wait().unwrap();
        assert!(seen > 0, "child produced no acks");

        let l = Ledger::open(tmp.path(), opts(64 * 1024, true)).unwrap();
        let last = l.recovery().last_seq;
        eprintln!(
            "kill -9 round {round}: acked {acked}, recovered {:?}",
            l.recovery()
        );
        assert!(
            last >= acked,
            "round {round}: recovered {last} < acked {acked}"
        );
        drop(l);
        assert_records(tmp.path(), last, 300);
        acked = last;
    }
}

#[test]
fn large_uncommitted_batches_are_written_early_but_not_durable() {
    let tmp = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(tmp.path(), LedgerOptions::default()).unwrap();
    append_n(&mut l, 12_000, 400);
    let s = l.stats();
    assert!(s.buffered_bytes < 4 << 20, "buffer is bounded");
    assert!(s.active_segment_bytes > 4 << 20, "early write happened");
    assert_eq!(l.durable_seq(), 0, "written is not durable");
    assert_eq!(l.commit().unwrap(), 12_000);
    drop(l);
    assert_records(tmp.path(), 12_000, 400);
}

/// The Merkle tree survives reopen, rolls, compression and a lost frontier.
#[test]
fn merkle_tree_survives_reopen_and_rolls() {
    use crate::merkle::{leaf_hash, root_from_leaves};
    let tmp = tempfile::tempdir().unwrap();
    let o = opts(4096, true);
    let mut leaves = Vec::new();
    for round in 0..3 {
        let mut l = Ledger::open(tmp.path(), o.clone()).unwrap();
        assert_eq!(l.tree().size(), leaves.len() as u64, "round {round}");
        assert_eq!(l.tree().root(), root_from_leaves(&leaves));
        for i in 0..100 {
            let p = payload(leaves.len() as u64 + 1, 50 + i);
            l.append(&p).unwrap();
            leaves.push(leaf_hash(&p));
        }
        assert!(l.durable_root().is_none());
        l.commit().unwrap();
        assert_eq!(
            l.durable_root(),
            Some((leaves.len() as u64, root_from_leaves(&leaves)))
        );
    }
    // A lost frontier is rebuilt from the records.
    for e in fs::read_dir(tmp.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "frontier") {
            fs::remove_file(p).unwrap();
        }
    }
    let l = Ledger::open(tmp.path(), o).unwrap();
    assert_eq!(l.tree().root(), root_from_leaves(&leaves));
}

mod retention {
    use super::*;
    use crate::integrity::Notary;
    use crate::retention::{read_retention_log, RetentionPolicy};
    use crate::verify::{verify, FindingKind, VerifyOptions};
    use std::time::SystemTime;

    fn event(seq: u64) -> Vec<u8> {
        format!(r#"{{"message":"event {seq}","vigil":{{"seq":{seq}}}}}"#).into_bytes()
    }

    struct Fx {
        _tmp: tempfile::TempDir,
        dir: PathBuf,
        notary: Notary,
        vopts: VerifyOptions,
    }

    /// What `verify` needs to check a fresh notary's checkpoints and seals.
    fn verify_options(
        notary: &Notary,
        secrets: Option<crate::integrity::InitSecrets>,
    ) -> VerifyOptions {
        VerifyOptions {
            verifier: notary.verifier(),
            seal_key: Some(secrets.unwrap().initial_seal_key.to_string()),
            external: Vec::new(),
        }
    }

    /// 300 records in ~1 KiB segments, checkpoints every 50.
    fn fixture(compress: bool) -> Fx {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        let mut l = Ledger::open(&dir, opts(1024, compress)).unwrap();
        let (mut notary, secrets) = Notary::open_or_init(&tmp.path().join("keys"), &dir).unwrap();
        for seq in 1..=300 {
            l.append(&event(seq)).unwrap();
            if seq % 50 == 0 {
                l.commit().unwrap();
                let (s, r) = l.durable_root().unwrap();
                notary.checkpoint(s, r).unwrap();
            }
        }
        drop(l);
        let vopts = verify_options(&notary, secrets);
        Fx {
            _tmp: tmp,
            dir,
            notary,
            vopts,
        }
    }

    #[test]
    fn retention_takes_the_plain_segments_it_deletes_off_the_compression_queue() {
        let tmp = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(tmp.path(), opts(1024, true)).unwrap();
        l.hold_compression_for_tests(true);
        for seq in 1..=200 {
            l.append(&event(seq)).unwrap();
        }
        l.commit().unwrap();
        let sealed = crate::dir::list(tmp.path()).unwrap().segs.len() - 1;
        assert!(sealed > 6, "{sealed}");
        assert_eq!(l.stats().pending_compressions, sealed);
        let policy = RetentionPolicy {
            max_age: None,
            max_bytes: Some(4 * 1024),
        };
        let run = l
            .retain(&policy, "tester", SystemTime::now())
            .unwrap()
            .unwrap();
        let deleted = run.segments.len();
        assert!(deleted > 2 && deleted < sealed, "{deleted} of {sealed}");
        assert_eq!(l.stats().pending_compressions, sealed - deleted);
        l.hold_compression_for_tests(false);
        drop(l);
        let l = Ledger::open(tmp.path(), opts(1024, false)).unwrap();
        assert_eq!(l.stats().compressed_segments, sealed - deleted);
        drop(l);
        assert_eq!(
            read_all(tmp.path()).first().unwrap().seq,
            run.kept_first_seq
        );
    }

    /// Retention no longer waits for the compression queue to empty; it
    /// only skips a segment a thread is compressing at that moment, and
    /// takes the plain ones it deletes off the queue, so no file of a
    /// deleted range may come back as a `.seg.zst`.
    #[test]
    fn retention_runs_beside_compression_and_leaves_nothing_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ledger");
        // A low limit also puts the backlog thread to work beside the idle one.
        let o = LedgerOptions {
            max_uncompressed_bytes: 2048,
            ..opts(1024, true)
        };
        let mut l = Ledger::open(&dir, o).unwrap();
        let (mut notary, secrets) = Notary::open_or_init(&tmp.path().join("keys"), &dir).unwrap();
        let policy = RetentionPolicy {
            max_age: None,
            max_bytes: Some(6 * 1024),
        };
        let mut runs = 0;
        for seq in 1..=900 {
            l.append(&event(seq)).unwrap();
            if seq % 15 == 0 {
                l.commit().unwrap();
                let (s, r) = l.durable_root().unwrap();
                notary.checkpoint(s, r).unwrap();
                if l.retain(&policy, "tester", SystemTime::now())
                    .unwrap()
                    .is_some()
                {
                    runs += 1;
                }
            }
        }
        drop(l);
        assert!(runs > 10, "only {runs} retention runs");
        let first_kept = crate::dir::list(&dir).unwrap().segs[0].first_seq;
        assert!(first_kept > 1);
        for e in fs::read_dir(&dir).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".seg") || name.ends_with(".seg.zst") {
                let first: u64 = name[..20].parse().unwrap();
                assert!(
                    first >= first_kept,
                    "{name} outlived retention (first kept {first_kept})"
                );
            }
            assert!(!name.ends_with(".tmp"), "{name}");
        }
        let recs = read_all(&dir);
        assert_eq!(recs.first().unwrap().seq, first_kept);
        assert_eq!(recs.last().unwrap().seq, 900);
        assert_eq!(recs.len() as u64, 900 - first_kept + 1);
        let vopts = verify_options(&notary, secrets);
        let r = verify(&dir, &vopts).unwrap();
        assert!(r.ok(), "{:?}", r.findings);
    }

    fn seg_bytes(dir: &Path) -> Vec<(u64, u64)> {
        crate::dir::list(dir)
            .unwrap()
            .segs
            .iter()
            .map(|e| (e.first_seq, fs::metadata(&e.path).unwrap().len()))
            .collect()
    }

    #[test]
    fn by_size_keeps_proofs_and_verification() {
        for compress in [false, true] {
            let fx = fixture(compress);
            let before = seg_bytes(&fx.dir);
            assert!(before.len() > 6, "{before:?}");
            let total: u64 = before.iter().map(|s| s.1).sum();
            let mut l = Ledger::open(&fx.dir, opts(1024, compress)).unwrap();
            let root = l.tree().root();
            let active = crate::dir::list(&fx.dir)
                .unwrap()
                .segs
                .last()
                .unwrap()
                .first_seq;
            // Keep roughly the newest half.
            let policy = RetentionPolicy {
                max_age: None,
                max_bytes: Some(total / 2),
            };
            let plan = l
                .retention_plan(&policy, "tester", SystemTime::now())
                .unwrap()
                .unwrap();
            assert!(crate::dir::list(&fx.dir).unwrap().segs.len() == before.len());
            let run = l
                .retain(&policy, "tester", SystemTime::now())
                .unwrap()
                .unwrap();
            assert_eq!(
                (run.first_seq, run.last_seq),
                (plan.first_seq, plan.last_seq)
            );
            assert_eq!(run.first_seq, 1);
            assert_eq!(run.reason, format!("max_bytes={}", total / 2));
            assert_eq!(run.actor, "tester");
            let after = seg_bytes(&fx.dir);
            let kept: u64 = after.iter().map(|s| s.1).sum();
            assert!(kept <= total / 2, "{kept} > {}", total / 2);
            assert_eq!(after[0].0, run.kept_first_seq);
            assert_eq!(&before[before.len() - after.len()..], &after[..]);
            assert!(
                after.iter().any(|s| s.0 == active),
                "the open segment stays"
            );
            // Nothing more is due.
            assert!(l
                .retain(&policy, "tester", SystemTime::now())
                .unwrap()
                .is_none());
            drop(l);

            // Reopen: same tree; appends continue.
            let mut l = Ledger::open(&fx.dir, opts(1024, compress)).unwrap();
            assert_eq!(l.tree().root(), root);
            assert_eq!(l.next_seq(), 301);
            l.append(&event(301)).unwrap();
            l.commit().unwrap();
            drop(l);

            // Readers start at the first kept seq.
            let recs = read_all(&fx.dir);
            assert_eq!(recs.first().unwrap().seq, run.kept_first_seq);
            assert_eq!(recs.last().unwrap().seq, 301);
            assert_eq!(
                LedgerReader::open(&fx.dir).unwrap().last_seq().unwrap(),
                301
            );

            // Verification: clean, with a note.
            let r = verify(&fx.dir, &fx.vopts).unwrap();
            assert!(r.ok(), "{:?}", r.findings);
            assert!(
                r.notes.iter().any(|n| n.contains("deleted by retention")),
                "{:?}",
                r.notes
            );
            assert!(r.checkpoints_checked >= 3, "{r:?}");

            // Proofs for remaining records still work, deleted ones fail clearly.
            let key = fx.notary.verifier();
            for seq in [run.kept_first_seq, run.kept_first_seq + 1, 250, 300] {
                let p = crate::proof::prove_inclusion(&fx.dir, seq).unwrap();
                let v = crate::proof::verify_proof(&serde_json::to_vec(&p).unwrap(), &key).unwrap();
                assert_eq!(v.seq, Some(seq));
                assert!(v.payload_checked);
            }
            let e = crate::proof::prove_inclusion(&fx.dir, 1)
                .unwrap_err()
                .to_string();
            assert!(e.contains("event 1 was deleted by retention"), "{e}");
            let p = crate::proof::prove_consistency(&fx.dir, 300, None);
            assert!(p.is_ok() || fx.notary.last().unwrap().size == 300);

            // A second run chains on the first.
            let mut l = Ledger::open(&fx.dir, opts(1024, compress)).unwrap();
            let run2 = l
                .retain(
                    &RetentionPolicy {
                        max_age: None,
                        max_bytes: Some(kept / 2),
                    },
                    "tester",
                    SystemTime::now(),
                )
                .unwrap()
                .unwrap();
            assert_eq!(run2.first_seq, run.kept_first_seq);
            drop(l);
            assert_eq!(read_retention_log(&fx.dir).unwrap().len(), 2);
            let r = verify(&fx.dir, &fx.vopts).unwrap();
            assert!(r.ok(), "{:?}", r.findings);
            let p = crate::proof::prove_inclusion(&fx.dir, 290).unwrap();
            crate::proof::verify_proof(&serde_json::to_vec(&p).unwrap(), &key).unwrap();
        }
    }

    #[test]
    fn by_age_never_deletes_the_open_segment() {
        let fx = fixture(false);
        let mut l = Ledger::open(&fx.dir, opts(1024, false)).unwrap();
        let root = l.tree().root();
        let policy = RetentionPolicy {
            max_age: Some(Duration::from_secs(86_400)),
            max_bytes: None,
        };
        // Nothing is a day old yet.
        assert!(l
            .retain(&policy, "retention", SystemTime::now())
            .unwrap()
            .is_none());
        let later = SystemTime::now() + Duration::from_secs(3 * 86_400);
        let run = l.retain(&policy, "retention", later).unwrap().unwrap();
        assert_eq!(run.reason, "max_age_days=1");
        let segs = crate::dir::list(&fx.dir).unwrap().segs;
        assert_eq!(segs.len(), 1, "only the open segment is left");
        assert_eq!(segs[0].first_seq, run.kept_first_seq);
        assert_eq!(l.next_seq(), 301);
        drop(l);
        let l = Ledger::open(&fx.dir, opts(1024, false)).unwrap();
        assert_eq!(l.tree().root(), root);
        drop(l);
        let r = verify(&fx.dir, &fx.vopts).unwrap();
        assert!(r.ok(), "{:?}", r.findings);
    }

    #[test]
    fn removing_segments_by_hand_is_still_missing() {
        let fx = fixture(false);
        let segs = crate::dir::list(&fx.dir).unwrap().segs;
        fs::remove_file(&segs[0].path).unwrap();
        let r = verify(&fx.dir, &fx.vopts).unwrap();
        assert!(
            r.findings.iter().any(|f| f.kind == FindingKind::Missing
                && f.first_seq == Some(1)
                && f.last_seq == Some(segs[1].first_seq - 1)),
            "{:?}",
            r.findings
        );
        // A forged retention log that does not match is no excuse either.
        let fx = fixture(false);
        let mut l = Ledger::open(&fx.dir, opts(1024, false)).unwrap();
        let segs = crate::dir::list(&fx.dir).unwrap().segs;
        l.retain(
            &RetentionPolicy {
                max_age: None,
                max_bytes: Some(1),
            },
            "x",
            SystemTime::now(),
        )
        .unwrap()
        .unwrap();
        drop(l);
        let log = fx.dir.join(crate::retention::RETENTION_LOG);
        fs::write(&log, "").unwrap();
        let r = verify(&fx.dir, &fx.vopts).unwrap();
        assert!(
            r.findings
                .iter()
                .any(|f| f.kind == FindingKind::Missing && f.first_seq == Some(1)),
            "{:?} {segs:?}",
            r.findings
        );
    }

    #[test]
    fn altered_frontier_is_refused_or_detected() {
        let fx = fixture(false);
        let segs = crate::dir::list(&fx.dir).unwrap().segs;
        let kept = segs[2].first_seq;
        let f = fx.dir.join(format!("{kept:020}.frontier"));
        let mut b = fs::read(&f).unwrap();
        let n = b.len();
        b[n - 1] ^= 1;
        fs::write(&f, &b).unwrap();
        let mut l = Ledger::open(&fx.dir, opts(1024, false)).unwrap();
        let sizes = seg_bytes(&fx.dir);
        let total: u64 = sizes.iter().map(|s| s.1).sum();
        let e = l
            .retain(
                &RetentionPolicy {
                    max_age: None,
                    max_bytes: Some(total - sizes[0].1 - sizes[1].1),
                },
                "x",
                SystemTime::now(),
            )
            .unwrap_err();
        assert!(matches!(e, LedgerError::Corrupt { .. }), "{e}");
        assert_eq!(crate::dir::list(&fx.dir).unwrap().segs.len(), segs.len());
    }
}

#[test]
fn compressed_segments_are_seekable_and_still_plain_zstd() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let mut l = Ledger::open(tmp.path(), opts(1 << 30, false)).unwrap();
        append_n(&mut l, 2000, 200);
        l.commit().unwrap();
    }
    let seg = files(tmp.path(), ".seg").remove(0);
    let original = fs::read(&seg).unwrap();
    crate::compress::compress_segment_framed(tmp.path(), &seg, 3, SMALL_FRAMES, false, &mut || {
        false
    })
    .unwrap();
    let zst = files(tmp.path(), ".seg.zst").remove(0);

    // Any zstd reader sees the segment (the table frame is skippable), with
    // the header's version 2 and every record's checksum zeroed.
    let plain = zstd::decode_all(fs::File::open(&zst).unwrap()).unwrap();
    assert_eq!(plain.len(), original.len());
    let mut expected = original.clone();
    let h = crate::format::SegmentHeader::decode(&original).unwrap();
    assert!(!h.crc_elided);
    expected[..crate::format::HEADER_LEN].copy_from_slice(
        &crate::format::SegmentHeader {
            crc_elided: true,
            ..h
        }
        .encode(),
    );
    let mut at = crate::format::HEADER_LEN;
    let mut records = 0;
    while at < expected.len() {
        let len = crate::format::le_u32(&expected[at..]) as usize;
        assert_ne!(crate::format::le_u32(&expected[at + 4..]), 0);
        expected[at + 4..at + 8].fill(0);
        at += crate::format::RECORD_HEADER_LEN + len;
        records += 1;
    }
    assert_eq!(records, 2000);
    assert_eq!(plain, expected);

    let table = crate::seek::read_table(&mut fs::File::open(&zst).unwrap()).unwrap();
    assert!(table.len() > 50, "{} frames", table.len());
    assert_eq!(table[0].first_seq, 1);
    for e in &table[1..] {
        // Each frame starts at a record boundary: the record there is e.first_seq.
        let at = e.raw_offset as usize;
        match crate::format::decode_record(&original[at..], e.first_seq, false) {
            crate::format::Decoded::Record { seq, .. } => assert_eq!(seq, e.first_seq),
            other => panic!("frame at {at} is not a record boundary: {other:?}"),
        }
    }

    let reader = LedgerReader::open(tmp.path()).unwrap();
    for (from, to) in [
        (1, 3),
        (777, 790),
        (1999, 2000),
        (table[5].first_seq, table[5].first_seq),
    ] {
        let got: Vec<Record> = reader
            .iter_range(from, to)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(got.len() as u64, to - from + 1, "{from}..={to}");
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r.seq, from + i as u64);
            assert_eq!(r.payload, payload(r.seq, 200));
        }
    }
    assert_records(tmp.path(), 2000, 200);

    // A damaged table is ignored: reads start at the top and stay correct.
    let mut bytes = fs::read(&zst).unwrap();
    let n = bytes.len();
    bytes[n - 20] ^= 0xff;
    fs::write(&zst, &bytes).unwrap();
    assert!(crate::seek::read_table(&mut fs::File::open(&zst).unwrap()).is_none());
    let got: Vec<Record> = reader
        .iter_range(1500, 1502)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        got.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![1500, 1501, 1502]
    );
    assert_eq!(got[0].payload, payload(1500, 200));
}

#[test]
fn a_record_damaged_before_compression_keeps_its_checksum_and_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let mut l = Ledger::open(tmp.path(), opts(1 << 30, false)).unwrap();
        append_n(&mut l, 300, 200);
        l.commit().unwrap();
    }
    let seg = files(tmp.path(), ".seg").remove(0);
    let mut bytes = fs::read(&seg).unwrap();
    // Record 151's payload: header, then 150 records of 16 + 200 bytes.
    let at = crate::format::HEADER_LEN + 150 * 216 + 16 + 100;
    bytes[at] ^= 0x20;
    fs::write(&seg, &bytes).unwrap();
    crate::compress::compress_segment_framed(tmp.path(), &seg, 3, SMALL_FRAMES, false, &mut || {
        false
    })
    .unwrap();

    let reader = LedgerReader::open(tmp.path()).unwrap();
    let mut seen = 0;
    let mut err = None;
    for r in reader.iter_range(1, 300) {
        match r {
            Ok(_) => seen += 1,
            Err(e) => {
                err = Some(e.to_string());
                break;
            }
        }
    }
    assert_eq!(seen, 150);
    let err = err.expect("the damaged record is an error");
    assert!(
        err.contains("checksum mismatch in record claiming seq 151"),
        "{err}"
    );
}

/// Frames of about 4 KiB cut at any record, for tests with small segments.
const SMALL_FRAMES: crate::seek::Frames = crate::seek::Frames {
    min_bytes: 4096,
    align: 1,
    max_bytes: 1 << 20,
};

/// The first seqs of the frames of a 3,000-record segment (216 bytes a
/// record) compressed with `frames`; checks every record reads back.
fn frame_starts(frames: crate::seek::Frames) -> Vec<u64> {
    let tmp = tempfile::tempdir().unwrap();
    {
        let mut l = Ledger::open(tmp.path(), opts(1 << 30, false)).unwrap();
        append_n(&mut l, 3000, 200);
        l.commit().unwrap();
    }
    let seg = files(tmp.path(), ".seg").remove(0);
    crate::compress::compress_segment_framed(tmp.path(), &seg, 3, frames, false, &mut || false)
        .unwrap();
    let zst = files(tmp.path(), ".seg.zst").remove(0);
    let table = crate::seek::read_table(&mut fs::File::open(&zst).unwrap()).unwrap();
    assert_records(tmp.path(), 3000, 200);
    table.iter().map(|e| e.first_seq).collect()
}

#[test]
fn frames_start_at_aligned_seqs_once_big_enough() {
    // 16 KiB is 76 records, so each frame must run on to the next multiple
    // of 100 past that, unless it reaches 40 KiB.
    let starts = frame_starts(crate::seek::Frames {
        min_bytes: 16 << 10,
        align: 100,
        max_bytes: 40 << 10,
    });
    assert_eq!(starts[..4], [1, 101, 201, 301]);
    assert!(starts[1..].iter().all(|s| (s - 1) % 100 == 0), "{starts:?}");

    // Without an aligned seq in reach, the largest frame is cut anywhere:
    // 40 KiB is 190 records (the 40-byte header included).
    let starts = frame_starts(crate::seek::Frames {
        min_bytes: 16 << 10,
        align: 1000,
        max_bytes: 40 << 10,
    });
    assert_eq!(starts[..3], [1, 191, 381]);
}

#[test]
fn a_provisional_file_is_refined_to_the_same_bytes_and_frames() {
    use crate::compress::{compress_segment_framed, refine_segment};
    use crate::seek::{is_provisional, read_table};
    let tmp = tempfile::tempdir().unwrap();
    {
        let mut l = Ledger::open(tmp.path(), opts(1 << 30, false)).unwrap();
        append_n(&mut l, 2000, 200);
        l.commit().unwrap();
    }
    let seg = files(tmp.path(), ".seg").remove(0);
    compress_segment_framed(tmp.path(), &seg, 1, SMALL_FRAMES, true, &mut || false).unwrap();
    let zst = files(tmp.path(), ".seg.zst").remove(0);
    let open = || fs::File::open(&zst).unwrap();
    assert!(is_provisional(&mut open()));
    let plain = zstd::decode_all(open()).unwrap();
    let table = read_table(&mut open()).expect("a provisional file is seekable");
    let before = fs::metadata(&zst).unwrap().len();

    // Damage stops the run and leaves the file as it was.
    let good = fs::read(&zst).unwrap();
    let mut bad = good.clone();
    bad[good.len() / 3] ^= 0x55;
    fs::write(&zst, &bad).unwrap();
    assert!(refine_segment(tmp.path(), &zst, 19, SMALL_FRAMES, &mut || false).is_err());
    assert_eq!(fs::read(&zst).unwrap(), bad);
    assert!(files(tmp.path(), ".tmp").is_empty());
    fs::write(&zst, &good).unwrap();

    assert!(refine_segment(tmp.path(), &zst, 19, SMALL_FRAMES, &mut || false).unwrap());
    assert!(!is_provisional(&mut open()));
    assert_eq!(zstd::decode_all(open()).unwrap(), plain);
    let refined = read_table(&mut open()).unwrap();
    let starts = |t: &[crate::seek::SeekEntry]| {
        t.iter()
            .map(|e| (e.first_seq, e.raw_offset))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        starts(&refined),
        starts(&table),
        "frames start where they did"
    );
    let after = fs::metadata(&zst).unwrap().len();
    assert!(
        after < before,
        "level 19 ({after}) against level 1 ({before})"
    );
    assert_records(tmp.path(), 2000, 200);
    // Nothing left to do on a final file, or on one retention deleted.
    assert!(!refine_segment(tmp.path(), &zst, 19, SMALL_FRAMES, &mut || false).unwrap());
    assert!(files(tmp.path(), ".tmp").is_empty());
    fs::remove_file(&zst).unwrap();
    assert!(!refine_segment(tmp.path(), &zst, 19, SMALL_FRAMES, &mut || false).unwrap());
}

#[test]
fn provisional_files_left_by_an_earlier_run_are_refined_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let mut l = Ledger::open(tmp.path(), opts(5000, false)).unwrap();
        append_n(&mut l, 60, 400);
        l.commit().unwrap();
    }
    let mut segs = files(tmp.path(), ".seg");
    segs.pop(); // the open one
    for seg in &segs {
        crate::compress::compress_segment_framed(
            tmp.path(),
            seg,
            1,
            crate::seek::FRAMES,
            true,
            &mut || false,
        )
        .unwrap();
    }
    let zsts = files(tmp.path(), ".seg.zst");
    assert_eq!(zsts.len(), segs.len());
    let l = Ledger::open(tmp.path(), opts(5000, true)).unwrap();
    // The idle thread waits for half a core to spare; a loaded test
    // machine only slows it down.
    let deadline = Instant::now() + Duration::from_secs(120);
    while l.stats().refined_segments < zsts.len() as u64 {
        assert!(Instant::now() < deadline, "{:?} after 120 s", l.stats());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(l.stats().provisional_segments, 0);
    drop(l);
    for z in &zsts {
        assert!(
            !crate::seek::is_provisional(&mut fs::File::open(z).unwrap()),
            "{}",
            z.display()
        );
    }
    assert_records(tmp.path(), 60, 400);
}
