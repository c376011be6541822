//! The HTTP API (axum): ingest, search, tail, health, metrics, and identity
//! (login, users, tokens).
//!
//! Every route goes through [`authorize`], which looks the route up in the
//! authorization table ([`crate::authz::TABLE`]): public routes pass, others
//! need a bearer token or a session cookie (plus `X-CSRF-Token` on
//! state-changing requests) whose role the table admits. A route without a
//! row is refused. To add a route: one line in [`routes`] and one row in the
//! table.

mod alerts;
mod auth;
mod blocklist;
mod events;
mod export;
mod incidents;
mod integrity;
mod ops;
mod playbooks;
mod rules;
mod search;
mod tail;
mod users;

pub use search::{prepare as prepare_search, Running as RunningSearches, SearchRequest};

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, MethodRouter};
use axum::serve::IncomingStream;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use crate::audit::{self, Category, Record, RequestContext};
use crate::auth::{AuthError, Identity, Principal, TokenStore, Via};
use crate::authz::{self, Access};
use crate::config::Config;
use crate::pipeline::PipelineHandle;
use crate::sessions;

/// State shared by all handlers.
pub struct AppState {
    /// Server configuration.
    pub config: Config,
    /// The event pipeline.
    pub pipeline: Arc<PipelineHandle>,
    /// Token verification.
    pub tokens: Arc<TokenStore>,
    /// Renders `/metrics`.
    pub metrics: Option<PrometheusHandle>,
    /// Sigma detection rules.
    pub detection: Arc<crate::detection::Detection>,
    /// One permit per open tail stream (`http.max_tail_streams`).
    pub tail_streams: Arc<tokio::sync::Semaphore>,
    /// The search index, unless `search.index` is off.
    pub indexer: Option<Arc<crate::indexer::Indexer>>,
    /// The alert engine, when `[alerts]` is on.
    pub alerts: Option<crate::alerting::Alerting>,
    /// The incident store, when alert tracking and `[incidents]` are on.
    pub incidents: Option<crate::incidents::Incidents>,
    /// Sessions, login throttling and the self-audit.
    pub identity: Arc<Identity>,
    /// Request and ingest rate limits.
    pub rate: Arc<crate::ratelimit::RateLimits>,
    /// Playbooks and the blocklist.
    pub playbooks: Arc<crate::playbooks::Playbooks>,
    /// Searches and exports running now, and the limit on how many may.
    pub searches: Arc<search::Running>,
}

