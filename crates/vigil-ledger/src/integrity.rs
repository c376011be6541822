//! The notary: signed, sealed checkpoints of the ledger's Merkle tree.
//!
//! A [`Notary`] holds the ledger's Ed25519 signing key (`keys/ledger.key`)
//! and its forward-secure seal key (`keys/seal.key`), both mode 0600. Each
//! [`Notary::checkpoint`] signs the tree's size and root as a C2SP
//! tlog-checkpoint, seals the checkpoint body with the current epoch key
//! (evolving, and so erasing, the previous key first), and appends the
//! result as one JSON line to `ledger/checkpoints.log`.
//!
//! On first use the notary creates both keys and returns [`InitSecrets`]:
//! the verifier key to publish and the initial seal key `k[0]` for the
//! auditor to keep offline. `k[0]` is never written to disk: the stored key
//! starts at epoch 1.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::merkle::Hash;
use crate::note::{NoteError, SignerKey, VerifierKey};
use crate::seal::{SealError, SealKey, SealKeyFile};

/// Name of the checkpoint log inside the ledger directory.
pub const CHECKPOINT_LOG: &str = "checkpoints.log";

/// One signed, sealed checkpoint as stored in `checkpoints.log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// Seal epoch whose key made `seal`.
    pub epoch: u64,
    /// The C2SP signed note (checkpoint body and signature lines).
    pub note: String,
    /// HMAC-SHA256 seal of the checkpoint body, hex.
    pub seal: String,
    /// When it was made (RFC 3339), for people; not covered by the signature.
    pub time: String,
}

impl CheckpointRecord {
    /// The checkpoint body (the note text, without signatures).
    pub fn body(&self) -> &str {
        match self.note.find("\n\n") {
            Some(i) => &self.note[..=i],
            None => &self.note,
        }
    }

    /// Parses the body without checking the signature.
    pub fn checkpoint_unverified(&self) -> Result<Checkpoint, CheckpointError> {
        Checkpoint::parse(self.body())
    }
}

/// Secrets shown once when the keys are created.
pub struct InitSecrets {
    /// The verifier key in signed-note text form (`name+hash+base64`).
    pub verifier_key: String,
    /// The initial seal key `k[0]` (hex), for the auditor; never stored.
    pub initial_seal_key: Zeroizing<String>,
}

/// Errors of the notary.
#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    /// A key or log file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key file is malformed.
    #[error("{path}: {reason}")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Signing failed.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The checkpoint was malformed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The seal key failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// A line of the checkpoint log is not a checkpoint record.
    #[error("{path} line {line}: {reason}")]
    BadLog {
        /// The log.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> IntegrityError + '_ {
    move |source| IntegrityError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Paths of the notary's key files inside `keys_dir`.
pub fn signer_key_path(keys_dir: &Path) -> PathBuf {
    keys_dir.join("ledger.key")
}

/// Path of the seal key file inside `keys_dir`.
pub fn seal_key_path(keys_dir: &Path) -> PathBuf {
    keys_dir.join("seal.key")
}

/// Loads the signing key from `keys_dir`.
pub fn load_signer(keys_dir: &Path) -> Result<SignerKey, IntegrityError> {
    let path = signer_key_path(keys_dir);
    let meta = fs::metadata(&path).map_err(io_err(&path))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(IntegrityError::BadKey {
            path,
            reason: "key file is readable by others (want mode 0600)".into(),
        });
    }
    if meta.len() > 4096 {
        return Err(IntegrityError::BadKey {
            path,
            reason: format!("{} bytes is too large for a key file", meta.len()),
        });
    }
    let text = Zeroizing::new(fs::read_to_string(&path).map_err(io_err(&path))?);
    text.trim()
        .parse()
        .map_err(|e: NoteError| IntegrityError::BadKey {
            path,
            reason: e.to_string(),
        })
}

/// The verifier key of the ledger whose keys live in `keys_dir`.
pub fn load_verifier(keys_dir: &Path) -> Result<VerifierKey, IntegrityError> {
    Ok(load_signer(keys_dir)?.verifier())
}

/// Signs and seals checkpoints.
pub struct Notary {
    signer: SignerKey,
    seal: SealKeyFile,
    log_path: PathBuf,
    last: Option<Checkpoint>,
}

impl std::fmt::Debug for Notary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notary")
            .field("origin", &self.signer.name())
            .field("log", &self.log_path)
            .finish_non_exhaustive()
    }
}

impl Notary {
    /// Opens the notary, creating keys on first use (then returning the
    /// secrets to show once).
    pub fn open_or_init(
        keys_dir: &Path,
        ledger_dir: &Path,
    ) -> Result<(Notary, Option<InitSecrets>), IntegrityError> {
        fs::create_dir_all(keys_dir).map_err(io_err(keys_dir))?;
        let _ = fs::set_permissions(keys_dir, fs::Permissions::from_mode(0o700));
        let signer_path = signer_key_path(keys_dir);
        let seal_path = seal_key_path(keys_dir);
        let mut secrets = None;
        let signer = if signer_path.exists() {
            load_signer(keys_dir)?
        } else {
            let mut id = [0u8; 8];
            rand::rngs::OsRng.fill_bytes(&mut id);
            let origin = format!("vigil.local/{}", hex::encode(id));
            let key = SignerKey::generate(&origin)?;
            write_private(&signer_path, key.to_string().as_bytes())?;
            secrets = Some(InitSecrets {
                verifier_key: key.verifier().to_string(),
                initial_seal_key: Zeroizing::new(String::new()),
            });
            key
        };
        let seal = if seal_path.exists() {
            SealKeyFile::load(&seal_path)?
        } else {
            let (mut k, initial) = SealKey::generate();
            // k[0] goes to the auditor only: the host keeps k[1] onwards.
            k.evolve()?;
            let file = SealKeyFile::create(&seal_path, k)?;
            let s = secrets.get_or_insert_with(|| InitSecrets {
                verifier_key: signer.verifier().to_string(),
                initial_seal_key: Zeroizing::new(String::new()),
            });
            s.initial_seal_key = initial;
            file
        };
        let log_path = ledger_dir.join(CHECKPOINT_LOG);
        let last = read_checkpoints(ledger_dir)?
            .last()
            .and_then(|r| r.checkpoint_unverified().ok());
        Ok((
            Notary {
                signer,
                seal,
                log_path,
                last,
            },
            secrets,
        ))
    }

