//! Playbook files: their YAML schema, and loading with every safety check.
//!
//! A playbook is refused as a whole, at load, with an error naming the file,
//! the playbook id and the action index, when it holds an unknown field, a
//! command that is not an absolute program or that would need a shell, a
//! `block_ip` of an address that must never be blocked, an unknown channel,
//! or a TTL or timeout out of range. What loads can still be refused at run
//! time (a blocked address taken from an alert is checked again).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use vigil_alert::model::{Alert, Level, ENTITY_FIELDS};
use vigil_alert::netguard::OutboundPolicy;

use crate::config::MAX_TIMEOUT;
use crate::guard::NeverBlock;
use crate::template::{first_meta, Template};

/// Largest playbook file read.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;
/// Most playbook files loaded.
pub const MAX_FILES: usize = 256;
/// Most actions in one playbook.
pub const MAX_ACTIONS: usize = 32;
/// Most arguments of a command.
pub const MAX_ARGS: usize = 64;
/// Longest command argument.
pub const MAX_ARG_LEN: usize = 4096;
/// Most hits a `search` action attaches.
pub const MAX_SEARCH_HITS: usize = 100;

/// Programs that run other programs or interpret text as code: a playbook
/// that names one could do anything, so they are refused as `program`.
pub const INTERPRETERS: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "ksh",
    "mksh",
    "ash",
    "csh",
    "tcsh",
    "fish",
    "busybox",
    "env",
    "xargs",
    "nohup",
    "timeout",
    "nice",
    "setsid",
    "sudo",
    "doas",
    "su",
    "runuser",
    "python",
    "python2",
    "python3",
    "perl",
    "ruby",
    "node",
    "nodejs",
    "php",
    "lua",
    "tclsh",
    "wish",
    "awk",
    "gawk",
    "mawk",
    "expect",
    "pwsh",
    "powershell",
    "osascript",
    "eval",
    "exec",
    "script",
    "ssh",
    "watch",
    "find",
    "flock",
    "chroot",
    "strace",
];

/// A playbook file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaybookFile {
    id: String,
    name: String,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(rename = "match", default)]
    matcher: Match,
    #[serde(default)]
    dry_run: bool,
    actions: Vec<serde_yaml::Value>,
}

fn yes() -> bool {
    true
}

/// Which alerts a playbook runs on; every condition given must hold.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// Glob over the rule id (`*` any run, `?` one character).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    /// Lowest level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Level>,
    /// Any of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Entity fields that must all equal (`source.ip`, `user.name`, `host.name`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub entity: BTreeMap<String, String>,
}

impl Match {
    /// Whether `alert` satisfies every condition.
    pub fn matches(&self, alert: &Alert) -> bool {
        self.rule_id
            .as_deref()
            .is_none_or(|g| glob(g, &alert.rule_id))
            && self.min_severity.is_none_or(|l| alert.level >= l)
            && (self.tags.is_empty() || self.tags.iter().any(|t| alert.tags.contains(t)))
            && self
                .entity
                .iter()
                .all(|(k, v)| alert.entity.get(k) == Some(v))
    }
}

/// `*` matches any run of characters, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The action names, as written in YAML.
pub const ACTIONS: &[&str] = &[
    "notify",
    "incident",
    "set_severity",
    "set_assignee",
    "enrich_geoip",
    "block_ip",
    "command",
    "webhook",
    "search",
];

