//! Running playbooks on an alert.
//!
//! [`Responder::respond`] runs every enabled playbook whose `match` holds,
//! each action in order and within its timeout, and returns one
//! [`ActionResult`] per action: `ok`, `skipped` (with the reason, e.g. no
//! GeoIP database) or `failed` (with the error). A failed action does not
//! stop the ones after it. In a dry run nothing is done: each result says
//! what would have happened, and refusals (an address that must never be
//! blocked, a value that fails validation) are still reported.
//!
//! What lives outside this crate is reached through traits the caller
//! implements: [`IncidentActions`] (the incident store), [`SearchActions`]
//! (a search over the ledger) and [`NotifyActions`] (the alert channels).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use vigil_alert::model::{now_ms, Alert, Level};
use vigil_alert::netguard::{OutboundPolicy, SafeClient};

use crate::blocklist::Blocklist;
use crate::geoip::GeoIp;
use crate::guard::{show, NeverBlock};
use crate::playbook::{Action, BlockTarget, Playbook, Step};
use crate::template::Template;

/// The incident store, as playbooks use it.
pub trait IncidentActions {
    /// Opens an incident for `alert`, or attaches it to the open incident
    /// it belongs to; returns the incident id.
    fn open_or_attach(&mut self, alert: &Alert, actor: &str) -> Result<String, String>;
    /// Sets an incident's severity.
    fn set_severity(&mut self, id: &str, level: Level, actor: &str) -> Result<(), String>;
    /// Assigns an incident.
    fn set_assignee(&mut self, id: &str, user: &str, actor: &str) -> Result<(), String>;
    /// Adds a timeline entry (`kind` is e.g. `playbook_action`).
    fn add_timeline(&mut self, id: &str, kind: &str, text: &str, actor: &str)
        -> Result<(), String>;
}

/// What a `search` action found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHits {
    /// Matching events.
    pub total: u64,
    /// The first of them.
    pub hits: Vec<Value>,
}

/// Searching stored events.
pub trait SearchActions {
    /// Runs `query` over events since `since` (`24h`, …), returning at most
    /// `limit` hits, giving up after `timeout`.
    fn search(
        &mut self,
        query: &str,
        since: &str,
        limit: usize,
        timeout: Duration,
    ) -> Result<SearchHits, String>;
}

/// Sending an alert to a notification channel.
pub trait NotifyActions {
    /// Sends `alert` to `channel`; returns a detail for the record.
    fn notify(&mut self, alert: &Alert, channel: &str, timeout: Duration)
        -> Result<String, String>;
}

/// The caller's implementations of the outside actions.
pub struct Services<'a> {
    /// Incidents.
    pub incidents: &'a mut dyn IncidentActions,
    /// Search.
    pub search: &'a mut dyn SearchActions,
    /// Notifications.
    pub notify: &'a mut dyn NotifyActions,
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Done (or, in a dry run, would be done).
    Ok,
    /// Not applicable (no database, no incident, the alert lacks the field).
    Skipped,
    /// Tried and failed, or refused.
    Failed,
}

impl Outcome {
    /// `ok`, `skipped` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Skipped => "skipped",
            Outcome::Failed => "failed",
        }
    }
}

/// The record of one action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionResult {
    /// Playbook id.
    pub playbook: String,
    /// Action index in the playbook (0-based).
    pub index: usize,
    /// Action name (`block_ip`, …).
    pub action: &'static str,
    /// How it ended.
    pub outcome: Outcome,
    /// Whether nothing was done on purpose.
    pub dry_run: bool,
    /// What happened, for people.
    pub detail: String,
    /// The alert.
    pub alert_id: String,
    /// The incident, once one was opened or attached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    /// The address a `block_ip` blocked, or would block, or was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Whether the never-block guard refused the action.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
    /// Attached data (search hits, GeoIP fields, command output).
    #[serde(skip_serializing_if = "Value::is_null")]
    pub data: Value,
}

/// The playbooks and what they act on.
#[derive(Debug)]
pub struct Responder {
    playbooks: Vec<Playbook>,
    blocklist: Arc<Blocklist>,
    never_block: NeverBlock,
    geoip: GeoIp,
    outbound: OutboundPolicy,
}

