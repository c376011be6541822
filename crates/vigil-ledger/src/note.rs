//! Signed notes: text signed by one or more Ed25519 keys, in the C2SP
//! `signed-note` format (<https://c2sp.org/signed-note>, v1.0.0; a copy is in
//! `shared/corpus/specs/c2sp/signed-note.md`).
//!
//! Vigil publishes its ledger checkpoints (see [`crate::checkpoint`]) as signed
//! notes so that auditors, witnesses and existing transparency-log tooling (the
//! Go `golang.org/x/mod/sumdb/note` package, `litetlog`, Sigsum, ...) can verify
//! them without any Vigil-specific code.
//!
//! A signed note is a text ending in a newline, a blank line, then one or more
//! signature lines:
//!
//! ```text
//! This is an example message.
//!
//! — example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=
//! ```
//!
//! Each signature line is an em dash (U+2014), a space, the key name, a space,
//! and `base64(key ID || signature)`. The 4-byte key ID ("key hash") is
//! `SHA-256(name || 0x0A || 0x01 || public key)[:4]` for Ed25519 (signature
//! type `0x01`, the only type this module supports).
//!
//! Keys have text forms:
//!
//! * verifier key (public, from the spec): `name+hex(key ID)+base64(0x01 || public key)`;
//! * signer key (secret; the spec defines none, so this is the form of the Go
//!   `note` package): `PRIVATE+KEY+name+hex(key ID)+base64(0x01 || 32-byte seed)`.
//!
//! [`open`] verifies a note against a set of trusted [`VerifierKey`]s: it
//! ignores signatures whose (name, key ID) pair is unknown, rejects the whole
//! note if a signature from a known key fails to verify, and rejects it if no
//! known key signed it. The note text MUST NOT be used unless [`open`]
//! succeeded.
//!
//! ```
//! use vigil_ledger::note::{self, SignerKey};
//!
//! # fn main() -> Result<(), vigil_ledger::note::NoteError> {
//! let signer = SignerKey::generate("vigil.example/ledger")?;
//! let verifier = signer.verifier();
//! let signed = note::sign("hello\n", std::slice::from_ref(&signer))?;
//! let opened = note::open(signed.as_bytes(), &[verifier])?;
//! assert_eq!(opened.text, "hello\n");
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Signature type identifier byte of Ed25519 signatures in signed notes.
pub const ALG_ED25519: u8 = 0x01;

/// Largest note [`open`] accepts, in bytes (1 MiB). The spec asks verifiers to
/// bound a note's size or signature count; this is far above any checkpoint.
pub const MAX_NOTE_SIZE: usize = 1 << 20;

/// Most signature lines [`open`] accepts (known or not) and [`sign`] writes.
/// The spec requires accepting at least 16; the Go `note` package allows 100.
pub const MAX_SIGNATURES: usize = 100;

/// Start of every signature line: em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Prefix of the text form of a [`SignerKey`].
const PRIVATE_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// Length of an Ed25519 signature.
const ED25519_SIGNATURE_LEN: usize = 64;

/// Everything that can go wrong when making, parsing or verifying notes and keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// A key name is empty or contains a Unicode space or `+`.
    #[error("invalid key name {0:?}: it must be non-empty and contain no spaces or '+'")]
    InvalidKeyName(String),
    /// A verifier key string is malformed.
    #[error("invalid verifier key: {0}")]
    InvalidVerifierKey(String),
    /// A signer key string is malformed.
    #[error("invalid signer key: {0}")]
    InvalidSignerKey(String),
    /// The text given to [`sign`] cannot be the text of a note.
    #[error("invalid note text: {0}")]
    InvalidText(String),
    /// [`sign`] was called without signers, or with the same key twice.
    #[error("invalid signer list: {0}")]
    InvalidSigners(String),
    /// The note exceeds [`MAX_NOTE_SIZE`].
    #[error("signed note of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// Size of the note.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The note has more than [`MAX_SIGNATURES`] signature lines.
    #[error("signed note has {count} signature lines, more than the maximum of {max}")]
    TooManySignatures {
        /// Signature lines in the note.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The note does not follow the signed-note format.
    #[error("malformed signed note: {0}")]
    Malformed(String),
    /// Two or more trusted keys share the name and key ID of a signature.
    #[error("more than one trusted key has name {name:?} and key ID {}", hex4(.key_hash))]
    AmbiguousKey {
        /// Key name.
        name: String,
        /// Key ID.
        key_hash: [u8; 4],
    },
    /// A signature from a trusted key does not verify: the note is rejected.
    #[error("signature by trusted key {name:?} (key ID {}) does not verify", hex4(.key_hash))]
    InvalidSignature {
        /// Key name.
        name: String,
        /// Key ID.
        key_hash: [u8; 4],
    },
    /// No signature line comes from a trusted key.
    #[error("signed note has no signature from a trusted key ({unknown} signature(s) from unknown keys ignored)")]
    NoTrustedSignature {
        /// Signature lines from keys not in the trusted set.
        unknown: usize,
    },
}

