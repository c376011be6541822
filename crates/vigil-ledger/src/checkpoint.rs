//! Ledger checkpoints in the C2SP `tlog-checkpoint` format
//! (<https://c2sp.org/tlog-checkpoint>; a copy is in
//! `shared/corpus/specs/c2sp/tlog-checkpoint.md`).
//!
//! A checkpoint commits to the ledger's Merkle tree at a given size. Vigil
//! publishes it as a [signed note](crate::note) so that auditors and witnesses
//! can verify it with standard transparency-log tooling, and later check
//! consistency and inclusion proofs against its root.
//!
//! The body (the note text) is at least three non-empty lines:
//!
//! ```text
//! example.com/behind-the-sofa
//! 20852163
//! CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
//! ```
//!
//! 1. the **origin**, the log's identity (non-empty);
//! 2. the **tree size**, in decimal with no leading zeros (`0` for an empty tree);
//! 3. the **root hash**, base64 of the 32-byte RFC 6962 Merkle tree root;
//! 4. optional **extension lines**, opaque and non-empty (not recommended).
//!
//! Vigil additionally requires the signing key to be named after the origin
//! (the spec's "SHOULD match"), both when signing and when opening.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::note::{self, Note, NoteError, SignerKey, VerifierKey};

/// Errors from building, parsing, signing or opening checkpoints.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The checkpoint body does not follow the tlog-checkpoint format.
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    /// The signed note itself is malformed or does not verify.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The signing key's name is not the checkpoint's origin.
    #[error("key {key:?} cannot sign a checkpoint of origin {origin:?}: the key name must equal the origin")]
    KeyNameMismatch {
        /// The signer key name.
        key: String,
        /// The checkpoint origin.
        origin: String,
    },
    /// The note verified, but not with a trusted key named after the origin.
    #[error("checkpoint of origin {origin:?} is not signed by a trusted key of that name")]
    OriginNotSigned {
        /// The checkpoint origin.
        origin: String,
    },
}

/// A transparency-log checkpoint: the ledger's Merkle tree head at a size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, e.g. `vigil.example/ledger`.
    pub origin: String,
    /// Number of leaves (ledger records) in the tree.
    pub size: u64,
    /// RFC 6962 Merkle tree root hash at `size`.
    pub root: [u8; 32],
    /// Opaque extension lines, each non-empty and without the newline.
    pub extensions: Vec<String>,
}

fn malformed(why: impl Into<String>) -> CheckpointError {
    CheckpointError::Malformed(why.into())
}

/// Checks a line we are about to write: non-empty, no control characters.
fn check_line(what: &str, line: &str) -> Result<(), CheckpointError> {
    if line.is_empty() {
        return Err(malformed(format!("{what} is empty")));
    }
    if line.chars().any(|c| c < ' ') {
        return Err(malformed(format!(
            "{what} contains a newline or another control character"
        )));
    }
    Ok(())
}

