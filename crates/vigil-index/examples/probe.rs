use std::time::Instant;
use vigil_index::{Index, IndexOptions, Need};
fn main() {
    let d = std::path::PathBuf::from(std::env::args().nth(1).unwrap());
    let _ = std::fs::remove_dir_all(d.join("index"));
    let (mut idx, _) = Index::open(
        &d.join("index"),
        IndexOptions {
            block_size: 4096,
            blocks_per_chunk: 8,
        },
    )
    .unwrap();
    let last = vigil_ledger::LedgerReader::open(&d.join("ledger"))
        .unwrap()
        .last_seq()
        .unwrap();
    let t = Instant::now();
    let r = idx.build(&d.join("ledger"), last).unwrap();
    let el = t.elapsed();
    let bytes: u64 = std::fs::read_dir(d.join("index"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    println!(
        "built {} chunks {} events in {:?} ({:.0} ev/s), {} bytes on disk, mem {}",
        r.chunks,
        r.events,
        el,
        r.events as f64 / el.as_secs_f64(),
        bytes,
        idx.memory_bytes()
    );
    for q in std::env::args().skip(2) {
        let query = vigil_query::parse(&q).unwrap();
        let t = Instant::now();
        let c = idx.candidates(&Need::of(&query.root), None, None, 1, last);
        println!(
            "{q:?}: {} ranges, {} seqs of {last}, {} of {} blocks skipped, {:?}",
            c.ranges.len(),
            c.seqs(),
            c.skipped,
            c.blocks,
            t.elapsed()
        );
    }
}
