//! The metadata database (`DATA_DIR/meta.db`, SQLite): users, API tokens and
//! the sources that have sent events. Events themselves live in the ledger.
//!
//! The schema only grows: columns added after the first release are added
//! with `ALTER TABLE` when missing, so an existing `meta.db` keeps its tokens.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

/// Opens (creating and migrating) the metadata database.
pub fn open(data_dir: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(data_dir.join("meta.db"))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS tokens (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            role TEXT NOT NULL,
            hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            last_used_at TEXT,
            revoked INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE IF NOT EXISTS sources (
            name TEXT NOT NULL,
            input TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            events INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (name, input)
        );
        CREATE TABLE IF NOT EXISTS users (
            name TEXT PRIMARY KEY,
            hash TEXT NOT NULL,
            role TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            changed_at TEXT NOT NULL,
            password_changed_at TEXT NOT NULL
        );",
    )?;
    migrate_tokens(&conn)?;
    restrict_permissions(&data_dir.join("meta.db"));
    Ok(conn)
}

/// Columns the `tokens` table gained after its first version.
const TOKEN_COLUMNS: [(&str, &str); 4] = [
    ("user_name", "TEXT"),
    ("expires_at", "TEXT"),
    ("revoked_at", "TEXT"),
    ("scopes", "TEXT"),
];

/// Adds missing `tokens` columns; existing rows keep working (no expiry, no owner).
fn migrate_tokens(conn: &Connection) -> rusqlite::Result<()> {
    let mut st = conn.prepare("SELECT name FROM pragma_table_info('tokens')")?;
    let have: Vec<String> = st
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()?;
    for (col, ty) in TOKEN_COLUMNS {
        if !have.iter().any(|c| c == col) {
            conn.execute_batch(&format!("ALTER TABLE tokens ADD COLUMN {col} {ty}"))?;
        }
    }
    Ok(())
}

/// Token hashes are secrets at rest: keep the database owner-only.
fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
}

/// A stored API token (without its secret).
#[derive(Debug, Clone)]
pub struct TokenRow {
    /// Lookup id derived from the token.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Role: `admin`, `analyst`, `viewer` or `ingest`.
    pub role: String,
    /// Argon2id PHC string.
    pub hash: String,
    /// The user the token acts for, if any; the token stops working when
    /// that user is disabled.
    pub user_name: Option<String>,
    /// RFC 3339 time after which the token is refused; `None` never expires.
    pub expires_at: Option<String>,
    /// Comma-separated scopes narrowing the role; `None` for the whole role.
    pub scopes: Option<String>,
}

/// A token as listed to administrators: everything but the hash.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenInfo {
    /// Lookup id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Owning user, if any.
    pub user_name: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// Last successful use.
    pub last_used_at: Option<String>,
    /// Expiry time.
    pub expires_at: Option<String>,
    /// Whether it was revoked.
    pub revoked: bool,
    /// When it was revoked.
    pub revoked_at: Option<String>,
    /// Comma-separated scopes; `None` for the whole role.
    pub scopes: Option<String>,
}

/// Inserts or replaces a token.
pub fn put_token(conn: &Connection, row: &TokenRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO tokens (id, name, role, hash, created_at, user_name, expires_at, scopes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, role = excluded.role, hash = excluded.hash,
           user_name = excluded.user_name, expires_at = excluded.expires_at, scopes = excluded.scopes,
           revoked = 0, revoked_at = NULL",
        params![row.id, row.name, row.role, row.hash, now(), row.user_name, row.expires_at, row.scopes],
    )?;
    Ok(())
}

/// Looks a token up by id; revoked tokens are not returned (expiry is the caller's check).
pub fn get_token(conn: &Connection, id: &str) -> rusqlite::Result<Option<TokenRow>> {
    conn.query_row(
        "SELECT id, name, role, hash, user_name, expires_at, scopes FROM tokens WHERE id = ?1 AND revoked = 0",
        params![id],
        |r| {
            Ok(TokenRow {
                id: r.get(0)?,
                name: r.get(1)?,
                role: r.get(2)?,
                hash: r.get(3)?,
                user_name: r.get(4)?,
                expires_at: r.get(5)?,
                scopes: r.get(6)?,
            })
        },
    )
    .optional()
}

