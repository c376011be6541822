//! Every limit on what Vigil accepts, in one table.
//!
//! The configurable limits live in `vigil.toml` (mostly `[limits]`, some
//! next to the input they bound: `[http]`, `[syslog]`, `[search]`); the
//! fixed ones are the constants below. [`table`] lists them all with their
//! current value, what they bound and what happens one unit over, and
//! `docs/OPERATIONS.md` carries that table for the defaults (a test keeps
//! the two equal). `tests/limits.rs` sends one unit under, at and over each
//! input limit to the running server.

use crate::config::Config;

/// Largest body of `POST /api/v1/auth/login` and `/auth/password`.
pub const AUTH_BODY_BYTES: usize = 16 * 1024;
/// Longest user name accepted by the login form (longer ones cannot exist:
/// stored names are at most [`crate::users::MAX_NAME_LEN`]).
pub const LOGIN_NAME_BYTES: usize = 256;
/// Longest `source` parameter of `POST /api/v1/events`, in bytes.
pub const SOURCE_NAME_BYTES: usize = 256;

/// One limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// The config key, or `fixed` for constants.
    pub key: &'static str,
    /// Its value.
    pub value: u64,
    /// What it counts.
    pub unit: &'static str,
    /// The input it bounds.
    pub applies_to: &'static str,
    /// What happens one unit over.
    pub over: &'static str,
}

fn lim(
    key: &'static str,
    value: usize,
    unit: &'static str,
    applies_to: &'static str,
    over: &'static str,
) -> Limit {
    Limit {
        key,
        value: value as u64,
        unit,
        applies_to,
        over,
    }
}

/// Every input limit with its value under `c`.
pub fn table(c: &Config) -> Vec<Limit> {
    let l = &c.limits;
    vec![
        lim("limits.max_message_bytes", l.max_message_bytes, "bytes", "one syslog message (UDP, TCP, TLS), one line of a text ingest body, one line of `vigil ingest`", "cut to the limit and stored with `vigil.truncated: true`"),
        lim("limits.max_message_bytes", l.max_message_bytes, "bytes", "one NDJSON line of `POST /api/v1/events`", "that line is rejected (named with its line number in `rejected`), the others are stored"),
        lim("limits.max_json_depth", l.max_json_depth, "levels", "nesting of one JSON event", "HTTP: the line is rejected; syslog: stored raw with `vigil.parse_error`"),
        lim("limits.max_fields", l.max_fields, "fields", "leaf fields of one JSON event; pairs of one logfmt/CEF/LEEF message", "JSON: rejected (HTTP) or stored raw with `vigil.parse_error` (syslog); key=value formats: the first ones kept, `vigil.truncated: true`"),
        lim("http.max_body_bytes", c.http.max_body_bytes, "bytes", "one HTTP request body", "413, nothing stored"),
        lim("http.max_batch_lines", c.http.max_batch_lines, "events", "one `POST /api/v1/events` request", "413 naming the line, nothing stored"),
        lim("http.max_tail_streams", c.http.max_tail_streams, "streams", "open `GET /api/v1/tail` streams", "503"),
        lim("syslog.max_connections", c.syslog.max_connections, "connections", "open syslog TCP/TLS connections", "further connections are closed at once, counted in `vigil_input_connections_refused_total`"),
        lim("syslog.idle_timeout_secs", c.syslog.idle_timeout_secs as usize, "seconds", "an idle syslog TCP/TLS connection", "closed"),
        lim("limits.api_requests_per_sec", l.api_requests_per_sec as usize, "requests/s", "API requests per address and per credential (burst `limits.api_burst`)", "429 with `Retry-After`"),
        lim("limits.ingest_events_per_sec", l.ingest_events_per_sec as usize, "events/s", "HTTP ingest per address and per credential (burst `limits.ingest_burst_events`)", "429 with `Retry-After`, batch not stored"),
        lim("search.max_limit", c.search.max_limit, "hits", "`limit` of one search", "400"),
        lim("search.max_scan_events", c.search.max_scan_events as usize, "events", "events one search reads", "the answer is marked partial"),
        lim("fixed", vigil_query::MAX_QUERY_LEN, "bytes", "one query", "400 naming the limit"),
        lim("fixed", AUTH_BODY_BYTES, "bytes", "login and password change bodies", "413"),
        lim("fixed", LOGIN_NAME_BYTES, "bytes", "`username` of a login", "400"),
        lim("fixed", crate::users::MAX_PASSWORD_LEN, "bytes", "a password (login, change, new user)", "400"),
        lim("fixed", crate::users::MAX_NAME_LEN, "bytes", "a user name when creating a user", "400"),
        lim("fixed", SOURCE_NAME_BYTES, "bytes", "`source` parameter of `POST /api/v1/events`", "400"),
    ]
}

/// The table as Markdown, as it appears in docs/OPERATIONS.md.
pub fn markdown(c: &Config) -> String {
    let mut out =
        String::from("| Limit | Default | Unit | Bounds | One over |\n|---|---|---|---|---|\n");
    for l in table(c) {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            l.key, l.value, l.unit, l.applies_to, l.over
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_doc_has_the_table() {
        let doc = include_str!("../../../docs/OPERATIONS.md");
        let want = markdown(&Config::default());
        assert!(
            doc.contains(&want),
            "docs/OPERATIONS.md must contain the limits table exactly as limits::markdown() prints it:\n{want}"
        );
    }

    #[test]
    fn every_limit_is_positive() {
        for l in table(&Config::default()) {
            assert!(l.value > 0, "{l:?}");
        }
    }
}