/// A signature line of a note: who signed and the signature bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The key ID (big-endian), the first four bytes of the key hash.
    pub key_hash: [u8; 4],
    /// The signature itself, without the key ID (64 bytes for Ed25519).
    pub signature: Vec<u8>,
}

/// A verified note, as returned by [`open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The note text, final newline included, blank separator line excluded.
    pub text: String,
    /// The signatures of trusted keys that verified, in note order, one per
    /// (name, key ID). Signatures of unknown keys are not included.
    pub signatures: Vec<NoteSignature>,
}

/// An Ed25519 note signing key with its name. Its text form (via `Display` /
/// `FromStr`) is `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || seed)>`.
///
/// The secret is wiped from memory when the key is dropped; `Debug` does not
/// print it, but `Display` does, on purpose, so treat that string as a secret.
#[derive(Clone)]
pub struct SignerKey {
    name: String,
    key_hash: [u8; 4],
    key: SigningKey,
}

/// An Ed25519 note verifier key: name, key ID and public key. Its text form
/// (via `Display` / `FromStr`) is `<name>+<hex key ID>+<base64(0x01 || public key)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_hash: [u8; 4],
    key: VerifyingKey,
}

/// Whether `name` is a valid key name: non-empty, no Unicode white space and
/// no `+`.
pub fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// The key ID of a key: `SHA-256(name || 0x0A || alg || public_key)[:4]`.
pub fn key_hash(name: &str, alg: u8, public_key: &[u8]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([alg]);
    h.update(public_key);
    let digest = h.finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if is_valid_key_name(name) {
        Ok(())
    } else {
        Err(NoteError::InvalidKeyName(name.to_owned()))
    }
}

/// Lowercase hex of a key ID.
fn hex4(b: &[u8; 4]) -> String {
    format!("{:08x}", u32::from_be_bytes(*b))
}

/// Parses exactly eight lowercase hex digits.
fn parse_hex4(s: &str) -> Option<[u8; 4]> {
    if s.len() != 8 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u32::from_str_radix(s, 16).ok().map(u32::to_be_bytes)
}

/// Splits `<name>+<hex>+<base64>` at its first two `+` (base64 may hold more).
fn split_key_text(s: &str) -> Option<(&str, &str, &str)> {
    let (name, rest) = s.split_once('+')?;
    let (hash, key) = rest.split_once('+')?;
    Some((name, hash, key))
}

impl SignerKey {
    /// Generates a fresh key from the operating system's random source.
    pub fn generate(name: &str) -> Result<SignerKey, NoteError> {
        check_name(name)?;
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        Ok(Self::from_signing_key(name, key))
    }

    /// Builds a key from its 32-byte Ed25519 seed (RFC 8032 private key).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<SignerKey, NoteError> {
        check_name(name)?;
        Ok(Self::from_signing_key(name, SigningKey::from_bytes(seed)))
    }

    fn from_signing_key(name: &str, key: SigningKey) -> SignerKey {
        let key_hash = key_hash(name, ALG_ED25519, key.verifying_key().as_bytes());
        SignerKey {
            name: name.to_owned(),
            key_hash,
            key,
        }
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn key_hash(&self) -> [u8; 4] {
        self.key_hash
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key_hash: self.key_hash,
            key: self.key.verifying_key(),
        }
    }
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerKey")
            .field("name", &self.name)
            .field("key_hash", &hex4(&self.key_hash))
            .finish_non_exhaustive()
    }
}

