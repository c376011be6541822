//! `vigil verify`, `vigil prove` and `vigil verify-proof` on real data dirs,
//! untouched and tampered with in the ways an intruder would.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

/// Events per ingest; three ingests make three checkpoints (3000, 6000, 9000).
const PER_INGEST: u64 = 3000;

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    data: PathBuf,
    /// The initial sealing key printed by the first ingest.
    k0: String,
    /// `checkpoints.log` as a witness saw it after the first ingest.
    witness1: PathBuf,
    /// The whole data dir as it was after the second ingest.
    old_copy: PathBuf,
}

fn run(cmd: &mut std::process::Command) -> Output {
    cmd.env_remove("VIGIL_CONFIG")
        .env_remove("VIGIL_DATA_DIR")
        .env_remove("VIGIL_SEAL_KEY")
        .output()
        .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let data = root.join("data");
    let config = root.join("vigil.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[ledger]\nsegment_max_bytes = 65536\ncompress_sealed = false\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let mut k0 = String::new();
    let mut witness1 = PathBuf::new();
    let old_copy = root.join("data-after-2");
    for round in 0..3u64 {
        let log = root.join(format!("auth{round}.log"));
        let mut text = String::new();
        for i in 0..PER_INGEST {
            text.push_str(&format!(
                "Mar  1 10:{:02}:{:02} host{} sshd[{}]: Failed password for user{} from 10.0.{}.{} port {} ssh2\n",
                i / 60 % 60,
                i % 60,
                i % 7,
                1000 + i,
                (i + round) % 13,
                i % 200,
                i % 250,
                20000 + i
            ));
        }
        std::fs::write(&log, text).unwrap();
        let out = run(common::vigil()
            .args(["ingest", "--config"])
            .arg(&config)
            .arg(&log));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        if round == 0 {
            let mut lines = stdout.lines();
            while let Some(l) = lines.next() {
                if l.starts_with("initial sealing key") {
                    k0 = lines.next().unwrap().trim().to_owned();
                }
            }
            assert_eq!(k0.len(), 64, "{stdout}");
            witness1 = root.join("witness1.log");
            std::fs::copy(data.join("ledger/checkpoints.log"), &witness1).unwrap();
        }
        if round == 1 {
            copy_dir(&data, &old_copy);
        }
    }
    Fixture {
        _tmp: tmp,
        root,
        config,
        data,
        k0,
        witness1,
        old_copy,
    }
}

impl Fixture {
    fn ledger(&self) -> PathBuf {
        self.data.join("ledger")
    }

    /// `vigil verify --json` with `extra`; the exit code and the report.
    fn verify(&self, extra: &[&str]) -> (i32, Value) {
        let out = run(common::vigil()
            .args(["verify", "--json", "--config"])
            .arg(&self.config)
            .args(extra));
        let code = out.status.code().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
            panic!(
                "exit {code}: not JSON ({e}): {text} / {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (code, v)
    }

    fn verify_full(&self) -> (i32, Value) {
        let w = self.witness1.to_str().unwrap().to_owned();
        self.verify(&["--seal-key", &self.k0, "--checkpoint", &w])
    }

    /// Plain segment files in seq order.
    fn segments(&self) -> Vec<(u64, PathBuf)> {
        let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(self.ledger())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "seg"))
            .map(|p| {
                let n = p.file_stem().unwrap().to_str().unwrap().parse().unwrap();
                (n, p)
            })
            .collect();
        v.sort();
        v
    }

    /// The segment holding `seq` and the segment's seq range.
    fn segment_of(&self, seq: u64) -> (PathBuf, u64, u64) {
        let segs = self.segments();
        let i = segs.iter().rposition(|(f, _)| *f <= seq).unwrap();
        let last = segs.get(i + 1).map_or(u64::MAX, |s| s.0 - 1);
        (segs[i].1.clone(), segs[i].0, last)
    }
}

fn findings(v: &Value) -> Vec<(String, Option<u64>, Option<u64>)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_owned(),
                f["first_seq"].as_u64(),
                f["last_seq"].as_u64(),
            )
        })
        .collect()
}

fn has(v: &Value, kind: &str) -> (u64, u64) {
    let f = findings(v);
    let hit = f
        .iter()
        .find(|(k, _, _)| k == kind)
        .unwrap_or_else(|| panic!("no {kind} finding in {v:#}"));
    (hit.1.unwrap_or(0), hit.2.unwrap_or(0))
}

/// CRC-32C (Castagnoli), bitwise; the ledger's record checksum.
fn crc32c(data: &[u8], init: u32) -> u32 {
    let mut crc = !init;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Records of a plain segment: (offset, total length, seq).
fn records(bytes: &[u8]) -> Vec<(usize, usize, u64)> {
    let mut out = Vec::new();
    let mut pos = 40;
    while pos + 16 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let seq = u64::from_le_bytes(bytes[pos + 8..pos + 16].try_into().unwrap());
        out.push((pos, 16 + len, seq));
        pos += 16 + len;
    }
    out
}

