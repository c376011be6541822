//! Vigil decoders: from raw bytes to a normalized ECS [`Event`].
//!
//! An input (`vigil-ingest`, the HTTP API, `vigil ingest`) hands each received
//! message to [`parse_line`] (or a JSON object to [`parse_json`]). Format
//! detection picks a wire format ([`syslog`], JSON, logfmt, CEF, access logs, plain
//! text, see [`formats`]); then the application decoders in [`decoders`] (sshd,
//! sudo, su, PAM, user management, …) fill ECS fields from the message text.
//! Parsing never fails: what cannot be understood is kept raw in
//! `event.original` with `vigil.parse_error` saying why.
//!
//! ```
//! use vigil_parse::{parse_line, ParseOptions};
//! let ev = parse_line(b"<38>Jan 12 06:30:00 bastion sshd[4721]: Failed password for root from 203.0.113.9 port 52144 ssh2", &ParseOptions::default());
//! assert_eq!(ev.get_str("user.name"), Some("root"));
//! assert_eq!(ev.get_str("event.outcome"), Some("failure"));
//! ```

pub mod decoders;
pub mod evtx;
pub mod formats;
pub mod redact;
pub mod syslog;

mod detect;
#[cfg(test)]
mod mutate;
mod options;

pub use detect::{parse_json, parse_line};
pub use options::{KeepOriginal, ParseOptions};
pub use vigil_event::Event;
