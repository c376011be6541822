//! Forward-secure sealing of checkpoints: an HMAC tag per epoch, under a key
//! that evolves one way and whose past values are erased.
//!
//! A signed checkpoint ([`crate::checkpoint`]) proves what the ledger held,
//! but only as long as the signing key is secret: an intruder with root on the
//! host can take the key, rewrite history and re-sign. Sealing limits that
//! damage in the style of forward-secure logging (Bellare–Yee; `journald
//! --setup-keys`): whoever steals the current key can forge tags for the
//! current and later epochs, but not for earlier ones, because earlier keys
//! no longer exist anywhere on the host.
//!
//! The scheme (Vigil-specific; no external spec):
//!
//! * `k[0]` is 32 random bytes, shown once to the auditor as hex (see
//!   [`SealKey::generate`]) and kept off the host;
//! * `k[i+1] = SHA-256("vigil-seal-evolve" || k[i])`: one-way, so `k[j]`
//!   reveals nothing about `k[i]` for `i < j`;
//! * the tag of a checkpoint body in epoch `i` is
//!   `HMAC-SHA256(k[i], "vigil-seal-v1\n" || decimal(i) || "\n" || body)`,
//!   see [`seal`];
//! * the host stores only the current key ([`SealKeyFile`], mode 0600). When
//!   it evolves, the new key is written to a temporary file, fsynced and
//!   renamed over the old one, then the old file's blocks are overwritten
//!   through a still-open descriptor, and the old key is zeroized in memory;
//! * the auditor recomputes every `k[i]` from `k[0]` and checks each tag
//!   ([`verify_chain`]).
//!
//! Caveats: at epoch 0 the stored key *is* `k[0]`, until the first evolve
//! (an intruder at epoch 0 has no past epochs to forge, so this does not
//! weaken the guarantee, but callers who want `k[0]` never to touch the disk
//! should evolve once before the first save). Erasure is best effort:
//! journaling file systems and SSD wear levelling may keep copies of
//! overwritten blocks, and temporary copies inside the hash functions' stack
//! frames are not scrubbed.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Domain separator of the key evolution hash.
const EVOLVE_LABEL: &[u8] = b"vigil-seal-evolve";
/// Domain separator and version of seal tags.
const TAG_LABEL: &[u8] = b"vigil-seal-v1\n";
/// First line of a seal key file.
const FILE_HEADER: &str = "vigil-seal-key-v1";
/// A seal key file is tiny; refuse to read anything larger.
const MAX_FILE_LEN: u64 = 4096;

/// Highest epoch [`verify_chain`] accepts. Deriving `k[i]` costs `i` hashes,
/// so this bounds the work a hostile seal list can cause (about a minute);
/// it is one epoch a second for eight years.
pub const MAX_VERIFY_EPOCH: u64 = 1 << 28;

type HmacSha256 = Hmac<Sha256>;

/// Errors from sealing, key files and chain verification.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The auditor's initial key is not 64 hex digits.
    #[error("invalid initial seal key: {0}")]
    InvalidInitialKey(String),
    /// A tag does not verify: the body or tag was altered, or forged by
    /// someone without the key of that epoch.
    #[error("seal of epoch {epoch} (entry {index}) does not verify")]
    TagMismatch {
        /// The epoch of the failing seal.
        epoch: u64,
        /// Its position in the list given to [`verify_chain`].
        index: usize,
    },
    /// An epoch beyond [`MAX_VERIFY_EPOCH`] was given to [`verify_chain`].
    #[error("seal epoch {epoch} exceeds the maximum of {max}")]
    EpochTooLarge {
        /// The epoch.
        epoch: u64,
        /// The limit.
        max: u64,
    },
    /// The key cannot evolve past `u64::MAX`.
    #[error("seal key epoch counter exhausted")]
    EpochOverflow,
    /// An I/O operation on a key file failed.
    #[error("seal key I/O error on {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A key file's content is not a seal key.
    #[error("invalid seal key file {path}: {reason}")]
    InvalidKeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A key file is readable or writable by group or others.
    #[error("seal key file {path} has mode {mode:o}; it must be 0600 (no group or other access)")]
    InsecurePermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SealError + '_ {
    move |source| SealError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The sealing key of one epoch. The key bytes are zeroized when dropped or
