//! Inclusion and consistency proofs against signed checkpoints, as JSON
//! documents that can be checked without the ledger: [`prove_inclusion`],
//! [`prove_consistency`], [`verify_proof`].
//!
//! Both proofs carry the signed checkpoint (a C2SP signed note) whose root
//! they lead to, so a verifier needs only the published verifier key.
//!
//! * An [`InclusionProof`] shows that record `seq` (leaf index `seq - 1`) is
//!   in the tree of the newest stored checkpoint covering it. It also
//!   carries the record's payload (the canonical event JSON), so the
//!   verifier can check that the leaf hash is that event's.
//! * A [`ConsistencyProof`] shows that the tree of `old_size` records is a
//!   prefix of the tree of `new_size` records. `new_size` must be the size
//!   of a stored checkpoint (its signed note is `checkpoint`). The old root
//!   is taken from a stored checkpoint of size `old_size` when there is one
//!   (then `old_checkpoint` carries its signed note and the verifier checks
//!   that signature too); otherwise it is computed from the ledger and
//!   `old_checkpoint` is absent: the verifier must then compare `old_root`
//!   with a checkpoint of its own (a witness copy) for the proof to mean
//!   anything, and [`ProofVerdict::old_root_signed`] says so.
//!
//! Hashes are standard base64. Leaf hashes are computed by reading the
//! ledger from seq 1 (O(n) in the tree size, 32 bytes of memory per record).
//!
//! After retention deleted old segments, the records before the oldest
//! stored one are represented by that segment's frontier (their compact
//! range): every hash an inclusion proof for a stored record needs from the
//! deleted part is a frontier peak or built from peaks and stored leaves, so
//! such proofs still work. Proofs for deleted records fail, naming the
//! retention run that deleted them.

use std::ops::ControlFlow;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::integrity::{read_checkpoints, CheckpointRecord};
use crate::merkle::{self, CompactTree, Hash};
use crate::note::VerifierKey;
use crate::retention::{read_retention_log, run_for_seq};
use crate::LedgerReader;

/// Proof that one record is in the tree of a signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// 0-based leaf index (`seq - 1`).
    pub leaf_index: u64,
    /// Size of the tree (the checkpoint's size).
    pub tree_size: u64,
    /// `SHA-256(0x00 || payload)`, base64.
    pub leaf_hash: String,
    /// RFC 9162 inclusion path, from the leaf's sibling upwards, base64.
    pub audit_path: Vec<String>,
    /// The signed checkpoint note for `tree_size`.
    pub checkpoint: String,
    /// The record's payload (canonical event JSON), when included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

/// Proof that an older tree is a prefix of a newer, signed one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// Size of the older tree.
    pub old_size: u64,
    /// Size of the newer tree (a stored checkpoint's size).
    pub new_size: u64,
    /// Root of the older tree, base64.
    pub old_root: String,
    /// Root of the newer tree, base64.
    pub new_root: String,
    /// RFC 9162 consistency proof, base64.
    pub proof: Vec<String>,
    /// The signed checkpoint note for `new_size`.
    pub checkpoint: String,
    /// The signed checkpoint note for `old_size`, when one is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_checkpoint: Option<String>,
}

/// A proof document of either kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Proof {
    /// An inclusion proof.
    Inclusion(InclusionProof),
    /// A consistency proof.
    Consistency(ConsistencyProof),
}

/// What [`verify_proof`] established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofVerdict {
    /// The checkpoint's origin.
    pub origin: String,
    /// The signed tree size.
    pub tree_size: u64,
    /// For inclusion proofs: the seq proven.
    pub seq: Option<u64>,
    /// For inclusion proofs: whether the payload was present and matched the leaf hash.
    pub payload_checked: bool,
    /// For consistency proofs: the old size.
    pub old_size: Option<u64>,
    /// For consistency proofs: whether the old root is covered by a signed checkpoint.
    pub old_root_signed: bool,
    /// A one-line summary for people.
    pub summary: String,
}

