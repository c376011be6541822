//! API token authentication.
//!
//! Tokens are 256-bit random strings (`vgl_…`). Only an Argon2id hash is
//! stored, keyed by a short lookup id (the first 16 hex digits of the token's
//! SHA-256), so a token can be found without scanning and a stolen database
//! does not yield usable tokens. Argon2id is deliberately slow, so after a
//! token has been verified once its SHA-256 is cached in memory and later
//! requests compare that digest in constant time. The database row is
//! still read on every request, so a revocation, an expiry or the owner's
//! disabling (also made offline with `vigil token revoke`) takes effect at
//! once.

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

use crate::authz::Role;
use crate::meta;

/// How a principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// An `Authorization: Bearer` API token.
    Token,
    /// A browser session cookie.
    Session,
}

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Token id, or the session's short public id.
    pub token_id: String,
    /// Token name or user name (the default `vigil.source` for HTTP ingest).
    pub name: String,
    /// The user acting: the session's user, the token's owner, or the token
    /// name for service tokens. This is `user.name` in audit events.
    pub user: String,
    /// Role.
    pub role: Role,
    /// Token or session.
    pub via: Via,
    /// The token's scopes; `None` for sessions and unscoped tokens.
    pub scopes: Option<Vec<crate::authz::Scope>>,
    /// Whether `user` is a user account (a session, or a token bound to a
    /// user) rather than a service token's own name, which may equal a
    /// user's name and must never act for that account.
    pub is_account: bool,
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
    /// The token was valid but its expiry time has passed.
    #[error("token expired")]
    Expired,
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

    /// Stores a token's hash under `name` with `role`, without owner or expiry.
    pub fn add(&self, token: &str, name: &str, role: &str) -> Result<String, AuthError> {
        self.add_with(token, name, role, None, None)
    }

    /// Stores a token's hash; `user` ties it to a user account, `expires_at`
    /// (RFC 3339) ends its validity.
    pub fn add_with(
        &self,
        token: &str,
        name: &str,
        role: &str,
        user: Option<&str>,
        expires_at: Option<String>,
    ) -> Result<String, AuthError> {
        self.add_scoped(token, name, role, user, expires_at, None)
    }

    /// [`TokenStore::add_with`] for a token narrowed to `scopes` (`None`:
    /// everything the role allows).
    pub fn add_scoped(
        &self,
        token: &str,
        name: &str,
        role: &str,
        user: Option<&str>,
        expires_at: Option<String>,
        scopes: Option<&[crate::authz::Scope]>,
    ) -> Result<String, AuthError> {
        let id = token_id(token);
        let row = meta::TokenRow {
            id: id.clone(),
            name: name.into(),
            role: role.into(),
            hash: hash_secret(token),
            user_name: user.map(str::to_owned),
            expires_at,
            scopes: scopes.map(crate::authz::Scope::join),
        };
        let conn = self.lock()?;
        meta::put_token(&conn, &row).map_err(|e| AuthError::Store(e.to_string()))?;
        self.verified
            .lock()
            .map_err(|_| AuthError::Store("token cache poisoned".into()))?
            .remove(&id);
        Ok(id)
    }

    /// Runs `f` on the metadata connection (users, token listing), serialized
    /// with token checks.
    pub fn with_conn<T>(&self, f: impl FnOnce(&Connection) -> T) -> Result<T, AuthError> {
        let conn = self.lock()?;
        Ok(f(&conn))
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, AuthError> {
        self.conn
            .lock()
            .map_err(|_| AuthError::Store("metadata connection poisoned".into()))
    }

    /// Number of usable tokens.
    pub fn active(&self) -> Result<u64, AuthError> {
        let conn = self.lock()?;
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
        let (row, owner) = {
            let conn = self.lock()?;
            let row = meta::get_token(&conn, &id).map_err(|e| AuthError::Store(e.to_string()))?;
            let owner = match row.as_ref().and_then(|r| r.user_name.as_deref()) {
                Some(u) => meta::get_user(&conn, u).map_err(|e| AuthError::Store(e.to_string()))?,
                None => None,
            };
            (row, owner)
        };
        let Some(row) = row else {
            // Spend the same time as a real check so timing does not reveal which ids exist.
            spend_dummy_verify(token);
            return Err(AuthError::Invalid);
        };
        let cached = self
            .verified
            .lock()
            .map_err(|_| AuthError::Store("token cache poisoned".into()))?
            .get(&id)
            .map(|(known, _)| bool::from(known.ct_eq(&digest)));
        match cached {
            Some(true) => {}
            Some(false) => return Err(AuthError::Invalid),
            None => {
                let parsed =
                    PasswordHash::new(&row.hash).map_err(|e| AuthError::Store(e.to_string()))?;
                if Argon2::default()
                    .verify_password(token.as_bytes(), &parsed)
                    .is_err()
                {
                    return Err(AuthError::Invalid);
                }
            }
        }
        // Checked only after the secret matched, so a guess learns nothing
        // about whether an id exists and has expired.
        if let Some(exp) = &row.expires_at {
            let expired = chrono::DateTime::parse_from_rfc3339(exp)
                .map(|t| t <= chrono::Utc::now())
                .unwrap_or(true);
            if expired {
                return Err(AuthError::Expired);
            }
        }
        if row.user_name.is_some() && owner.as_ref().is_none_or(|o| o.disabled) {
            return Err(AuthError::Invalid);
        }
        let role = Role::parse(&row.role).map_err(|e| AuthError::Store(e.to_string()))?;
        let scopes = match &row.scopes {
            Some(s) => Some(
                crate::authz::Scope::parse_list(s).map_err(|e| AuthError::Store(e.to_string()))?,
            ),
            None => None,
        };
        let p = Principal {
            scopes,
            is_account: row.user_name.is_some(),
            token_id: row.id.clone(),
            user: row.user_name.clone().unwrap_or_else(|| row.name.clone()),
            name: row.name,
            role,
            via: Via::Token,
        };
        if cached.is_none() {
            self.verified
                .lock()
                .map_err(|_| AuthError::Store("token cache poisoned".into()))?
                .insert(row.id.clone(), (digest, p.clone()));
        }
        if let Ok(conn) = self.conn.lock() {
            let _ = meta::touch_token(&conn, &row.id);
        }
        Ok(p)
    }
}

