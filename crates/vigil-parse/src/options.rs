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
    /// When `event.original` is kept.
    pub keep_original: KeepOriginal,
}

/// When a stored event keeps the message as received in `event.original`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepOriginal {
    /// Every event (the default): the received text is evidence next to
    /// what was made of it.
    #[default]
    Always,
    /// Not for a message that was a JSON object parsed whole (no parse
    /// error, not cut, valid UTF-8): its fields are stored as received, so
    /// the copy adds only key order and spacing, and for JSON-heavy feeds
    /// (Windows events from agents) about a quarter of the stored bytes.
    /// Every other message keeps it: its fields are what Vigil made of it.
    /// A sender's own `event.original` is kept either way.
    Unparsed,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            timezone: Tz::UTC,
            now: None,
            max_message_bytes: 64 * 1024,
            max_json_depth: 32,
            max_fields: 1024,
            keep_original: KeepOriginal::Always,
        }
    }
}

impl ParseOptions {
    /// The reference time for year inference.
    pub fn now(&self) -> DateTime<Utc> {
        self.now.unwrap_or_else(Utc::now)
    }
}
