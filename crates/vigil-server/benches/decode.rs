//! The decode path alone, a less noisy A/B tool than `vigil bench ingest`:
//! `cargo bench -p vigil-server --bench decode -- /path/to/sim.log` prints
//! ns/event for [`decode_batch`] with the default redaction and detectors
//! (median of 5 passes), and a digest of every output byte so that a change
//! can be shown to leave the output alone.

use std::hash::{Hash, Hasher};
use std::io::BufRead;
use std::time::{Duration, Instant, SystemTime};

use vigil_ingest::{InputKind, RawMessage};
use vigil_server::pipeline::decode_batch;

/// Lines read from the file at most.
const MAX_LINES: usize = 100_000;
/// Messages per decoded batch, as the TCP listener hands them over.
const BATCH: usize = 256;
/// Passes over the lines; the median is reported.
const PASSES: usize = 5;

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; the file is the first other argument.
    let Some(path) = std::env::args().skip(1).find(|a| !a.starts_with("--")) else {
        eprintln!("usage: cargo bench -p vigil-server --bench decode -- FILE (e.g. `vigil simulate` output)");
        return Ok(());
    };
    let file = std::fs::File::open(&path)?;
    let received_at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_736_121_600_123);
    let peer = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 40000)));
    let messages = std::io::BufReader::new(file)
        .split(b'\n')
        .take(MAX_LINES)
        .map(|l| {
            Ok(RawMessage {
                bytes: l?,
                truncated: false,
                input: InputKind::SyslogTcp,
                peer,
                received_at,
            })
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    if messages.is_empty() {
        anyhow::bail!("{path} holds no lines");
    }
    let data_dir = tempfile::tempdir()?;
    let redactor = vigil_server::config::RedactionConfig::default().redactor(data_dir.path())?;
    let detectors = vigil_detect::Config::default();
    let opts = vigil_parse::ParseOptions::default();
    let run = || {
        let mut digest = std::collections::hash_map::DefaultHasher::new();
        let mut elapsed = Duration::ZERO;
        for chunk in messages.chunks(BATCH) {
            let t = Instant::now();
            let b = decode_batch(chunk, &opts, None, Some(&detectors), redactor.as_ref());
            elapsed += t.elapsed();
            for p in &b.events {
                let mut buf = Vec::new();
                p.template.fill(1, &mut buf);
                buf.hash(&mut digest);
                format!("{:?}", p.observation).hash(&mut digest);
            }
        }
        (elapsed, digest.finish())
    };
    let mut times = Vec::new();
    let mut digests = std::collections::BTreeSet::new();
    for _ in 0..PASSES {
        let (elapsed, d) = run();
        times.push(elapsed.as_nanos() as f64 / messages.len() as f64);
        digests.insert(d);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "decode_batch: {} events, median {:.0} ns/event (runs {:?}), output digest {:016x}",
        messages.len(),
        times[times.len() / 2],
        times.iter().map(|t| t.round()).collect::<Vec<_>>(),
        digests.first().copied().unwrap_or_default()
    );
    anyhow::ensure!(digests.len() == 1, "decoding the same lines twice differed");
    Ok(())
}