/// replaced; `Debug` does not print them.
pub struct SealKey {
    epoch: u64,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealKey")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// `k[i+1]` from `k[i]`.
fn next_key(key: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut h = Sha256::new();
    h.update(EVOLVE_LABEL);
    h.update(key);
    let mut out = Zeroizing::new([0u8; 32]);
    h.finalize_into((&mut *out).into());
    out
}

/// The seal tag of `body` in `epoch` under that epoch's key:
/// `HMAC-SHA256(key, "vigil-seal-v1\n" || decimal(epoch) || "\n" || body)`.
pub fn seal(epoch_key: &[u8; 32], epoch: u64, body: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(epoch_key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(TAG_LABEL);
    mac.update(epoch.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

impl SealKey {
    /// Makes a fresh chain: returns the epoch-0 key and `k[0]` as 64 lowercase
    /// hex digits, to be handed to the auditor once and kept off the host.
    pub fn generate() -> (SealKey, Zeroizing<String>) {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut key[..]);
        let hex = Zeroizing::new(hex_encode(&key[..]));
        (SealKey { epoch: 0, key }, hex)
    }

    /// Rebuilds `k[epoch]` from the auditor's `k[0]` (hex).
    pub fn from_initial(initial_key_hex: &str, epoch: u64) -> Result<SealKey, SealError> {
        let mut key = SealKey {
            epoch: 0,
            key: parse_key_hex(initial_key_hex).map_err(SealError::InvalidInitialKey)?,
        };
        for _ in 0..epoch {
            key.evolve()?;
        }
        Ok(key)
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Moves to the next epoch: `k[i+1] = SHA-256("vigil-seal-evolve" || k[i])`.
    /// The old key is overwritten in memory. To also erase it from disk, use
    /// [`SealKeyFile::evolve`].
    pub fn evolve(&mut self) -> Result<(), SealError> {
        *self = self.next()?;
        Ok(())
    }

    /// The key of the next epoch, leaving `self` unchanged.
    fn next(&self) -> Result<SealKey, SealError> {
        Ok(SealKey {
            epoch: self.epoch.checked_add(1).ok_or(SealError::EpochOverflow)?,
            key: next_key(&self.key),
        })
    }

    /// The seal tag of `body` in the current epoch (see [`seal`]).
    pub fn tag(&self, body: &[u8]) -> [u8; 32] {
        seal(&self.key, self.epoch, body)
    }
}

/// The persisted current seal key: a text file of mode 0600 holding the epoch
/// and the key, replaced atomically on every change.
///
/// Protocol: [`SealKeyFile::evolve`] before sealing a new epoch; it persists
/// the new key and erases the old one before the new key is used.
#[derive(Debug)]
pub struct SealKeyFile {
    path: PathBuf,
    key: SealKey,
}

impl SealKeyFile {
    /// Saves `key` to a new file at `path` (fails if it exists).
    pub fn create(path: impl Into<PathBuf>, key: SealKey) -> Result<SealKeyFile, SealError> {
        let path = path.into();
        if path.exists() {
            return Err(SealError::Io {
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "seal key file already exists",
                ),
                path,
            });
        }
        let file = SealKeyFile { path, key };
        file.save()?;
        Ok(file)
    }

    /// Loads the key stored at `path`. Refuses files readable or writable by
    /// group or others.
    pub fn load(path: impl Into<PathBuf>) -> Result<SealKeyFile, SealError> {
        let path = path.into();
        let bad = |reason: &str| SealError::InvalidKeyFile {
            path: path.clone(),
            reason: reason.to_owned(),
        };
        let file = File::open(&path).map_err(io_err(&path))?;
        let meta = file.metadata().map_err(io_err(&path))?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(SealError::InsecurePermissions { path, mode });
        }
        if meta.len() > MAX_FILE_LEN {
            return Err(bad("file is too large"));
        }
        let mut bytes = Zeroizing::new(Vec::new());
        file.take(MAX_FILE_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err(&path))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| bad("not UTF-8"))?;
        let mut lines = text.lines();
        if lines.next() != Some(FILE_HEADER) {
            return Err(bad("missing vigil-seal-key-v1 header"));
        }
        let epoch = lines
            .next()
            .and_then(|l| l.strip_prefix("epoch "))
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| bad("missing or invalid epoch line"))?;
        let key = lines
            .next()
            .and_then(|l| l.strip_prefix("key "))
            .ok_or_else(|| bad("missing key line"))?;
        let key = parse_key_hex(key).map_err(|reason| bad(&reason))?;
        if lines.next().is_some() {
            return Err(bad("unexpected content after the key line"));
        }
        Ok(SealKeyFile {
            path,
            key: SealKey { epoch, key },
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current key.
    pub fn key(&self) -> &SealKey {
        &self.key
    }

    /// The seal tag of `body` in the current epoch.
    pub fn tag(&self, body: &[u8]) -> [u8; 32] {
        self.key.tag(body)
    }

    /// Moves to the next epoch and erases the previous key: the new key is
    /// saved atomically (temporary file, fsync, rename, directory fsync), the
    /// old file's content is overwritten with zeros, and the old key is
    /// zeroized in memory. If saving fails, the file and `self` keep the old
    /// epoch.
    pub fn evolve(&mut self) -> Result<(), SealError> {
        let next = self.key.next()?;
        write_key_file(&self.path, &next)?;
        self.key = next; // drops (and zeroizes) the old key
        Ok(())
    }

    /// Writes the current key to the file (atomically, mode 0600), erasing
    /// what the file held before.
    pub fn save(&self) -> Result<(), SealError> {
        write_key_file(&self.path, &self.key)
    }
}

/// Atomically replaces `path` with `key`, then overwrites the replaced file's
/// blocks through a descriptor opened before the rename.
fn write_key_file(path: &Path, key: &SealKey) -> Result<(), SealError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| SealError::InvalidKeyFile {
        path: path.to_owned(),
        reason: "path has no file name".to_owned(),
    })?;
    let mut tmp_name = name.to_owned();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);