/// Changes one payload byte of record `seq`; with `fix_crc` the checksum is
/// recomputed, as a deliberate rewrite would.
fn flip(fx: &Fixture, seq: u64, fix_crc: bool) {
    let (path, _, _) = fx.segment_of(seq);
    let mut b = std::fs::read(&path).unwrap();
    let (off, total, s) = records(&b).into_iter().find(|r| r.2 == seq).unwrap();
    // "Failed password" -> "failed password" in the message.
    let payload = &b[off + 16..off + total];
    let at = payload.windows(6).position(|w| w == b"Failed").unwrap();
    b[off + 16 + at] = b'f';
    if fix_crc {
        let crc = crc32c(&b[off + 16..off + total], crc32c(&s.to_le_bytes(), 0));
        b[off + 4..off + 8].copy_from_slice(&crc.to_le_bytes());
    }
    std::fs::write(&path, b).unwrap();
}

#[test]
fn crc32c_matches_the_ledger() {
    // RFC 3720 test vector: 32 bytes of zeros.
    assert_eq!(crc32c(&[0u8; 32], 0), 0x8A91_36AA);
    assert_eq!(crc32c(b"23456789", crc32c(b"1", 0)), 0xE306_9283);
}

#[test]
fn clean_ledger_verifies() {
    let fx = fixture();
    let out = run(common::vigil()
        .args(["verify", "--seal-key", &fx.k0, "--checkpoint"])
        .arg(&fx.witness1)
        .arg("--config")
        .arg(&fx.config));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.starts_with("OK: 9000 records (") && text.contains("3 seals verified"),
        "{text}"
    );
    let (code, v) = fx.verify_full();
    assert_eq!(code, 0);
    assert_eq!(v["records"], 9000);
    assert_eq!(v["checkpoints_checked"], 4);
    assert!(fx.segments().len() > 5, "several segments");

    // A wrong seal key is a usage error only when malformed.
    let (code, _) = fx.verify(&["--seal-key", &"00".repeat(32)]);
    assert_eq!(code, 1);
    let out = run(common::vigil()
        .args(["verify", "--seal-key", "xyz", "--config"])
        .arg(&fx.config));
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn rewritten_record_is_changed_and_localised() {
    let fx = fixture();
    flip(&fx, 4500, true);
    let (code, v) = fx.verify_full();
    assert_eq!(code, 1);
    let (a, b) = has(&v, "changed");
    let (_, seg_first, seg_last) = fx.segment_of(4500);
    assert!((a..=b).contains(&4500), "{a}..={b}");
    assert!(
        a >= seg_first.max(3001) && b <= seg_last.min(6000),
        "{a}..={b} narrowed to the segment {seg_first}..={seg_last}"
    );
    assert_eq!(findings(&v).len(), 1, "{v:#}");
}

#[test]
fn damaged_checksum_is_corrupt() {
    let fx = fixture();
    flip(&fx, 4500, false);
    let (code, v) = fx.verify_full();
    assert_eq!(code, 1);
    assert_eq!(has(&v, "corrupt").0, 4500);
}

#[test]
fn deleted_segment_is_missing() {
    let fx = fixture();
    let (path, first, last) = fx.segment_of(5000);
    std::fs::remove_file(&path).unwrap();
    let (code, v) = fx.verify_full();
    assert_eq!(code, 1);
    assert_eq!(has(&v, "missing"), (first, last));
}

#[test]
fn truncated_last_segment() {
    let fx = fixture();
    let (path, _, _) = fx.segment_of(9000);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    // Cut the last record and a half.
    let b = std::fs::read(&path).unwrap();
    let recs = records(&b);
    let keep = recs[recs.len() - 2].0 + 10;
    assert!((keep as u64) < len);
    f.set_len(keep as u64).unwrap();
    let (code, v) = fx.verify_full();
    assert_eq!(code, 1);
    assert_eq!(has(&v, "truncated"), (8999, 9000));
}

#[test]
fn swapped_records_are_reordered() {
    let fx = fixture();
    let (path, _, _) = fx.segment_of(4500);
    let b = std::fs::read(&path).unwrap();
    let recs = records(&b);
    let i = recs.iter().position(|r| r.2 == 4500).unwrap();
    let (r1, r2) = (recs[i], recs[i + 1]);
    assert_eq!(r2.2, 4501);
    let mut out = b[..r1.0].to_vec();
    out.extend_from_slice(&b[r2.0..r2.0 + r2.1]);
    out.extend_from_slice(&b[r1.0..r1.0 + r1.1]);
    out.extend_from_slice(&b[r2.0 + r2.1..]);
    std::fs::write(&path, out).unwrap();
    let (code, v) = fx.verify_full();
    assert_eq!(code, 1);
    assert_eq!(has(&v, "reordered"), (4500, 4500));
    let (a, b) = has(&v, "changed");
    assert!(
        (a..=b).contains(&4500) && (a..=b).contains(&4501),
        "{a}..={b}"
    );
}

