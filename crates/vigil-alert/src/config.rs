//! `[alerts]` configuration: channels, routes, grouping, throttling, retry
//! policy, maintenance windows and the outbound allowlist.
//!
//! Deserialized by the server as one section of `vigil.toml`; checked by
//! [`AlertsConfig::validate`] before anything starts, so that a typo in a
//! route's channel name is refused at start rather than silently dropping
//! notifications.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::model::Level;
use crate::netguard::Cidr;

/// `[alerts]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Alert tracking on or off; when not given, on exactly when at least
    /// one channel is configured (see [`AlertsConfig::is_enabled`]).
    pub enabled: Option<bool>,
    /// Repeats of the same group key within this many seconds of the
    /// alert's first sighting raise its count instead of opening a new alert.
    pub group_window_secs: u64,
    /// Alert fields that make the group key (default: rule and entity).
    pub group_by: Vec<String>,
    /// Evidence seqs kept per alert; beyond it the alert is flagged
    /// `evidence_truncated`.
    pub max_evidence: usize,
    /// Delivery retries.
    pub retry: RetryConfig,
    /// Networks that channels may reach although they are loopback, private
    /// or otherwise refused (see [`crate::netguard`]).
    pub outbound_allow: Vec<Cidr>,
    /// `[[alerts.channel]]`: where notifications go.
    #[serde(rename = "channel")]
    pub channels: Vec<ChannelConfig>,
    /// `[[alerts.route]]`: which alerts go to which channels.
    #[serde(rename = "route")]
    pub routes: Vec<RouteConfig>,
    /// `[[alerts.maintenance]]`: periods during which notifications are held back.
    #[serde(rename = "maintenance")]
    pub maintenance: Vec<MaintenanceConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: None,
            group_window_secs: 3600,
            group_by: vec![
                "rule.id".into(),
                "source.ip".into(),
                "user.name".into(),
                "host.name".into(),
            ],
            max_evidence: 100,
            retry: RetryConfig::default(),
            outbound_allow: Vec::new(),
            channels: Vec::new(),
            routes: Vec::new(),
            maintenance: Vec::new(),
        }
    }
}

/// `[alerts.retry]`: exponential backoff with jitter, capped.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetryConfig {
    /// Delay before the first retry, in milliseconds.
    pub initial_ms: u64,
    /// Longest delay between two attempts, in milliseconds.
    pub max_ms: u64,
    /// Each retry waits this many times longer than the previous one.
    pub multiplier: f64,
    /// Fraction (0..=1) of each delay that is randomised, so that many
    /// deliveries failing together do not retry together.
    pub jitter: f64,
    /// After this many failed attempts a delivery is `dead`.
    pub max_attempts: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            initial_ms: 2_000,
            max_ms: 300_000,
            multiplier: 2.0,
            jitter: 0.2,
            max_attempts: 10,
        }
    }
}

/// One `[[alerts.channel]]`, told apart by `kind`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ChannelConfig {
    /// Name routes refer to.
    pub name: String,
    /// What it is, with its settings.
    #[serde(flatten)]
    pub kind: ChannelKind,
}