impl Checkpoint {
    /// The note text: `origin\nsize\nbase64(root)\n`, then each extension line
    /// and a newline. This is a valid body only if [`Checkpoint::validate`]
    /// succeeds (signing checks that).
    pub fn to_body(&self) -> String {
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        );
        for ext in &self.extensions {
            body.push_str(ext);
            body.push('\n');
        }
        body
    }

    /// Checks that [`Checkpoint::to_body`] gives a well-formed body: the origin
    /// and every extension line are non-empty and free of control characters.
    pub fn validate(&self) -> Result<(), CheckpointError> {
        check_line("origin", &self.origin)?;
        for ext in &self.extensions {
            check_line("extension line", ext)?;
        }
        Ok(())
    }

    /// Parses a checkpoint body (a note text), enforcing the tlog-checkpoint
    /// rules: a final newline, at least three lines, a non-empty origin, a
    /// decimal size without sign or leading zeros that fits in a `u64`, a root
    /// that is canonical base64 of exactly 32 bytes, and non-empty extension
    /// lines. No ASCII control characters other than newline are allowed.
    pub fn parse(body: &str) -> Result<Checkpoint, CheckpointError> {
        let lines = body
            .strip_suffix('\n')
            .ok_or_else(|| malformed("body does not end with a newline"))?;
        if lines.chars().any(|c| c < ' ' && c != '\n') {
            return Err(malformed("body contains an ASCII control character"));
        }
        let mut lines = lines.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(malformed("origin line is empty"));
        }
        let size = lines
            .next()
            .ok_or_else(|| malformed("missing tree size line"))?;
        let size = parse_size(size)?;
        let root = lines
            .next()
            .ok_or_else(|| malformed("missing root hash line"))?;
        let root = BASE64
            .decode(root)
            .map_err(|_| malformed("root hash is not valid base64"))?;
        let root: [u8; 32] = root
            .as_slice()
            .try_into()
            .map_err(|_| malformed(format!("root hash is {} bytes, not 32", root.len())))?;
        let extensions = lines
            .map(|line| {
                if line.is_empty() {
                    Err(malformed("extension line is empty"))
                } else {
                    Ok(line.to_owned())
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            extensions,
        })
    }

    /// Signs the checkpoint with `key`, whose name must equal the origin, and
    /// returns the signed note.
    pub fn sign(&self, key: &SignerKey) -> Result<String, CheckpointError> {
        self.validate()?;
        if key.name() != self.origin {
            return Err(CheckpointError::KeyNameMismatch {
                key: key.name().to_owned(),
                origin: self.origin.clone(),
            });
        }
        Ok(note::sign(&self.to_body(), std::slice::from_ref(key))?)
    }

    /// Verifies a signed checkpoint against the trusted keys `known` (see
    /// [`note::open`]) and parses its body. At least one verified signature
    /// must come from a key named after the checkpoint's origin.
    pub fn open(
        signed: &[u8],
        known: &[VerifierKey],
    ) -> Result<(Checkpoint, Note), CheckpointError> {
        let note = note::open(signed, known)?;
        let checkpoint = Checkpoint::parse(&note.text)?;
        if !note.signatures.iter().any(|s| s.name == checkpoint.origin) {
            return Err(CheckpointError::OriginNotSigned {
                origin: checkpoint.origin,
            });
        }
        Ok((checkpoint, note))
    }
}