/// Every route: its pattern and handlers. Each (method, pattern) needs a
/// row in [`crate::authz::TABLE`].
pub fn routes() -> Vec<(&'static str, MethodRouter<Arc<AppState>>)> {
    vec![
        ("/healthz", get(ops::healthz)),
        ("/readyz", get(ops::readyz)),
        ("/api/v1/auth/login", post(auth::login)),
        ("/api/v1/auth/logout", post(auth::logout)),
        ("/api/v1/auth/me", get(auth::me)),
        ("/api/v1/auth/password", post(auth::change_password)),
        ("/api/v1/events", post(events::ingest)),
        (
            "/api/v1/search",
            get(search::search_get).post(search::search_post),
        ),
        (
            "/api/v1/export",
            get(export::export_get).post(export::export_post),
        ),
        ("/api/v1/search/running", get(search::running)),
        ("/api/v1/search/{id}", delete(search::cancel)),
        ("/api/v1/search/{id}/cancel", post(search::cancel)),
        ("/api/v1/tail", get(tail::tail)),
        ("/api/v1/sources", get(ops::sources)),
        ("/api/v1/rules", get(rules::rules)),
        ("/api/v1/verify", post(integrity::verify_route)),
        ("/api/v1/proof/consistency", get(integrity::consistency)),
        ("/api/v1/proof/{seq}", get(integrity::inclusion)),
        ("/metrics", get(ops::metrics)),
        ("/api/v1/users", get(users::list).post(users::create)),
        ("/api/v1/users/{name}", patch(users::update)),
        (
            "/api/v1/tokens",
            get(users::list_tokens).post(users::create_token),
        ),
        ("/api/v1/tokens/{id}", delete(users::revoke_token)),
        ("/api/v1/alerts", get(alerts::list)),
        ("/api/v1/alerts/{id}", get(alerts::show)),
        ("/api/v1/alerts/{id}/ack", post(alerts::ack)),
        ("/api/v1/alerts/{id}/close", post(alerts::close)),
        (
            "/api/v1/suppressions",
            get(alerts::suppressions).post(alerts::add_suppression),
        ),
        (
            "/api/v1/suppressions/{id}",
            delete(alerts::delete_suppression),
        ),
        ("/api/v1/deliveries", get(alerts::deliveries)),
        (
            "/api/v1/blocklist",
            get(blocklist::list).post(blocklist::add),
        ),
        ("/api/v1/blocklist/{addr}", delete(blocklist::remove)),
        ("/api/v1/playbooks", get(playbooks::list)),
        ("/api/v1/playbooks/{id}/dry-run", post(playbooks::dry_run)),
        (
            "/api/v1/incidents",
            get(incidents::list).post(incidents::create),
        ),
        ("/api/v1/incidents/metrics", get(incidents::metrics)),
        (
            "/api/v1/incidents/{id}",
            get(incidents::show).patch(incidents::update),
        ),
        ("/api/v1/incidents/{id}/notes", post(incidents::add_note)),
        ("/api/v1/incidents/{id}/pins", post(incidents::pin)),
        ("/api/v1/incidents/{id}/alerts", post(incidents::attach)),
        (
            "/api/v1/incidents/{id}/alerts/{alert_id}",
            delete(incidents::detach),
        ),
        ("/api/v1/incidents/{id}/export", get(incidents::export)),
    ]
}

/// The route patterns of [`routes`], for the route walker test.
pub fn route_patterns() -> Vec<&'static str> {
    routes().into_iter().map(|(p, _)| p).collect()
}

/// Builds the router.
pub fn router(state: Arc<AppState>) -> Router {
    let guard = middleware::from_fn_with_state(state.clone(), authorize);
    let mut app = Router::new();
    for (path, handlers) in routes() {
        // `route_layer` on the method router guards the handlers only: a
        // method the route does not serve answers 405 without running them.
        app = app.route(path, handlers.route_layer(guard.clone()));
    }
    app.fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), limit_source))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.config.http.max_body_bytes,
        ))
        .with_state(state)
}

/// The peer address of a connection, plain or TLS, for audit events and
/// login throttling.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, crate::tls::TlsListener>> for ClientAddr {
    fn connect_info(stream: IncomingStream<'_, crate::tls::TlsListener>) -> Self {
        ClientAddr(*stream.remote_addr())
    }
}

/// The client's address, when the server was started with connection info.
pub fn client_ip(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<ClientAddr>>()
        .map(|c| c.0 .0.ip())
}

/// Paths outside the API request budget: health probes, and ingest, which
/// is charged per event by its handler.
fn unmetered(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/api/v1/events")
}

/// The per-address API budget. It runs before authentication so that
/// floods of bad credentials and probes of unknown routes are slowed too.
async fn limit_source(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if let (Some(l), Some(ip)) = (&state.rate.api_source, client_ip(&req)) {
        if !unmetered(req.uri().path()) {
            let key = crate::ratelimit::address_key(ip);
            if let crate::ratelimit::Decision::Refuse { retry_after } =
                l.check(&key, std::time::Instant::now())
            {
                return too_many(crate::ratelimit::Scope::Source, "requests", retry_after);
            }
        }
    }
    next.run(req).await
}

