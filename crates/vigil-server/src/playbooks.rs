//! Wiring of `vigil-respond` into the server: playbooks run on every newly
//! opened alert, and the blocklist served to bouncers.
//!
//! ```text
//! vigil-alerts thread ──alert_created (try_send alert id)──> vigil-playbooks thread
//!                                                              ├──> Responder::respond (commands, webhooks, blocklist)
//!                                                              └──> vigil.response events ──> pipeline.write_durable ──> ledger
//! ```
//!
//! The alert thread never waits: when the playbook queue is full the alert
//! is counted in `vigil_playbook_alerts_dropped_total` and not responded
//! to. Suppressed alerts are not responded to. Incident actions go to the
//! server's incident store (`crate::incidents`); with incidents off they
//! fail and the action result says why.

use std::collections::BTreeSet;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use vigil_alert::channel::Notifiers;
use vigil_alert::model::{format_ms, new_id, now_ms, Alert, Change, Level};
use vigil_event::{fields, Event};
use vigil_ingest::InputKind;
use vigil_respond::blocklist::Entry;
use vigil_respond::executor::{
    ActionResult, IncidentActions, NotifyActions, Outcome, SearchActions, SearchHits, Services,
};
use vigil_respond::guard::NeverBlock;
use vigil_respond::ipnet::IpNet;
use vigil_respond::playbook::{LoadContext, Playbook};
use vigil_respond::{Blocklist, Responder};

use crate::config::Config;
use crate::pipeline::{PipelineHandle, Prepared};

/// Newly opened alerts waiting for their playbooks.
pub const QUEUE: usize = 1024;

/// The `event.dataset` of response events.
pub const DATASET: &str = "vigil.response";

/// Largest attached data (search hits, command output) kept in a response
/// event; larger data is dropped and flagged `vigil.response.data_truncated`.
pub const MAX_DATA_BYTES: usize = 64 * 1024;

/// How often expired blocklist entries are purged.
pub const PURGE_EVERY: Duration = Duration::from_secs(30);

/// The alert thread's end: hands newly created alerts over without waiting.
#[derive(Debug, Clone)]
pub struct Trigger(SyncSender<String>);

impl Trigger {
    /// Queues the alert of an `alert_created` change for its playbooks.
    pub fn created(&self, c: &Change) {
        if c.action == "created" && self.0.try_send(c.alert_id.clone()).is_err() {
            metrics::counter!("vigil_playbook_alerts_dropped_total").increment(1);
            tracing::error!(alert = %c.alert_id, "playbook queue full; the alert was not responded to");
        }
    }
}

/// The playbook thread's end of a [`Trigger`].
pub struct Feed(Receiver<String>);

/// The channel between the alert thread and the playbook thread.
pub fn channel() -> (Trigger, Feed) {
    let (tx, rx) = sync_channel(QUEUE);
    (Trigger(tx), Feed(rx))
}

/// Loaded playbooks and the blocklist, for the HTTP API.
#[derive(Debug)]
pub struct Playbooks {
    /// Runs playbooks; holds the blocklist and the never-block allowlist.
    pub responder: Arc<Responder>,
    /// `[response]` max TTL, for manual blocks.
    pub max_ttl: Duration,
}

impl Playbooks {
    /// The blocklist.
    pub fn blocklist(&self) -> &Arc<Blocklist> {
        self.responder.blocklist()
    }
}

/// The never-block allowlist: `[response] never_block`, the private ranges
/// when `never_block_private`, and the addresses the server listens on.
pub fn never_block(config: &Config) -> NeverBlock {
    let mut extra = config.response.never_block.clone();
    for ip in [config.http.listen.ip(), config.syslog.listen.ip()] {
        if !ip.is_unspecified() {
            extra.push(IpNet::from(ip));
        }
    }
    NeverBlock::new(&extra, config.response.never_block_private)
}

/// What playbooks are checked against: the allowlist, the configured alert
/// channels, the TTL and timeout limits, the webhook outbound policy.
pub fn load_context(config: &Config) -> LoadContext {
    LoadContext {
        never_block: never_block(config),
        channels: Some(
            config
                .alerts
                .channels
                .iter()
                .map(|c| c.name.clone())
                .collect::<BTreeSet<_>>(),
        ),
        max_ttl: config.response.max_ttl(),
        default_timeout: config.response.default_timeout(),
        outbound: vigil_alert::netguard::OutboundPolicy::new(
            config.response.outbound_allow.clone(),
        ),
    }
}

