//! Wire formats other than syslog: JSON helpers, logfmt, CEF, LEEF, HTTP access logs
//! and Linux audit records.
//!
//! Each format module offers a `parse` that only reads (and returns `None` or
//! an error when the text is not in that format) and an `apply` / `parse_into`
//! that writes ECS fields into an [`Event`](vigil_event::Event). Format
//! detection itself lives in [`crate::parse_line`].

pub mod access_log;
pub mod auditd;
pub mod cef;
pub mod json;
pub mod leef;
pub mod logfmt;
