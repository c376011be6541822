//! ECS field paths that Vigil fills, as constants so a typo is a compile error.
//!
//! Every field listed here is documented in `docs/SCHEMA.md`.

/// Event time (RFC 3339, UTC).
pub const TIMESTAMP: &str = "@timestamp";
/// Free-text message.
pub const MESSAGE: &str = "message";

/// The original line exactly as received (lossy UTF-8).
pub const EVENT_ORIGINAL: &str = "event.original";
/// ECS `event.kind`; decoders set `event`.
pub const EVENT_KIND: &str = "event.kind";
/// ECS `event.category` array (`authentication`, `iam`, `network`, `process`, `session`, `web`).
pub const EVENT_CATEGORY: &str = "event.category";
/// ECS `event.type` array (`start`, `end`, `info`, `connection`, `creation`, `deletion`, `change`, `user`, `group`, `access`, `denied`).
pub const EVENT_TYPE: &str = "event.type";
/// What happened, as a snake_case keyword (`ssh_login`, `sudo_command`, `user_created`, …; see docs/SCHEMA.md).
pub const EVENT_ACTION: &str = "event.action";
/// `success`, `failure` or `unknown`.
pub const EVENT_OUTCOME: &str = "event.outcome";
/// The dataset that produced the event (`system.auth`, `http.access`, `cef`, `leef`).
pub const EVENT_DATASET: &str = "event.dataset";
/// Event severity (numeric, syslog severity for syslog input).
pub const EVENT_SEVERITY: &str = "event.severity";
/// Why a decoder judged the outcome (e.g. `invalid user`).
pub const EVENT_REASON: &str = "event.reason";

/// Source IP address.
pub const SOURCE_IP: &str = "source.ip";
/// Source port.
pub const SOURCE_PORT: &str = "source.port";
/// Source host name when only a name is known.
pub const SOURCE_DOMAIN: &str = "source.domain";
/// Destination IP.
pub const DESTINATION_IP: &str = "destination.ip";
/// Destination port.
pub const DESTINATION_PORT: &str = "destination.port";

/// The acting user.
pub const USER_NAME: &str = "user.name";
/// The user acted upon (sudo target, created account, su target).
pub const USER_TARGET_NAME: &str = "user.target.name";
/// The user's effective identity (sudo run-as).
pub const USER_EFFECTIVE_NAME: &str = "user.effective.name";
/// Group acted upon.
pub const GROUP_NAME: &str = "group.name";
/// Target group of a user change.
pub const USER_TARGET_GROUP_NAME: &str = "user.target.group.name";

/// Host that produced the log.
pub const HOST_NAME: &str = "host.name";
/// Process name (syslog APP-NAME / tag).
pub const PROCESS_NAME: &str = "process.name";
/// Process id.
pub const PROCESS_PID: &str = "process.pid";
/// Full command line (sudo COMMAND).
pub const PROCESS_COMMAND_LINE: &str = "process.command_line";
/// Working directory (sudo PWD).
pub const PROCESS_WORKING_DIRECTORY: &str = "process.working_directory";

/// Syslog facility code.
pub const LOG_SYSLOG_FACILITY_CODE: &str = "log.syslog.facility.code";
/// Syslog facility name.
pub const LOG_SYSLOG_FACILITY_NAME: &str = "log.syslog.facility.name";
/// Syslog severity code.
pub const LOG_SYSLOG_SEVERITY_CODE: &str = "log.syslog.severity.code";
/// Syslog severity name.
pub const LOG_SYSLOG_SEVERITY_NAME: &str = "log.syslog.severity.name";
/// Syslog PRI value.
pub const LOG_SYSLOG_PRIORITY: &str = "log.syslog.priority";
/// Syslog APP-NAME.
pub const LOG_SYSLOG_APPNAME: &str = "log.syslog.appname";
/// Syslog HOSTNAME.
pub const LOG_SYSLOG_HOSTNAME: &str = "log.syslog.hostname";
/// Syslog PROCID.
pub const LOG_SYSLOG_PROCID: &str = "log.syslog.procid";
/// Syslog MSGID.
pub const LOG_SYSLOG_MSGID: &str = "log.syslog.msgid";
/// Syslog protocol version (1 for RFC 5424).
pub const LOG_SYSLOG_VERSION: &str = "log.syslog.version";
/// RFC 5424 structured data: `{SD-ID: {PARAM: value}}`.
pub const LOG_SYSLOG_STRUCTURED_DATA: &str = "log.syslog.structured_data";
/// Which wire format was detected (`rfc5424`, `rfc3164`, `json`, `logfmt`, `cef`, `leef`, `clf`, `text`).
pub const LOG_FORMAT: &str = "log.format";

/// Full URL as logged.
pub const URL_ORIGINAL: &str = "url.original";
/// URL path.
pub const URL_PATH: &str = "url.path";
/// URL query string (without `?`).
pub const URL_QUERY: &str = "url.query";
/// HTTP method.
pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
/// HTTP referrer.
pub const HTTP_REQUEST_REFERRER: &str = "http.request.referrer";
/// HTTP status code.
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
/// Response body size in bytes.
pub const HTTP_RESPONSE_BODY_BYTES: &str = "http.response.body.bytes";
/// HTTP protocol version (`1.1`).
pub const HTTP_VERSION: &str = "http.version";
/// Raw User-Agent header.
pub const USER_AGENT_ORIGINAL: &str = "user_agent.original";

