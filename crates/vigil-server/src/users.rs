//! User accounts: names, password policy and the operations the CLI and the
//! API share (create, change password, change role, disable).
//!
//! Passwords are stored as Argon2id hashes only. The policy is deliberately
//! simple: at least [`MIN_PASSWORD_LEN`] characters, at most
//! [`MAX_PASSWORD_LEN`] bytes (Argon2 cost is per byte), and not the user
//! name itself.

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use rusqlite::Connection;

use crate::authz::{Role, UnknownRole};
use crate::meta::{self, UserRow};

/// Shortest accepted password, in characters.
pub const MIN_PASSWORD_LEN: usize = 12;
/// Longest accepted password, in bytes.
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Longest user name, in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Why a user operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The name breaks the naming rule.
    #[error("invalid user name {0:?}: use 1-64 characters from a-z A-Z 0-9 . _ - @")]
    BadName(String),
    /// The password breaks the policy.
    #[error("password refused: {0}")]
    WeakPassword(&'static str),
    /// Unknown role.
    #[error(transparent)]
    Role(#[from] UnknownRole),
    /// The name is taken.
    #[error("user {0:?} already exists")]
    Exists(String),
    /// No such user.
    #[error("no user named {0:?}")]
    NotFound(String),
    /// The metadata database failed.
    #[error("user store: {0}")]
    Store(#[from] rusqlite::Error),
}

/// Checks a user name: short, printable, no spaces or separators that would
/// make audit records or cookies ambiguous.
pub fn check_name(name: &str) -> Result<(), UserError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(UserError::BadName(
            vigil_event::sanitize::display(name).into_owned(),
        ))
    }
}

/// Checks a password against the policy for `name`.
pub fn check_password(name: &str, password: &str) -> Result<(), UserError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(UserError::WeakPassword(
            "it must be at least 12 characters long",
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(UserError::WeakPassword(
            "it must be at most 1024 bytes long",
        ));
    }
    // "ann" + "ann1234" passes length but is still the name: refuse
    // passwords with fewer than 4 characters left once the name is removed.
    let (p, n) = (password.to_lowercase(), name.to_lowercase());
    if p.trim() == n || (!n.is_empty() && p.replace(&n, "").chars().count() < 4) {
        return Err(UserError::WeakPassword(
            "it must not be the user name (or the name with a few characters added)",
        ));
    }
    Ok(())
}

/// Creates a user after checking name, role and password.
pub fn create(conn: &Connection, name: &str, role: &str, password: &str) -> Result<(), UserError> {
    check_name(name)?;
    let role = Role::parse(role)?;
    check_password(name, password)?;
    let hash = crate::auth::hash_secret(password);
    if meta::insert_user(conn, name, &hash, role.as_str())? {
        Ok(())
    } else {
        Err(UserError::Exists(name.into()))
    }
}

/// Replaces a user's password; sessions from before the change stop working.
pub fn set_password(conn: &Connection, name: &str, password: &str) -> Result<(), UserError> {
    check_password(name, password)?;
    let hash = crate::auth::hash_secret(password);
    if meta::set_user_password(conn, name, &hash)? {
        Ok(())
    } else {
        Err(UserError::NotFound(name.into()))
    }
}

/// Changes a user's role.
pub fn set_role(conn: &Connection, name: &str, role: &str) -> Result<Role, UserError> {
    let role = Role::parse(role)?;
    if meta::set_user_role(conn, name, role.as_str())? {
        Ok(role)
    } else {
        Err(UserError::NotFound(name.into()))
    }
}

/// Disables (or re-enables) a user.
pub fn set_disabled(conn: &Connection, name: &str, disabled: bool) -> Result<(), UserError> {
    if meta::set_user_disabled(conn, name, disabled)? {
        Ok(())
    } else {
        Err(UserError::NotFound(name.into()))
    }
}

/// Checks a login. `Ok(Some(user))` only for an enabled user whose password
/// matches; unknown users cost the same Argon2 time as known ones.
pub fn verify_login(conn_user: Option<UserRow>, password: &str) -> Option<UserRow> {
    let Some(user) = conn_user else {
        crate::auth::spend_dummy_verify(password);
        return None;
    };
    let ok = PasswordHash::new(&user.hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false);
    (ok && !user.disabled).then_some(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_policy() {
        assert!(check_password("ann", "short").is_err());
        assert!(check_password("annabelle-xy", "annabelle-xy").is_err());
        assert!(check_password("annabelle-xy", "ANNABELLE-XY").is_err());
        assert!(check_password("ann", "correct horse battery").is_ok());
        assert!(check_password("ann", &"x".repeat(2000)).is_err());
    }

    #[test]
    fn names() {
        assert!(check_name("ann.o-b_1@corp").is_ok());
        for bad in ["", "a b", "a\nb", "a:b", &"a".repeat(65)] {
            let e = check_name(bad).unwrap_err().to_string();
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn create_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let conn = meta::open(dir.path()).unwrap();
        create(&conn, "ann", "analyst", "correct horse battery").unwrap();
        assert!(matches!(
            create(&conn, "ann", "analyst", "correct horse battery"),
            Err(UserError::Exists(_))
        ));
        assert!(matches!(
            create(&conn, "bob", "root", "correct horse battery"),
            Err(UserError::Role(_))
        ));
        let row = meta::get_user(&conn, "ann").unwrap();
        assert!(verify_login(row.clone(), "correct horse battery").is_some());
        assert!(verify_login(row, "wrong horse battery").is_none());
        set_disabled(&conn, "ann", true).unwrap();
        let row = meta::get_user(&conn, "ann").unwrap();
        assert!(verify_login(row, "correct horse battery").is_none());
        assert!(verify_login(None, "x").is_none());
    }
}
