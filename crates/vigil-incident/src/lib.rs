//! Vigil incidents: alerts grouped into the cases people work.
//!
//! The alert engine (`vigil-alert`) tracks one [`vigil_alert::model::Alert`]
//! per rule and entity. This crate groups alerts into incidents: the
//! server hands every newly created or raised alert to
//! [`Store::observe`], the [`policy`] decides whether it joins an open
//! incident (same entity, or an ATT&CK tactic chain on the same host,
//! within a window) or opens one (at or above `min_severity`). People move
//! an incident through its workflow ([`model::TRANSITIONS`]), assign it,
//! tag it, write notes and pin ledger events as evidence; every change is a
//! history entry with actor and time, and a [`model::Change`] the server
//! records in the ledger. [`Store::get`] merges alerts, pinned events and
//! history into one [`timeline`]; [`metrics`] computes MTTD, MTTA and MTTR per
//! severity; [`export::Report`] renders JSON and Markdown reports with an
//! inclusion proof for each pinned event.
//!
//! ```text
//! alert engine ──created/raised alert──> Store::observe ──policy──> incidents.db
//!                      API/CLI/playbooks ──> Store::{set_status, pin, …} ─┘   └─> Change ──> ledger
//! ```
//!
//! Incidents live in their own SQLite file, `incidents.db`, not in
//! `alerts.db`: the alert store's connection sits behind the alert engine's
//! lock on the ingest-to-notification path, and a separate file keeps
//! incident work (reports, long timelines) from ever holding that lock and
//! lets each crate own its schema. An incident keeps a snapshot of each
//! linked alert, so reports need only this file and the ledger.
//!
//! ```
//! use vigil_incident::{IncidentsConfig, Store, Status};
//! # fn alert() -> vigil_alert::model::Alert {
//! #     vigil_alert::model::Alert { id: "a1".into(), rule_id: "r".into(), rule_name: "SSH brute force".into(),
//! #         level: vigil_alert::model::Level::High, tags: vec!["attack.credential_access".into()],
//! #         entity: [("source.ip".to_string(), "203.0.113.10".to_string())].into(), message: String::new(),
//! #         group_key: String::new(), first_seen: "2026-11-22T10:00:00Z".into(),
//! #         last_seen: "2026-11-22T10:00:00Z".into(), count: 1, evidence_seqs: vec![2, 1],
//! #         evidence_truncated: false, status: vigil_alert::model::Status::Open, suppressed: false,
//! #         suppression_id: None }
//! # }
//! let mut store = Store::open_in_memory(IncidentsConfig::default())?;
//! let id = store.observe(&alert(), None)?.expect("a high alert opens an incident");
//! store.set_status(&id, Status::Acknowledged, "alice", "on it")?;
//! store.pin(&id, 1, "the first failed login", None, "alice")?;
//! let detail = store.get(&id)?;
//! assert_eq!(detail.incident.status, Status::Acknowledged);
//! assert_eq!(store.take_changes().len(), 4); // created, alert_linked, status_changed, event_pinned
//! # Ok::<(), vigil_incident::IncidentError>(())
//! ```

pub mod export;
pub mod metrics;
pub mod model;
pub mod policy;
pub mod store;
pub mod timeline;

pub use model::{Change, Incident, IncidentDetail, IncidentId, Level, Status};
pub use policy::IncidentsConfig;
pub use store::{IncidentError, ListFilter, Store};