/// The kinds of channel.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ChannelKind {
    /// Generic webhook: JSON body signed with HMAC-SHA256.
    Webhook {
        /// `http://` or `https://` URL.
        url: String,
        /// HMAC secret given inline (prefer `secret_file`).
        secret: Option<String>,
        /// File holding the HMAC secret (mode 0600).
        secret_file: Option<PathBuf>,
    },
    /// Slack incoming webhook.
    Slack {
        /// The incoming-webhook URL.
        url: String,
    },
    /// Microsoft Teams incoming webhook (MessageCard).
    Teams {
        /// The incoming-webhook URL.
        url: String,
    },
    /// Mattermost incoming webhook.
    Mattermost {
        /// The incoming-webhook URL.
        url: String,
    },
    /// PagerDuty Events API v2.
    Pagerduty {
        /// Integration (routing) key given inline.
        routing_key: Option<String>,
        /// File holding the routing key (mode 0600).
        routing_key_file: Option<PathBuf>,
        /// Events endpoint (default `https://events.pagerduty.com/v2/enqueue`).
        url: Option<String>,
    },
    /// Email over SMTP.
    Email {
        /// SMTP server host.
        host: String,
        /// SMTP port (default 587).
        port: Option<u16>,
        /// `starttls` (default), `tls` (implicit TLS), or `none`, which is
        /// accepted only for a loopback host (test receivers).
        tls: Option<String>,
        /// SMTP user, when the server wants authentication.
        username: Option<String>,
        /// SMTP password given inline (prefer `password_file`).
        password: Option<String>,
        /// File holding the SMTP password (mode 0600).
        password_file: Option<PathBuf>,
        /// Sender address.
        from: String,
        /// Recipient addresses.
        to: Vec<String>,
        /// PEM certificate(s) to trust for this server in addition to the
        /// system roots (a private relay with its own CA).
        #[serde(default)]
        ca_file: Option<PathBuf>,
    },
    /// Syslog forwarding of CEF messages.
    Syslog {
        /// `host:port` of the receiver.
        address: String,
        /// `tcp` (default, octet-counted framing) or `udp`.
        protocol: Option<String>,
    },
    /// Append NDJSON lines to a file.
    File {
        /// The file.
        path: PathBuf,
    },
    /// Print NDJSON lines on standard output.
    Stdout {},
}

impl ChannelKind {
    /// The kind's name, as in the config and the metrics.
    pub fn name(&self) -> &'static str {
        match self {
            ChannelKind::Webhook { .. } => "webhook",
            ChannelKind::Slack { .. } => "slack",
            ChannelKind::Teams { .. } => "teams",
            ChannelKind::Mattermost { .. } => "mattermost",
            ChannelKind::Pagerduty { .. } => "pagerduty",
            ChannelKind::Email { .. } => "email",
            ChannelKind::Syslog { .. } => "syslog",
            ChannelKind::File { .. } => "file",
            ChannelKind::Stdout {} => "stdout",
        }
    }
}

/// One `[[alerts.route]]`: every condition given must hold.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RouteConfig {
    /// Name (in metrics, history and throttling).
    pub name: String,
    /// Channels the matching alerts are sent to.
    pub channels: Vec<String>,
    /// Lowest Sigma level routed (`informational` … `critical`).
    pub min_level: Option<Level>,
    /// The alert must carry at least one of these tags.
    pub tags: Vec<String>,
    /// The alert's rule id must be one of these.
    pub rule_ids: Vec<String>,
    /// Entity fields (`source.ip`, `user.name`, `host.name`) that must equal.
    pub entity: BTreeMap<String, String>,
    /// At most this many notifications per `throttle_window_secs` (0: no limit).
    pub throttle_max: u32,
    /// The throttle window in seconds.
    pub throttle_window_secs: u64,
}

/// One `[[alerts.maintenance]]`: notifications for matching alerts are
/// held back between `start` and `end` (the alerts are still recorded).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// Why (shown in the alert's history).
    pub reason: String,
    /// RFC 3339 start.
    pub start: String,
    /// RFC 3339 end.
    pub end: String,
    /// Alert fields that must equal for the window to apply (empty: all alerts).
    #[serde(default)]
    pub r#match: BTreeMap<String, String>,
}

/// A configuration mistake, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("alerts.{key}: {message}")]
pub struct ConfigError {
    /// The offending key.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

fn err(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        message: message.into(),
    }
}