/// Gap-free sequence number assigned by the ledger.
pub const VIGIL_SEQ: &str = "vigil.seq";
/// When Vigil received the event (RFC 3339, UTC).
pub const VIGIL_RECEIVED_AT: &str = "vigil.received_at";
/// Input that received it (`syslog-udp`, `syslog-tcp`, `http`, `file`).
pub const VIGIL_INPUT: &str = "vigil.input";
/// Source name given by the sender (`--source`, `?source=`) or the peer address.
pub const VIGIL_SOURCE: &str = "vigil.source";
/// Why the line could not be parsed; the raw line is kept in `event.original`.
pub const VIGIL_PARSE_ERROR: &str = "vigil.parse_error";
/// Set when the message was longer than the limit and cut.
pub const VIGIL_TRUNCATED: &str = "vigil.truncated";
/// Set when the input was not valid UTF-8 and was decoded lossily.
pub const VIGIL_INVALID_UTF8: &str = "vigil.invalid_utf8";

/// ECS `event.code`: the source's own identifier for the event kind (CEF Signature ID).
pub const EVENT_CODE: &str = "event.code";
/// ECS `event.module`; reserved for integrations, not set by the built-in decoders.
pub const EVENT_MODULE: &str = "event.module";
/// Log level as the source named it (`info`, `error`).
pub const LOG_LEVEL: &str = "log.level";

/// ECS `source.address` (raw address as logged); reserved, not set by the built-in decoders.
pub const SOURCE_ADDRESS: &str = "source.address";
/// User at the source side (CEF `suser`).
pub const SOURCE_USER_NAME: &str = "source.user.name";
/// Destination host name (CEF `dhost`).
pub const DESTINATION_DOMAIN: &str = "destination.domain";
/// User at the destination side (CEF `duser`).
pub const DESTINATION_USER_NAME: &str = "destination.user.name";
/// Application protocol (CEF `app`), lowercase.
pub const NETWORK_PROTOCOL: &str = "network.protocol";

/// Numeric id of the acting user (PAM `uid`).
pub const USER_ID: &str = "user.id";
/// Numeric effective user id (PAM `euid`).
pub const USER_EFFECTIVE_ID: &str = "user.effective.id";
/// Numeric id of the user acted upon (created account's UID).
pub const USER_TARGET_ID: &str = "user.target.id";
/// Primary group id of the user acted upon.
pub const USER_TARGET_GROUP_ID: &str = "user.target.group.id";
/// Numeric id of the group acted upon.
pub const GROUP_ID: &str = "group.id";
/// All user names seen in the event, for pivoting.
pub const RELATED_USER: &str = "related.user";
/// All IPs seen in the event, for pivoting.
pub const RELATED_IP: &str = "related.ip";
/// All host names seen in the event, for pivoting.
pub const RELATED_HOSTS: &str = "related.hosts";

/// Vendor of the device that produced the event (CEF Device Vendor).
pub const OBSERVER_VENDOR: &str = "observer.vendor";
/// Product of the device that produced the event (CEF Device Product).
pub const OBSERVER_PRODUCT: &str = "observer.product";
/// Version of the device that produced the event (CEF Device Version).
pub const OBSERVER_VERSION: &str = "observer.version";

/// SSH authentication method (`password`, `publickey`, `keyboard-interactive/pam`).
pub const SYSTEM_AUTH_SSH_METHOD: &str = "system.auth.ssh.method";
/// SSH public key type and fingerprint (`ED25519 SHA256:…`).
pub const SYSTEM_AUTH_SSH_SIGNATURE: &str = "system.auth.ssh.signature";
/// Terminal of a sudo/su/PAM event (`pts/0`, `/dev/pts/0`, `ssh`).
pub const SYSTEM_AUTH_TTY: &str = "system.auth.tty";
/// Why sudo refused (`user NOT in sudoers`, `3 incorrect password attempts`).
pub const SYSTEM_AUTH_SUDO_ERROR: &str = "system.auth.sudo.error";
/// PAM module (`pam_unix`).
pub const SYSTEM_AUTH_PAM_MODULE: &str = "system.auth.pam.module";
/// PAM service (`sshd`, `sudo`, `su`).
pub const SYSTEM_AUTH_PAM_SERVICE: &str = "system.auth.pam.service";
/// PAM management group (`auth`, `account`, `session`, `password`/`chauthtok`).
pub const SYSTEM_AUTH_PAM_TYPE: &str = "system.auth.pam.type";
/// Home directory of a created account.
pub const SYSTEM_AUTH_USERADD_HOME: &str = "system.auth.useradd.home";
/// Login shell of a created account.
pub const SYSTEM_AUTH_USERADD_SHELL: &str = "system.auth.useradd.shell";
