//! The IP blocklist (`response.db`): addresses and networks that bouncers
//! (nftables, ipset, reverse proxies) fetch and drop.
//!
//! Every entry expires: its TTL is capped by `[response] max_ttl_secs`.
//! Expired entries are never served and [`Blocklist::purge`] deletes them.
//! Blocking an address that is already listed keeps one entry, raises its
//! hit count and extends its expiry when the new one is later.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use ipnet::IpNet;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use vigil_alert::model::{format_ms, Millis};

/// Longest reason or source kept.
pub const MAX_TEXT: usize = 512;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS blocklist (
    address TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    hits INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS blocklist_expiry ON blocklist(expires_at);
";

/// Why the blocklist could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum BlocklistError {
    /// SQLite failed.
    #[error("blocklist store: {what}: {source}")]
    Sql {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: rusqlite::Error,
    },
    /// The list holds `max_entries` live entries.
    #[error("the blocklist is full ({0} entries, [response] max_blocklist_entries)")]
    Full(usize),
}

fn sql(what: &'static str) -> impl FnOnce(rusqlite::Error) -> BlocklistError {
    move |source| BlocklistError::Sql { what, source }
}

/// One blocked address or network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// `203.0.113.9` or `203.0.113.0/24`.
    pub address: String,
    /// Why.
    pub reason: String,
    /// Who: `playbook:<id>` or `user:<name>`.
    pub source: String,
    /// When first blocked (RFC 3339).
    pub created_at: String,
    /// When it stops being served (RFC 3339).
    pub expires_at: String,
    /// How many times it was blocked.
    pub hits: u64,
}

/// The SQLite blocklist.
pub struct Blocklist {
    conn: Mutex<Connection>,
    max_entries: usize,
}

impl std::fmt::Debug for Blocklist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blocklist")
            .field("max_entries", &self.max_entries)
            .finish()
    }
}

fn entry_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        address: r.get(0)?,
        reason: r.get(1)?,
        source: r.get(2)?,
        created_at: format_ms(r.get(3)?),
        expires_at: format_ms(r.get(4)?),
        hits: r.get::<_, i64>(5)? as u64,
    })
}

fn cut(s: &str) -> String {
    s.chars().take(MAX_TEXT).collect()
}

impl Blocklist {
    /// Opens (creating, mode 0600) the store at `path`.
    pub fn open(path: &Path, max_entries: usize) -> Result<Blocklist, BlocklistError> {
        let conn = Connection::open(path).map_err(sql("opening"))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql("setting WAL"))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(sql("setting the busy timeout"))?;
        conn.execute_batch(SCHEMA).map_err(sql("creating tables"))?;
        Ok(Blocklist {
            conn: Mutex::new(conn),
            max_entries,
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks `net` for `ttl` from `now`. The caller has checked it against
    /// the never-block allowlist.
    pub fn add(
        &self,
        net: &IpNet,
        reason: &str,
        source: &str,
        ttl: Duration,
        now: Millis,
    ) -> Result<Entry, BlocklistError> {
        let address = crate::guard::show(net);
        let expires = now.saturating_add(ttl.as_millis().min(i64::MAX as u128) as i64);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql("starting a transaction"))?;
        tx.execute("DELETE FROM blocklist WHERE expires_at <= ?1", params![now])
            .map_err(sql("purging expired entries"))?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT hits FROM blocklist WHERE address = ?1",
                params![address],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql("reading an entry"))?;
        if exists.is_none() {
            let n: i64 = tx
                .query_row("SELECT COUNT(*) FROM blocklist", [], |r| r.get(0))
                .map_err(sql("counting entries"))?;
            if n as usize >= self.max_entries {
                return Err(BlocklistError::Full(self.max_entries));
            }
        }
        tx.execute(
            "INSERT INTO blocklist (address, reason, source, created_at, expires_at, hits) \
             VALUES (?1, ?2, ?3, ?4, ?5, 1) \
             ON CONFLICT(address) DO UPDATE SET reason = ?2, source = ?3, \
             expires_at = MAX(expires_at, ?5), hits = hits + 1",
            params![address, cut(reason), cut(source), now, expires],
        )
        .map_err(sql("adding an entry"))?;
        let e = tx
            .query_row(
                "SELECT address, reason, source, created_at, expires_at, hits FROM blocklist WHERE address = ?1",
                params![address],
                entry_row,
            )
            .map_err(sql("reading an entry"))?;
        tx.commit().map_err(sql("committing"))?;
        Ok(e)
    }

    /// Removes `net`; whether it was listed (and not expired).
    pub fn remove(&self, net: &IpNet, now: Millis) -> Result<bool, BlocklistError> {
        let n = self
            .conn()
            .execute(
                "DELETE FROM blocklist WHERE address = ?1 AND expires_at > ?2",
                params![crate::guard::show(net), now],
            )
            .map_err(sql("removing an entry"))?;
        Ok(n > 0)
    }