impl fmt::Display for SignerKey {
    /// Writes the secret text form `PRIVATE+KEY+<name>+<hex ID>+<base64(0x01 || seed)>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = Zeroizing::new([0u8; 33]);
        raw[0] = ALG_ED25519;
        raw[1..].copy_from_slice(self.key.as_bytes());
        let b64 = Zeroizing::new(BASE64.encode(&raw[..]));
        write!(
            f,
            "{PRIVATE_KEY_PREFIX}{}+{}+{}",
            self.name,
            hex4(&self.key_hash),
            b64.as_str()
        )
    }
}

impl FromStr for SignerKey {
    type Err = NoteError;

    fn from_str(s: &str) -> Result<SignerKey, NoteError> {
        let bad = |why: &str| NoteError::InvalidSignerKey(why.to_owned());
        let rest = s
            .strip_prefix(PRIVATE_KEY_PREFIX)
            .ok_or_else(|| bad("does not start with PRIVATE+KEY+"))?;
        let (name, hash, key64) = split_key_text(rest)
            .ok_or_else(|| bad("expected PRIVATE+KEY+<name>+<hex key ID>+<base64 key>"))?;
        check_name(name)?;
        let hash = parse_hex4(hash).ok_or_else(|| bad("key ID is not 8 lowercase hex digits"))?;
        let raw = Zeroizing::new(
            BASE64
                .decode(key64)
                .map_err(|_| bad("key is not valid base64"))?,
        );
        let (&alg, seed) = raw.split_first().ok_or_else(|| bad("key is empty"))?;
        if alg != ALG_ED25519 {
            return Err(NoteError::InvalidSignerKey(format!(
                "unsupported signature type 0x{alg:02x} (only Ed25519, 0x01, is supported)"
            )));
        }
        let seed: &[u8; 32] = seed
            .try_into()
            .map_err(|_| bad("Ed25519 seed is not 32 bytes"))?;
        let key = SignerKey::from_seed(name, seed)?;
        if key.key_hash != hash {
            return Err(NoteError::InvalidSignerKey(format!(
                "key ID {} does not match the key (expected {})",
                hex4(&hash),
                hex4(&key.key_hash)
            )));
        }
        Ok(key)
    }
}

impl VerifierKey {
    /// Builds a verifier key from a name and a 32-byte Ed25519 public key.
    pub fn from_public_key(name: &str, public_key: &[u8; 32]) -> Result<VerifierKey, NoteError> {
        check_name(name)?;
        let key = VerifyingKey::from_bytes(public_key).map_err(|_| {
            NoteError::InvalidVerifierKey("not a valid Ed25519 public key".to_owned())
        })?;
        Ok(VerifierKey {
            name: name.to_owned(),
            key_hash: key_hash(name, ALG_ED25519, public_key),
            key,
        })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn key_hash(&self) -> [u8; 4] {
        self.key_hash
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// Whether `signature` is a valid Ed25519 signature of `text` by this key
    /// (strict RFC 8032 verification: canonical encodings, no small-order keys).
    fn verify(&self, text: &[u8], signature: &[u8]) -> bool {
        if signature.len() != ED25519_SIGNATURE_LEN {
            return false;
        }
        match Signature::from_slice(signature) {
            Ok(sig) => self.key.verify_strict(text, &sig).is_ok(),
            Err(_) => false,
        }
    }
}

impl fmt::Display for VerifierKey {
    /// Writes `<name>+<hex key ID>+<base64(0x01 || public key)>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = [0u8; 33];
        raw[0] = ALG_ED25519;
        raw[1..].copy_from_slice(self.key.as_bytes());
        write!(
            f,
            "{}+{}+{}",
            self.name,
            hex4(&self.key_hash),
            BASE64.encode(raw)
        )
    }
}

impl FromStr for VerifierKey {
    type Err = NoteError;