/// The playbook directory: `[response] playbook_dir`, else
/// `DATA_DIR/playbooks` when it exists.
pub fn playbook_dir(config: &Config) -> Option<std::path::PathBuf> {
    match &config.response.playbook_dir {
        Some(d) => Some(d.clone()),
        None => {
            let d = config.data_dir.join("playbooks");
            d.is_dir().then_some(d)
        }
    }
}

/// Loads and checks every configured playbook.
pub fn load(config: &Config) -> anyhow::Result<Vec<Playbook>> {
    let pbs = vigil_respond::playbook::load_all(
        playbook_dir(config).as_deref(),
        &config.response.playbooks,
        &load_context(config),
    )
    .context("loading playbooks")?;
    Ok(pbs)
}

/// Loads the playbooks (refusing to start on an invalid one), opens
/// `response.db`, and starts the playbook thread fed by `feed` and the
/// blocklist purger.
pub fn start(
    config: &Config,
    pipeline: Arc<PipelineHandle>,
    alerts: Option<crate::alerting::Alerting>,
    indexer: Option<Arc<crate::indexer::Indexer>>,
    incidents: Option<crate::incidents::Incidents>,
    feed: Feed,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Arc<Playbooks>> {
    let playbooks = load(config)?;
    let path = config.data_dir.join("response.db");
    let blocklist = Arc::new(
        Blocklist::open(&path, config.response.max_blocklist_entries)
            .with_context(|| format!("opening the blocklist {}", path.display()))?,
    );
    let geoip = vigil_respond::geoip::GeoIp::open(
        config.response.geoip_city_db.as_deref(),
        config.response.geoip_asn_db.as_deref(),
    )
    .map_err(anyhow::Error::msg)?;
    if !playbooks.is_empty() {
        tracing::info!(playbooks = playbooks.len(), "playbooks loaded");
        if alerts.is_none() {
            tracing::warn!("playbooks run on newly opened alerts, and alert tracking is off ([alerts]); they will not run");
        }
    }
    let responder = Arc::new(Responder::new(
        playbooks,
        blocklist.clone(),
        never_block(config),
        geoip,
        vigil_alert::netguard::OutboundPolicy::new(config.response.outbound_allow.clone()),
    ));
    let notifiers = if config.alerts.is_enabled() {
        Some(Arc::new(
            Notifiers::from_config(&config.alerts).context("building the alert channels")?,
        ))
    } else {
        None
    };
    let handle = tokio::runtime::Handle::current();

    // Purger: expired entries are never served; this deletes them.
    let (b, p) = (blocklist.clone(), pipeline.clone());
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(PURGE_EVERY);
        while !*shutdown.borrow() {
            tokio::select! {
                _ = tick.tick() => {}
                // A dropped sender means the server is gone too.
                r = shutdown.changed() => if r.is_err() { break } else { continue },
            }
            let b = b.clone();
            match tokio::task::spawn_blocking(move || b.purge(now_ms())).await {
                Ok(Ok(gone)) if !gone.is_empty() => {
                    let evs = gone
                        .iter()
                        .map(|e| Prepared::new(&expired_event(e)))
                        .collect();
                    if let Err(e) = p.write_durable(evs, Vec::new(), InputKind::Internal).await {
                        tracing::error!(error = %e, "recording expired blocks failed");
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "purging the blocklist failed"),
                Err(_) => {}
            }
        }
    });

    let r = responder.clone();
    let search = ServerSearch {
        config: config.clone(),
        pipeline: pipeline.clone(),
        indexer,
    };
    std::thread::Builder::new()
        .name("vigil-playbooks".into())
        .spawn(move || {
            let mut services = (
                ServerIncidents(incidents),
                search,
                ServerNotify {
                    notifiers,
                    handle: handle.clone(),
                },
            );
            // Ends when the alert thread drops its trigger at shutdown.
            while let Ok(id) = feed.0.recv() {
                let Some(engine) = alerts.as_ref().map(|a| &a.engine) else {
                    continue;
                };
                let alert = match engine.with_store(|s| s.get(&id)) {
                    Ok((a, _, _)) => a,
                    Err(e) => {
                        tracing::error!(alert = %id, error = %e, "reading an alert for its playbooks failed");
                        continue;
                    }
                };
                if alert.suppressed {
                    continue;
                }
                let results = r.respond(
                    &alert,
                    &mut Services {
                        incidents: &mut services.0,
                        search: &mut services.1,
                        notify: &mut services.2,
                    },
                );
                record(&handle, &pipeline, &alert, &results);
            }
        })
        .context("starting the playbook thread")?;
    Ok(Arc::new(Playbooks {
        responder,
        max_ttl: config.response.max_ttl(),
    }))
}

