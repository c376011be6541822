//! Notification channels: how a delivery is rendered and sent.
//!
//! HTTP channels (webhook, Slack, Teams, Mattermost, PagerDuty) go through
//! [`SafeClient`], so every address they reach is checked against the
//! outbound policy, no redirect is followed and every request times out.
//! Syslog and SMTP destinations are resolved through the same policy before
//! connecting. Every text a person reads (chat text, email subject and
//! body, CEF fields) is passed through [`display`], so an attacker-chosen
//! user name cannot inject lines or terminal escapes.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use vigil_event::sanitize::display;

use crate::config::{resolve_secret, AlertsConfig, ChannelKind, ConfigError};
use crate::netguard::{OutboundPolicy, SafeClient};
use crate::sign;
use crate::store::Delivery;

/// Default PagerDuty Events API v2 endpoint.
pub const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// Time allowed for one SMTP or syslog delivery.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(15);

/// A ready channel: secrets read, URLs parsed.
#[derive(Debug)]
enum Channel {
    Webhook {
        url: reqwest::Url,
        secret: String,
    },
    Chat {
        flavour: &'static str,
        url: reqwest::Url,
    },
    PagerDuty {
        url: reqwest::Url,
        routing_key: String,
    },
    Email {
        host: String,
        port: u16,
        tls: String,
        credentials: Option<(String, String)>,
        from: String,
        to: Vec<String>,
        /// Extra trusted roots (PEM), read at start.
        ca_pem: Option<Vec<u8>>,
    },
    Syslog {
        address: String,
        udp: bool,
    },
    File(PathBuf),
    Stdout,
}

/// The configured channels, by name.
pub struct Notifiers {
    channels: HashMap<String, (&'static str, Channel)>,
    client: SafeClient,
    policy: OutboundPolicy,
}

impl std::fmt::Debug for Notifiers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.channels.keys().collect();
        names.sort();
        f.debug_struct("Notifiers")
            .field("channels", &names)
            .finish()
    }
}

fn bad(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        message: message.into(),
    }
}