/// The state of one playbook run.
struct Run<'p> {
    pb: &'p Playbook,
    alert: &'p Alert,
    dry: bool,
    incident: Option<String>,
    actor: String,
}

impl Responder {
    /// Puts the parts together.
    pub fn new(
        playbooks: Vec<Playbook>,
        blocklist: Arc<Blocklist>,
        never_block: NeverBlock,
        geoip: GeoIp,
        outbound: OutboundPolicy,
    ) -> Responder {
        Responder {
            playbooks,
            blocklist,
            never_block,
            geoip,
            outbound,
        }
    }

    /// The loaded playbooks.
    pub fn playbooks(&self) -> &[Playbook] {
        &self.playbooks
    }

    /// The blocklist.
    pub fn blocklist(&self) -> &Arc<Blocklist> {
        &self.blocklist
    }

    /// The never-block allowlist.
    pub fn never_block(&self) -> &NeverBlock {
        &self.never_block
    }

    /// Runs every enabled playbook whose `match` holds for `alert`. Blocks
    /// the calling thread (commands, webhooks): call it from a thread of
    /// its own, not from an async task.
    pub fn respond(&self, alert: &Alert, svc: &mut Services<'_>) -> Vec<ActionResult> {
        let mut out = Vec::new();
        for pb in &self.playbooks {
            if pb.enabled && pb.matcher.matches(alert) {
                out.extend(self.run_playbook(pb, alert, svc, pb.dry_run));
            }
        }
        out
    }

    /// Runs one playbook on `alert` whether or not it matches; with
    /// `dry_run`, only records what would happen.
    pub fn run_playbook(
        &self,
        pb: &Playbook,
        alert: &Alert,
        svc: &mut Services<'_>,
        dry_run: bool,
    ) -> Vec<ActionResult> {
        let mut run = Run {
            pb,
            alert,
            dry: dry_run,
            incident: None,
            actor: format!("playbook:{}", pb.id),
        };
        let mut out = Vec::new();
        for (index, step) in pb.steps.iter().enumerate() {
            let mut r = ActionResult {
                playbook: pb.id.clone(),
                index,
                action: step.action.kind(),
                outcome: Outcome::Ok,
                dry_run,
                detail: String::new(),
                alert_id: alert.id.clone(),
                incident_id: None,
                address: None,
                refused: false,
                data: Value::Null,
            };
            let (outcome, detail) = match self.step(&mut run, step, svc, &mut r) {
                Ok(d) => (Outcome::Ok, d),
                Err(Stop::Skip(d)) => (Outcome::Skipped, d),
                Err(Stop::Fail(d)) => (Outcome::Failed, d),
            };
            r.outcome = outcome;
            r.detail = vigil_event::sanitize::display(&detail).into_owned();
            r.incident_id = run.incident.clone();
            if let (Some(id), false, false) = (
                &run.incident,
                dry_run,
                matches!(step.action, Action::Incident),
            ) {
                let text = format!(
                    "{} actions[{index}] {} {}: {}",
                    pb.id,
                    r.action,
                    outcome.as_str(),
                    r.detail
                );
                if let Err(e) = svc
                    .incidents
                    .add_timeline(id, "playbook_action", &text, &run.actor)
                {
                    r.detail.push_str(&format!(
                        " (not added to the incident timeline: {})",
                        vigil_event::sanitize::display(&e)
                    ));
                }
            }
            out.push(r);
        }
        out
    }