/// Actions as written (one key per list item, plus an optional `timeout`).
#[derive(Debug, Clone)]
enum RawAction {
    Notify(NotifyArgs),
    Incident(IncidentArgs),
    SetSeverity(SeverityArgs),
    SetAssignee(AssigneeArgs),
    EnrichGeoip(GeoipArgs),
    BlockIp(BlockArgs),
    Command(CommandArgs),
    Webhook(WebhookArgs),
    Search(SearchArgs),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyArgs {
    channel: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentArgs {
    open_or_attach: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeverityArgs {
    level: Level,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssigneeArgs {
    user: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct GeoipArgs {
    #[serde(default)]
    field: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockArgs {
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    address: Option<String>,
    ttl: String,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandArgs {
    program: String,
    #[serde(default)]
    args: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookArgs {
    url: String,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    #[serde(default)]
    secret_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    query: String,
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

impl RawAction {
    fn read(kind: &str, v: serde_yaml::Value) -> Result<RawAction, String> {
        // `- enrich_geoip:` with nothing after it is the action with defaults.
        let v = if v.is_null() {
            serde_yaml::Mapping::new().into()
        } else {
            v
        };
        fn de<T: serde::de::DeserializeOwned>(v: serde_yaml::Value) -> Result<T, String> {
            serde_yaml::from_value(v).map_err(|e| e.to_string())
        }
        Ok(match kind {
            "notify" => RawAction::Notify(de(v)?),
            "incident" => RawAction::Incident(de(v)?),
            "set_severity" => RawAction::SetSeverity(de(v)?),
            "set_assignee" => RawAction::SetAssignee(de(v)?),
            "enrich_geoip" => RawAction::EnrichGeoip(de(v)?),
            "block_ip" => RawAction::BlockIp(de(v)?),
            "command" => RawAction::Command(de(v)?),
            "webhook" => RawAction::Webhook(de(v)?),
            "search" => RawAction::Search(de(v)?),
            other => {
                return Err(format!(
                    "unknown action {:?} (known: {})",
                    vigil_event::sanitize::display(other),
                    ACTIONS.join(", ")
                ))
            }
        })
    }
}

/// Where `block_ip` takes its address from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockTarget {
    /// An IP field of the alert's entity.
    Field(String),
    /// A fixed address or network.
    Literal(IpNet),
}

/// A checked action.
#[derive(Debug, Clone)]
pub enum Action {
    /// Send the alert to a configured `[[alerts.channel]]`.
    Notify {
        /// Channel name.
        channel: String,
    },
    /// Open an incident for the alert or attach it to the open one.
    Incident,
    /// Set the incident's severity.
    SetSeverity {
        /// New level.
        level: Level,
    },
    /// Assign the incident.
    SetAssignee {
        /// Who.
        user: String,
    },
    /// Look the address up in the GeoIP databases.
    EnrichGeoip {
        /// The IP field (default `source.ip`).
        field: String,
    },
    /// Put an address on the blocklist.
    BlockIp {
        /// Where the address comes from.
        target: BlockTarget,
        /// How long it stays.
        ttl: Duration,
        /// Why (shown to bouncers and people).
        reason: String,
    },
    /// Run a program directly (never a shell).
    Command {
        /// Absolute path.
        program: PathBuf,
        /// Arguments; each becomes exactly one argv element.
        args: Vec<Template>,
    },
    /// POST JSON to a URL through the SSRF-safe client.
    Webhook {
        /// Where.
        url: reqwest::Url,
        /// Body fields (placeholders filled).
        fields: BTreeMap<String, Template>,
        /// HMAC key for `X-Vigil-Signature`.
        secret: Option<String>,
    },
    /// Run a search and attach its count and first hits.
    Search {
        /// The query (placeholders filled).
        query: Template,
        /// `15m`, `24h`, … (default `24h`).
        since: String,
        /// Hits attached (default 10, at most [`MAX_SEARCH_HITS`]).
        limit: usize,
    },
}

impl Action {
    /// The action's name as written in YAML.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Notify { .. } => "notify",
            Action::Incident => "incident",
            Action::SetSeverity { .. } => "set_severity",
            Action::SetAssignee { .. } => "set_assignee",
            Action::EnrichGeoip { .. } => "enrich_geoip",
            Action::BlockIp { .. } => "block_ip",
            Action::Command { .. } => "command",
            Action::Webhook { .. } => "webhook",
            Action::Search { .. } => "search",
        }
    }
}

/// One checked step of a playbook.
#[derive(Debug, Clone)]
pub struct Step {
    /// What to do.
    pub action: Action,
    /// How long it may take.
    pub timeout: Duration,
}

/// A checked playbook.
#[derive(Debug, Clone)]
pub struct Playbook {
    /// Unique id.
    pub id: String,
    /// Name for people.
    pub name: String,
    /// Disabled playbooks load (and are checked) but never run.
    pub enabled: bool,
    /// Which alerts it runs on.
    pub matcher: Match,
    /// Record what would happen without doing it.
    pub dry_run: bool,
    /// In order.
    pub steps: Vec<Step>,
    /// The file it came from.
    pub file: PathBuf,
}

/// What loading checks playbooks against.
#[derive(Debug, Clone)]
pub struct LoadContext {
    /// Addresses that must never be blocked.
    pub never_block: NeverBlock,
    /// Configured notification channels; `None` skips the check.
    pub channels: Option<BTreeSet<String>>,
    /// Longest TTL.
    pub max_ttl: Duration,
    /// Timeout of a step that names none.
    pub default_timeout: Duration,
    /// Policy for webhook URLs.
    pub outbound: OutboundPolicy,
}

/// A refused playbook: the file, the playbook and the action it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadError {
    /// The file.
    pub file: PathBuf,
    /// The playbook id, when it was read.
    pub playbook: Option<String>,
    /// The action index (0-based) and kind, when the error is about one.
    pub action: Option<(usize, String)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(id) = &self.playbook {
            write!(f, ": playbook {}", vigil_event::sanitize::display(id))?;
        }
        if let Some((i, kind)) = &self.action {
            write!(f, ": actions[{i}]")?;
            if !kind.is_empty() {
                write!(f, " ({kind})")?;
            }
        }
        write!(f, ": {}", vigil_event::sanitize::display(&self.message))
    }
}

/// Loads every `*.yml`/`*.yaml` file of `dir` (sorted by name), then
/// `files`; playbook ids must be unique.
pub fn load_all(
    dir: Option<&Path>,
    files: &[PathBuf],
    cx: &LoadContext,
) -> Result<Vec<Playbook>, LoadError> {
    let mut paths = Vec::new();
    if let Some(dir) = dir {
        let rd = std::fs::read_dir(dir).map_err(|e| LoadError {
            file: dir.into(),
            playbook: None,
            action: None,
            message: format!("cannot read the playbook directory: {e}"),
        })?;
        let mut found: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
            .collect();
        found.sort();
        paths.extend(found);
    }
    paths.extend(files.iter().cloned());
    if paths.len() > MAX_FILES {
        return Err(LoadError {
            file: dir.map(Into::into).unwrap_or_default(),
            playbook: None,
            action: None,
            message: format!("{} playbook files, at most {MAX_FILES}", paths.len()),
        });
    }
    let mut out: Vec<Playbook> = Vec::new();
    for p in paths {
        let pb = load_file(&p, cx)?;
        if let Some(other) = out.iter().find(|o| o.id == pb.id) {
            return Err(LoadError {
                file: p,
                playbook: Some(pb.id),
                action: None,
                message: format!("the id is already used in {}", other.file.display()),
            });
        }
        out.push(pb);
    }
    Ok(out)
}

/// Reads and checks one playbook file.
pub fn load_file(path: &Path, cx: &LoadContext) -> Result<Playbook, LoadError> {
    let err = |message: String| LoadError {
        file: path.into(),
        playbook: None,
        action: None,
        message,
    };
    let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(err(format!(
            "{} bytes, at most {MAX_FILE_BYTES}",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    parse(&text, path, cx)
}

/// Parses and checks playbook YAML; `path` names it in errors.
pub fn parse(text: &str, path: &Path, cx: &LoadContext) -> Result<Playbook, LoadError> {
    let raw: PlaybookFile = serde_yaml::from_str(text).map_err(|e| LoadError {
        file: path.into(),
        playbook: id_hint(text),
        action: None,
        message: e.to_string(),
    })?;
    let err = |action: Option<(usize, String)>, message: String| LoadError {
        file: path.into(),
        playbook: Some(raw.id.clone()),
        action,
        message,
    };
    let id_ok = !raw.id.is_empty()
        && raw.id.len() <= 64
        && raw
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !id_ok {
        return Err(err(
            None,
            "id must be 1-64 letters, digits, '.', '_' or '-'".into(),
        ));
    }
    if raw.name.trim().is_empty() || raw.name.len() > 256 || raw.name.chars().any(char::is_control)
    {
        return Err(err(
            None,
            "name must be 1-256 characters without control characters".into(),
        ));
    }
    check_match(&raw.matcher).map_err(|m| err(None, format!("match: {m}")))?;
    if raw.actions.is_empty() || raw.actions.len() > MAX_ACTIONS {
        return Err(err(
            None,
            format!("needs 1..={MAX_ACTIONS} actions, has {}", raw.actions.len()),
        ));
    }
    let mut steps = Vec::new();
    for (i, v) in raw.actions.iter().enumerate() {
        let step = step(v, cx).map_err(|(kind, m)| err(Some((i, kind)), m))?;
        steps.push(step);
    }
    Ok(Playbook {
        id: raw.id,
        name: raw.name,
        enabled: raw.enabled,
        matcher: raw.matcher,
        dry_run: raw.dry_run,
        steps,
        file: path.into(),
    })
}

/// The id of a playbook that did not parse, for the error message.
fn id_hint(text: &str) -> Option<String> {
    let v: serde_yaml::Value = serde_yaml::from_str(text).ok()?;
    v.get("id")?.as_str().map(|s| s.chars().take(64).collect())
}

fn check_match(m: &Match) -> Result<(), String> {
    if let Some(g) = &m.rule_id {
        if g.is_empty() || g.len() > 256 {
            return Err("rule_id must be 1-256 characters".into());
        }
    }
    if m.tags.len() > 64 {
        return Err("at most 64 tags".into());
    }
    for k in m.entity.keys() {
        if !ENTITY_FIELDS.contains(&k.as_str()) {
            return Err(format!(
                "entity field {k:?} is not one of {}",
                ENTITY_FIELDS.join(", ")
            ));
        }
    }
    Ok(())
}

/// Checks one action; errors carry the action kind when it was read.
fn step(v: &serde_yaml::Value, cx: &LoadContext) -> Result<Step, (String, String)> {
    // `- enrich_geoip` (a bare name) is the action with its defaults.
    let mut map = match v {
        serde_yaml::Value::String(s) => {
            let mut m = serde_yaml::Mapping::new();
            m.insert(s.as_str().into(), serde_yaml::Mapping::new().into());
            m
        }
        serde_yaml::Value::Mapping(m) => m.clone(),
        _ => {
            return Err((
                String::new(),
                "an action is a mapping like `block_ip: {field: source.ip, ttl: 1h}`".into(),
            ))
        }
    };
    let timeout = map.remove("timeout");
    let kind = map
        .keys()
        .next()
        .and_then(|k| k.as_str())
        .unwrap_or_default()
        .to_owned();
    if map.len() != 1 {
        return Err((
            kind,
            format!(
                "an action has exactly one action key (and an optional timeout), found {}",
                map.len()
            ),
        ));
    }
    let e = |m: String| (kind.clone(), m);
    let inner = map.values().next().cloned().unwrap_or_default();
    let raw = RawAction::read(&kind, inner).map_err(e)?;
    let timeout = match timeout {
        None => cx.default_timeout,
        Some(serde_yaml::Value::String(s)) => {
            let d = crate::duration::parse(&s).map_err(|m| e(format!("timeout: {m}")))?;
            if d.is_zero() || d > MAX_TIMEOUT {
                return Err(e(format!(
                    "timeout {s} is out of range (1s..={})",
                    crate::duration::format(MAX_TIMEOUT)
                )));
            }
            d
        }
        Some(_) => return Err(e("timeout must be a string like 10s".into())),
    };
    let action = check_action(raw, cx).map_err(e)?;
    Ok(Step { action, timeout })
}

fn check_action(raw: RawAction, cx: &LoadContext) -> Result<Action, String> {
    Ok(match raw {
        RawAction::Notify(NotifyArgs { channel }) => {
            if let Some(known) = &cx.channels {
                if !known.contains(&channel) {
                    return Err(format!(
                        "unknown channel {channel:?} (configured: {})",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.iter().cloned().collect::<Vec<_>>().join(", ")
                        }
                    ));
                }
            }
            Action::Notify { channel }
        }
        RawAction::Incident(IncidentArgs { open_or_attach }) => {
            if !open_or_attach {
                return Err("incident needs open_or_attach: true".into());
            }
            Action::Incident
        }
        RawAction::SetSeverity(SeverityArgs { level }) => Action::SetSeverity { level },
        RawAction::SetAssignee(AssigneeArgs { user }) => {
            crate::template::validate("user.name", &user).map_err(|m| format!("user: {m}"))?;
            Action::SetAssignee { user }
        }
        RawAction::EnrichGeoip(GeoipArgs { field }) => {
            let field = field.unwrap_or_else(|| "source.ip".into());
            ip_field(&field)?;
            Action::EnrichGeoip { field }
        }
        RawAction::BlockIp(BlockArgs {
            field,
            address,
            ttl,
            reason,
        }) => {
            let target = match (field, address) {
                (Some(f), None) => {
                    ip_field(&f)?;
                    BlockTarget::Field(f)
                }
                (None, Some(a)) => {
                    let net = crate::guard::parse_net(&a).map_err(|m| format!("address: {m}"))?;
                    cx.never_block
                        .check(&net)
                        .map_err(|m| format!("address: {m}"))?;
                    BlockTarget::Literal(net)
                }
                _ => return Err("block_ip needs either field or address".into()),
            };
            let d = crate::duration::parse(&ttl).map_err(|m| format!("ttl: {m}"))?;
            if d.is_zero() || d > cx.max_ttl {
                return Err(format!(
                    "ttl {ttl} is out of range (1s..={}, [response] max_ttl_secs)",
                    crate::duration::format(cx.max_ttl)
                ));
            }
            let reason = reason.unwrap_or_default();
            if reason.len() > 512 || reason.chars().any(char::is_control) {
                return Err(
                    "reason must be at most 512 characters without control characters".into(),
                );
            }
            Action::BlockIp {
                target,
                ttl: d,
                reason,
            }
        }
        RawAction::Command(CommandArgs { program, args }) => check_command(&program, &args)?,
        RawAction::Webhook(WebhookArgs {
            url,
            fields,
            secret_file,
        }) => {
            if url.contains("{{") {
                return Err("placeholders are not allowed in a webhook url".into());
            }
            let parsed = reqwest::Url::parse(&url).map_err(|x| format!("url {url:?}: {x}"))?;
            cx.outbound
                .check_url(&parsed)
                .map_err(|x| format!("url {url:?}: {x} ([response] outbound_allow)"))?;
            if fields.len() > 32 {
                return Err("at most 32 webhook fields".into());
            }
            let fields = fields
                .into_iter()
                .map(|(k, v)| Ok((k, Template::parse(&v)?)))
                .collect::<Result<BTreeMap<_, _>, String>>()?;
            let secret = match secret_file {
                Some(p) => Some(
                    vigil_alert::config::read_secret_file(&p)
                        .map_err(|x| format!("secret_file: {}", x.message))?,
                ),
                None => None,
            };
            Action::Webhook {
                url: parsed,
                fields,
                secret,
            }
        }
        RawAction::Search(SearchArgs {
            query,
            since,
            limit,
        }) => {
            if query.len() > 4096 {
                return Err("query is longer than 4096 bytes".into());
            }
            let limit = limit.unwrap_or(10);
            if limit > MAX_SEARCH_HITS {
                return Err(format!("limit {limit} is above {MAX_SEARCH_HITS}"));
            }
            let since = since.unwrap_or_else(|| "24h".into());
            crate::duration::parse(&since).map_err(|m| format!("since: {m}"))?;
            Action::Search {
                query: Template::parse(&query)?,
                since,
                limit,
            }
        }
    })
}

fn ip_field(f: &str) -> Result<(), String> {
    if f == "source.ip" {
        Ok(())
    } else {
        Err(format!(
            "field {f:?}: only source.ip is an IP field of an alert"
        ))
    }
}

/// The checks that keep a command away from a shell.
fn check_command(program: &str, args: &[String]) -> Result<Action, String> {
    if program.contains("{{") {
        return Err(format!(
            "program {program:?}: placeholders are not allowed in the program position"
        ));
    }
    if let Some(c) = first_meta(program) {
        return Err(format!(
            "program {program:?} contains the shell metacharacter {c:?}"
        ));
    }
    let path = PathBuf::from(program);
    if !path.is_absolute() {
        return Err(format!(
            "program {program:?} is not an absolute path (write e.g. /usr/sbin/ipset)"
        ));
    }
    let base = path
        .file_name()
        .and_then(|b| b.to_str())
        .unwrap_or_default();
    let interp = INTERPRETERS.iter().any(|i| {
        base == *i
            || base
                .strip_prefix(i)
                .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
    });
    if interp {
        return Err(format!(
            "program {program:?} is a shell or interpreter (sh -c style invocations are refused); run the tool itself"
        ));
    }
    if args.len() > MAX_ARGS {
        return Err(format!("{} args, at most {MAX_ARGS}", args.len()));
    }
    let mut out = Vec::new();
    for (i, a) in args.iter().enumerate() {
        if a.len() > MAX_ARG_LEN {
            return Err(format!("args[{i}] is longer than {MAX_ARG_LEN} bytes"));
        }
        let t = Template::parse(a).map_err(|m| format!("args[{i}]: {m}"))?;
        if let Some(c) = first_meta(&t.literal_text()) {
            // Debug formatting escapes control characters, so none reach a terminal.
            return Err(format!(
                "args[{i}] {a:?} contains the shell metacharacter {c:?}"
            ));
        }
        out.push(t);
    }
    Ok(Action::Command {
        program: path,
        args: out,
    })
}