impl Notifiers {
    /// Builds the channels of a validated configuration, reading secret files.
    pub fn from_config(c: &AlertsConfig) -> Result<Notifiers, ConfigError> {
        let policy = OutboundPolicy::new(c.outbound_allow.clone());
        let client = SafeClient::new(policy.clone())
            .map_err(|e| bad("channel", format!("building the HTTP client: {e}")))?;
        let mut channels = HashMap::new();
        for (i, ch) in c.channels.iter().enumerate() {
            let key = format!("channel[{i}] ({})", ch.name);
            let url = |u: &str| reqwest::Url::parse(u).map_err(|e| bad(&key, format!("url: {e}")));
            let built = match &ch.kind {
                ChannelKind::Webhook {
                    url: u,
                    secret,
                    secret_file,
                } => Channel::Webhook {
                    url: url(u)?,
                    secret: resolve_secret(secret, secret_file)?
                        .ok_or_else(|| bad(&key, "a webhook needs secret or secret_file"))?,
                },
                ChannelKind::Slack { url: u } => Channel::Chat {
                    flavour: "slack",
                    url: url(u)?,
                },
                ChannelKind::Teams { url: u } => Channel::Chat {
                    flavour: "teams",
                    url: url(u)?,
                },
                ChannelKind::Mattermost { url: u } => Channel::Chat {
                    flavour: "mattermost",
                    url: url(u)?,
                },
                ChannelKind::Pagerduty {
                    routing_key,
                    routing_key_file,
                    url: u,
                } => Channel::PagerDuty {
                    url: url(u.as_deref().unwrap_or(PAGERDUTY_URL))?,
                    routing_key: resolve_secret(routing_key, routing_key_file)?
                        .ok_or_else(|| bad(&key, "pagerduty needs a routing key"))?,
                },
                ChannelKind::Email {
                    host,
                    port,
                    tls,
                    username,
                    password,
                    password_file,
                    from,
                    to,
                    ca_file,
                } => {
                    let tls = tls.clone().unwrap_or_else(|| "starttls".into());
                    let ca_pem = match ca_file {
                        Some(p) => {
                            let pem = std::fs::read(p)
                                .map_err(|e| bad(&key, format!("ca_file {}: {e}", p.display())))?;
                            lettre::transport::smtp::client::Certificate::from_pem(&pem)
                                .map_err(|e| bad(&key, format!("ca_file {}: {e}", p.display())))?;
                            Some(pem)
                        }
                        None => None,
                    };
                    if tls == "none" && !is_loopback_literal(host) {
                        return Err(bad(
                            &key,
                            "tls = \"none\" is allowed only for a loopback host (127.0.0.1, ::1)",
                        ));
                    }
                    let password = resolve_secret(password, password_file)?;
                    let credentials = match (username, password) {
                        (Some(u), Some(p)) => Some((u.clone(), p)),
                        (None, None) => None,
                        _ => return Err(bad(&key, "username and password go together")),
                    };
                    for a in std::iter::once(from).chain(to) {
                        a.parse::<lettre::Address>()
                            .map_err(|e| bad(&key, format!("address {a:?}: {e}")))?;
                    }
                    Channel::Email {
                        host: host.clone(),
                        port: port.unwrap_or(if tls == "tls" { 465 } else { 587 }),
                        tls,
                        credentials,
                        from: from.clone(),
                        to: to.clone(),
                        ca_pem,
                    }
                }
                ChannelKind::Syslog { address, protocol } => Channel::Syslog {
                    address: address.clone(),
                    udp: protocol.as_deref() == Some("udp"),
                },
                ChannelKind::File { path } => Channel::File(path.clone()),
                ChannelKind::Stdout {} => Channel::Stdout,
            };
            channels.insert(ch.name.clone(), (ch.kind.name(), built));
        }
        Ok(Notifiers {
            channels,
            client,
            policy,
        })
    }

    /// Whether a channel of this name exists.
    pub fn has(&self, name: &str) -> bool {
        self.channels.contains_key(name)
    }

    /// The kind of the channel `name` (`webhook`, `slack`, …).
    pub fn kind(&self, name: &str) -> Option<&'static str> {
        self.channels.get(name).map(|(k, _)| *k)
    }

    /// Sends one delivery; `Ok` only once the channel acknowledged it
    /// (HTTP 2xx, SMTP 250, a written and flushed syslog message or line).
    pub async fn send(&self, d: &Delivery) -> Result<(), String> {
        let Some((_, ch)) = self.channels.get(&d.channel) else {
            return Err(format!("channel {:?} is no longer configured", d.channel));
        };
        let sent_at = crate::model::format_ms(crate::model::now_ms());
        match ch {
            Channel::Webhook { url, secret } => {
                let body = serde_json::to_vec(&json!({
                    "delivery_id": d.id,
                    "sent_at": sent_at,
                    "alert": d.payload,
                }))
                .map_err(|e| e.to_string())?;
                let req = self
                    .client
                    .post(url)
                    .map_err(|e| e.to_string())?
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(
                        sign::SIGNATURE_HEADER,
                        sign::signature(secret.as_bytes(), &body),
                    )
                    .header(sign::TIMESTAMP_HEADER, &sent_at)
                    .header(sign::DELIVERY_HEADER, &d.id)
                    .body(body);
                http_ack(req).await
            }
            Channel::Chat { flavour, url } => {
                let body = chat_body(flavour, &d.payload);
                let req = self
                    .client
                    .post(url)
                    .map_err(|e| e.to_string())?
                    .header(sign::DELIVERY_HEADER, &d.id)
                    .json(&body);
                http_ack(req).await
            }
            Channel::PagerDuty { url, routing_key } => {
                let body = pagerduty_body(routing_key, &d.payload);
                let req = self
                    .client
                    .post(url)
                    .map_err(|e| e.to_string())?
                    .header(sign::DELIVERY_HEADER, &d.id)
                    .json(&body);
                http_ack(req).await
            }
            Channel::Email {
                host,
                port,
                tls,
                credentials,
                from,
                to,
                ca_pem,
            } => {
                send_email(
                    &self.policy,
                    SmtpServer {
                        host,
                        port: *port,
                        tls,
                        ca_pem: ca_pem.as_deref(),
                    },
                    credentials.as_ref(),
                    from,
                    to,
                    d,
                )
                .await
            }
            Channel::Syslog { address, udp } => {
                let line = syslog_line(&d.payload, &sent_at);
                tokio::time::timeout(
                    SEND_TIMEOUT,
                    send_syslog(&self.policy, address, *udp, &line),
                )
                .await
                .map_err(|_| format!("syslog {address}: timed out"))?
            }
            Channel::File(path) => {
                let line = ndjson_line(d, &sent_at);
                let path = path.clone();
                tokio::task::spawn_blocking(move || append_line(&path, &line))
                    .await
                    .map_err(|e| e.to_string())?
            }
            Channel::Stdout => {
                let line = ndjson_line(d, &sent_at);
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes())
                    .and_then(|_| out.flush())
                    .map_err(|e| format!("stdout: {e}"))
            }
        }
    }
}