    fn step(
        &self,
        run: &mut Run<'_>,
        step: &Step,
        svc: &mut Services<'_>,
        r: &mut ActionResult,
    ) -> Result<String, Stop> {
        let alert = run.alert;
        let actor = run.actor.clone();
        match &step.action {
            Action::Notify { channel } => {
                if run.dry {
                    return Ok(format!("would notify channel {channel}"));
                }
                svc.notify
                    .notify(alert, channel, step.timeout)
                    .map_err(Stop::Fail)
            }
            Action::Incident => {
                if run.dry {
                    return Ok("would open an incident or attach the alert to the open one".into());
                }
                let id = svc
                    .incidents
                    .open_or_attach(alert, &actor)
                    .map_err(Stop::Fail)?;
                run.incident = Some(id.clone());
                Ok(format!("alert in incident {id}"))
            }
            Action::SetSeverity { level } => {
                let id = self.incident(run, "set_severity")?;
                if run.dry {
                    return Ok(format!(
                        "would set the incident's severity to {}",
                        level.as_str()
                    ));
                }
                svc.incidents
                    .set_severity(&id, *level, &actor)
                    .map_err(Stop::Fail)?;
                Ok(format!("incident {id} severity set to {}", level.as_str()))
            }
            Action::SetAssignee { user } => {
                let id = self.incident(run, "set_assignee")?;
                if run.dry {
                    return Ok(format!("would assign the incident to {user}"));
                }
                svc.incidents
                    .set_assignee(&id, user, &actor)
                    .map_err(Stop::Fail)?;
                Ok(format!("incident {id} assigned to {user}"))
            }
            Action::EnrichGeoip { field } => {
                if !self.geoip.available() {
                    return Err(Stop::Skip(
                        "no GeoIP database configured ([response] geoip_city_db, geoip_asn_db)"
                            .into(),
                    ));
                }
                let ip = alert_ip(alert, field)?;
                if run.dry {
                    return Ok(format!("would look up {ip} in the GeoIP databases"));
                }
                match self.geoip.lookup(ip) {
                    Some(v) => {
                        r.data = v;
                        Ok(format!("{field} {ip} enriched"))
                    }
                    None => Err(Stop::Skip(format!("{ip} is not in the GeoIP databases"))),
                }
            }
            Action::BlockIp {
                target,
                ttl,
                reason,
            } => {
                let net = match target {
                    BlockTarget::Literal(n) => *n,
                    BlockTarget::Field(f) => ipnet::IpNet::from(alert_ip(alert, f)?),
                };
                let addr = show(&net);
                r.address = Some(addr.clone());
                if let Err(why) = self.never_block.check(&net) {
                    r.refused = true;
                    return Err(Stop::Fail(format!("refused: {why}")));
                }
                let ttl_text = crate::duration::format(*ttl);
                if run.dry {
                    return Ok(format!("would block {addr} for {ttl_text}"));
                }
                let reason = if reason.is_empty() {
                    format!("{} ({})", run.pb.name, alert.rule_name)
                } else {
                    reason.clone()
                };
                let e = self
                    .blocklist
                    .add(&net, &reason, &actor, *ttl, now_ms())
                    .map_err(|e| Stop::Fail(e.to_string()))?;
                r.data = json!({"expires_at": e.expires_at, "hits": e.hits, "reason": e.reason});
                Ok(format!(
                    "blocked {addr} for {ttl_text} (until {})",
                    e.expires_at
                ))
            }
            Action::Command { program, args } => {
                let argv = fill_all(args, alert)?;
                let shown = argv.join(" ");
                if run.dry {
                    return Ok(format!("would run {} {shown}", program.display()));
                }
                let out = crate::command::run(program, &argv, step.timeout).map_err(Stop::Fail)?;
                r.data = json!({
                    "exit_code": out.code, "timed_out": out.timed_out,
                    "stdout": vigil_event::sanitize::display(&out.stdout),
                    "stderr": vigil_event::sanitize::display(&out.stderr),
                    "truncated": out.truncated,
                });
                if out.timed_out {
                    Err(Stop::Fail(format!(
                        "{} killed after the {} timeout",
                        program.display(),
                        crate::duration::format(step.timeout)
                    )))
                } else if out.success() {
                    Ok(format!("{} {shown} exited 0", program.display()))
                } else {
                    Err(Stop::Fail(format!(
                        "{} exited with {}",
                        program.display(),
                        out.code.map_or("a signal".into(), |c| format!("code {c}"))
                    )))
                }
            }
            Action::Webhook {
                url,
                fields,
                secret,
            } => {
                let mut filled = serde_json::Map::new();
                for (k, t) in fields {
                    let v = t
                        .fill(alert)
                        .map_err(|m| Stop::Fail(format!("fields.{k}: {m}")))?;
                    filled.insert(k.clone(), v.into());
                }
                if run.dry {
                    return Ok(format!("would POST to {url}"));
                }
                let body = json!({
                    "playbook": run.pb.id,
                    "alert": {"id": alert.id, "rule_id": alert.rule_id, "rule_name": alert.rule_name,
                              "level": alert.level, "entity": alert.entity},
                    "fields": filled,
                    "sent_at": vigil_alert::model::format_ms(now_ms()),
                });
                self.post(url, &body, secret.as_deref(), step.timeout)
                    .map_err(Stop::Fail)
            }
            Action::Search {
                query,
                since,
                limit,
            } => {
                let q = query.fill(alert).map_err(Stop::Fail)?;
                if run.dry {
                    return Ok(format!("would search {q:?} since {since}"));
                }
                let found = svc
                    .search
                    .search(&q, since, *limit, step.timeout)
                    .map_err(Stop::Fail)?;
                let detail = format!("{} events match {q:?} since {since}", found.total);
                r.data = serde_json::to_value(found).unwrap_or_default();
                Ok(detail)
            }
        }
    }