/// Writes one ledger event per action result and waits until durable.
fn record(
    handle: &tokio::runtime::Handle,
    pipeline: &PipelineHandle,
    alert: &Alert,
    results: &[ActionResult],
) {
    if results.is_empty() {
        return;
    }
    for r in results {
        metrics::counter!("vigil_playbook_actions_total", "action" => r.action, "outcome" => r.outcome.as_str())
            .increment(1);
    }
    let events = results
        .iter()
        .map(|r| Prepared::new(&action_event(alert, r)))
        .collect();
    if let Err(e) = handle.block_on(pipeline.write_durable(events, Vec::new(), InputKind::Internal))
    {
        tracing::error!(error = %e, "recording playbook results in the ledger failed");
    }
}

fn stamp(mut ev: Event) -> Event {
    crate::pipeline::stamp(
        &mut ev,
        InputKind::Internal,
        Some("vigil"),
        SystemTime::now(),
    );
    ev
}

/// The ledger event of one action result: `event.action` is `ip_blocked`
/// for a block that was applied, `ip_block_refused` for one the never-block
/// guard refused, else `playbook_action`.
pub fn action_event(alert: &Alert, r: &ActionResult) -> Event {
    let mut ev = Event::new();
    ev.set(fields::EVENT_KIND, "event");
    ev.set(fields::EVENT_DATASET, DATASET);
    let action = match (r.action, r.outcome, r.dry_run, r.refused) {
        (_, _, _, true) => "ip_block_refused",
        ("block_ip", Outcome::Ok, false, _) => "ip_blocked",
        _ => "playbook_action",
    };
    ev.set(fields::EVENT_ACTION, action);
    ev.set(
        fields::EVENT_OUTCOME,
        match r.outcome {
            Outcome::Ok => "success",
            Outcome::Failed => "failure",
            Outcome::Skipped => "unknown",
        },
    );
    ev.set("vigil.response.playbook", r.playbook.as_str());
    ev.set("vigil.response.action", r.action);
    ev.set("vigil.response.index", r.index as u64);
    ev.set("vigil.response.status", r.outcome.as_str());
    ev.set("vigil.response.dry_run", r.dry_run);
    if !r.data.is_null() {
        // Search hits can be large; the ledger keeps a bounded copy.
        let size = serde_json::to_vec(&r.data).map_or(usize::MAX, |b| b.len());
        if size <= MAX_DATA_BYTES {
            ev.set("vigil.response.data", r.data.clone());
        } else {
            ev.set("vigil.response.data_truncated", true);
            if let Some(total) = r.data.get("total") {
                ev.set("vigil.response.data.total", total.clone());
            }
        }
    }
    if let Some(i) = &r.incident_id {
        ev.set("vigil.response.incident_id", i.as_str());
    }
    if let Some(a) = &r.address {
        ev.set(fields::SOURCE_IP, a.as_str());
    }
    ev.set(fields::EVENT_REASON, r.detail.as_str());
    ev.set("vigil.alert.id", alert.id.as_str());
    ev.set("rule.id", alert.rule_id.as_str());
    ev.set("rule.name", alert.rule_name.as_str());
    ev.set(fields::USER_NAME, format!("playbook:{}", r.playbook));
    ev.set(
        fields::MESSAGE,
        format!(
            "playbook {} actions[{}] {}{} {}: {}",
            r.playbook,
            r.index,
            r.action,
            if r.dry_run { " (dry run)" } else { "" },
            r.outcome.as_str(),
            r.detail
        ),
    );
    stamp(ev)
}

/// The ledger event of a manual blocklist change by `user`.
pub fn manual_event(action: &str, address: &str, user: &str, detail: &str) -> Event {
    let mut ev = Event::new();
    ev.set(fields::EVENT_KIND, "event");
    ev.set(fields::EVENT_DATASET, DATASET);
    ev.set(fields::EVENT_ACTION, action);
    ev.set(fields::EVENT_OUTCOME, "success");
    ev.set(fields::SOURCE_IP, address);
    ev.set(fields::USER_NAME, user);
    ev.set(fields::EVENT_REASON, detail);
    ev.set(
        fields::MESSAGE,
        format!("{address} {} by {user}: {detail}", action.replace('_', " ")),
    );
    stamp(ev)
}