fn is_loopback_literal(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

async fn http_ack(req: reqwest::RequestBuilder) -> Result<(), String> {
    let resp = req.send().await.map_err(|e| {
        // reqwest's Display hides the cause (refused address, timeout).
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        msg
    })?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("receiver answered {status}"))
    }
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// One line a person reads: `[high] Rule name — user.name=root source.ip=… (count 3)`.
pub fn summary(alert: &Value) -> String {
    let entity = alert
        .get("entity")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let text = format!(
        "[{}] {}{}{} (count {}, alert {})",
        s(alert, "level"),
        s(alert, "rule_name"),
        if entity.is_empty() { "" } else { " — " },
        entity,
        alert.get("count").and_then(Value::as_u64).unwrap_or(1),
        s(alert, "id"),
    );
    display(&text).into_owned()
}

/// The body of a chat incoming webhook (`slack`, `teams`, `mattermost`).
pub fn chat_body(flavour: &str, alert: &Value) -> Value {
    let text = summary(alert);
    match flavour {
        "teams" => json!({
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": text,
            "title": display(&format!("Vigil alert: {}", s(alert, "rule_name"))),
            "text": text,
        }),
        _ => json!({ "text": format!("Vigil alert: {text}") }),
    }
}

/// A PagerDuty Events v2 trigger; the dedup key is the alert id, so repeats
/// and retries update one incident.
pub fn pagerduty_body(routing_key: &str, alert: &Value) -> Value {
    let severity = match s(alert, "level") {
        "critical" => "critical",
        "high" => "error",
        "medium" => "warning",
        _ => "info",
    };
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": s(alert, "id"),
        "payload": {
            "summary": summary(alert).chars().take(1024).collect::<String>(),
            "source": "vigil",
            "severity": severity,
            "custom_details": alert,
        }
    })
}

fn cef_header(v: &str) -> String {
    display(v).replace('\\', "\\\\").replace('|', "\\|")
}

fn cef_value(v: &str) -> String {
    display(v).replace('\\', "\\\\").replace('=', "\\=")
}