    fn from_str(s: &str) -> Result<VerifierKey, NoteError> {
        let bad = |why: &str| NoteError::InvalidVerifierKey(why.to_owned());
        let (name, hash, key64) =
            split_key_text(s).ok_or_else(|| bad("expected <name>+<hex key ID>+<base64 key>"))?;
        check_name(name)?;
        let hash = parse_hex4(hash).ok_or_else(|| bad("key ID is not 8 lowercase hex digits"))?;
        let raw = BASE64
            .decode(key64)
            .map_err(|_| bad("key is not valid base64"))?;
        let (&alg, public) = raw.split_first().ok_or_else(|| bad("key is empty"))?;
        if alg != ALG_ED25519 {
            return Err(NoteError::InvalidVerifierKey(format!(
                "unsupported signature type 0x{alg:02x} (only Ed25519, 0x01, is supported)"
            )));
        }
        let public: &[u8; 32] = public
            .try_into()
            .map_err(|_| bad("Ed25519 public key is not 32 bytes"))?;
        let key = VerifierKey::from_public_key(name, public)?;
        if key.key_hash != hash {
            return Err(NoteError::InvalidVerifierKey(format!(
                "key ID {} does not match the key (expected {})",
                hex4(&hash),
                hex4(&key.key_hash)
            )));
        }
        Ok(key)
    }
}

/// Why `text` cannot be note text, if it cannot.
fn text_problem(text: &str) -> Option<&'static str> {
    if !text.ends_with('\n') {
        return Some("text must end with a newline");
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Some("text contains an ASCII control character other than newline");
    }
    None
}

/// Signs `text` with every key in `signers` and returns the signed note:
/// the text, a blank line, then one signature line per signer in order.
///
/// `text` must end with a newline and contain no ASCII control characters but
/// newlines; `signers` must be non-empty, at most [`MAX_SIGNATURES`] long and
/// free of duplicates; the result must fit in [`MAX_NOTE_SIZE`].
pub fn sign(text: &str, signers: &[SignerKey]) -> Result<String, NoteError> {
    if let Some(problem) = text_problem(text) {
        return Err(NoteError::InvalidText(problem.to_owned()));
    }
    if signers.is_empty() {
        return Err(NoteError::InvalidSigners("no signer keys given".to_owned()));
    }
    if signers.len() > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures {
            count: signers.len(),
            max: MAX_SIGNATURES,
        });
    }
    let mut out = String::with_capacity(text.len() + 1 + signers.len() * 130);
    out.push_str(text);
    out.push('\n');
    for (i, signer) in signers.iter().enumerate() {
        if signers[..i]
            .iter()
            .any(|s| s.name == signer.name && s.key_hash == signer.key_hash)
        {
            return Err(NoteError::InvalidSigners(format!(
                "key {:?} ({}) given twice",
                signer.name,
                hex4(&signer.key_hash)
            )));
        }
        let sig = signer.key.sign(text.as_bytes());
        let mut raw = Vec::with_capacity(4 + ED25519_SIGNATURE_LEN);
        raw.extend_from_slice(&signer.key_hash);
        raw.extend_from_slice(&sig.to_bytes());
        out.push_str(SIG_PREFIX);
        out.push_str(&signer.name);
        out.push(' ');
        out.push_str(&BASE64.encode(raw));
        out.push('\n');
    }
    if out.len() > MAX_NOTE_SIZE {
        return Err(NoteError::TooLarge {
            len: out.len(),
            max: MAX_NOTE_SIZE,
        });
    }
    Ok(out)
}

