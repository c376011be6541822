//! Vigil alerts: what happens after a detection matched.
//!
//! An alert event (a Sigma match, a correlation, a built-in detector's
//! finding) is read as an [`model::AlertInput`] and handed to the
//! [`engine::Engine`], which records it in the [`store::Store`]
//! (`alerts.db`): repeats of the same rule and entity within the grouping
//! window raise one alert's count, [`store::Suppression`]s mark matching
//! alerts suppressed (still recorded and counted), maintenance windows hold
//! notifications back, and [`policy`] routes pick the channels, within each
//! route's throttle. The notifications are outbox rows committed with the
//! alert change; the engine's worker delivers them through [`channel`]s
//! (webhook signed with [`sign`], Slack, Teams, Mattermost, PagerDuty,
//! email, syslog/CEF, file, stdout), retrying with capped exponential
//! backoff until acknowledged or dead. Outbound connections obey
//! [`netguard`].
//!
//! This crate evaluates no rules and knows nothing of the server; the
//! server feeds it stored alert events and records its [`model::Change`]s
//! in the ledger.

pub mod channel;
pub mod config;
pub mod engine;
pub mod model;
pub mod netguard;
pub mod policy;
pub mod sign;
pub mod store;

pub use config::AlertsConfig;
pub use engine::Engine;