/// An RFC 5424 message carrying the alert as CEF.
pub fn syslog_line(alert: &Value, sent_at: &str) -> String {
    let sev = match s(alert, "level") {
        "critical" => 10,
        "high" => 8,
        "medium" => 5,
        "low" => 3,
        _ => 1,
    };
    let entity = alert.get("entity").cloned().unwrap_or(Value::Null);
    let mut ext = vec![
        format!("externalId={}", cef_value(s(alert, "id"))),
        format!(
            "cnt={}",
            alert.get("count").and_then(Value::as_u64).unwrap_or(1)
        ),
        format!("msg={}", cef_value(s(alert, "message"))),
    ];
    for (field, key) in [
        ("source.ip", "src"),
        ("user.name", "suser"),
        ("host.name", "dhost"),
    ] {
        if let Some(v) = entity.get(field).and_then(Value::as_str) {
            ext.push(format!("{key}={}", cef_value(v)));
        }
    }
    // PRI 132 = facility local0 (16) * 8 + warning (4).
    format!(
        "<132>1 {sent_at} - vigil - alert - CEF:0|Vigil|Vigil|{}|{}|{}|{sev}|{}",
        env!("CARGO_PKG_VERSION"),
        cef_header(s(alert, "rule_id")),
        cef_header(s(alert, "rule_name")),
        ext.join(" ")
    )
}

async fn send_syslog(
    policy: &OutboundPolicy,
    address: &str,
    udp: bool,
    line: &str,
) -> Result<(), String> {
    let (host, port) = address
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("syslog address {address:?} is not host:port"))?;
    let addrs = policy
        .resolve(host, port)
        .await
        .map_err(|e| format!("syslog {address}: {e}"))?;
    let addr = addrs[0];
    if udp {
        let bind = if addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let sock = tokio::net::UdpSocket::bind(bind)
            .await
            .map_err(|e| format!("syslog {address}: {e}"))?;
        sock.send_to(line.as_bytes(), addr)
            .await
            .map_err(|e| format!("syslog {address}: {e}"))?;
    } else {
        let mut conn = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("syslog {address}: {e}"))?;
        let framed = format!("{} {line}", line.len());
        conn.write_all(framed.as_bytes())
            .await
            .map_err(|e| format!("syslog {address}: {e}"))?;
        conn.shutdown()
            .await
            .map_err(|e| format!("syslog {address}: {e}"))?;
    }
    Ok(())
}

fn ndjson_line(d: &Delivery, sent_at: &str) -> String {
    let mut line = json!({
        "delivery_id": d.id,
        "sent_at": sent_at,
        "channel": d.channel,
        "alert": d.payload,
    })
    .to_string();
    line.push('\n');
    line
}

fn append_line(path: &std::path::Path, line: &str) -> Result<(), String> {
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    f.write_all(line.as_bytes())
        .and_then(|_| f.sync_data())
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Where and how to reach an SMTP server.
struct SmtpServer<'a> {
    host: &'a str,
    port: u16,
    tls: &'a str,
    ca_pem: Option<&'a [u8]>,
}