/// All tokens, newest first.
pub fn list_tokens(conn: &Connection) -> rusqlite::Result<Vec<TokenInfo>> {
    let mut st = conn.prepare(
        "SELECT id, name, role, user_name, created_at, last_used_at, expires_at, revoked, revoked_at, scopes
         FROM tokens ORDER BY created_at DESC, id",
    )?;
    let rows = st.query_map([], |r| {
        Ok(TokenInfo {
            id: r.get(0)?,
            name: r.get(1)?,
            role: r.get(2)?,
            user_name: r.get(3)?,
            created_at: r.get(4)?,
            last_used_at: r.get(5)?,
            expires_at: r.get(6)?,
            revoked: r.get::<_, i64>(7)? != 0,
            revoked_at: r.get(8)?,
            scopes: r.get(9)?,
        })
    })?;
    rows.collect()
}

/// Revokes a token; `false` when no unrevoked token has that id.
pub fn revoke_token(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "UPDATE tokens SET revoked = 1, revoked_at = ?2 WHERE id = ?1 AND revoked = 0",
        params![id, now()],
    )?;
    Ok(n > 0)
}

/// Number of usable tokens.
pub fn active_tokens(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT COUNT(*) FROM tokens WHERE revoked = 0", [], |r| {
        r.get(0)
    })
}

/// A user account (with its password hash).
#[derive(Debug, Clone)]
pub struct UserRow {
    /// Login name.
    pub name: String,
    /// Argon2id PHC string of the password.
    pub hash: String,
    /// Role.
    pub role: String,
    /// Disabled users cannot log in and their sessions and tokens stop working.
    pub disabled: bool,
    /// Creation time.
    pub created_at: String,
    /// Last change of any attribute.
    pub changed_at: String,
    /// Last password change; sessions from before it are void.
    pub password_changed_at: String,
}

/// A user as listed to administrators (no hash).
#[derive(Debug, Clone, serde::Serialize)]
pub struct UserInfo {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Whether the account is disabled.
    pub disabled: bool,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub changed_at: String,
    /// Last password change.
    pub password_changed_at: String,
}

impl From<UserRow> for UserInfo {
    fn from(u: UserRow) -> Self {
        UserInfo {
            name: u.name,
            role: u.role,
            disabled: u.disabled,
            created_at: u.created_at,
            changed_at: u.changed_at,
            password_changed_at: u.password_changed_at,
        }
    }
}

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        name: r.get(0)?,
        hash: r.get(1)?,
        role: r.get(2)?,
        disabled: r.get::<_, i64>(3)? != 0,
        created_at: r.get(4)?,
        changed_at: r.get(5)?,
        password_changed_at: r.get(6)?,
    })
}

const USER_COLUMNS: &str =
    "name, hash, role, disabled, created_at, changed_at, password_changed_at";

/// Creates a user; `false` when the name is taken.
pub fn insert_user(
    conn: &Connection,
    name: &str,
    hash: &str,
    role: &str,
) -> rusqlite::Result<bool> {
    let t = now();
    let n = conn.execute(
        "INSERT INTO users (name, hash, role, disabled, created_at, changed_at, password_changed_at)
         VALUES (?1, ?2, ?3, 0, ?4, ?4, ?4) ON CONFLICT(name) DO NOTHING",
        params![name, hash, role, t],
    )?;
    Ok(n > 0)
}

/// Looks a user up by name.
pub fn get_user(conn: &Connection, name: &str) -> rusqlite::Result<Option<UserRow>> {
    conn.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"),
        params![name],
        user_from_row,
    )
    .optional()
}

/// All users by name.
pub fn list_users(conn: &Connection) -> rusqlite::Result<Vec<UserRow>> {
    let mut st = conn.prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))?;
    let rows = st.query_map([], user_from_row)?;
    rows.collect()
}

/// Replaces a user's password hash; `false` when there is no such user.
pub fn set_user_password(conn: &Connection, name: &str, hash: &str) -> rusqlite::Result<bool> {
    let t = now();
    let n = conn.execute(
        "UPDATE users SET hash = ?2, changed_at = ?3, password_changed_at = ?3 WHERE name = ?1",
        params![name, hash, t],
    )?;
    Ok(n > 0)
}