    /// The live entries (not expired at `now`), oldest first.
    pub fn list(&self, now: Millis) -> Result<Vec<Entry>, BlocklistError> {
        let conn = self.conn();
        let mut st = conn
            .prepare(
                "SELECT address, reason, source, created_at, expires_at, hits FROM blocklist \
                 WHERE expires_at > ?1 ORDER BY created_at, address",
            )
            .map_err(sql("listing"))?;
        let rows = st
            .query_map(params![now], entry_row)
            .map_err(sql("listing"))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(sql("listing"))?;
        Ok(rows)
    }

    /// Deletes the entries expired at `now`; returns them.
    pub fn purge(&self, now: Millis) -> Result<Vec<Entry>, BlocklistError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(sql("starting a transaction"))?;
        let gone = {
            let mut st = tx
                .prepare(
                    "SELECT address, reason, source, created_at, expires_at, hits FROM blocklist \
                     WHERE expires_at <= ?1",
                )
                .map_err(sql("purging"))?;
            let rows = st
                .query_map(params![now], entry_row)
                .map_err(sql("purging"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql("purging"))?;
            rows
        };
        tx.execute("DELETE FROM blocklist WHERE expires_at <= ?1", params![now])
            .map_err(sql("purging"))?;
        tx.commit().map_err(sql("committing"))?;
        Ok(gone)
    }

    /// Whether `ip` is covered by a live entry.
    pub fn covers(&self, ip: std::net::IpAddr, now: Millis) -> Result<bool, BlocklistError> {
        let ip = crate::guard::canonical_ip(ip);
        Ok(self
            .list(now)?
            .iter()
            .any(|e| crate::guard::parse_net(&e.address).is_ok_and(|n| n.contains(&ip))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        crate::guard::parse_net(s).unwrap()
    }

    #[test]
    fn entries_expire_are_not_served_and_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let b = Blocklist::open(&dir.path().join("response.db"), 10).unwrap();
        let t0 = 1_700_000_000_000;
        b.add(
            &net("203.0.113.9"),
            "brute force",
            "playbook:ssh",
            Duration::from_secs(60),
            t0,
        )
        .unwrap();
        b.add(
            &net("198.51.100.0/24"),
            "scanner",
            "user:alice",
            Duration::from_secs(3600),
            t0,
        )
        .unwrap();
        let live = b.list(t0 + 1000).unwrap();
        assert_eq!(
            live.iter().map(|e| e.address.as_str()).collect::<Vec<_>>(),
            ["198.51.100.0/24", "203.0.113.9"]
        );
        assert!(b.covers("198.51.100.77".parse().unwrap(), t0).unwrap());
        // At the TTL the entry is no longer served, and purge deletes it.
        let later = t0 + 60_000;
        let live = b.list(later).unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].address, "198.51.100.0/24");
        assert!(!b.covers("203.0.113.9".parse().unwrap(), later).unwrap());
        let gone = b.purge(later).unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].address, "203.0.113.9");
        assert!(b.purge(later).unwrap().is_empty());
        let n: i64 = b
            .conn()
            .query_row("SELECT COUNT(*) FROM blocklist", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn repeats_raise_hits_and_extend_expiry_and_the_list_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let b = Blocklist::open(&dir.path().join("response.db"), 2).unwrap();
        let t0 = 1_700_000_000_000;
        let a = net("203.0.113.9");
        b.add(&a, "one", "playbook:p", Duration::from_secs(60), t0)
            .unwrap();
        let e = b
            .add(&a, "two", "playbook:p", Duration::from_secs(600), t0)
            .unwrap();
        assert_eq!(e.hits, 2);
        assert_eq!(e.reason, "two");
        assert_eq!(e.expires_at, format_ms(t0 + 600_000));
        // A shorter TTL never shortens an existing block.
        let e = b
            .add(&a, "three", "playbook:p", Duration::from_secs(1), t0)
            .unwrap();
        assert_eq!(e.expires_at, format_ms(t0 + 600_000));
        b.add(&net("203.0.113.10"), "x", "p", Duration::from_secs(60), t0)
            .unwrap();
        let full = b.add(&net("203.0.113.11"), "x", "p", Duration::from_secs(60), t0);
        assert!(matches!(full, Err(BlocklistError::Full(2))), "{full:?}");
        assert!(b.remove(&a, t0).unwrap());
        assert!(!b.remove(&a, t0).unwrap());
        b.add(&net("203.0.113.11"), "x", "p", Duration::from_secs(60), t0)
            .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("response.db"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