impl AlertsConfig {
    /// Whether alerts are tracked: `enabled` when given, else whether any
    /// channel is configured.
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(!self.channels.is_empty())
    }

    /// Checks the settings that can be checked without I/O.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.group_window_secs == 0 || self.group_window_secs > 30 * 86_400 {
            return Err(err("group_window_secs", "must be 1..=2592000"));
        }
        if self.max_evidence == 0 || self.max_evidence > 10_000 {
            return Err(err("max_evidence", "must be 1..=10000"));
        }
        let r = &self.retry;
        if r.initial_ms == 0 || r.max_ms < r.initial_ms {
            return Err(err(
                "retry",
                "initial_ms must be > 0 and max_ms >= initial_ms",
            ));
        }
        if !(1.0..=10.0).contains(&r.multiplier) || !(0.0..=1.0).contains(&r.jitter) {
            return Err(err("retry", "multiplier must be 1..=10 and jitter 0..=1"));
        }
        if r.max_attempts == 0 || r.max_attempts > 100 {
            return Err(err("retry.max_attempts", "must be 1..=100"));
        }
        let mut names = std::collections::HashSet::new();
        for (i, c) in self.channels.iter().enumerate() {
            let key = format!("channel[{i}]");
            if c.name.is_empty() || c.name.len() > 64 || c.name.chars().any(|c| c.is_control()) {
                return Err(err(key, "name must be 1..=64 printable characters"));
            }
            if !names.insert(c.name.as_str()) {
                return Err(err(key, format!("duplicate channel name {:?}", c.name)));
            }
            check_channel(&key, &c.kind)?;
        }
        for (i, r) in self.routes.iter().enumerate() {
            let key = format!("route[{i}]");
            if r.channels.is_empty() {
                return Err(err(key, "names no channel"));
            }
            for ch in &r.channels {
                if !names.contains(ch.as_str()) {
                    return Err(err(key, format!("unknown channel {ch:?}")));
                }
            }
            if r.throttle_max > 0 && r.throttle_window_secs == 0 {
                return Err(err(key, "throttle_max needs throttle_window_secs > 0"));
            }
            for f in r.entity.keys() {
                if !crate::model::ENTITY_FIELDS.contains(&f.as_str()) {
                    return Err(err(
                        key,
                        format!("entity field {f:?} is not one of source.ip, user.name, host.name"),
                    ));
                }
            }
        }
        for (i, m) in self.maintenance.iter().enumerate() {
            let key = format!("maintenance[{i}]");
            let s = crate::model::parse_time(&m.start)
                .map_err(|e| err(key.clone(), format!("start: {e}")))?;
            let e = crate::model::parse_time(&m.end)
                .map_err(|e| err(key.clone(), format!("end: {e}")))?;
            if e <= s {
                return Err(err(key, "end must be after start"));
            }
        }
        Ok(())
    }
}

fn check_channel(key: &str, kind: &ChannelKind) -> Result<(), ConfigError> {
    let url = |u: &str| -> Result<(), ConfigError> {
        let parsed = reqwest::Url::parse(u).map_err(|e| err(key, format!("url {u:?}: {e}")))?;
        match parsed.scheme() {
            "http" | "https" => Ok(()),
            s => Err(err(key, format!("url scheme {s:?} is not http or https"))),
        }
    };
    match kind {
        ChannelKind::Webhook {
            url: u,
            secret,
            secret_file,
        } => {
            url(u)?;
            if secret.is_none() && secret_file.is_none() {
                return Err(err(key, "a webhook needs secret or secret_file"));
            }
        }
        ChannelKind::Slack { url: u }
        | ChannelKind::Teams { url: u }
        | ChannelKind::Mattermost { url: u } => url(u)?,
        ChannelKind::Pagerduty {
            routing_key,
            routing_key_file,
            url: u,
        } => {
            if let Some(u) = u {
                url(u)?;
            }
            if routing_key.is_none() && routing_key_file.is_none() {
                return Err(err(key, "pagerduty needs routing_key or routing_key_file"));
            }
        }
        ChannelKind::Email { tls, to, .. } => {
            if to.is_empty() {
                return Err(err(key, "email needs at least one address in to"));
            }
            match tls.as_deref() {
                None | Some("starttls") | Some("tls") | Some("none") => {}
                Some(t) => return Err(err(key, format!("tls {t:?} is not starttls, tls or none"))),
            }
        }
        ChannelKind::Syslog { protocol, .. } => match protocol.as_deref() {
            None | Some("tcp") | Some("udp") => {}
            Some(p) => return Err(err(key, format!("protocol {p:?} is not tcp or udp"))),
        },
        ChannelKind::File { .. } | ChannelKind::Stdout {} => {}
    }
    Ok(())
}

