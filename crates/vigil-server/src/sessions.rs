//! Browser sessions: random cookie values held in memory, each with its own
//! CSRF token, an idle and an absolute timeout.
//!
//! Only the SHA-256 of a cookie value is kept, so a memory dump does not
//! yield usable cookies. Sessions live in memory: a restart logs everyone
//! out, which is the safe failure. A session remembers the user's
//! `password_changed_at`; the HTTP layer compares it with the user row on
//! every request, so a password change or a disable (even made offline with
//! the CLI) ends the session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::authz::Role;

/// Name of the session cookie.
pub const COOKIE: &str = "vigil_session";

/// One logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The user.
    pub user: String,
    /// The user's role at login.
    pub role: Role,
    /// The CSRF token the browser must echo in `X-CSRF-Token`.
    pub csrf: String,
    /// A short id safe to log (not the cookie).
    pub public_id: String,
    /// The user's `password_changed_at` at login.
    pub password_changed_at: String,
    created: Instant,
    last_seen: Instant,
}

/// A new session: the values to hand to the browser.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The cookie value.
    pub cookie: String,
    /// The CSRF token.
    pub csrf: String,
    /// The public id.
    pub public_id: String,
}

/// Why a cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// Unknown (never issued, logged out, or lost in a restart).
    Unknown,
    /// Unused for longer than the idle timeout.
    IdleTimeout,
    /// Older than the absolute timeout.
    AbsoluteTimeout,
}

impl SessionError {
    /// Text for the 401 body and audit `event.reason`.
    pub fn reason(self) -> &'static str {
        match self {
            SessionError::Unknown => "unknown or ended session",
            SessionError::IdleTimeout => "session idle timeout",
            SessionError::AbsoluteTimeout => "session absolute timeout",
        }
    }
}

/// A refused cookie: why, and whose session it was when it had expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Why.
    pub error: SessionError,
    /// The user of an expired session (`None` for unknown cookies).
    pub user: Option<String>,
}

/// The live sessions.
pub struct SessionStore {
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    idle: Duration,
    absolute: Duration,
    max: usize,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

fn key(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

impl SessionStore {
    /// A store with the given timeouts and at most `max` sessions.
    pub fn new(idle: Duration, absolute: Duration, max: usize) -> Self {
        Self {
            sessions: Mutex::new(HashMap::new()),
            idle,
            absolute,
            max: max.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        // A panic while holding the lock leaves the map consistent (every
        // update is a single insert or remove), so the poison is ignored.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a session for `user`.
    pub fn create(&self, user: &str, role: Role, password_changed_at: &str) -> NewSession {
        let now = Instant::now();
        let new = NewSession {
            cookie: random_hex(32),
            csrf: random_hex(32),
            public_id: random_hex(6),
        };
        let mut map = self.lock();
        if map.len() >= self.max {
            map.retain(|_, s| !self.expired(s, now));
        }
        if map.len() >= self.max {
            // Still full of live sessions: the oldest one gives way rather
            // than refusing every new login.
            if let Some(k) = map.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| *k) {
                map.remove(&k);
            }
        }
        map.insert(
            key(&new.cookie),
            Session {
                user: user.into(),
                role,
                csrf: new.csrf.clone(),
                public_id: new.public_id.clone(),
                password_changed_at: password_changed_at.into(),
                created: now,
                last_seen: now,
            },
        );
        new
    }

    fn expired(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.created) >= self.absolute
            || now.duration_since(s.last_seen) >= self.idle
    }

    /// Looks a cookie up and marks the session used. An expired session is
    /// removed and reported with the user it belonged to.
    pub fn check(&self, cookie: &str) -> Result<Session, Refused> {
        let now = Instant::now();
        let k = key(cookie);
        let mut map = self.lock();
        let Some(s) = map.get_mut(&k) else {
            return Err(Refused {
                error: SessionError::Unknown,
                user: None,
            });
        };
        let err = if now.duration_since(s.created) >= self.absolute {
            Some(SessionError::AbsoluteTimeout)
        } else if now.duration_since(s.last_seen) >= self.idle {
            Some(SessionError::IdleTimeout)
        } else {
            None
        };
        if let Some(error) = err {
            let user = map.remove(&k).map(|s| s.user);
            return Err(Refused { error, user });
        }
        s.last_seen = now;
        Ok(s.clone())
    }

    /// Ends the session of a cookie; returns it when it existed.
    pub fn remove(&self, cookie: &str) -> Option<Session> {
        self.lock().remove(&key(cookie))
    }

    /// Ends every session of `user`; returns how many there were.
    pub fn remove_user(&self, user: &str) -> usize {
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, s| s.user != user);
        before - map.len()
    }

    /// Number of live sessions (including ones not yet noticed as expired).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Compares a presented CSRF token with the session's in constant time.
pub fn csrf_matches(session: &Session, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(session.csrf.as_bytes())))
}

/// Reads the session cookie from a `Cookie` header value.
pub fn cookie_value(header: &str) -> Option<&str> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == COOKIE && !v.is_empty() && v.len() <= 128).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_check_remove() {
        let s = SessionStore::new(Duration::from_secs(60), Duration::from_secs(600), 10);
        let n = s.create("ann", Role::Analyst, "t0");
        let got = s.check(&n.cookie).unwrap();
        assert_eq!(got.user, "ann");
        assert!(csrf_matches(&got, Some(&n.csrf)));
        assert!(!csrf_matches(&got, Some("nope")));
        assert!(!csrf_matches(&got, None));
        assert!(s.check("other").is_err());
        assert_eq!(s.remove_user("ann"), 1);
        assert_eq!(s.check(&n.cookie).unwrap_err().error, SessionError::Unknown);
    }

    #[test]
    fn timeouts() {
        let s = SessionStore::new(Duration::ZERO, Duration::from_secs(600), 10);
        let n = s.create("ann", Role::Viewer, "t0");
        let r = s.check(&n.cookie).unwrap_err();
        assert_eq!(r.error, SessionError::IdleTimeout);
        assert_eq!(r.user.as_deref(), Some("ann"));
        let s = SessionStore::new(Duration::from_secs(600), Duration::ZERO, 10);
        let n = s.create("ann", Role::Viewer, "t0");
        assert_eq!(
            s.check(&n.cookie).unwrap_err().error,
            SessionError::AbsoluteTimeout
        );
    }

    #[test]
    fn bounded() {
        let s = SessionStore::new(Duration::from_secs(60), Duration::from_secs(600), 3);
        for i in 0..10 {
            s.create(&format!("u{i}"), Role::Viewer, "t");
        }
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn cookie_parsing() {
        assert_eq!(cookie_value("a=b; vigil_session=abc; c=d"), Some("abc"));
        assert_eq!(cookie_value("vigil_session="), None);
        assert_eq!(cookie_value("x_vigil_session=abc"), None);
    }
}