    fn incident(&self, run: &Run<'_>, what: &str) -> Result<String, Stop> {
        match &run.incident {
            Some(id) => Ok(id.clone()),
            None if run.dry => Ok(String::new()),
            None => Err(Stop::Skip(format!(
                "no incident: {what} needs an incident action before it"
            ))),
        }
    }

    fn post(
        &self,
        url: &reqwest::Url,
        body: &Value,
        secret: Option<&str>,
        timeout: Duration,
    ) -> Result<String, String> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err("webhook actions cannot run on an async worker thread".into());
        }
        let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        let sent_at = body["sent_at"].as_str().unwrap_or_default().to_owned();
        let policy = self.outbound.clone();
        let url = url.clone();
        let secret = secret.map(str::to_owned);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("starting the webhook runtime: {e}"))?;
        rt.block_on(async move {
            // A client per request: its connections belong to this runtime.
            let client = SafeClient::new(policy).map_err(|e| e.to_string())?;
            let mut req = client
                .post(&url)
                .map_err(|e| e.to_string())?
                .header("content-type", "application/json");
            if let Some(s) = &secret {
                req = req
                    .header(
                        vigil_alert::sign::SIGNATURE_HEADER,
                        vigil_alert::sign::signature(s.as_bytes(), &bytes),
                    )
                    .header(vigil_alert::sign::TIMESTAMP_HEADER, sent_at);
            }
            match tokio::time::timeout(timeout, req.body(bytes).send()).await {
                Err(_) => Err(format!(
                    "no answer within {}",
                    crate::duration::format(timeout)
                )),
                Ok(Err(e)) => Err(format!("POST {url}: {e}")),
                Ok(Ok(resp)) if resp.status().is_success() => {
                    Ok(format!("POST {url}: HTTP {}", resp.status().as_u16()))
                }
                Ok(Ok(resp)) => Err(format!("POST {url}: HTTP {}", resp.status().as_u16())),
            }
        })
    }
}

/// Why an action did not end `ok`.
enum Stop {
    Skip(String),
    Fail(String),
}

fn alert_ip(alert: &Alert, field: &str) -> Result<IpAddr, Stop> {
    let raw = alert
        .entity
        .get(field)
        .ok_or_else(|| Stop::Skip(format!("the alert has no {field}")))?;
    crate::template::validate(field, raw)
        .and_then(|s| {
            s.parse()
                .map_err(|_| format!("{field} is not an IP address"))
        })
        .map_err(Stop::Fail)
}

fn fill_all(args: &[Template], alert: &Alert) -> Result<Vec<String>, Stop> {
    args.iter()
        .enumerate()
        .map(|(i, t)| {
            t.fill(alert)
                .map_err(|m| Stop::Fail(format!("args[{i}]: {m}")))
        })
        .collect()
}