/// Changes a user's role; `false` when there is no such user.
pub fn set_user_role(conn: &Connection, name: &str, role: &str) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "UPDATE users SET role = ?2, changed_at = ?3 WHERE name = ?1",
        params![name, role, now()],
    )?;
    Ok(n > 0)
}

/// Disables or re-enables a user; `false` when there is no such user.
pub fn set_user_disabled(conn: &Connection, name: &str, disabled: bool) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "UPDATE users SET disabled = ?2, changed_at = ?3 WHERE name = ?1",
        params![name, disabled as i64, now()],
    )?;
    Ok(n > 0)
}

/// Records that a token was used.
pub fn touch_token(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1",
        params![id, now()],
    )?;
    Ok(())
}

/// Adds `events` to a source's count, creating it on first sight.
pub fn record_source(
    conn: &Connection,
    name: &str,
    input: &str,
    events: u64,
) -> rusqlite::Result<()> {
    let t = now();
    conn.execute(
        "INSERT INTO sources (name, input, first_seen, last_seen, events) VALUES (?1, ?2, ?3, ?3, ?4)
         ON CONFLICT(name, input) DO UPDATE SET last_seen = excluded.last_seen, events = events + excluded.events",
        params![name, input, t, events as i64],
    )?;
    Ok(())
}

/// A source that has sent events.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SourceRow {
    /// Peer address or given name.
    pub name: String,
    /// Input it arrived on.
    pub input: String,
    /// First event time.
    pub first_seen: String,
    /// Last event time.
    pub last_seen: String,
    /// Events stored.
    pub events: i64,
}

/// All sources, most recently seen first.
pub fn list_sources(conn: &Connection) -> rusqlite::Result<Vec<SourceRow>> {
    let mut st = conn.prepare(
        "SELECT name, input, first_seen, last_seen, events FROM sources ORDER BY last_seen DESC",
    )?;
    let rows = st.query_map([], |r| {
        Ok(SourceRow {
            name: r.get(0)?,
            input: r.get(1)?,
            first_seen: r.get(2)?,
            last_seen: r.get(3)?,
            events: r.get(4)?,
        })
    })?;
    rows.collect()
}

/// The current time as stored in the database.
pub fn now() -> String {
    vigil_event::format_time(chrono::Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_tokens_table_is_migrated_without_losing_rows() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("meta.db")).unwrap();
            conn.execute_batch(
                "CREATE TABLE tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,
                   hash TEXT NOT NULL, created_at TEXT NOT NULL, last_used_at TEXT,
                   revoked INTEGER NOT NULL DEFAULT 0);
                 INSERT INTO tokens (id, name, role, hash, created_at) VALUES ('abc', 'admin', 'admin', 'h', 't');",
            )
            .unwrap();
        }
        let conn = open(dir.path()).unwrap();
        let row = get_token(&conn, "abc").unwrap().unwrap();
        assert_eq!(row.role, "admin");
        assert_eq!(row.expires_at, None);
        assert_eq!(row.user_name, None);
        // A second open finds the columns present and changes nothing.
        drop(conn);
        let conn = open(dir.path()).unwrap();
        assert!(revoke_token(&conn, "abc").unwrap());
        assert!(!revoke_token(&conn, "abc").unwrap());
        assert!(get_token(&conn, "abc").unwrap().is_none());
        let listed = list_tokens(&conn).unwrap();
        assert!(listed[0].revoked && listed[0].revoked_at.is_some());
    }

    #[test]
    fn users_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path()).unwrap();
        assert!(insert_user(&conn, "ann", "h1", "analyst").unwrap());
        assert!(!insert_user(&conn, "ann", "h2", "admin").unwrap());
        let u = get_user(&conn, "ann").unwrap().unwrap();
        assert_eq!((u.role.as_str(), u.disabled), ("analyst", false));
        assert!(set_user_disabled(&conn, "ann", true).unwrap());
        assert!(set_user_role(&conn, "ann", "viewer").unwrap());
        assert!(!set_user_password(&conn, "bob", "h").unwrap());
        let u = get_user(&conn, "ann").unwrap().unwrap();
        assert_eq!((u.role.as_str(), u.disabled), ("viewer", true));
        assert_eq!(list_users(&conn).unwrap().len(), 1);
    }
}
