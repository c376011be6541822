//! API token authentication.
//!
//! Tokens are 256-bit random strings (`vgl_…`). Only an Argon2id hash is
//! stored, keyed by a short lookup id (the first 16 hex digits of the token's
//! SHA-256), so a token can be found without scanning and a stolen database
//! does not yield usable tokens. Argon2id is deliberately slow, so after a
//! token has been verified once its SHA-256 is cached in memory and later
//! requests compare that digest in constant time.

use std::collections::HashMap;
use std::sync::Mutex;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use rand::RngCore;
use rusqlite::Connection;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::meta;

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token id.
    pub token_id: String,
    /// Token name (used as the default `vigil.source` for HTTP ingest).
    pub name: String,
    /// Role.
    pub role: String,
}

/// Why authentication failed; the HTTP layer answers 401 for all of them.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token (send 'Authorization: Bearer <token>')")]
    Missing,
    /// The header is not a bearer token.
    #[error("malformed Authorization header (expected 'Bearer <token>')")]
    Malformed,
    /// Unknown, revoked or wrong token.
    #[error("invalid or revoked token")]
    Invalid,
    /// The metadata database failed.
    #[error("token store unavailable: {0}")]
    Store(String),
}

/// Verifies tokens against the metadata database.
pub struct TokenStore {
    conn: Mutex<Connection>,
    verified: Mutex<HashMap<String, ([u8; 32], Principal)>>,
}

/// The lookup id of a token.
pub fn token_id(token: &str) -> String {
    hex::encode(&Sha256::digest(token.as_bytes())[..8])
}

/// Generates a new random token.
pub fn generate_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("vgl_{}", hex::encode(bytes))
}

/// Argon2id PHC hash of a secret.
pub fn hash_secret(secret: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail")
        .to_string()
}

impl TokenStore {
    /// Wraps a metadata connection.
    pub fn new(conn: Connection) -> Self {
        Self {
            conn: Mutex::new(conn),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Stores a token's hash under `name` with `role`.
    pub fn add(&self, token: &str, name: &str, role: &str) -> Result<String, AuthError> {
        let id = token_id(token);
        let row = meta::TokenRow {
            id: id.clone(),
            name: name.into(),
            role: role.into(),
            hash: hash_secret(token),
        };
        let conn = self.conn.lock().expect("token store lock");
        meta::put_token(&conn, &row).map_err(|e| AuthError::Store(e.to_string()))?;
        self.verified.lock().expect("cache lock").remove(&id);
        Ok(id)
    }

    /// Number of usable tokens.
    pub fn active(&self) -> Result<u64, AuthError> {
        let conn = self.conn.lock().expect("token store lock");
        meta::active_tokens(&conn).map_err(|e| AuthError::Store(e.to_string()))
    }

    /// Checks an `Authorization` header value.
    pub fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let (scheme, token) = header.trim().split_once(' ').ok_or(AuthError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Malformed);
        }
        let token = token.trim();
        if token.is_empty() || token.len() > 512 {
            return Err(AuthError::Invalid);
        }
        self.verify(token)
    }

    /// Checks a token.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let id = token_id(token);
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some((known, p)) = self.verified.lock().expect("cache lock").get(&id) {
            if bool::from(known.ct_eq(&digest)) {
                return Ok(p.clone());
            }
            return Err(AuthError::Invalid);
        }
        let row = {
            let conn = self.conn.lock().expect("token store lock");
            meta::get_token(&conn, &id).map_err(|e| AuthError::Store(e.to_string()))?
        };
        let Some(row) = row else {
            // Spend the same time as a real check so timing does not reveal which ids exist.
            let _ = Argon2::default().verify_password(token.as_bytes(), &dummy_hash());
            return Err(AuthError::Invalid);
        };
        let parsed = PasswordHash::new(&row.hash).map_err(|e| AuthError::Store(e.to_string()))?;
        if Argon2::default()
            .verify_password(token.as_bytes(), &parsed)
            .is_err()
        {
            return Err(AuthError::Invalid);
        }
        let p = Principal {
            token_id: row.id.clone(),
            name: row.name,
            role: row.role,
        };
        self.verified
            .lock()
            .expect("cache lock")
            .insert(row.id.clone(), (digest, p.clone()));
        if let Ok(conn) = self.conn.lock() {
            let _ = meta::touch_token(&conn, &row.id);
        }
        Ok(p)
    }
}

fn dummy_hash() -> PasswordHash<'static> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let s: &'static str = DUMMY.get_or_init(|| hash_secret("vigil-dummy-token"));
    PasswordHash::new(s).expect("valid PHC string")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(meta::open(dir.path()).unwrap());
        let t = generate_token();
        store.add(&t, "admin", "admin").unwrap();
        let p = store.authenticate(Some(&format!("Bearer {t}"))).unwrap();
        assert_eq!(p.role, "admin");
        // cached path
        assert!(store.verify(&t).is_ok());
        assert_eq!(store.verify("vgl_wrong"), Err(AuthError::Invalid));
        assert_eq!(store.authenticate(None), Err(AuthError::Missing));
        assert_eq!(
            store.authenticate(Some("Basic abc")),
            Err(AuthError::Malformed)
        );
        // hash stored, not the token
        let conn = meta::open(dir.path()).unwrap();
        let row = meta::get_token(&conn, &token_id(&t)).unwrap().unwrap();
        assert!(row.hash.starts_with("$argon2id$"));
        assert!(!row.hash.contains(&t));
    }
}
