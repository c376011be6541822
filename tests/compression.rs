//! Ledger compression seen from outside: a running server compresses every
//! sealed segment, publishes its figures in `/metrics`, and once idle leaves
//! no provisional (fast-compressed) segment behind.

mod common;

use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{metric_value as metric, Server, TOKEN};

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// The last eight bytes of a compressed segment: its seek table's magic.
fn seek_magic(path: &Path) -> [u8; 8] {
    let mut f = std::fs::File::open(path).unwrap();
    f.seek(SeekFrom::End(-8)).unwrap();
    let mut m = [0u8; 8];
    f.read_exact(&mut m).unwrap();
    m
}

#[test]
fn sealed_segments_end_compressed_at_the_configured_level() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("vigil.toml");
    // Tiny segments, and no room for plain ones: the normal-priority thread
    // compresses whatever the idle one has not taken yet, at level 1.
    std::fs::write(
        &cfg,
        "[ledger]\nsegment_max_bytes = 65536\nmax_uncompressed_bytes = 1\n",
    )
    .unwrap();
    let server = Server::start_with(&data, Some(TOKEN), &["--config", cfg.to_str().unwrap()]);
    const EVENTS: u64 = 6000;
    let mut tcp = TcpStream::connect(server.tcp).unwrap();
    let mut burst = Vec::new();
    for i in 0..EVENTS {
        let m = format!(
            "<38>Mar  1 10:{:02}:{:02} host{} sshd[{}]: Failed password for user{} from 198.51.100.{} port {} ssh2 {}",
            i / 60 % 60,
            i % 60,
            i % 9,
            1000 + i,
            i % 17,
            i % 250,
            30000 + i,
            "x".repeat(60 + (i % 40) as usize)
        );
        write!(burst, "{} {}", m.len(), m).unwrap();
    }
    tcp.write_all(&burst).unwrap();
    drop(tcp);
    let v = server.wait_for("process.name:sshd", EVENTS);
    assert_eq!(v["total"].as_u64(), Some(EVENTS), "not all stored");

    // The figures are published every few seconds; wait until nothing is
    // left to compress or refine.
    let deadline = Instant::now() + Duration::from_secs(120);
    let text = loop {
        let text = server.metrics();
        let get = |n| metric(&text, n).unwrap_or_else(|| panic!("no {n} in\n{text}"));
        let segments = get("vigil_ledger_segments");
        let done = segments > 5.0
            && get("vigil_ledger_segments_compressed") == segments - 1.0
            && get("vigil_ledger_compression_pending") == 0.0
            && get("vigil_ledger_segments_provisional") == 0.0;
        if done {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "compression never settled:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let get = |n| metric(&text, n).unwrap();
    // With no room for plain segments nearly all of the ~100 are compressed
    // fast (the idle thread wins only the odd race), and every one of them
    // was compressed again.
    assert!(get("vigil_ledger_compressions_fast_total") > 0.0, "{text}");
    assert_eq!(
        get("vigil_ledger_refinements_total"),
        get("vigil_ledger_compressions_fast_total"),
        "{text}"
    );
    assert_eq!(get("vigil_ledger_compression_errors_total"), 0.0);
    assert!(get("vigil_ledger_bytes") > 0.0);

    // The files agree (looked at until they do: the server's own events may
    // seal one more segment after the figures above were taken).
    let ledger = data.join("ledger");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let zst = files(&ledger, ".seg.zst");
        let provisional: Vec<_> = zst
            .iter()
            .filter(|z| &seek_magic(z) != b"VGLSEEK1")
            .collect();
        let plain = files(&ledger, ".seg");
        let settled = zst.len() >= 5 && provisional.is_empty() && plain.len() == 1;
        if settled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not final: {provisional:?}; plain: {plain:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(files(&ledger, ".tmp").is_empty());
    // And every event still reads back.
    let v = server.search("process.name:sshd AND user.name:user3", 1);
    assert_eq!(v["total"].as_u64(), Some(EVENTS / 17 + 1), "{v:#}");
}
