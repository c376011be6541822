//! The metadata database (`DATA_DIR/meta.db`, SQLite): API tokens and the
//! sources that have sent events. Events themselves live in the ledger.

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
        );",
    )?;
    restrict_permissions(&data_dir.join("meta.db"));
    Ok(conn)
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
    /// Role (`admin` at this stage).
    pub role: String,
    /// Argon2id PHC string.
    pub hash: String,
}

/// Inserts or replaces a token.
pub fn put_token(conn: &Connection, row: &TokenRow) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO tokens (id, name, role, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name, role = excluded.role, hash = excluded.hash, revoked = 0",
        params![row.id, row.name, row.role, row.hash, now()],
    )?;
    Ok(())
}

/// Looks a token up by id; revoked tokens are not returned.
pub fn get_token(conn: &Connection, id: &str) -> rusqlite::Result<Option<TokenRow>> {
    conn.query_row(
        "SELECT id, name, role, hash FROM tokens WHERE id = ?1 AND revoked = 0",
        params![id],
        |r| {
            Ok(TokenRow {
                id: r.get(0)?,
                name: r.get(1)?,
                role: r.get(2)?,
                hash: r.get(3)?,
            })
        },
    )
    .optional()
}

/// Number of usable tokens.
pub fn active_tokens(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT COUNT(*) FROM tokens WHERE revoked = 0", [], |r| {
        r.get(0)
    })
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

fn now() -> String {
    vigil_event::format_time(chrono::Utc::now())
}