/// Errors of proof generation and verification.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// Reading the ledger or its checkpoints failed.
    #[error(transparent)]
    Ledger(#[from] crate::LedgerError),
    /// Reading the checkpoint log failed.
    #[error(transparent)]
    Integrity(#[from] crate::integrity::IntegrityError),
    /// The request cannot be answered (no such record or checkpoint).
    #[error("{0}")]
    Unavailable(String),
    /// The ledger does not match its own checkpoint: run `vigil verify`.
    #[error("{0}")]
    Mismatch(String),
    /// The proof document is malformed.
    #[error("malformed proof: {0}")]
    Malformed(String),
    /// The proof's checkpoint signature does not verify.
    #[error("checkpoint signature does not verify: {0}")]
    Signature(String),
    /// The proof does not lead to the signed root.
    #[error("proof does not verify: {0}")]
    Invalid(String),
}

fn b64(h: &Hash) -> String {
    BASE64.encode(h)
}

fn unb64(what: &str, s: &str) -> Result<Hash, ProofError> {
    let v = BASE64
        .decode(s)
        .map_err(|e| ProofError::Malformed(format!("{what}: {e}")))?;
    v.as_slice()
        .try_into()
        .map_err(|_| ProofError::Malformed(format!("{what}: {} bytes, not 32", v.len())))
}

/// Stored checkpoints with their parsed bodies (signatures are checked by
/// the verifier of the proof, and by `vigil verify`).
fn stored(ledger_dir: &Path) -> Result<Vec<(Checkpoint, CheckpointRecord)>, ProofError> {
    let mut out: Vec<_> = read_checkpoints(ledger_dir)?
        .into_iter()
        .filter_map(|r| r.checkpoint_unverified().ok().map(|c| (c, r)))
        .collect();
    out.sort_by_key(|(c, _)| c.size);
    Ok(out)
}

/// The leaves a proof is built from: the compact range of the records
/// deleted by retention (`front`, empty when nothing was deleted) and the
/// leaf hashes of the remaining records up to the checkpoint's size.
struct Leaves {
    front: CompactTree,
    /// `front.peak_ranges()`.
    peaks: Vec<(u64, u64, Hash)>,
    /// Leaf hashes of indices `front.size()..size`.
    rest: Vec<Hash>,
}

impl Leaves {
    /// Merkle Tree Hash of leaves `a..b`. Ranges inside the deleted part
    /// must be unions of whole frontier peaks (the compact range property:
    /// every subtree an inclusion or consistency proof for a remaining leaf
    /// needs is one), otherwise the hash is gone with the records.
    fn subtree(&self, a: u64, b: u64) -> Result<Hash, (u64, u64)> {
        let d = self.front.size();
        if a >= d {
            let (lo, hi) = ((a - d) as usize, (b - d) as usize);
            return Ok(merkle::root_from_leaves(&self.rest[lo..hi]));
        }
        let Some(&(_, end, hash)) = self.peaks.iter().find(|p| p.0 == a) else {
            return Err((a, b));
        };
        if b == end {
            return Ok(hash);
        }
        if b < end || b - a < 2 {
            return Err((a, b));
        }
        let k = 1u64 << (63 - (b - a - 1).leading_zeros());
        Ok(merkle::node_hash(
            &self.subtree(a, a + k)?,
            &self.subtree(a + k, b)?,
        ))
    }

    /// Runs a proof builder with [`Self::subtree`], turning a missing hash
    /// into a clear error.
    fn build(
        &self,
        f: impl FnOnce(&dyn Fn(u64, u64) -> Hash) -> Result<Vec<Hash>, merkle::MerkleError>,
    ) -> Result<Vec<Hash>, ProofError> {
        let missing = std::cell::Cell::new(None);
        let sub = |a: u64, b: u64| match self.subtree(a, b) {
            Ok(h) => h,
            Err(r) => {
                missing.set(Some(r));
                [0; 32]
            }
        };
        let out = f(&sub).map_err(|e| ProofError::Unavailable(e.to_string()))?;
        match missing.get() {
            None => Ok(out),
            Some((a, b)) => Err(ProofError::Unavailable(format!(
                "the proof needs the hash of records {}..={}, which were deleted by retention and are not a whole subtree of the kept frontier",
                a + 1,
                b
            ))),
        }
    }

    fn root(&self, size: u64) -> Result<Hash, ProofError> {
        if size == 0 {
            return Ok(merkle::EMPTY_ROOT);
        }
        self.subtree(0, size).map_err(|(a, b)| {
            ProofError::Unavailable(format!(
                "the root of the tree of {size} records needs records {}..={}, which were deleted by retention",
                a + 1,
                b
            ))
        })
    }
}

/// Seq of the oldest stored record's segment (1 when nothing was deleted).
fn first_kept_seq(ledger_dir: &Path) -> Result<u64, ProofError> {
    Ok(crate::dir::list(ledger_dir)?
        .segs
        .first()
        .map_or(1, |e| e.first_seq))
}

/// Why `seq`, below the oldest stored record `first`, has no proof.
fn deleted_error(ledger_dir: &Path, seq: u64, first: u64) -> ProofError {
    let runs = read_retention_log(ledger_dir).unwrap_or_default();
    match run_for_seq(&runs, seq) {
        Some(r) => ProofError::Unavailable(format!(
            "event {seq} was deleted by retention on {} ({}, by {}: records {}..={}); no proof can be made for it",
            r.time, r.reason, r.actor, r.first_seq, r.last_seq
        )),
        None => ProofError::Mismatch(format!(
            "event {seq} is not in the ledger: the oldest segment starts at seq {first} and {} does not account for it; run `vigil verify`",
            crate::retention::RETENTION_LOG
        )),
    }
}

/// The leaves of records `1..=size` (a frontier for the deleted ones), and
/// the payload of `want` if asked.
fn leaves(
    ledger_dir: &Path,
    size: u64,
    want: Option<u64>,
) -> Result<(Leaves, Option<Vec<u8>>), ProofError> {
    let first = first_kept_seq(ledger_dir)?;
    let front = if first > 1 {
        let path = crate::dir::frontier_path(ledger_dir, first);
        crate::dir::read_frontier(&path)
            .filter(|t| t.size() + 1 == first)
            .ok_or_else(|| {
                ProofError::Mismatch(format!(
                    "records before seq {first} are gone and the frontier {} is missing or invalid; run `vigil verify`",
                    path.display()
                ))
            })?
    } else {
        CompactTree::new()
    };
    let d = front.size();
    if size < d {
        return Err(ProofError::Unavailable(format!(
            "records 1..={d} were deleted by retention; the tree of {size} records cannot be rebuilt"
        )));
    }
    let reader = LedgerReader::open(ledger_dir)?;
    let mut out = Vec::with_capacity(usize::try_from(size - d).unwrap_or(0).min(1 << 26));
    let mut payload = None;
    let mut gap = None;
    let _ = reader.for_each_range(d + 1, size, |seq, p| {
        if seq != d + out.len() as u64 + 1 {
            gap = Some(seq);
            return ControlFlow::Break(());
        }
        if Some(seq) == want {
            payload = Some(p.to_vec());
        }
        out.push(merkle::leaf_hash(p));
        ControlFlow::Continue(())
    })?;
    if gap.is_some() || d + (out.len() as u64) < size {
        return Err(ProofError::Mismatch(format!(
            "the ledger does not hold records {}..={size} in order (read {}); run `vigil verify`",
            d + 1,
            out.len()
        )));
    }
    let peaks = front.peak_ranges();
    Ok((
        Leaves {
            front,
            peaks,
            rest: out,
        },
        payload,
    ))
}

/// Proof that record `seq` is in the newest stored checkpoint covering it.
///
/// Works after retention for every record still stored: the hashes the
/// proof needs from the deleted part come from the kept frontier.
pub fn prove_inclusion(ledger_dir: &Path, seq: u64) -> Result<InclusionProof, ProofError> {
    if seq == 0 {
        return Err(ProofError::Unavailable("seqs start at 1".into()));
    }
    let first = first_kept_seq(ledger_dir)?;
    if seq < first {
        return Err(deleted_error(ledger_dir, seq, first));
    }
    let cps = stored(ledger_dir)?;
    let Some((cp, rec)) = cps.iter().rev().find(|(c, _)| c.size >= seq) else {
        return Err(ProofError::Unavailable(format!(
            "no stored checkpoint covers seq {seq} yet (newest covers {}); wait for the next checkpoint",
            cps.last().map_or(0, |(c, _)| c.size)
        )));
    };
    let (leaves, payload) = leaves(ledger_dir, cp.size, Some(seq))?;
    let root = leaves.root(cp.size)?;
    if root != cp.root {
        return Err(ProofError::Mismatch(format!(
            "the ledger's records 1..={} do not match its checkpoint of that size; run `vigil verify`",
            cp.size
        )));
    }
    let index = seq - 1;
    let path = leaves.build(|sub| merkle::inclusion_proof(index, cp.size, sub))?;
    let leaf = leaves
        .subtree(index, index + 1)
        .map_err(|_| ProofError::Unavailable(format!("record {seq} is not stored")))?;
    Ok(InclusionProof {
        leaf_index: index,
        tree_size: cp.size,
        leaf_hash: b64(&leaf),
        audit_path: path.iter().map(b64).collect(),
        checkpoint: rec.note.clone(),
        payload: payload.map(|p| String::from_utf8_lossy(&p).into_owned()),
    })
}

/// Proof that the tree of `old` records is a prefix of the stored
/// checkpoint of size `new` (`None`: the newest stored checkpoint).
///
/// After retention this works when every hash the proof needs is still
/// available (always for `old` at or beyond the first kept record's
/// frontier, and for `old` at a peak boundary of it).
pub fn prove_consistency(
    ledger_dir: &Path,
    old: u64,
    new: Option<u64>,
) -> Result<ConsistencyProof, ProofError> {
    let cps = stored(ledger_dir)?;
    let found = match new {
        Some(n) => cps.iter().rev().find(|(c, _)| c.size == n),
        None => cps.last(),
    };
    let Some((cp, rec)) = found else {
        let sizes: Vec<String> = cps.iter().map(|(c, _)| c.size.to_string()).collect();
        return Err(ProofError::Unavailable(format!(
            "no stored checkpoint of size {}; stored sizes: {}",
            new.map_or("(any)".into(), |n| n.to_string()),
            if sizes.is_empty() {
                "none".into()
            } else {
                sizes.join(", ")
            }
        )));
    };
    if old == 0 || old > cp.size {
        return Err(ProofError::Unavailable(format!(
            "old size must be within 1..={}",
            cp.size
        )));
    }
    let (leaves, _) = leaves(ledger_dir, cp.size, None)?;
    let new_root = leaves.root(cp.size)?;
    if new_root != cp.root {
        return Err(ProofError::Mismatch(format!(
            "the ledger's records 1..={} do not match its checkpoint of that size; run `vigil verify`",
            cp.size
        )));
    }
    let old_root = leaves.root(old)?;
    let old_cp = cps
        .iter()
        .rev()
        .find(|(c, _)| c.size == old && c.root == old_root)
        .map(|(_, r)| r.note.clone());
    let proof = leaves.build(|sub| merkle::consistency_proof(old, cp.size, sub))?;
    Ok(ConsistencyProof {
        old_size: old,
        new_size: cp.size,
        old_root: b64(&old_root),
        new_root: b64(&new_root),
        proof: proof.iter().map(b64).collect(),
        checkpoint: rec.note.clone(),
        old_checkpoint: old_cp,
    })
}

fn open_cp(note: &str, key: &VerifierKey) -> Result<Checkpoint, ProofError> {
    Checkpoint::open(note.as_bytes(), std::slice::from_ref(key))
        .map(|(c, _)| c)
        .map_err(|e| ProofError::Signature(e.to_string()))
}

/// Verifies a proof document (JSON) against the trusted key: the
/// checkpoint's signature, then the proof against its root.
pub fn verify_proof(json: &[u8], key: &VerifierKey) -> Result<ProofVerdict, ProofError> {
    let proof: Proof =
        serde_json::from_slice(json).map_err(|e| ProofError::Malformed(e.to_string()))?;
    match proof {
        Proof::Inclusion(p) => {
            let cp = open_cp(&p.checkpoint, key)?;
            if cp.size != p.tree_size {
                return Err(ProofError::Invalid(format!(
                    "tree_size {} differs from the checkpoint's size {}",
                    p.tree_size, cp.size
                )));
            }
            let leaf = unb64("leaf_hash", &p.leaf_hash)?;
            let mut payload_checked = false;
            if let Some(payload) = &p.payload {
                if merkle::leaf_hash(payload.as_bytes()) != leaf {
                    return Err(ProofError::Invalid(
                        "payload does not match leaf_hash".into(),
                    ));
                }
                payload_checked = true;
            }
            let path = p
                .audit_path
                .iter()
                .map(|h| unb64("audit_path", h))
                .collect::<Result<Vec<_>, _>>()?;
            merkle::verify_inclusion(p.leaf_index, cp.size, &leaf, &path, &cp.root)
                .map_err(|e| ProofError::Invalid(e.to_string()))?;
            let seq = p.leaf_index + 1;
            Ok(ProofVerdict {
                summary: format!(
                    "record {seq}{} is in the tree of {} records signed by {}",
                    if payload_checked {
                        " (payload included and matching)"
                    } else {
                        ""
                    },
                    cp.size,
                    cp.origin
                ),
                origin: cp.origin,
                tree_size: cp.size,
                seq: Some(seq),
                payload_checked,
                old_size: None,
                old_root_signed: false,
            })
        }
        Proof::Consistency(p) => {
            let cp = open_cp(&p.checkpoint, key)?;
            if cp.size != p.new_size {
                return Err(ProofError::Invalid(format!(
                    "new_size {} differs from the checkpoint's size {}",
                    p.new_size, cp.size
                )));
            }
            let new_root = unb64("new_root", &p.new_root)?;
            if new_root != cp.root {
                return Err(ProofError::Invalid(
                    "new_root differs from the checkpoint's root".into(),
                ));
            }
            let old_root = unb64("old_root", &p.old_root)?;
            let mut old_root_signed = false;
            if let Some(note) = &p.old_checkpoint {
                let old = open_cp(note, key)?;
                if old.size != p.old_size || old.root != old_root {
                    return Err(ProofError::Invalid(
                        "old_root/old_size differ from the old checkpoint".into(),
                    ));
                }
                old_root_signed = true;
            }
            let path = p
                .proof
                .iter()
                .map(|h| unb64("proof", h))
                .collect::<Result<Vec<_>, _>>()?;
            merkle::verify_consistency(p.old_size, cp.size, &old_root, &cp.root, &path)
                .map_err(|e| ProofError::Invalid(e.to_string()))?;
            Ok(ProofVerdict {
                summary: format!(
                    "the tree of {} records ({}) is a prefix of the tree of {} records signed by {}",
                    p.old_size,
                    if old_root_signed {
                        "root signed"
                    } else {
                        "root NOT signed: compare old_root with your own checkpoint"
                    },
                    cp.size,
                    cp.origin
                ),
                origin: cp.origin,
                tree_size: cp.size,
                seq: None,
                payload_checked: false,
                old_size: Some(p.old_size),
                old_root_signed,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::Notary;
    use crate::{Ledger, LedgerOptions};

    fn setup() -> (tempfile::TempDir, std::path::PathBuf, VerifierKey) {
        let tmp = tempfile::tempdir().unwrap();
        let ledger = tmp.path().join("ledger");
        let mut l = Ledger::open(&ledger, LedgerOptions::default()).unwrap();
        let (mut n, _) = Notary::open_or_init(&tmp.path().join("keys"), &ledger).unwrap();
        for i in 1..=37u64 {
            l.append(format!("{{\"n\":{i}}}").as_bytes()).unwrap();
            if i == 10 || i == 37 {
                l.commit().unwrap();
                let (s, r) = l.durable_root().unwrap();
                n.checkpoint(s, r).unwrap();
            }
        }
        let key = n.verifier();
        (tmp, ledger, key)
    }

    #[test]
    fn inclusion_round_trip_and_tamper() {
        let (_t, ledger, key) = setup();
        for seq in [1, 3, 10, 11, 37] {
            let p = prove_inclusion(&ledger, seq).unwrap();
            assert_eq!(p.tree_size, 37);
            let json = serde_json::to_vec(&p).unwrap();
            let v = verify_proof(&json, &key).unwrap();
            assert_eq!(v.seq, Some(seq));
            assert!(v.payload_checked);
        }
        assert!(prove_inclusion(&ledger, 38).is_err());
        let mut p = prove_inclusion(&ledger, 3).unwrap();
        p.leaf_index = 4;
        assert!(verify_proof(&serde_json::to_vec(&p).unwrap(), &key).is_err());
        let mut p = prove_inclusion(&ledger, 3).unwrap();
        p.payload = Some("{\"n\":4}".into());
        assert!(verify_proof(&serde_json::to_vec(&p).unwrap(), &key).is_err());
        let mut p = prove_inclusion(&ledger, 3).unwrap();
        p.audit_path[0] = b64(&[0; 32]);
        assert!(verify_proof(&serde_json::to_vec(&p).unwrap(), &key).is_err());
        let other = crate::note::SignerKey::generate(key.name()).unwrap();
        let p = prove_inclusion(&ledger, 3).unwrap();
        assert!(matches!(
            verify_proof(&serde_json::to_vec(&p).unwrap(), &other.verifier()),
            Err(ProofError::Signature(_))
        ));
    }

    /// The compact range property: with the first `d` leaves replaced by
    /// their frontier, every inclusion proof of a remaining leaf (and every
    /// consistency proof from a size `>= d`) is still computable and equal.
    #[test]
    fn proofs_from_a_frontier() {
        let all: Vec<Hash> = (0..40u32)
            .map(|i| merkle::leaf_hash(&i.to_le_bytes()))
            .collect();
        for n in 1..=all.len() as u64 {
            let full = &all[..n as usize];
            for d in 0..=n {
                let mut front = CompactTree::new();
                for h in &full[..d as usize] {
                    front.append(*h);
                }
                let l = Leaves {
                    peaks: front.peak_ranges(),
                    front,
                    rest: full[d as usize..].to_vec(),
                };
                assert_eq!(l.root(n).unwrap(), merkle::root_from_leaves(full));
                for idx in d..n {
                    let got = l.build(|sub| merkle::inclusion_proof(idx, n, sub)).unwrap();
                    assert_eq!(got, merkle::inclusion_proof_from_leaves(idx, full).unwrap());
                }
                for old in 1..=n {
                    let got = l.build(|sub| merkle::consistency_proof(old, n, sub));
                    if old >= d {
                        assert_eq!(
                            got.unwrap(),
                            merkle::consistency_proof_from_leaves(old, full).unwrap()
                        );
                    } else if let Ok(p) = got {
                        assert_eq!(p, merkle::consistency_proof_from_leaves(old, full).unwrap());
                    }
                }
                if d > 1 {
                    assert!(l.subtree(0, 1).is_err() || d == 1);
                }
            }
        }
    }

    #[test]
    fn consistency_round_trip_and_tamper() {
        let (_t, ledger, key) = setup();
        let p = prove_consistency(&ledger, 10, Some(37)).unwrap();
        assert!(p.old_checkpoint.is_some());
        let v = verify_proof(&serde_json::to_vec(&p).unwrap(), &key).unwrap();
        assert!(v.old_root_signed);
        let p = prove_consistency(&ledger, 7, None).unwrap();
        assert!(p.old_checkpoint.is_none());
        let v = verify_proof(&serde_json::to_vec(&p).unwrap(), &key).unwrap();
        assert!(!v.old_root_signed);
        let mut bad = p.clone();
        bad.old_root = b64(&[1; 32]);
        assert!(verify_proof(&serde_json::to_vec(&bad).unwrap(), &key).is_err());
        assert!(prove_consistency(&ledger, 7, Some(20)).is_err());
    }
}
