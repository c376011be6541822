//! Vigil response: playbooks that act on new alerts, and the IP blocklist.
//!
//! A [`playbook::Playbook`] is a YAML file: which alerts it runs on
//! (`match`) and an ordered list of actions (notify, open an incident, set
//! its severity or assignee, GeoIP enrichment, block the source address,
//! run a program, call a webhook, run a search). [`playbook::load_all`]
//! checks every file when the server starts and refuses, with the file,
//! playbook id and action index, anything unsafe: a command that would
//! need a shell, an address that must never be blocked, an unknown field.
//!
//! The server hands each newly opened alert to a [`Responder`], which runs
//! the matching playbooks ([`Responder::respond`]) and returns one
//! [`executor::ActionResult`] per action for the ledger. `block_ip` writes
//! to the [`Blocklist`] (`response.db`), which bouncers fetch; the
//! [`guard::NeverBlock`] allowlist is checked at load and again at run time.
//! Incidents, searches and notifications are reached through the
//! [`executor::IncidentActions`], [`executor::SearchActions`] and
//! [`executor::NotifyActions`] traits, so this crate knows nothing of the
//! server.
//!
//! ```
//! use std::path::Path;
//! use vigil_respond::playbook::{parse, LoadContext};
//! use vigil_respond::guard::NeverBlock;
//!
//! let cx = LoadContext {
//!     never_block: NeverBlock::new(&[], true),
//!     channels: None,
//!     max_ttl: std::time::Duration::from_secs(86_400),
//!     default_timeout: std::time::Duration::from_secs(10),
//!     outbound: Default::default(),
//! };
//! let yaml = "id: ssh-block\nname: Block SSH brute force\nmatch: {rule_id: vigil.brute_force}\n\
//!             actions:\n  - block_ip: {field: source.ip, ttl: 1h, reason: ssh brute force}\n";
//! let pb = parse(yaml, Path::new("ssh.yml"), &cx).unwrap();
//! assert_eq!(pb.steps[0].action.kind(), "block_ip");
//!
//! // A shell is refused, naming the file, the playbook and the action.
//! let bad = "id: bad\nname: Bad\nactions:\n  - command: {program: /bin/sh, args: [-c, reboot]}\n";
//! let e = parse(bad, Path::new("bad.yml"), &cx).unwrap_err().to_string();
//! assert!(e.starts_with("bad.yml: playbook bad: actions[0] (command): program \"/bin/sh\" is a shell"));
//! ```

pub mod blocklist;
pub mod command;
pub mod config;
pub mod duration;
pub mod executor;
pub mod geoip;
pub mod guard;
pub mod playbook;
pub mod template;

pub use blocklist::Blocklist;
pub use config::ResponseConfig;
pub use executor::Responder;
pub use ipnet;

#[cfg(test)]
mod tests_executor;
#[cfg(test)]
mod tests_load;
