//! Runs `vigil_ledger::merkle` against the transparency-dev Merkle proof test
//! vectors (Apache-2.0) kept in the shared corpus under
//! `merkle/testdata/{inclusion,consistency}/**.json`.
//!
//! The corpus is located at `$VIGIL_CORPUS/merkle/testdata`, or else at
//! `../../../shared/corpus/merkle/testdata` from this crate. When it is
//! missing the test fails under `CI=true` and is skipped otherwise.
//!
//! Each vector is a verification probe: a valid proof (`"wantErr": false`)
//! must verify, and every corruption of it (`"wantErr": true`) must be
//! rejected. Hashes are base64; `"proof": null` is an empty proof.
//!
//! Some probes carry byte strings that are not 32 bytes long ("WrongLeaf",
//! "don't care 1", empty). Our API only takes `[u8; 32]`, so such values are
//! mapped as follows:
//! * a leaf hash that is not 32 bytes is rejected while decoding, as the
//!   reference verifier does ("leafHash has unexpected size");
//! * a root or proof hash that is not 32 bytes is replaced with a stand-in
//!   32-byte value derived from its bytes, so that equal inputs stay equal and
//!   different ones differ, and none equals a real tree hash. The verifier
//!   then decides; in particular "sizes are equal (one) and proof is empty"
//!   (two equal "don't care" roots) must still be accepted.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use vigil_ledger::merkle::{self, Hash};

fn corpus_dir() -> PathBuf {
    match std::env::var_os("VIGIL_CORPUS") {
        Some(root) => PathBuf::from(root).join("merkle/testdata"),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/merkle/testdata")
        }
    }
}

/// All `*.json` files under `dir`, recursively, in a stable order.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn bytes(v: &Value, field: &str) -> Vec<u8> {
    let s = v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string"));
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("{field}: bad base64: {e}"))
}

fn size(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} is not a u64"))
}

/// A root or proof value: itself if it is 32 bytes, else its stand-in.
fn opaque_hash(b: &[u8]) -> Hash {
    b.try_into().unwrap_or_else(|_| {
        let mut h = Sha256::new();
        h.update(b"vigil merkle_vectors stand-in for a malformed hash:");
        h.update(b);
        h.finalize().into()
    })
}

fn proof(v: &Value) -> Vec<Hash> {
    match &v["proof"] {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let s = item.as_str().expect("proof item is a string");
                let b = base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .expect("proof item is base64");
                opaque_hash(&b)
            })
            .collect(),
        other => panic!("proof is {other}"),
    }
}

fn check_inclusion(v: &Value) -> Result<(), String> {
    let leaf: Hash = bytes(v, "leafHash")
        .try_into()
        .map_err(|b: Vec<u8>| format!("leaf hash is {} bytes, not 32", b.len()))?;
    merkle::verify_inclusion(
        size(v, "leafIdx"),
        size(v, "treeSize"),
        &leaf,
        &proof(v),
        &opaque_hash(&bytes(v, "root")),
    )
    .map_err(|e| e.to_string())
}

fn check_consistency(v: &Value) -> Result<(), String> {
    merkle::verify_consistency(
        size(v, "size1"),
        size(v, "size2"),
        &opaque_hash(&bytes(v, "root1")),
        &opaque_hash(&bytes(v, "root2")),
        &proof(v),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn transparency_dev_vectors() {
    let dir = corpus_dir();
    if !dir.is_dir() {
        let why = format!("merkle corpus not found at {}", dir.display());
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{why}");
        }
        eprintln!("skipping: {why} (set VIGIL_CORPUS)");
        return;
    }

    let files = json_files(&dir);
    let (mut inc_total, mut inc_pass, mut con_total, mut con_pass) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&dir).expect("under the corpus");
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let v: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", rel.display()));
        let want_err = v["wantErr"].as_bool().expect("wantErr is a bool");
        let (result, total, pass) = if rel.starts_with("inclusion") {
            (check_inclusion(&v), &mut inc_total, &mut inc_pass)
        } else if rel.starts_with("consistency") {
            (check_consistency(&v), &mut con_total, &mut con_pass)
        } else {
            panic!(
                "{}: neither an inclusion nor a consistency vector",
                rel.display()
            );
        };
        *total += 1;
        match (want_err, result) {
            (false, Ok(())) | (true, Err(_)) => *pass += 1,
            (false, Err(e)) => {
                failures.push(format!("{}: valid proof rejected: {e}", rel.display()))
            }
            (true, Ok(())) => failures.push(format!("{}: invalid proof accepted", rel.display())),
        }
    }

    println!("merkle corpus: inclusion {inc_pass}/{inc_total}, consistency {con_pass}/{con_total}");
    assert!(
        failures.is_empty(),
        "{} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        inc_total > 0 && con_total > 0,
        "corpus at {} has no vectors",
        dir.display()
    );
    assert_eq!(
        inc_pass + con_pass,
        files.len(),
        "every vector file is counted and passes"
    );
}