/// Parses a signed note and verifies it against the trusted keys `known`.
///
/// Succeeds only if at least one signature of a known key verifies and none
/// fails. Signatures whose (name, key ID) matches no known key are ignored,
/// as the spec requires. The note must be valid UTF-8 with no ASCII control
/// characters but newlines, at most [`MAX_NOTE_SIZE`] bytes, with at most
/// [`MAX_SIGNATURES`] signature lines.
pub fn open(note: &[u8], known: &[VerifierKey]) -> Result<Note, NoteError> {
    if note.len() > MAX_NOTE_SIZE {
        return Err(NoteError::TooLarge {
            len: note.len(),
            max: MAX_NOTE_SIZE,
        });
    }
    let malformed = |why: &str| NoteError::Malformed(why.to_owned());
    let note = std::str::from_utf8(note).map_err(|_| malformed("not valid UTF-8"))?;
    if note.bytes().any(|b| b < 0x20 && b != b'\n') {
        return Err(malformed(
            "contains an ASCII control character other than newline",
        ));
    }
    // The text is separated from the signatures by the last empty line.
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| malformed("no blank line between text and signatures"))?;
    let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
    if sigs.is_empty() {
        return Err(malformed("no signature lines"));
    }
    let sigs = sigs
        .strip_suffix('\n')
        .ok_or_else(|| malformed("last signature line does not end with a newline"))?;
    let count = sigs.split('\n').count();
    if count > MAX_SIGNATURES {
        return Err(NoteError::TooManySignatures {
            count,
            max: MAX_SIGNATURES,
        });
    }

    let mut verified: Vec<NoteSignature> = Vec::new();
    let mut unknown = 0usize;
    for line in sigs.split('\n') {
        let line = line.strip_prefix(SIG_PREFIX).ok_or_else(|| {
            malformed("signature line does not start with an em dash (U+2014) and a space")
        })?;
        let (name, b64) = line.split_once(' ').ok_or_else(|| {
            malformed("signature line has no space between key name and signature")
        })?;
        if !is_valid_key_name(name) {
            return Err(NoteError::Malformed(format!(
                "invalid key name {name:?} in signature line"
            )));
        }
        let raw = BASE64
            .decode(b64)
            .map_err(|_| malformed("signature is not valid base64"))?;
        if raw.len() < 5 {
            return Err(malformed("signature is shorter than a key ID and one byte"));
        }
        let key_hash = [raw[0], raw[1], raw[2], raw[3]];
        let signature = &raw[4..];

        let mut matching = known
            .iter()
            .filter(|k| k.name == name && k.key_hash == key_hash);
        let Some(key) = matching.next() else {
            unknown += 1;
            continue;
        };
        if matching.next().is_some() {
            return Err(NoteError::AmbiguousKey {
                name: name.to_owned(),
                key_hash,
            });
        }
        if !key.verify(text.as_bytes(), signature) {
            return Err(NoteError::InvalidSignature {
                name: name.to_owned(),
                key_hash,
            });
        }
        if !verified
            .iter()
            .any(|s| s.name == name && s.key_hash == key_hash)
        {
            verified.push(NoteSignature {
                name: name.to_owned(),
                key_hash,
                signature: signature.to_vec(),
            });
        }
    }
    if verified.is_empty() {
        return Err(NoteError::NoTrustedSignature { unknown });
    }
    Ok(Note {
        text: text.to_owned(),
        signatures: verified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of signed-note.md, section "Verifier keys / Example".
    const EXAMPLE_VKEY: &str =
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const EXAMPLE_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    fn example_key() -> VerifierKey {
        EXAMPLE_VKEY.parse().expect("example vkey parses")
    }

    #[test]
    fn spec_example_verifies() {
        let vkey = example_key();
        assert_eq!(vkey.name(), "example.com/foo");
        assert_eq!(vkey.key_hash(), [0x53, 0x0d, 0x90, 0x3a]);
        assert_eq!(vkey.to_string(), EXAMPLE_VKEY);
        let note = open(EXAMPLE_NOTE.as_bytes(), &[vkey]).expect("example verifies");
        assert_eq!(note.text, "This is an example message.\n");
        assert_eq!(note.signatures.len(), 1);
        assert_eq!(note.signatures[0].name, "example.com/foo");
        assert_eq!(note.signatures[0].signature.len(), 64);
    }

    #[test]
    fn key_hash_matches_spec_formula() {
        let vkey = example_key();
        assert_eq!(
            key_hash("example.com/foo", ALG_ED25519, &vkey.public_key()),
            [0x53, 0x0d, 0x90, 0x3a]
        );
    }

    #[test]
    fn tampering_with_any_byte_fails() {
        let vkey = example_key();
        let bytes = EXAMPLE_NOTE.as_bytes();
        for i in 0..bytes.len() {
            let mut t = bytes.to_vec();
            t[i] ^= 0x01;
            assert!(
                open(&t, std::slice::from_ref(&vkey)).is_err(),
                "flipping bit 0 of byte {i} still verifies"
            );
        }
    }

    #[test]
    fn tampered_text_is_invalid_signature() {
        let vkey = example_key();
        let t = EXAMPLE_NOTE.replacen("example", "exbmple", 1);
        match open(t.as_bytes(), &[vkey]) {
            Err(NoteError::InvalidSignature { name, key_hash }) => {
                assert_eq!(name, "example.com/foo");
                assert_eq!(key_hash, [0x53, 0x0d, 0x90, 0x3a]);
            }
            other => panic!("expected InvalidSignature, got {other:?}"),
        }
    }

    #[test]
    fn unknown_keys_are_ignored() {
        let vkey = example_key();
        // Same key ID, other name; same name, other key ID: both unknown.
        let other_name: VerifierKey = SignerKey::generate("example.com/bar").unwrap().verifier();
        let other_id = SignerKey::generate("example.com/foo").unwrap().verifier();
        assert!(matches!(
            open(
                EXAMPLE_NOTE.as_bytes(),
                &[other_name.clone(), other_id.clone()]
            ),
            Err(NoteError::NoTrustedSignature { unknown: 1 })
        ));
        // Extra unknown signatures beside a valid one do not matter.
        let stranger = SignerKey::generate("example.com/foo").unwrap();
        let extra = sign("This is an example message.\n", &[stranger]).unwrap();
        let extra_line = extra.rsplit_once("\n\n").unwrap().1;
        let combined = format!("{EXAMPLE_NOTE}{extra_line}");
        let note = open(combined.as_bytes(), &[vkey, other_name, other_id]).unwrap();
        assert_eq!(note.signatures.len(), 1);
    }

    #[test]
    fn round_trip_multiple_signers() {
        let a = SignerKey::generate("vigil.example/a").unwrap();
        let b = SignerKey::generate("vigil.example/b").unwrap();
        let text = "line one\n\nline three after an empty line\n";
        let signed = sign(text, &[a.clone(), b.clone()]).unwrap();
        assert!(signed.starts_with(text));
        assert!(signed.contains("\n\n\u{2014} vigil.example/a "));
        let note = open(signed.as_bytes(), &[b.verifier()]).unwrap();
        assert_eq!(note.text, text);
        assert_eq!(note.signatures.len(), 1);
        assert_eq!(note.signatures[0].name, "vigil.example/b");
        let note = open(signed.as_bytes(), &[a.verifier(), b.verifier()]).unwrap();
        assert_eq!(note.signatures.len(), 2);
    }

    #[test]
    fn key_text_forms_round_trip() {
        let key = SignerKey::generate("vigil.example/log").unwrap();
        let text = key.to_string();
        assert!(text.starts_with("PRIVATE+KEY+vigil.example/log+"));
        let back: SignerKey = text.parse().unwrap();
        assert_eq!(back.to_string(), text);
        assert_eq!(back.verifier(), key.verifier());
        let vtext = key.verifier().to_string();
        let vback: VerifierKey = vtext.parse().unwrap();
        assert_eq!(vback, key.verifier());
        // The secret is everything after `PRIVATE+KEY+name+hash+`; base64
        // may itself contain '+', so split from the left.
        let secret = text.splitn(5, '+').nth(4).unwrap();
        assert!(!format!("{key:?}").contains(secret));
    }

    #[test]
    fn go_note_package_signer_key() {
        // Test vector of golang.org/x/mod/sumdb/note (note_test.go).
        let skey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
        let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let signer: SignerKey = skey.parse().unwrap();
        assert_eq!(signer.to_string(), skey);
        assert_eq!(signer.verifier().to_string(), vkey);
        let signed = sign("If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n", &[signer]).unwrap();
        assert!(signed.ends_with("\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"));
    }

    #[test]
    fn malformed_keys_rejected() {
        for bad in [
            "",
            "example.com/foo",
            "example.com/foo+530d903a",
            "+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "example.com/bar+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2",
            "example.com/foo+530d903a+!!!",
            "exa mple+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        ] {
            assert!(bad.parse::<VerifierKey>().is_err(), "accepted {bad:?}");
        }
        assert!("PRIVATE+KEY+x+00000000+AQ==".parse::<SignerKey>().is_err());
        assert!("PRIVATE+KEYS+x".parse::<SignerKey>().is_err());
        assert!(SignerKey::generate("a b").is_err());
        assert!(SignerKey::generate("a+b").is_err());
        assert!(SignerKey::generate("").is_err());
    }

    #[test]
    fn malformed_notes_rejected() {
        let vkey = example_key();
        let sig_line = EXAMPLE_NOTE.rsplit_once("\n\n").unwrap().1;
        let cases: Vec<(String, &str)> = vec![
            ("This is an example message.\n".into(), "no blank line"),
            ("This is an example message.\n\n".into(), "no signatures"),
            (
                EXAMPLE_NOTE.trim_end_matches('\n').into(),
                "missing final newline",
            ),
            (EXAMPLE_NOTE.replace('\u{2014}', "-"), "hyphen, not em dash"),
            (
                EXAMPLE_NOTE.replace("\u{2014} ", "\u{2014}"),
                "no space after dash",
            ),
            (EXAMPLE_NOTE.replace("foo U", "foo  U"), "two spaces"),
            (
                EXAMPLE_NOTE.replace("message.", "message.\r"),
                "carriage return",
            ),
            (EXAMPLE_NOTE.replace("message.", "message.\t"), "tab"),
            (
                format!("{EXAMPLE_NOTE}\n{sig_line}"),
                "blank line among signatures",
            ),
            ("x\n\n\u{2014} foo AAAA\n".into(), "signature too short"),
        ];
        for (note, why) in cases {
            assert!(
                open(note.as_bytes(), std::slice::from_ref(&vkey)).is_err(),
                "{why}"
            );
        }
        let mut invalid_utf8 = EXAMPLE_NOTE.as_bytes().to_vec();
        invalid_utf8[0] = 0xff;
        assert!(matches!(
            open(&invalid_utf8, std::slice::from_ref(&vkey)),
            Err(NoteError::Malformed(_))
        ));
    }

    #[test]
    fn limits_enforced() {
        let vkey = example_key();
        let sig_line = EXAMPLE_NOTE.rsplit_once("\n\n").unwrap().1;
        let body = EXAMPLE_NOTE.rsplit_once("\n\n").unwrap().0;
        // Duplicate lines of the valid signature: fine up to the limit.
        let ok = format!("{body}\n\n{}", sig_line.repeat(MAX_SIGNATURES));
        assert_eq!(
            open(ok.as_bytes(), std::slice::from_ref(&vkey))
                .unwrap()
                .signatures
                .len(),
            1
        );
        let too_many = format!("{body}\n\n{}", sig_line.repeat(MAX_SIGNATURES + 1));
        assert!(matches!(
            open(too_many.as_bytes(), std::slice::from_ref(&vkey)),
            Err(NoteError::TooManySignatures { .. })
        ));
        let huge = format!("{}\n{EXAMPLE_NOTE}", "a".repeat(MAX_NOTE_SIZE));
        assert!(matches!(
            open(huge.as_bytes(), std::slice::from_ref(&vkey)),
            Err(NoteError::TooLarge { .. })
        ));
    }

    #[test]
    fn sign_rejects_bad_input() {
        let key = SignerKey::generate("vigil.example/log").unwrap();
        assert!(matches!(
            sign("no newline", std::slice::from_ref(&key)),
            Err(NoteError::InvalidText(_))
        ));
        assert!(matches!(
            sign("tab\there\n", std::slice::from_ref(&key)),
            Err(NoteError::InvalidText(_))
        ));
        assert!(matches!(
            sign("", std::slice::from_ref(&key)),
            Err(NoteError::InvalidText(_))
        ));
        assert!(matches!(
            sign("ok\n", &[]),
            Err(NoteError::InvalidSigners(_))
        ));
        assert!(matches!(
            sign("ok\n", &[key.clone(), key]),
            Err(NoteError::InvalidSigners(_))
        ));
    }

    #[test]
    fn bad_signature_from_known_key_rejects_note_even_beside_good_one() {
        let a = SignerKey::generate("vigil.example/a").unwrap();
        let b = SignerKey::generate("vigil.example/b").unwrap();
        let good = sign("text\n", std::slice::from_ref(&a)).unwrap();
        let other = sign("other\n", std::slice::from_ref(&b)).unwrap();
        let forged = format!("{good}{}", other.rsplit_once("\n\n").unwrap().1);
        assert!(
            open(forged.as_bytes(), &[a.verifier()]).is_ok(),
            "b unknown: ignored"
        );
        assert!(matches!(
            open(forged.as_bytes(), &[a.verifier(), b.verifier()]),
            Err(NoteError::InvalidSignature { .. })
        ));
    }

    #[test]
    fn ambiguous_trusted_keys_rejected() {
        let vkey = example_key();
        assert!(matches!(
            open(EXAMPLE_NOTE.as_bytes(), &[vkey.clone(), vkey]),
            Err(NoteError::AmbiguousKey { .. })
        ));
    }
}