/// Reads a secret file, refusing it when group or others can read it.
pub fn read_secret_file(path: &std::path::Path) -> Result<String, ConfigError> {
    let key = format!("secret file {}", path.display());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| err(key.clone(), e.to_string()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(err(
                key,
                format!("mode is {mode:o}; it must be 600 (chmod 600)"),
            ));
        }
    }
    let s = std::fs::read_to_string(path).map_err(|e| err(key.clone(), e.to_string()))?;
    let s = s.trim_end_matches(['\n', '\r']).to_string();
    if s.is_empty() {
        return Err(err(key, "is empty"));
    }
    Ok(s)
}

/// A secret from its inline value or its file.
pub fn resolve_secret(
    inline: &Option<String>,
    file: &Option<PathBuf>,
) -> Result<Option<String>, ConfigError> {
    match (inline, file) {
        (_, Some(f)) => read_secret_file(f).map(Some),
        (Some(v), None) => Ok(Some(v.clone())),
        (None, None) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<AlertsConfig, String> {
        toml::from_str::<AlertsConfig>(s).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_channels_routes_and_maintenance() {
        let c = parse(
            r#"
group_window_secs = 600
outbound_allow = ["127.0.0.1/32"]
[retry]
initial_ms = 500
max_attempts = 4
[[channel]]
name = "soc"
kind = "webhook"
url = "https://hooks.example.com/vigil"
secret = "s3cret"
[[channel]]
name = "log"
kind = "stdout"
[[route]]
name = "high"
min_level = "high"
channels = ["soc", "log"]
throttle_max = 10
throttle_window_secs = 60
[[maintenance]]
reason = "patching"
start = "2026-01-01T00:00:00Z"
end = "2026-01-01T02:00:00Z"
match = { "host.name" = "db1" }
"#,
        )
        .unwrap();
        c.validate().unwrap();
        assert!(c.is_enabled());
        assert_eq!(c.channels[0].kind.name(), "webhook");
        assert_eq!(c.routes[0].min_level, Some(Level::High));
        assert_eq!(c.retry.initial_ms, 500);
        assert_eq!(c.retry.max_ms, 300_000);
        assert!(!AlertsConfig::default().is_enabled());
    }

    #[test]
    fn refuses_mistakes_with_the_key() {
        let e = parse("[[channel]]\nname = \"x\"\nkind = \"stdout\"\ncolour = 1\n").unwrap_err();
        assert!(e.contains("colour"), "{e}");
        let e = parse("[[channel]]\nname = \"x\"\nkind = \"fax\"\n").unwrap_err();
        assert!(e.contains("fax"), "{e}");
        let bad = |s: &str| parse(s).unwrap().validate().unwrap_err().to_string();
        assert!(bad("[[route]]\nname = \"r\"\nchannels = [\"nope\"]\n").contains("unknown channel"));
        assert!(bad(
            "[[channel]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"https://x.example\"\n"
        )
        .contains("secret"));
        assert!(
            bad("[[channel]]\nname = \"w\"\nkind = \"slack\"\nurl = \"file:///etc/passwd\"\n")
                .contains("scheme")
        );
        assert!(bad("[retry]\nmax_attempts = 0\n").contains("max_attempts"));
    }

    #[cfg(unix)]
    #[test]
    fn secret_files_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("secret");
        std::fs::write(&f, "hunter2\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_secret_file(&f)
            .unwrap_err()
            .to_string()
            .contains("600"));
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secret_file(&f).unwrap(), "hunter2");
    }
}