/// 429 with `Retry-After`, counted by scope and class.
pub fn too_many(
    scope: crate::ratelimit::Scope,
    class: &'static str,
    retry_after: std::time::Duration,
) -> Response {
    metrics::counter!("vigil_rate_limited_total", "scope" => scope.as_str(), "class" => class)
        .increment(1);
    let secs = crate::ratelimit::retry_after_secs(retry_after);
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        &format!(
            "too many {class} from this {}; retry after {secs} s",
            match scope {
                crate::ratelimit::Scope::Source => "address",
                crate::ratelimit::Scope::Credential => "token or session",
            }
        ),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

/// Enforces the authorization table.
async fn authorize(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned())
        .unwrap_or_default();
    let method = req.method().clone();
    let source = client_ip(&req);
    let rule = authz::lookup(method.as_str(), &path);
    if rule.is_some_and(|r| r.access == Access::Public) {
        return next.run(req).await;
    }
    let (presented_bearer, presented_cookie) = (bearer(&req), cookie(&req));
    let principal =
        match authenticate(&state, presented_bearer, presented_cookie.clone(), source).await {
            Ok(p) => p,
            Err(refusal) => return refusal,
        };
    let allowed = match rule {
        Some(r) => r.access.allows(principal.role),
        None => {
            tracing::error!(%method, path, "route has no row in the authorization table; refused");
            false
        }
    };
    if !allowed {
        metrics::counter!("vigil_http_forbidden_total").increment(1);
        let reason = match rule {
            Some(_) => format!("role {} may not {method} {path}", principal.role),
            None => format!("{method} {path} has no authorization rule"),
        };
        state.identity.audit.record(
            Record::new("authz_fail", Category::Iam, false)
                .user(principal.user.clone())
                .source(source)
                .reason(reason.clone())
                .with("http.request.method", method.as_str())
                .with("url.path", path),
        );
        return error(StatusCode::FORBIDDEN, &format!("forbidden: {reason}"));
    }
    // Only scoped tokens are narrowed; everyone else skips the lookup.
    let scoped = principal.scopes.as_ref();
    let need = scoped.and_then(|_| authz::scope_of(method.as_str(), &path));
    if let (Some(have), Some(need)) = (scoped, need) {
        if !have.contains(&need) {
            metrics::counter!("vigil_http_forbidden_total").increment(1);
            let reason = format!(
                "token scopes {} do not include {} (needed for {method} {path})",
                authz::Scope::join(have),
                need.as_str()
            );
            state.identity.audit.record(
                Record::new("authz_fail", Category::Iam, false)
                    .user(principal.user.clone())
                    .source(source)
                    .reason(reason.clone())
                    .with("http.request.method", method.as_str())
                    .with("url.path", path),
            );
            return error(StatusCode::FORBIDDEN, &format!("forbidden: {reason}"));
        }
    }
    if principal.via == Via::Session && !safe_method(&method) {
        let presented = req
            .headers()
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok());
        let session = presented_cookie.and_then(|c| state.identity.sessions.check(&c).ok());
        if !session.is_some_and(|s| sessions::csrf_matches(&s, presented)) {
            metrics::counter!("vigil_http_forbidden_total").increment(1);
            state.identity.audit.record(
                Record::new("authz_fail", Category::Iam, false)
                    .user(principal.user.clone())
                    .source(source)
                    .reason("missing or wrong X-CSRF-Token")
                    .with("http.request.method", method.as_str())
                    .with("url.path", path),
            );
            return error(
                StatusCode::FORBIDDEN,
                "forbidden: a request made with a session cookie must send the X-CSRF-Token header returned at login",
            );
        }
    }
    if let Some(l) = &state.rate.api_credential {
        if !unmetered(&path) {
            if let crate::ratelimit::Decision::Refuse { retry_after } =
                l.check(&principal.token_id, std::time::Instant::now())
            {
                return too_many(crate::ratelimit::Scope::Credential, "requests", retry_after);
            }
        }
    }
    req.extensions_mut().insert(principal.clone());
    audit::CONTEXT
        .scope(RequestContext { principal, source }, next.run(req))
        .await
}

fn safe_method(m: &Method) -> bool {
    matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn bearer(req: &Request) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn cookie(req: &Request) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(sessions::cookie_value)
        .map(str::to_owned)
}