/// Spends one Argon2 verification on a dummy hash, so an unknown user or
/// token id costs as long as a known one.
pub fn spend_dummy_verify(secret: &str) {
    let _ = Argon2::default().verify_password(secret.as_bytes(), &dummy_hash());
}

/// Everything the HTTP layer needs besides tokens: sessions, login
/// throttling and the self-audit.
pub struct Identity {
    /// Browser sessions.
    pub sessions: crate::sessions::SessionStore,
    /// Login failure counters.
    pub lockout: crate::lockout::Lockout,
    /// The self-audit writer.
    pub audit: std::sync::Arc<crate::audit::Auditor>,
    /// `[auth]` settings.
    pub config: crate::config::AuthConfig,
}

/// Longest token lifetime accepted by `--expires` / `expires`.
pub const MAX_TOKEN_DAYS: i64 = 3650;

/// Parses a token lifetime such as `90m`, `12h`, `30d` (1 minute to 10 years).
pub fn parse_lifetime(s: &str) -> Result<chrono::Duration, String> {
    let s = s.trim();
    let bad = || {
        format!(
            "invalid lifetime {:?}: use a number with m, h or d (e.g. 30d), from 1m to {MAX_TOKEN_DAYS}d",
            vigil_event::sanitize::display(s)
        )
    };
    let Some((last, _)) = s.char_indices().last() else {
        return Err(bad());
    };
    let (num, unit) = s.split_at(last);
    let n: i64 = num.parse().map_err(|_| bad())?;
    let minutes = match unit {
        "m" => n,
        "h" => n.checked_mul(60).ok_or_else(bad)?,
        "d" => n.checked_mul(1440).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    if !(1..=MAX_TOKEN_DAYS * 1440).contains(&minutes) {
        return Err(bad());
    }
    Ok(chrono::Duration::minutes(minutes))
}

/// The RFC 3339 expiry time `lifetime` from now.
pub fn expiry_from_now(lifetime: chrono::Duration) -> String {
    vigil_event::format_time(chrono::Utc::now() + lifetime)
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
        assert_eq!(p.role, Role::Admin);
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
        // Revocation is seen even though the token is cached.
        assert!(meta::revoke_token(&conn, &token_id(&t)).unwrap());
        assert_eq!(store.verify(&t), Err(AuthError::Invalid));
    }

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("30d").unwrap(), chrono::Duration::days(30));
        assert_eq!(
            parse_lifetime("90m").unwrap(),
            chrono::Duration::minutes(90)
        );
        for bad in [
            "",
            "0d",
            "30",
            "d",
            "-1h",
            "99999d",
            "1w",
            "\u{1b}[2J",
            "5é",
        ] {
            let e = parse_lifetime(bad).unwrap_err();
            assert!(!e.contains('\u{1b}'), "{e}");
        }
    }

    #[test]
    fn expiry_and_owner() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::new(meta::open(dir.path()).unwrap());
        let t = generate_token();
        let past = vigil_event::format_time(chrono::Utc::now() - chrono::Duration::seconds(5));
        store
            .add_with(&t, "old", "viewer", None, Some(past))
            .unwrap();
        assert_eq!(store.verify(&t), Err(AuthError::Expired));
        let conn = meta::open(dir.path()).unwrap();
        crate::users::create(&conn, "ann", "analyst", "correct horse battery").unwrap();
        let t = generate_token();
        store
            .add_with(&t, "ann-cli", "analyst", Some("ann"), None)
            .unwrap();
        let p = store.verify(&t).unwrap();
        assert_eq!((p.user.as_str(), p.role), ("ann", Role::Analyst));
        crate::users::set_disabled(&conn, "ann", true).unwrap();
        assert_eq!(store.verify(&t), Err(AuthError::Invalid));
    }
}