async fn send_email(
    policy: &OutboundPolicy,
    server: SmtpServer<'_>,
    credentials: Option<&(String, String)>,
    from: &str,
    to: &[String],
    d: &Delivery,
) -> Result<(), String> {
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let SmtpServer {
        host,
        port,
        tls,
        ca_pem,
    } = server;

    // The address is checked here; lettre connects by name itself.
    policy
        .resolve(host.trim_start_matches('[').trim_end_matches(']'), port)
        .await
        .map_err(|e| format!("smtp {host}: {e}"))?;
    let subject: String = format!("Vigil alert: {}", summary(&d.payload))
        .chars()
        .take(200)
        .collect();
    let body = format!(
        "{}\n\nRule: {}\nLevel: {}\nMessage: {}\nFirst seen: {}\nAlert id: {}\nDelivery id: {}\n",
        summary(&d.payload),
        display(s(&d.payload, "rule_name")),
        display(s(&d.payload, "level")),
        display(s(&d.payload, "message")),
        display(s(&d.payload, "first_seen")),
        display(s(&d.payload, "id")),
        d.id,
    );
    let mut msg = Message::builder()
        .from(from.parse().map_err(|e| format!("from {from:?}: {e}"))?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for t in to {
        msg = msg.to(t.parse().map_err(|e| format!("to {t:?}: {e}"))?);
    }
    let msg = msg
        .body(body)
        .map_err(|e| format!("building the email: {e}"))?;
    let builder = match tls {
        "none" => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
        "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host)
            .map_err(|e| format!("smtp {host}: {e}"))?,
        _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
            .map_err(|e| format!("smtp {host}: {e}"))?,
    };
    let mut builder = builder.port(port).timeout(Some(SEND_TIMEOUT));
    if let (Some(pem), "tls" | "starttls") = (ca_pem, tls) {
        let cert = Certificate::from_pem(pem).map_err(|e| format!("smtp ca_file: {e}"))?;
        let params = TlsParameters::builder(host.to_owned())
            .add_root_certificate(cert)
            .build_rustls()
            .map_err(|e| format!("smtp {host}: TLS setup: {e}"))?;
        builder = builder.tls(if tls == "tls" {
            Tls::Wrapper(params)
        } else {
            Tls::Required(params)
        });
    }
    if let Some((u, p)) = credentials {
        builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
    }
    let transport = builder.build();
    let resp = transport
        .send(msg)
        .await
        .map_err(|e| format!("smtp {host}:{port}: {e}"))?;
    if resp.is_positive() {
        Ok(())
    } else {
        Err(format!("smtp {host}:{port}: answered {}", resp.code()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Value {
        json!({
            "id": "abc",
            "rule_id": "r|1",
            "rule_name": "Evil\nFAKE LINE\u{1b}[31m",
            "level": "high",
            "message": "a=b",
            "count": 3,
            "entity": {"user.name": "root\r\nInjected: yes", "source.ip": "203.0.113.9"},
        })
    }

    #[test]
    fn human_text_has_no_control_characters() {
        let a = alert();
        for text in [
            summary(&a),
            chat_body("slack", &a).to_string(),
            chat_body("teams", &a)["text"].as_str().unwrap().to_string(),
            pagerduty_body("k", &a)["payload"]["summary"]
                .as_str()
                .unwrap()
                .to_string(),
            syslog_line(&a, "2026-01-01T00:00:00Z"),
        ] {
            assert!(!text.chars().any(|c| c.is_control()), "{text:?}");
        }
        assert!(summary(&a).contains("root\\r\\nInjected"));
    }

    #[test]
    fn cef_escapes_separators() {
        let line = syslog_line(&alert(), "2026-01-01T00:00:00Z");
        assert!(line.contains("|r\\|1|"), "{line}");
        assert!(line.contains("msg=a\\=b"), "{line}");
        assert!(line.contains("|8|"), "{line}");
        assert!(line.contains("src=203.0.113.9"), "{line}");
    }

    #[test]
    fn pagerduty_dedups_on_the_alert_id() {
        let b = pagerduty_body("key", &alert());
        assert_eq!(b["dedup_key"], "abc");
        assert_eq!(b["event_action"], "trigger");
        assert_eq!(b["routing_key"], "key");
        assert_eq!(b["payload"]["severity"], "error");
    }

    #[test]
    fn plain_smtp_only_on_loopback() {
        let mut c = AlertsConfig::default();
        c.channels.push(crate::config::ChannelConfig {
            name: "mail".into(),
            kind: ChannelKind::Email {
                host: "mail.example.com".into(),
                port: Some(25),
                tls: Some("none".into()),
                username: None,
                password: None,
                password_file: None,
                from: "vigil@example.com".into(),
                to: vec!["soc@example.com".into()],
                ca_file: None,
            },
        });
        let e = Notifiers::from_config(&c).unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        if let ChannelKind::Email { host, .. } = &mut c.channels[0].kind {
            *host = "127.0.0.1".into();
        }
        assert!(Notifiers::from_config(&c).is_ok());
    }
}