/// Parses the tree size: ASCII digits only, no leading zero unless exactly `0`.
fn parse_size(s: &str) -> Result<u64, CheckpointError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!(
            "tree size {s:?} is not a decimal number"
        )));
    }
    if s.len() > 1 && s.starts_with('0') {
        return Err(malformed(format!("tree size {s:?} has a leading zero")));
    }
    s.parse::<u64>()
        .map_err(|_| malformed(format!("tree size {s:?} does not fit in 64 bits")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_BODY: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    fn sample() -> Checkpoint {
        Checkpoint {
            origin: "vigil.example/ledger".to_owned(),
            size: 42,
            root: [7u8; 32],
            extensions: vec![],
        }
    }

    #[test]
    fn parses_spec_example() {
        let cp = Checkpoint::parse(SPEC_BODY).unwrap();
        assert_eq!(cp.origin, "example.com/behind-the-sofa");
        assert_eq!(cp.size, 20852163);
        assert_eq!(cp.root[0], 0x0a);
        assert!(cp.extensions.is_empty());
        assert_eq!(cp.to_body(), SPEC_BODY);
    }

    #[test]
    fn body_round_trip_with_extensions() {
        let mut cp = sample();
        cp.extensions = vec!["ext one".to_owned(), "\u{2014} looks like a sig".to_owned()];
        let body = cp.to_body();
        assert_eq!(Checkpoint::parse(&body).unwrap(), cp);
        let empty = Checkpoint {
            size: 0,
            ..sample()
        };
        assert!(empty.to_body().contains("\n0\n"));
        assert_eq!(Checkpoint::parse(&empty.to_body()).unwrap(), empty);
        let max = Checkpoint {
            size: u64::MAX,
            ..sample()
        };
        assert_eq!(Checkpoint::parse(&max.to_body()).unwrap(), max);
    }

    #[test]
    fn malformed_bodies_rejected() {
        let root = BASE64.encode([7u8; 32]);
        let cases = [
            (String::new(), "empty"),
            ("o\n1\n".to_owned(), "no root"),
            ("o\n".to_owned(), "only origin"),
            (format!("o\n1\n{root}"), "no final newline"),
            (format!("\n1\n{root}\n"), "empty origin"),
            (format!("o\n01\n{root}\n"), "leading zero"),
            (format!("o\n00\n{root}\n"), "double zero"),
            (format!("o\n+1\n{root}\n"), "plus sign"),
            (format!("o\n-1\n{root}\n"), "negative"),
            (format!("o\n 1\n{root}\n"), "space"),
            (format!("o\n\n{root}\n"), "empty size"),
            (format!("o\n1e3\n{root}\n"), "exponent"),
            (format!("o\n18446744073709551616\n{root}\n"), "overflow"),
            (
                format!("o\n1\n{}\n", BASE64.encode([7u8; 31])),
                "31-byte root",
            ),
            (
                format!("o\n1\n{}\n", BASE64.encode([7u8; 33])),
                "33-byte root",
            ),
            (
                format!("o\n1\n{}\n", root.trim_end_matches('=')),
                "unpadded root",
            ),
            (
                "o\n1\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwd=\n".to_owned(),
                "non-canonical root",
            ),
            (format!("o\n1\n{}\n", hex32()), "hex root"),
            (format!("o\n1\n{root}\n\n"), "empty extension"),
            (format!("o\n1\n{root}\next\n\n"), "trailing empty extension"),
            (format!("o\n1\n{root}\r\n"), "CRLF"),
            (format!("o\t\n1\n{root}\n"), "tab in origin"),
        ];
        for (body, why) in cases {
            assert!(
                matches!(Checkpoint::parse(&body), Err(CheckpointError::Malformed(_))),
                "{why}: {body:?} accepted"
            );
        }
    }

    fn hex32() -> String {
        "07".repeat(32)
    }

    #[test]
    fn sign_and_open() {
        let key = SignerKey::generate("vigil.example/ledger").unwrap();
        let cp = sample();
        let signed = cp.sign(&key).unwrap();
        assert!(signed.starts_with(&cp.to_body()));
        let (back, note) = Checkpoint::open(signed.as_bytes(), &[key.verifier()]).unwrap();
        assert_eq!(back, cp);
        assert_eq!(note.signatures[0].name, "vigil.example/ledger");
        // Tampered size.
        let forged = signed.replacen("\n42\n", "\n43\n", 1);
        assert!(matches!(
            Checkpoint::open(forged.as_bytes(), &[key.verifier()]),
            Err(CheckpointError::Note(NoteError::InvalidSignature { .. }))
        ));
    }

    #[test]
    fn sign_rejects_invalid_checkpoints() {
        let key = SignerKey::generate("vigil.example/ledger").unwrap();
        let other = SignerKey::generate("vigil.example/other").unwrap();
        assert!(matches!(
            sample().sign(&other),
            Err(CheckpointError::KeyNameMismatch { .. })
        ));
        let mut bad = sample();
        bad.extensions.push(String::new());
        assert!(matches!(bad.sign(&key), Err(CheckpointError::Malformed(_))));
        let mut bad = sample();
        bad.origin = "vigil.example/ledger\n99".to_owned();
        assert!(matches!(bad.sign(&key), Err(CheckpointError::Malformed(_))));
        bad.origin = String::new();
        assert!(matches!(bad.sign(&key), Err(CheckpointError::Malformed(_))));
    }

    #[test]
    fn open_requires_signature_named_after_origin() {
        // A trusted key of another name signs a note whose body claims our origin.
        let other = SignerKey::generate("vigil.example/other").unwrap();
        let signed = note::sign(&sample().to_body(), std::slice::from_ref(&other)).unwrap();
        assert!(matches!(
            Checkpoint::open(signed.as_bytes(), &[other.verifier()]),
            Err(CheckpointError::OriginNotSigned { .. })
        ));
    }

    #[test]
    fn open_rejects_malformed_body_even_if_signed() {
        let key = SignerKey::generate("vigil.example/ledger").unwrap();
        let signed = note::sign(
            "vigil.example/ledger\n007\nAAAA\n",
            std::slice::from_ref(&key),
        )
        .unwrap();
        assert!(matches!(
            Checkpoint::open(signed.as_bytes(), &[key.verifier()]),
            Err(CheckpointError::Malformed(_))
        ));
    }
}
