//! `vigil retain` on a real data dir: old segments go, verification,
//! proofs and search keep working, and the deletion is a signed event.

mod common;

use std::path::Path;
use std::process::Output;

use serde_json::Value;

fn run(cmd: &mut std::process::Command) -> Output {
    cmd.env_remove("VIGIL_CONFIG")
        .env_remove("VIGIL_DATA_DIR")
        .env_remove("VIGIL_SEAL_KEY")
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{} / {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn segments(ledger: &Path) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = std::fs::read_dir(ledger)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .map(|p| {
            let n = p.file_stem().unwrap().to_str().unwrap().parse().unwrap();
            (n, std::fs::metadata(&p).unwrap().len())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn retain_keeps_proofs_and_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let data = root.join("data");
    let ledger = data.join("ledger");
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
    for round in 0..3u64 {
        let log = root.join(format!("auth{round}.log"));
        let text: String = (0..2000u64)
            .map(|i| {
                format!(
                    "Mar  1 10:{:02}:{:02} host{} sshd[{}]: Failed password for user{} from 10.0.0.{} port {} ssh2\n",
                    i / 60 % 60,
                    i % 60,
                    i % 7,
                    1000 + i,
                    (i + round) % 13,
                    i % 250,
                    20000 + i
                )
            })
            .collect();
        std::fs::write(&log, text).unwrap();
        let out = ok(&run(common::vigil()
            .args(["ingest", "--config"])
            .arg(&config)
            .arg(&log)));
        if round == 0 {
            let mut lines = out.lines();
            while let Some(l) = lines.next() {
                if l.starts_with("initial sealing key") {
                    k0 = lines.next().unwrap().trim().to_owned();
                }
            }
        }
    }
    assert_eq!(k0.len(), 64);
    let before = segments(&ledger);
    assert!(before.len() > 5, "{before:?}");
    let total: u64 = before.iter().map(|s| s.1).sum();
    let budget = total / 2;

    // Dry run deletes nothing.
    let out = ok(&run(common::vigil()
        .args([
            "retain",
            "--dry-run",
            "--max-bytes",
            &budget.to_string(),
            "--config",
        ])
        .arg(&config)));
    assert!(out.contains("would delete records 1..="), "{out}");
    assert_eq!(segments(&ledger), before);

    let out = ok(&run(common::vigil()
        .args([
            "retain",
            "--max-bytes",
            &budget.to_string(),
            "--user",
            "alice",
            "--config",
        ])
        .arg(&config)));
    assert!(out.contains("deleted records 1..="), "{out}");
    let after = segments(&ledger);
    let kept_first = after[0].0;
    assert!(kept_first > 1 && after.len() < before.len());
    let log: Value = serde_json::from_str(
        std::fs::read_to_string(ledger.join("retention.log"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(log["first_seq"], 1);
    assert_eq!(log["last_seq"], kept_first - 1);
    assert_eq!(log["actor"], "alice");
    assert_eq!(log["reason"], format!("max_bytes={budget}"));

    // Verification passes, with a note about the retention.
    let out = run(common::vigil()
        .args(["verify", "--json", "--seal-key", &k0, "--config"])
        .arg(&config));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("deleted by retention")),
        "{report}"
    );

    // Proofs for a remaining event work; for a deleted one they fail clearly.
    let key = ok(&run(common::vigil().args(["key", "--config"]).arg(&config)));
    let key = key.trim();
    for seq in [kept_first, 5000] {
        let proof = ok(&run(common::vigil()
            .args(["prove", &seq.to_string(), "--config"])
            .arg(&config)));
        let file = root.join("proof.json");
        std::fs::write(&file, proof).unwrap();
        let out = ok(&run(common::vigil()
            .arg("verify-proof")
            .arg(&file)
            .args(["--key", key])));
        assert!(out.starts_with(&format!("OK: record {seq} ")), "{out}");
    }
    let out = run(common::vigil()
        .args(["prove", "3", "--config"])
        .arg(&config));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("event 3 was deleted by retention"), "{err}");

    // Search: the deletion event is there, deleted events are not.
    let out = ok(&run(common::vigil()
        .args(["search", "--json", "--limit", "10000", "--config"])
        .arg(&config)
        .arg("*")));
    let seqs: Vec<u64> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| v["vigil"]["seq"].as_u64().unwrap())
        .collect();
    assert!(!seqs.is_empty());
    assert!(
        seqs.iter().all(|&s| s >= kept_first),
        "{:?}",
        seqs.iter().min()
    );
    let out = ok(&run(common::vigil()
        .args(["search", "--json", "--config"])
        .arg(&config)
        .arg("event.action:retention_deleted")));
    let ev: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(ev["vigil"]["retention"]["first_seq"], 1);
    assert_eq!(ev["vigil"]["retention"]["last_seq"], kept_first - 1);
    assert_eq!(ev["user"]["name"], "alice");
    assert_eq!(ev["vigil"]["seq"], 6001);

    // The deletion event itself is covered by a signed checkpoint.
    let proof = ok(&run(common::vigil()
        .args(["prove", "6001", "--config"])
        .arg(&config)));
    assert!(proof.contains("retention_deleted"));

    // Removing a segment by hand is still reported.
    let victim = ledger.join(format!("{:020}.seg", after[1].0));
    std::fs::remove_file(victim).unwrap();
    let out = run(common::vigil()
        .args(["verify", "--json", "--config"])
        .arg(&config));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "missing" && f["first_seq"] == after[1].0),
        "{report}"
    );
}