#[test]
fn resigned_history_is_caught_by_seal_and_witness() {
    use vigil_ledger::integrity::{Notary, CHECKPOINT_LOG};
    use vigil_ledger::merkle::{leaf_hash, CompactTree};

    let fx = fixture();
    flip(&fx, 100, true);
    // The intruder signs new checkpoints for the altered ledger with the
    // keys found on the host.
    let ledger = fx.ledger();
    std::fs::remove_file(ledger.join(CHECKPOINT_LOG)).unwrap();
    let (mut notary, secrets) = Notary::open_or_init(&fx.data.join("keys"), &ledger).unwrap();
    assert!(secrets.is_none());
    let reader = vigil_ledger::LedgerReader::open(&ledger).unwrap();
    let mut tree = CompactTree::new();
    for r in reader.iter_range(1, 9000) {
        let r = r.unwrap();
        tree.append(leaf_hash(&r.payload));
        if r.seq % PER_INGEST == 0 {
            notary.checkpoint(tree.size(), tree.root()).unwrap();
        }
    }
    // Signatures alone cannot tell.
    let (code, v) = fx.verify(&[]);
    assert_eq!(code, 0, "{v:#}");
    // The seals can: the stolen key only seals later epochs.
    let (code, v) = fx.verify(&["--seal-key", &fx.k0]);
    assert_eq!(code, 1);
    let f = findings(&v);
    assert!(f.iter().any(|x| x.0 == "broken_seal"), "{v:#}");
    // So can a witness's earlier checkpoint.
    let w = fx.witness1.to_str().unwrap().to_owned();
    let (code, v) = fx.verify(&["--checkpoint", &w]);
    assert_eq!(code, 1);
    let (a, b) = has(&v, "changed");
    assert!((a..=b).contains(&100) && b <= PER_INGEST, "{a}..={b}");
    has(&v, "inconsistent");
}

#[test]
fn rolled_back_data_dir_is_caught_by_a_newer_checkpoint() {
    let fx = fixture();
    let newest = fx.root.join("witness-now.log");
    std::fs::copy(fx.ledger().join("checkpoints.log"), &newest).unwrap();
    std::fs::remove_dir_all(&fx.data).unwrap();
    std::fs::rename(&fx.old_copy, &fx.data).unwrap();
    // On its own the old copy is consistent.
    let (code, _) = fx.verify(&["--seal-key", &fx.k0]);
    assert_eq!(code, 0);
    let w = newest.to_str().unwrap().to_owned();
    let (code, v) = fx.verify(&["--seal-key", &fx.k0, "--checkpoint", &w]);
    assert_eq!(code, 1);
    assert_eq!(has(&v, "rollback"), (6001, 9000));
}

#[test]
fn inclusion_and_consistency_proofs() {
    let fx = fixture();
    let key = run(common::vigil().args(["key", "--config"]).arg(&fx.config));
    let key = String::from_utf8(key.stdout).unwrap().trim().to_owned();

    let out = run(common::vigil()
        .args(["prove", "3", "--config"])
        .arg(&fx.config));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let proof = fx.root.join("proof.json");
    std::fs::write(&proof, &out.stdout).unwrap();
    let check = |path: &Path| {
        run(common::vigil()
            .arg("verify-proof")
            .arg(path)
            .args(["--key", &key]))
    };
    let out = check(&proof);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("OK: record 3 "), "{text}");

    // Any change to the proof fails.
    let mut v: Value = serde_json::from_slice(&std::fs::read(&proof).unwrap()).unwrap();
    v["leaf_index"] = Value::from(3);
    let bad = fx.root.join("bad.json");
    std::fs::write(&bad, serde_json::to_vec(&v).unwrap()).unwrap();
    let out = check(&bad);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("FAILED"));

    // A wrong key fails too.
    let out = run(common::vigil().arg("verify-proof").arg(&proof).args([
        "--key",
        "other+01020304+AYlABP8cT4RxO5B1ZALQXc2wz5WNhGRus/CHzIipQ672",
    ]));
    assert_ne!(out.status.code(), Some(0));

    let out = run(common::vigil()
        .args(["prove", "--consistency", "3000", "9000", "--config"])
        .arg(&fx.config));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cons = fx.root.join("cons.json");
    std::fs::write(&cons, &out.stdout).unwrap();
    let out = check(&cons);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn verify_beside_a_running_server() {
    let fx = fixture();
    let mut server = common::Server::start_with(&fx.data, Some(common::TOKEN), &[]);
    let (code, v) = fx.verify(&["--seal-key", &fx.k0]);
    assert_eq!(code, 0, "{v:#}");
    server.terminate();
}
