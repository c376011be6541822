//! Column files: what is written reads back, and damaged, old or foreign
//! files are never trusted.

use std::path::Path;

use serde_json::{json, Value};
use vigil_index::columns::{read_block, read_dir, ColumnBuilder, COLUMN_FIELDS, MAX_VALUE_BYTES};
use vigil_index::{Index, IndexOptions};
use vigil_ledger::{Ledger, LedgerOptions};
use vigil_query::exec::{run, SearchParams};

fn col(name: &str) -> usize {
    COLUMN_FIELDS.iter().position(|c| *c == name).unwrap()
}

#[test]
fn columns_round_trip() {
    let events = [
        json!({"@timestamp": "2024-03-01T00:00:10.250Z", "event": {"outcome": "failure"}, "source": {"ip": "10.0.0.1"}}),
        json!({"@timestamp": "2024-03-01T00:00:00Z", "event": {"outcome": "success"}, "user": {"name": ["a", "b"]}}),
        json!({"event": {"outcome": 7}, "source": {"ip": "x".repeat(MAX_VALUE_BYTES)}}),
        json!({"@timestamp": "2024-03-01T00:01:00.5Z", "event": {"outcome": "failure"}, "source": [{"ip": "10.0.0.2"}]}),
    ];
    let mut b = ColumnBuilder::new(1, 4);
    // Seq 2 stays empty; 9..=12 is a second block, with one event.
    let seqs = [1u64, 3, 4, 9];
    for (seq, ev) in seqs.iter().zip(&events) {
        b.push_bytes(*seq, ev.to_string().as_bytes());
    }
    b.push_bytes(10, b"not json");
    let (bytes, dir) = b.finish(3);
    let data = tempfile::tempdir().unwrap();
    let path = data.path().join("cols.vcol");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(read_dir(&path).unwrap(), dir);

    assert_eq!(dir.blocks.len(), 3);
    assert_eq!(dir.blocks[0].events, 3);
    assert_eq!(dir.blocks[1].events, 0);
    assert_eq!(dir.blocks[2].events, 1);
    // Exact times (seconds, nanoseconds) of the earliest and latest events.
    assert_eq!(
        dir.blocks[0].span,
        Some(((1709251200, 0), (1709251210, 250_000_000)))
    );
    let (outcome, ip, user) = (col("event.outcome"), col("source.ip"), col("user.name"));
    let mask = dir.blocks[0].mask;
    assert!(mask & (1 << outcome) != 0 && mask & (1 << user) != 0);
    // A value over the length limit drops the field's column in the block.
    assert_eq!(mask & (1 << ip), 0);
    // `source` as an array of objects: the filter reaches `source.ip`,
    // `Event::get` does not, so the block has no `source.ip` column.
    assert_eq!(dir.blocks[2].mask & (1 << ip), 0);
    assert!(dir.blocks[2].mask & (1 << outcome) != 0);

    let mut f = std::fs::File::open(&path).unwrap();
    let c = read_block(&mut f, 1, 4, &dir.blocks[0], &[outcome, user, ip]).unwrap();
    // 0: no event; 1: no time; 2 + seconds after the earliest.
    assert_eq!(c.times, vec![12, 0, 2, 1]);
    assert_eq!(c.base_secs, 1709251200);
    let o = c.fields[0].as_ref().unwrap();
    let dict: Vec<Value> = o
        .dict
        .iter()
        .map(|d| serde_json::from_slice(d).unwrap())
        .collect();
    assert_eq!(dict, vec![json!("failure"), json!("success"), json!(7)]);
    assert_eq!(o.codes, vec![1, 0, 2, 3]);
    let u = c.fields[1].as_ref().unwrap();
    assert_eq!(u.dict, vec![br#"["a","b"]"#.to_vec()]);
    assert_eq!(u.codes, vec![0, 0, 1, 0]);
    assert!(c.fields[2].is_none());

    // A payload that does not check out is refused, never decoded.
    let mut bad = bytes.clone();
    let at = dir.blocks[0].offset as usize + 12;
    bad[at] ^= 0x40;
    std::fs::write(&path, &bad).unwrap();
    let mut f = std::fs::File::open(&path).unwrap();
    assert!(read_block(&mut f, 1, 4, &dir.blocks[0], &[outcome]).is_err());
    // Nor is a block read under another block's seq.
    std::fs::write(&path, &bytes).unwrap();
    let mut f = std::fs::File::open(&path).unwrap();
    assert!(read_block(&mut f, 5, 4, &dir.blocks[0], &[outcome]).is_err());
}

const OPTS: IndexOptions = IndexOptions {
    block_size: 4,
    blocks_per_chunk: 2,
};

fn ledger_with(dir: &Path, n: u64) -> u64 {
    let mut ledger = Ledger::open(&dir.join("ledger"), LedgerOptions::default()).unwrap();
    for i in 1..=n {
        let outcome = ["success", "failure", "unknown"][i as usize % 3];
        let line = format!(
            r#"{{"@timestamp":"2024-03-01T00:{:02}:00Z","event":{{"outcome":"{outcome}"}},"n":{i}}}"#,
            i % 60
        );
        ledger.append(line.as_bytes()).unwrap();
    }
    ledger.commit().unwrap()
}

fn col_file(dir: &Path, first: u64) -> std::path::PathBuf {
    dir.join(format!("{first:020}.vcol"))
}

#[test]
fn damaged_old_or_foreign_column_files_are_rebuilt() {
    let data = tempfile::tempdir().unwrap();
    let durable = ledger_with(data.path(), 16);
    let ledger = data.path().join("ledger");
    let dir = data.path().join("index");
    let (mut index, _) = Index::open(&dir, OPTS).unwrap();
    assert_eq!(index.build(&ledger, durable).unwrap().chunks, 2);
    assert!(col_file(&dir, 1).exists() && col_file(&dir, 9).exists());

    // An index written before columns existed: filters without columns.
    std::fs::remove_file(col_file(&dir, 1)).unwrap();
    // A damaged directory.
    let mut bytes = std::fs::read(col_file(&dir, 9)).unwrap();
    bytes[40] ^= 0xff;
    std::fs::write(col_file(&dir, 9), &bytes).unwrap();
    let (mut index, report) = Index::open(&dir, OPTS).unwrap();
    assert_eq!(report.loaded, 0, "{report:?}");
    assert_eq!(report.discarded.len(), 2);
    assert!(report
        .discarded
        .iter()
        .all(|(_, why)| why.starts_with("columns")));
    assert!(!dir.join(format!("{:020}.vidx", 1)).exists());
    assert_eq!(index.covered(), 0);
    assert_eq!(index.build(&ledger, durable).unwrap().chunks, 2);

    // Another format version, with a valid checksum: still not trusted.
    let mut bytes = std::fs::read(col_file(&dir, 1)).unwrap();
    let dir_end = read_dir(&col_file(&dir, 1))
        .unwrap()
        .blocks
        .iter()
        .map(|b| b.offset)
        .filter(|o| *o > 0)
        .min()
        .unwrap() as usize;
    bytes[8..12].copy_from_slice(&99u32.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[..dir_end - 4]);
    bytes[dir_end - 4..dir_end].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(col_file(&dir, 1), &bytes).unwrap();
    let (_, report) = Index::open(&dir, OPTS).unwrap();
    assert_eq!(report.discarded.len(), 1);
    assert!(report.discarded[0].1.contains("version 99"), "{report:?}");
}

#[test]
fn a_damaged_block_is_read_instead() {
    let data = tempfile::tempdir().unwrap();
    let durable = ledger_with(data.path(), 16);
    let ledger = data.path().join("ledger");
    let dir = data.path().join("index");
    let (mut index, _) = Index::open(&dir, OPTS).unwrap();
    index.build(&ledger, durable).unwrap();
    let s = vigil_query::parse_search("* | stats count() by event.outcome").unwrap();
    let params = SearchParams {
        up_to_seq: Some(durable),
        ..SearchParams::default()
    };
    let full = run(&ledger, &s, &params).unwrap();
    let r = vigil_index::run_prepared(
        &ledger,
        &s,
        &params,
        index.prepare(&s, None, None, 1, durable),
    )
    .unwrap();
    assert_eq!((r.from_columns, r.scanned), (16, 0));
    assert_eq!(r.table, full.table);

    // Damage one block's payload after the index was opened: the
    // directory still checks out, the block's own checksum does not.
    let cols = read_dir(&col_file(&dir, 9)).unwrap();
    let mut bytes = std::fs::read(col_file(&dir, 9)).unwrap();
    bytes[cols.blocks[1].offset as usize + 20] ^= 0x01;
    std::fs::write(col_file(&dir, 9), &bytes).unwrap();
    let r = vigil_index::run_prepared(
        &ledger,
        &s,
        &params,
        index.prepare(&s, None, None, 1, durable),
    )
    .unwrap();
    assert_eq!((r.from_columns, r.scanned), (12, 4));
    assert_eq!(r.table, full.table);
}
