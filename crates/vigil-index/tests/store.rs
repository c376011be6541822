//! Building from a real ledger, and what happens to damaged files.

use std::path::Path;

use vigil_index::{Index, IndexOptions, Need};
use vigil_ledger::{Ledger, LedgerOptions};

const OPTS: IndexOptions = IndexOptions {
    block_size: 4,
    blocks_per_chunk: 2,
};

fn ledger_with(dir: &Path, n: u64) -> u64 {
    let mut ledger = Ledger::open(&dir.join("ledger"), LedgerOptions::default()).unwrap();
    for i in 1..=n {
        let user = if i == 13 { "mallory" } else { "alice" };
        let line = format!(
            r#"{{"@timestamp":"2024-03-01T00:{:02}:00Z","user":{{"name":"{user}"}},"n":{i}}}"#,
            i % 60
        );
        ledger.append(line.as_bytes()).unwrap();
    }
    ledger.commit().unwrap()
}

fn need(q: &str) -> Need {
    Need::of(&vigil_query::parse(q).unwrap().root)
}

#[test]
fn only_complete_chunks_are_built_and_the_tail_is_always_read() {
    let data = tempfile::tempdir().unwrap();
    let durable = ledger_with(data.path(), 21);
    let (mut index, report) = Index::open(&data.path().join("index"), OPTS).unwrap();
    assert_eq!(report.loaded, 0);
    let built = index.build(&data.path().join("ledger"), durable).unwrap();
    assert_eq!((built.chunks, built.events), (2, 16));
    assert_eq!(index.covered(), 16);

    let c = index.candidates(&need("user.name:mallory"), None, None, 1, durable);
    // Block 13..=16 holds mallory; 17..=21 is not indexed yet, so it is read.
    assert_eq!(c.ranges, vec![(13, 21)]);
    assert_eq!((c.blocks, c.skipped), (4, 3));

    let c = index.candidates(&need("nobody"), None, None, 1, durable);
    assert_eq!(c.ranges, vec![(17, 21)]);

    // Time: minute 14 and later only holds blocks from seq 13 on.
    let t = chrono::DateTime::parse_from_rfc3339("2024-03-01T00:14:00Z").unwrap();
    let c = index.candidates(&Need::Any, Some(t.timestamp_millis()), None, 1, durable);
    assert_eq!(c.ranges, vec![(13, 21)]);

    // A range starting inside a block is clipped to it.
    let c = index.candidates(&Need::Any, None, None, 6, 10);
    assert_eq!(c.ranges, vec![(6, 10)]);
    assert_eq!(c.seqs(), 5);

    // Retention removed seqs 1..=9: the first chunk is emptied, the second kept.
    assert_eq!(index.forget_below(10).unwrap(), 1);
    assert_eq!(index.forget_below(10).unwrap(), 0);
    let c = index.candidates(&Need::Any, None, None, 1, durable);
    assert_eq!(c.ranges, vec![(9, 21)]);

    // Reopening reads the files back.
    let (again, report) = Index::open(&data.path().join("index"), OPTS).unwrap();
    assert_eq!(report.loaded, 2);
    assert_eq!(again.covered(), 16);
}

#[test]
fn a_damaged_or_foreign_file_is_discarded_and_rebuilt() {
    let data = tempfile::tempdir().unwrap();
    let durable = ledger_with(data.path(), 16);
    let dir = data.path().join("index");
    let (mut index, _) = Index::open(&dir, OPTS).unwrap();
    index.build(&data.path().join("ledger"), durable).unwrap();

    let file = dir.join(format!("{:020}.vidx", 9));
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[30] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    std::fs::write(dir.join(format!("{:020}.vidx.tmp", 17)), b"half").unwrap();

    let (mut index, report) = Index::open(&dir, OPTS).unwrap();
    assert_eq!(report.loaded, 1);
    assert_eq!(report.discarded.len(), 1);
    assert!(report.discarded[0].1.contains("checksum"), "{report:?}");
    assert!(!file.exists());
    assert_eq!(index.covered(), 8);
    // Until rebuilt, the damaged chunk's seqs are read in full.
    let c = index.candidates(&need("nobody"), None, None, 1, durable);
    assert_eq!(c.ranges, vec![(9, 16)]);
    assert_eq!(
        index
            .build(&data.path().join("ledger"), durable)
            .unwrap()
            .chunks,
        1
    );
    assert!(index
        .candidates(&need("nobody"), None, None, 1, durable)
        .ranges
        .is_empty());

    // Files built with another layout are not trusted either.
    let other = IndexOptions {
        block_size: 8,
        blocks_per_chunk: 1,
    };
    let (_, report) = Index::open(&dir, other).unwrap();
    assert_eq!(report.discarded.len(), 2);
    assert!(report.discarded[0].1.contains("layout"));
}

