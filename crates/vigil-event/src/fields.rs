//! ECS field paths that Vigil fills, as constants so a typo is a compile error.
//!
//! Every field listed here is documented in `docs/SCHEMA.md`.

/// Event time (RFC 3339, UTC).
pub const TIMESTAMP: &str = "@timestamp";
/// Free-text message.
pub const MESSAGE: &str = "message";

/// The original line exactly as received (lossy UTF-8).
pub const EVENT_ORIGINAL: &str = "event.original";
/// ECS `event.kind` (`event`, `alert`, …).
pub const EVENT_KIND: &str = "event.kind";
/// ECS `event.category` array (`authentication`, `iam`, `web`, `process`, `session`).
pub const EVENT_CATEGORY: &str = "event.category";
/// ECS `event.type` array (`start`, `end`, `info`, `creation`, `deletion`, `change`, `user`, `group`, `access`, `denied`, `allowed`).
pub const EVENT_TYPE: &str = "event.type";
/// What happened, as a short keyword (`ssh_login`, `authn_login_fail`, `user-created`…).
pub const EVENT_ACTION: &str = "event.action";
/// `success`, `failure` or `unknown`.
pub const EVENT_OUTCOME: &str = "event.outcome";
/// The decoder or dataset that produced the event (`sshd`, `sudo`, `nginx.access`…).
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
/// Which wire format was detected (`rfc5424`, `rfc3164`, `json`, `logfmt`, `cef`, `clf`, `text`).
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