    let mut content = Zeroizing::new(format!("{FILE_HEADER}\nepoch {}\nkey ", key.epoch));
    content.push_str(&Zeroizing::new(hex_encode(&key.key[..])));
    content.push('\n');

    // Keep a handle on the old file so its blocks can be wiped after the rename.
    let old = match OpenOptions::new().write(true).open(path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io_err(path)(e)),
    };

    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&tmp)(e)),
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    // The umask can only clear bits, but be explicit.
    f.set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io_err(&tmp))?;
    f.write_all(content.as_bytes()).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io_err(path))?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(&dir))?;

    if let Some(mut old) = old {
        let len = old.metadata().map_err(io_err(path))?.len();
        let zeros = vec![0u8; usize::try_from(len.min(MAX_FILE_LEN)).unwrap_or(0)];
        old.write_all(&zeros).map_err(io_err(path))?;
        old.sync_all().map_err(io_err(path))?;
    }
    content.zeroize();
    Ok(())
}

/// Auditor side: checks every `(epoch, body, tag)` against keys derived from
/// `k[0]` (`initial_key_hex`, 64 hex digits). Tags are compared in constant
/// time. Seals may come in any order; the first one that fails is reported.
pub fn verify_chain(
    initial_key_hex: &str,
    seals: &[(u64, &[u8], [u8; 32])],
) -> Result<(), SealError> {
    let initial = parse_key_hex(initial_key_hex).map_err(SealError::InvalidInitialKey)?;
    if let Some(&(epoch, _, _)) = seals.iter().find(|s| s.0 > MAX_VERIFY_EPOCH) {
        return Err(SealError::EpochTooLarge {
            epoch,
            max: MAX_VERIFY_EPOCH,
        });
    }
    let mut current = SealKey {
        epoch: 0,
        key: initial.clone(),
    };
    for (index, &(epoch, body, ref tag)) in seals.iter().enumerate() {
        if epoch < current.epoch {
            current = SealKey {
                epoch: 0,
                key: initial.clone(),
            };
        }
        while current.epoch < epoch {
            current.evolve()?;
        }
        let expected = current.tag(body);
        if !bool::from(expected.ct_eq(tag)) {
            return Err(SealError::TagMismatch { epoch, index });
        }
    }
    Ok(())
}

fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Parses a 32-byte key from 64 hex digits (either case, surrounding white
/// space ignored).
fn parse_key_hex(s: &str) -> Result<Zeroizing<[u8; 32]>, String> {
    let s = s.trim();
    if s.len() != 64 {
        return Err(format!(
            "expected 64 hex digits, got {} characters",
            s.len()
        ));
    }
    let mut out = Zeroizing::new([0u8; 32]);
    let digit = |c: u8| -> Result<u8, String> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err("key contains a non-hex character".to_owned()),
        }
    };
    for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // k[0] = 00..00; k[1] = SHA-256("vigil-seal-evolve" || k[0]).
        let zero = "0".repeat(64);
        let k1 = SealKey::from_initial(&zero, 1).unwrap();
        let mut h = Sha256::new();
        h.update(b"vigil-seal-evolve");
        h.update([0u8; 32]);
        let want: [u8; 32] = h.finalize().into();
        assert_eq!(*k1.key, want);
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&want).unwrap();
        mac.update(b"vigil-seal-v1\n1\nbody");
        let tag: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(k1.tag(b"body"), tag);
        assert_eq!(seal(&want, 1, b"body"), tag);
    }

    #[test]
    fn tags_verify_from_initial_key() {
        let (mut key, initial) = SealKey::generate();
        assert_eq!(initial.len(), 64);
        let mut seals = Vec::new();
        let bodies: Vec<Vec<u8>> = (0..5).map(|i| format!("body {i}\n").into_bytes()).collect();
        for body in &bodies {
            seals.push((key.epoch(), body.as_slice(), key.tag(body)));
            key.evolve().unwrap();
        }
        verify_chain(&initial, &seals).unwrap();
        // Any order works.
        seals.reverse();
        verify_chain(&initial, &seals).unwrap();
        verify_chain(&initial.to_uppercase(), &seals).unwrap();
    }

    #[test]
    fn altered_body_or_tag_reports_first_failing_epoch() {
        let (mut key, initial) = SealKey::generate();
        let mut seals = Vec::new();
        for _ in 0..4 {
            seals.push((key.epoch(), &b"same body"[..], key.tag(b"same body")));
            key.evolve().unwrap();
        }
        let mut bad = seals.clone();
        bad[2].1 = b"other body";
        assert!(matches!(
            verify_chain(&initial, &bad),
            Err(SealError::TagMismatch { epoch: 2, index: 2 })
        ));
        let mut bad = seals.clone();
        bad[1].2[0] ^= 1;
        bad[3].2[0] ^= 1;
        assert!(matches!(
            verify_chain(&initial, &bad),
            Err(SealError::TagMismatch { epoch: 1, index: 1 })
        ));
        // Moving a valid seal to another epoch fails too.
        let mut bad = seals.clone();
        bad[0].0 = 1;
        assert!(matches!(
            verify_chain(&initial, &bad),
            Err(SealError::TagMismatch { epoch: 1, index: 0 })
        ));
    }

    #[test]
    fn stolen_later_key_cannot_forge_earlier_epochs() {
        let (mut key, initial) = SealKey::generate();
        let honest = key.tag(b"epoch 0 checkpoint");
        for _ in 0..3 {
            key.evolve().unwrap();
        }
        // The attacker holds k[3] and rewrites epoch 0 and 2 with it.
        let forged = b"epoch 0 checkpoint, rewritten";
        let attacker = |epoch: u64| seal(&key.key, epoch, forged);
        for epoch in [0u64, 2] {
            let tag = attacker(epoch);
            assert!(matches!(
                verify_chain(&initial, &[(epoch, &forged[..], tag)]),
                Err(SealError::TagMismatch { .. })
            ));
        }
        // It can still seal the current epoch (inherent) and the honest seal stands.
        verify_chain(
            &initial,
            &[
                (0, &b"epoch 0 checkpoint"[..], honest),
                (3, &forged[..], attacker(3)),
            ],
        )
        .unwrap();
    }

    #[test]
    fn bad_initial_keys_and_epochs() {
        assert!(matches!(
            verify_chain("abcd", &[]),
            Err(SealError::InvalidInitialKey(_))
        ));
        assert!(matches!(
            verify_chain(&"g".repeat(64), &[]),
            Err(SealError::InvalidInitialKey(_))
        ));
        let zero = "0".repeat(64);
        assert!(matches!(
            verify_chain(&zero, &[(u64::MAX, &b""[..], [0; 32])]),
            Err(SealError::EpochTooLarge { .. })
        ));
        let mut key = SealKey {
            epoch: u64::MAX,
            key: Zeroizing::new([0; 32]),
        };
        assert!(matches!(key.evolve(), Err(SealError::EpochOverflow)));
        assert_eq!(key.epoch(), u64::MAX);
    }

    #[test]
    fn key_file_round_trip_mode_and_erasure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seal.key");
        let (key, initial) = SealKey::generate();
        let mut file = SealKeyFile::create(&path, key).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let before = fs::read_to_string(&path).unwrap();
        assert!(before.contains(initial.as_str()), "epoch 0 stores k[0]");

        // Keep a hard link to the old inode to see that its content was wiped.
        let link = dir.path().join("old-inode");
        fs::hard_link(&path, &link).unwrap();
        file.evolve().unwrap();
        let after = fs::read_to_string(&path).unwrap();
        assert!(
            !after.contains(initial.as_str()),
            "old key still in the file"
        );
        assert!(after.contains("epoch 1\n"));
        let old = fs::read(&link).unwrap();
        assert!(old.iter().all(|&b| b == 0), "old inode not wiped");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!dir.path().join("seal.key.tmp").exists());

        let loaded = SealKeyFile::load(&path).unwrap();
        assert_eq!(loaded.key().epoch(), 1);
        let tag = loaded.tag(b"cp");
        verify_chain(&initial, &[(1, &b"cp"[..], tag)]).unwrap();

        assert!(SealKeyFile::create(&path, SealKey::generate().0).is_err());
    }

    #[test]
    fn key_file_rejects_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seal.key");
        let (key, _) = SealKey::generate();
        SealKeyFile::create(&path, key).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            SealKeyFile::load(&path),
            Err(SealError::InsecurePermissions { mode: 0o644, .. })
        ));
        let write = |content: &str| {
            fs::write(&path, content).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        };
        let k = "ab".repeat(32);
        for bad in [
            String::new(),
            format!("wrong-header\nepoch 0\nkey {k}\n"),
            format!("{FILE_HEADER}\nepoch -1\nkey {k}\n"),
            format!("{FILE_HEADER}\nepoch +1\nkey {k}\n"),
            format!("{FILE_HEADER}\nepoch 0\nkey {}\n", &k[..62]),
            format!("{FILE_HEADER}\nepoch 0\nkey {k}\nextra\n"),
            format!("{FILE_HEADER}\nepoch 0\n"),
        ] {
            write(&bad);
            assert!(
                matches!(
                    SealKeyFile::load(&path),
                    Err(SealError::InvalidKeyFile { .. })
                ),
                "accepted {bad:?}"
            );
        }
        write(&format!("{FILE_HEADER}\nepoch 7\nkey {k}\n"));
        assert_eq!(SealKeyFile::load(&path).unwrap().key().epoch(), 7);
        assert!(matches!(
            SealKeyFile::load(dir.path().join("missing")),
            Err(SealError::Io { .. })
        ));
    }

    #[test]
    fn failed_evolve_keeps_old_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seal.key");
        let mut file = SealKeyFile::create(&path, SealKey::generate().0).unwrap();
        // A directory where the temp file must go makes the save fail.
        fs::create_dir(dir.path().join("seal.key.tmp")).unwrap();
        assert!(file.evolve().is_err());
        assert_eq!(file.key().epoch(), 0);
        assert_eq!(SealKeyFile::load(&path).unwrap().key().epoch(), 0);
    }
}