/// A bearer token wins over a cookie: API clients never need CSRF tokens.
async fn authenticate(
    state: &AppState,
    bearer: Option<String>,
    cookie: Option<String>,
    source: Option<IpAddr>,
) -> Result<Principal, Response> {
    if let Some(h) = bearer {
        return check_token(state, Some(h), source).await;
    }
    if let Some(c) = cookie {
        return check_session(state, &c, source).await;
    }
    check_token(state, None, source).await
}

fn unauthorized(message: &str) -> Response {
    metrics::counter!("vigil_http_unauthorized_total").increment(1);
    let mut r = error(StatusCode::UNAUTHORIZED, message);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"vigil\""),
    );
    r
}

async fn check_session(
    state: &AppState,
    cookie: &str,
    source: Option<IpAddr>,
) -> Result<Principal, Response> {
    let identity = &state.identity;
    let session = match identity.sessions.check(cookie) {
        Ok(s) => s,
        Err(refused) => {
            if let Some(user) = refused.user {
                identity.audit.record(
                    Record::new("session_expired", Category::Authentication, true)
                        .user(user)
                        .source(source)
                        .reason(refused.error.reason()),
                );
            }
            return Err(unauthorized(refused.error.reason()));
        }
    };
    let tokens = state.tokens.clone();
    let name = session.user.clone();
    let user =
        tokio::task::spawn_blocking(move || tokens.with_conn(|c| crate::meta::get_user(c, &name)))
            .await;
    let user = match user {
        Ok(Ok(Ok(u))) => u,
        Ok(Ok(Err(e))) => return Err(store_failed(&e.to_string())),
        Ok(Err(e)) => return Err(store_failed(&e.to_string())),
        Err(e) => return Err(store_failed(&e.to_string())),
    };
    let ended = match &user {
        None => Some("user deleted"),
        Some(u) if u.disabled => Some("user disabled"),
        Some(u) if u.password_changed_at != session.password_changed_at => Some("password changed"),
        Some(_) => None,
    };
    let role = user
        .as_ref()
        .and_then(|u| crate::authz::Role::parse(&u.role).ok());
    match (ended, role) {
        (None, Some(role)) => Ok(Principal {
            token_id: session.public_id,
            name: session.user.clone(),
            user: session.user,
            role,
            via: Via::Session,
            scopes: None,
            is_account: true,
        }),
        (why, _) => {
            let why = why.unwrap_or("user has an unknown role");
            identity.sessions.remove(cookie);
            identity.audit.record(
                Record::new("session_expired", Category::Authentication, true)
                    .user(session.user)
                    .source(source)
                    .reason(why),
            );
            Err(unauthorized(&format!("session ended: {why}")))
        }
    }
}

fn store_failed(e: &str) -> Response {
    tracing::error!(error = %e, "identity store failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "authentication is unavailable",
    )
}

async fn check_token(
    state: &AppState,
    header: Option<String>,
    source: Option<IpAddr>,
) -> Result<Principal, Response> {
    let tokens = state.tokens.clone();
    let presented = header.is_some();
    // Argon2 verification is CPU-heavy on first use of a token: keep it off the async workers.
    let result = tokio::task::spawn_blocking(move || tokens.authenticate(header.as_deref()))
        .await
        .unwrap_or_else(|e| Err(AuthError::Store(e.to_string())));
    result.map_err(|e| match e {
        AuthError::Store(e) => store_failed(&e),
        e => {
            if presented {
                state.identity.audit.record(
                    Record::new("authn_token_invalid", Category::Authentication, false)
                        .source(source)
                        .reason(e.to_string()),
                );
            }
            unauthorized(&e.to_string())
        }
    })
}

/// Unknown routes are behind authentication too, so anonymous callers
/// cannot probe which routes exist.
async fn not_found(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let source = client_ip(&req);
    match authenticate(&state, bearer(&req), cookie(&req), source).await {
        Ok(_) => error(StatusCode::NOT_FOUND, "no such route"),
        Err(refusal) => refusal,
    }
}

/// A JSON error body `{"error": "..."}`.
pub fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "error": vigil_event::sanitize::display(message) })),
    )
        .into_response()
}