#[test]
fn options_are_checked() {
    let data = tempfile::tempdir().unwrap();
    let bad = IndexOptions {
        block_size: 0,
        blocks_per_chunk: 1,
    };
    assert!(Index::open(data.path(), bad).is_err());
}

#[test]
fn chunks_built_in_parallel_equal_those_built_one_at_a_time() {
    let data = tempfile::tempdir().unwrap();
    let durable = ledger_with(data.path(), 61);
    let ledger = data.path().join("ledger");
    let firsts: Vec<u64> = (0..7).map(|k| k * 8 + 1).collect();
    let collect = |threads: usize| {
        let mut out = Vec::new();
        vigil_index::build_chunks(&ledger, OPTS, &firsts, threads, |first, built, report| {
            out.push((
                first,
                built.chunk.encode(),
                built.column_file().to_vec(),
                report.events,
            ));
            Ok(())
        })
        .unwrap();
        out
    };
    let one = collect(1);
    assert_eq!(
        one.iter().map(|c| c.0).collect::<Vec<_>>(),
        firsts,
        "in the order asked"
    );
    assert!(one.iter().all(|c| c.3 == 8));
    // Three at a time (a group of one at the end): the same files.
    assert_eq!(collect(3), one);
    // And the whole index built through `Index::build` (the machine's
    // threads) answers like before.
    let (mut index, _) = Index::open(&data.path().join("index"), OPTS).unwrap();
    let built = index.build(&ledger, durable).unwrap();
    assert_eq!((built.chunks, built.events), (7, 56));
    let c = index.candidates(&need("user.name:mallory"), None, None, 1, durable);
    assert_eq!(c.ranges, vec![(13, 16), (57, 61)]);
}

#[test]
fn a_free_text_address_prunes_blocks_and_finds_it_inside_a_message() {
    let data = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(&data.path().join("ledger"), LedgerOptions::default()).unwrap();
    // Eight blocks of addresses in 192.0.2.0/24, all holding every trigram
    // of the needle; the needle itself only in block 6 (seqs 21..=24),
    // inside a message, not in any address field.
    for i in 1..=32u64 {
        let line = if i == 22 {
            r#"{"message":"accepted from 192.0.2.181 port 22","source":{"ip":"192.0.2.18"}}"#
                .to_string()
        } else {
            // Every trigram of the needle, and addresses, but never it.
            format!(
                r#"{{"message":"seen {i}","source":{{"ip":"192.0.2.{}"}},"n":"181 x.18 192.0.2.1"}}"#,
                i % 19 * 10 + 2,
            )
        };
        ledger.append(line.as_bytes()).unwrap();
    }
    let durable = ledger.commit().unwrap();
    let (mut index, _) = Index::open(&data.path().join("index"), OPTS).unwrap();
    index.build(&data.path().join("ledger"), durable).unwrap();
    let c = index.candidates(&need("192.0.2.181"), None, None, 1, durable);
    assert_eq!(c.ranges, vec![(21, 24)], "only the block holding it");
    // A prefix with a wildcard keeps every block that may hold it.
    let wide = index.candidates(&need("192.0.2.1*"), None, None, 1, durable);
    assert!(wide.ranges.iter().map(|r| r.1 - r.0 + 1).sum::<u64>() > 4);
    // The scan of those blocks and a full scan agree: exactly one event.
    let q = vigil_query::parse("192.0.2.181").unwrap();
    let ledger_dir = data.path().join("ledger");
    for ranges in [Some(c.ranges.clone()), None] {
        let params = vigil_query::exec::SearchParams {
            ranges,
            ..Default::default()
        };
        let r = vigil_query::exec::search(&ledger_dir, &q, &params).unwrap();
        assert_eq!(r.total, 1);
    }
}