fn expired_event(e: &Entry) -> Event {
    let mut ev = Event::new();
    ev.set(fields::EVENT_KIND, "event");
    ev.set(fields::EVENT_DATASET, DATASET);
    ev.set(fields::EVENT_ACTION, "ip_block_expired");
    ev.set(fields::EVENT_OUTCOME, "success");
    ev.set(fields::SOURCE_IP, e.address.as_str());
    ev.set(fields::EVENT_REASON, e.reason.as_str());
    ev.set(fields::USER_NAME, "vigil");
    ev.set(
        fields::MESSAGE,
        format!(
            "{} block expired at {} (blocked by {})",
            e.address, e.expires_at, e.source
        ),
    );
    stamp(ev)
}

/// Incident actions on the server's incident store; every change it makes
/// is also a ledger event (through [`crate::incidents::Incidents::with_store`]).
/// Without the store (alert tracking or `[incidents]` off) each action fails
/// with the reason, which the action result records.
struct ServerIncidents(Option<crate::incidents::Incidents>);

const NO_INCIDENTS: &str = "incidents are off ([incidents] enabled = false, or [alerts] off)";

impl ServerIncidents {
    fn with<T>(
        &self,
        f: impl FnOnce(&mut vigil_incident::Store) -> Result<T, vigil_incident::IncidentError>,
    ) -> Result<T, String> {
        match &self.0 {
            Some(i) => i.with_store(f).map_err(|e| e.to_string()),
            None => Err(NO_INCIDENTS.into()),
        }
    }
}

impl IncidentActions for ServerIncidents {
    fn open_or_attach(&mut self, alert: &Alert, actor: &str) -> Result<String, String> {
        self.with(|s| s.open_or_attach(alert, actor))
    }
    fn set_severity(&mut self, id: &str, level: Level, actor: &str) -> Result<(), String> {
        self.with(|s| s.set_severity(id, level, actor))
    }
    fn set_assignee(&mut self, id: &str, user: &str, actor: &str) -> Result<(), String> {
        self.with(|s| s.set_assignee(id, user, actor))
    }
    fn add_timeline(
        &mut self,
        id: &str,
        kind: &str,
        text: &str,
        actor: &str,
    ) -> Result<(), String> {
        self.with(|s| s.add_timeline(id, kind, text, actor))
    }
}

/// Searches the ledger as `GET /api/v1/search` does, within the action's
/// timeout and the `[search]` limits.
struct ServerSearch {
    config: Config,
    pipeline: Arc<PipelineHandle>,
    indexer: Option<Arc<crate::indexer::Indexer>>,
}

impl SearchActions for ServerSearch {
    fn search(
        &mut self,
        query: &str,
        since: &str,
        limit: usize,
        timeout: Duration,
    ) -> Result<SearchHits, String> {
        let req = crate::http::SearchRequest {
            q: query.to_owned(),
            since: Some(since.to_owned()),
            until: None,
            limit: Some(limit),
            timeout: None,
            id: None,
        };
        let (search, mut params) = crate::http::prepare_search(&req, &self.config.search)?;
        let durable = self.pipeline.durable_seq();
        params.up_to_seq = Some(durable);
        let deadline = Instant::now() + timeout;
        params.deadline = Some(params.deadline.map_or(deadline, |d| d.min(deadline)));
        if let Some(ix) = &self.indexer {
            let c = ix.candidates(&search.query, params.since, params.until, 1, durable);
            params.ranges = Some(c.ranges);
        }
        let r = vigil_query::exec::run(&self.config.ledger_dir(), &search, &params)
            .map_err(|e| format!("search failed: {e}"))?;
        Ok(SearchHits {
            total: r.total,
            hits: r.hits.into_iter().map(|e| e.into_json()).collect(),
        })
    }
}

/// Sends through the configured alert channels, once, without the outbox
/// (the playbook result records whether it arrived).
struct ServerNotify {
    notifiers: Option<Arc<Notifiers>>,
    handle: tokio::runtime::Handle,
}