    /// The key that verifies this notary's checkpoints.
    pub fn verifier(&self) -> VerifierKey {
        self.signer.verifier()
    }

    /// The checkpoint origin (also the key name).
    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    /// The most recent checkpoint.
    pub fn last(&self) -> Option<&Checkpoint> {
        self.last.as_ref()
    }

    /// Signs, seals and logs a checkpoint for a tree of `size` leaves with `root`.
    pub fn checkpoint(
        &mut self,
        size: u64,
        root: Hash,
    ) -> Result<CheckpointRecord, IntegrityError> {
        let cp = Checkpoint {
            origin: self.signer.name().to_owned(),
            size,
            root,
            extensions: Vec::new(),
        };
        let note = cp.sign(&self.signer)?;
        // Evolve first: the new epoch's key seals this checkpoint, and the
        // key of every earlier epoch is already gone from disk and memory.
        self.seal.evolve()?;
        let tag = self.seal.tag(cp.to_body().as_bytes());
        let rec = CheckpointRecord {
            epoch: self.seal.key().epoch(),
            note,
            seal: hex::encode(tag),
            time: now_rfc3339(),
        };
        let mut line = serde_json::to_string(&rec).map_err(|e| IntegrityError::BadLog {
            path: self.log_path.clone(),
            line: 0,
            reason: e.to_string(),
        })?;
        line.push('\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(io_err(&self.log_path))?;
        f.write_all(line.as_bytes())
            .map_err(io_err(&self.log_path))?;
        f.sync_data().map_err(io_err(&self.log_path))?;
        self.last = Some(cp);
        Ok(rec)
    }
}

/// Reads every record of `ledger_dir/checkpoints.log` (empty if absent).
pub fn read_checkpoints(ledger_dir: &Path) -> Result<Vec<CheckpointRecord>, IntegrityError> {
    let path = ledger_dir.join(CHECKPOINT_LOG);
    let f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(IntegrityError::Io { path, source: e }),
    };
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(io_err(&path))?;
        if line.trim().is_empty() {
            continue;
        }
        let rec: CheckpointRecord =
            serde_json::from_str(&line).map_err(|e| IntegrityError::BadLog {
                path: path.clone(),
                line: i + 1,
                reason: e.to_string(),
            })?;
        out.push(rec);
    }
    Ok(out)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), IntegrityError> {
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.write_all(b"\n").map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))?;
    // The rename is only durable once the directory entry is.
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))?;
    }
    Ok(())
}

fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64)
}

/// Seconds since the epoch in RFC 3339 (UTC), without pulling chrono into the ledger.
pub(crate) fn rfc3339(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_checkpoint_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let ledger = dir.path().join("ledger");
        fs::create_dir_all(&ledger).unwrap();
        let (mut n, secrets) = Notary::open_or_init(&keys, &ledger).unwrap();
        let secrets = secrets.expect("first start returns secrets");
        assert_eq!(secrets.initial_seal_key.len(), 64);
        assert!(secrets.verifier_key.starts_with("vigil.local/"));
        assert_eq!(
            fs::metadata(signer_key_path(&keys))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        // k[0] is not on disk.
        let stored = fs::read_to_string(seal_key_path(&keys)).unwrap();
        assert!(!stored.contains(secrets.initial_seal_key.as_str()));

        let rec = n.checkpoint(3, [7u8; 32]).unwrap();
        let rec2 = n.checkpoint(5, [8u8; 32]).unwrap();
        assert_eq!(rec2.epoch, rec.epoch + 1);
        let v: VerifierKey = secrets.verifier_key.parse().unwrap();
        let (cp, _) = Checkpoint::open(rec.note.as_bytes(), &[v]).unwrap();
        assert_eq!((cp.size, cp.root), (3, [7u8; 32]));

        let (n2, again) = Notary::open_or_init(&keys, &ledger).unwrap();
        assert!(again.is_none());
        assert_eq!(n2.last().unwrap().size, 5);
        let all = read_checkpoints(&ledger).unwrap();
        assert_eq!(all.len(), 2);
        // The auditor's k[0] verifies every seal.
        let items: Vec<(u64, &[u8], [u8; 32])> = all
            .iter()
            .map(|r| {
                let mut t = [0u8; 32];
                t.copy_from_slice(&hex::decode(&r.seal).unwrap());
                (r.epoch, r.body().as_bytes(), t)
            })
            .collect();
        crate::seal::verify_chain(&secrets.initial_seal_key, &items).unwrap();
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_779), (2026, 11, 22));
    }
}
