//! Options shared by every decoder.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// Limits and assumptions for parsing.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Time zone for timestamps that carry none (RFC 3164, access logs without offset).
    pub timezone: Tz,
    /// "Now" for inferring a missing year; `None` means the wall clock.
    pub now: Option<DateTime<Utc>>,
    /// Longer messages are cut to this many bytes and flagged `vigil.truncated`.
    pub max_message_bytes: usize,
    /// JSON objects nested deeper than this are refused.
    pub max_json_depth: usize,
    /// At most this many fields are taken from one JSON/logfmt/CEF message.
    pub max_fields: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            timezone: Tz::UTC,
            now: None,
            max_message_bytes: 64 * 1024,
            max_json_depth: 32,
            max_fields: 1024,
        }
    }
}

impl ParseOptions {
    /// The reference time for year inference.
    pub fn now(&self) -> DateTime<Utc> {
        self.now.unwrap_or_else(Utc::now)
    }
}