impl NotifyActions for ServerNotify {
    fn notify(
        &mut self,
        alert: &Alert,
        channel: &str,
        timeout: Duration,
    ) -> Result<String, String> {
        let Some(n) = &self.notifiers else {
            return Err("alerts are off ([alerts])".into());
        };
        let now = format_ms(now_ms());
        let d = vigil_alert::store::Delivery {
            id: new_id(),
            alert_id: alert.id.clone(),
            channel: channel.to_owned(),
            route: "playbook".into(),
            state: "pending".into(),
            attempts: 0,
            next_attempt_at: now.clone(),
            created_at: now,
            delivered_at: None,
            last_error: None,
            payload: serde_json::to_value(alert).unwrap_or_default(),
        };
        let n = n.clone();
        match self.handle.block_on(async move {
            tokio::time::timeout(timeout, n.send(&d))
                .await
                .map(|r| (r, d.id))
        }) {
            Ok((Ok(()), id)) => Ok(format!("delivered to {channel} (delivery {id})")),
            Ok((Err(e), _)) => Err(format!("channel {channel}: {e}")),
            Err(_) => Err(format!("channel {channel}: no answer in time")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_respond::executor::Outcome;

    fn result(
        action: &'static str,
        outcome: Outcome,
        dry_run: bool,
        refused: bool,
    ) -> ActionResult {
        ActionResult {
            playbook: "pb".into(),
            index: 0,
            action,
            outcome,
            dry_run,
            detail: "d".into(),
            alert_id: "a".into(),
            incident_id: None,
            address: Some("203.0.113.9".into()),
            refused,
            data: serde_json::Value::Null,
        }
    }

    fn alert() -> Alert {
        Alert {
            id: "a".into(),
            rule_id: "vigil.brute_force".into(),
            rule_name: "Brute force".into(),
            level: Level::High,
            tags: vec![],
            entity: Default::default(),
            message: String::new(),
            group_key: String::new(),
            first_seen: String::new(),
            last_seen: String::new(),
            count: 1,
            evidence_seqs: vec![],
            evidence_truncated: false,
            status: vigil_alert::model::Status::Open,
            suppressed: false,
            suppression_id: None,
        }
    }

    #[test]
    fn action_events_name_blocks_refusals_and_outcomes() {
        let a = alert();
        let ev = |r: ActionResult| {
            let e = action_event(&a, &r);
            (
                e.get_str(fields::EVENT_ACTION)
                    .unwrap_or_default()
                    .to_owned(),
                e.get_str(fields::EVENT_OUTCOME)
                    .unwrap_or_default()
                    .to_owned(),
            )
        };
        let s = |a: &str, o: &str| (a.to_owned(), o.to_owned());
        assert_eq!(
            ev(result("block_ip", Outcome::Ok, false, false)),
            s("ip_blocked", "success")
        );
        assert_eq!(
            ev(result("block_ip", Outcome::Failed, false, true)),
            s("ip_block_refused", "failure")
        );
        assert_eq!(
            ev(result("block_ip", Outcome::Ok, true, false)),
            s("playbook_action", "success")
        );
        assert_eq!(
            ev(result("enrich_geoip", Outcome::Skipped, false, false)),
            s("playbook_action", "unknown")
        );
        let e = action_event(&a, &result("block_ip", Outcome::Ok, false, false));
        assert_eq!(e.get_str(fields::EVENT_DATASET), Some(DATASET));
        assert_eq!(e.get_str(fields::SOURCE_IP), Some("203.0.113.9"));
        assert_eq!(e.get_str(fields::USER_NAME), Some("playbook:pb"));
        assert_eq!(e.get_str(fields::VIGIL_INPUT), Some("internal"));

        let mut big = result("search", Outcome::Ok, false, false);
        big.data = serde_json::json!({"total": 7, "hits": ["x".repeat(MAX_DATA_BYTES)]});
        let e = action_event(&a, &big);
        assert_eq!(
            e.get("vigil.response.data_truncated"),
            Some(&serde_json::json!(true))
        );
        assert_eq!(
            e.get("vigil.response.data.total"),
            Some(&serde_json::json!(7))
        );
        assert!(e.get("vigil.response.data.hits").is_none());
    }

    #[test]
    fn the_servers_own_addresses_are_never_blocked() {
        let mut c = Config::default();
        c.http.listen = "192.0.2.10:8514".parse().unwrap();
        c.response.never_block_private = false;
        let g = never_block(&c);
        let net = |s: &str| vigil_respond::guard::parse_net(s).unwrap();
        assert!(g.check(&net("192.0.2.10")).is_err());
        assert!(g.check(&net("192.0.2.11")).is_ok());
        assert!(g.check(&net("10.0.0.1")).is_ok());
        assert!(g.check(&net("127.0.0.1")).is_err());
    }

    #[test]
    fn response_settings_are_range_checked() {
        let c = Config::from_toml("[response]\nmax_ttl_secs = 0\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid setting response: response.max_ttl_secs must be 1..=31536000, got 0"
        );
        let e = Config::from_toml("[response]\nnever_block = [\"nope\"]\n").unwrap_err();
        assert!(e.contains("never_block"), "{e}");
    }
}
