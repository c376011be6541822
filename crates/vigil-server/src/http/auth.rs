//! `POST /api/v1/auth/login`, `POST /api/v1/auth/logout`, `GET /api/v1/auth/me`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::{client_ip, error, AppState};
use crate::audit::{Category, Record};
use crate::auth::{Identity, Principal, Via};
use crate::lockout::Gate;
use crate::sessions::COOKIE;

/// The login body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

fn set_cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let mut c = format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}");
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c)
        .unwrap_or_else(|_| HeaderValue::from_static("vigil_session=; Max-Age=0"))
}

/// One password check against an account, throttled by the lockout.
struct Attempt<'a> {
    account: &'a str,
    src_key: &'a str,
    /// The name audit events carry (a keyed hash for unknown login names).
    audit_user: &'a str,
    source: Option<std::net::IpAddr>,
    /// The OWASP action of a refused attempt.
    fail_action: &'static str,
}

impl Attempt<'_> {
    /// Waits out the lockout's delay, or answers 429 with `Retry-After`
    /// (audited, the password unchecked) while the pair is locked.
    async fn pass_gate(&self, identity: &Identity, too_many: &str) -> Result<(), Response> {
        match identity
            .lockout
            .gate(self.account, self.src_key, Instant::now())
        {
            Gate::Locked { retry_after } => {
                let secs = crate::ratelimit::retry_after_secs(retry_after);
                identity.audit.record(
                    Record::new(self.fail_action, Category::Authentication, false)
                        .user(self.audit_user)
                        .source(self.source)
                        .reason(format!("locked for {secs}s more; password not checked")),
                );
                let mut r = error(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!("{too_many}; try again in {secs} s"),
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                Err(r)
            }
            Gate::Open { delay } => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(())
            }
        }
    }

    /// Counts a wrong password and audits it, and the lock it starts.
    fn failed(&self, identity: &Identity, reason: &str) {
        let lock = identity
            .lockout
            .failure(self.account, self.src_key, Instant::now());
        identity.audit.record(
            Record::new(self.fail_action, Category::Authentication, false)
                .user(self.audit_user)
                .source(self.source)
                .reason(reason),
        );
        if let Some(d) = lock {
            identity.audit.record(
                Record::new("authn_login_lock", Category::Authentication, false)
                    .user(self.audit_user)
                    .source(self.source)
                    .reason(format!(
                        "locked for {}s after repeated failures",
                        d.as_secs()
                    )),
            );
        }
    }
}

/// `POST /api/v1/auth/login` with `{"username", "password"}`.
pub async fn login(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let source = client_ip(&req);
    let (parts, body) = req.into_parts();
    // Requiring JSON keeps cross-site HTML forms from logging a victim's
    // browser into an attacker's account: a form cannot send this type
    // without a CORS preflight, which Vigil never grants.
    if !is_json(&parts.headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "login needs Content-Type: application/json with {\"username\", \"password\"}",
        );
    }
    let body: Bytes = match axum::body::to_bytes(body, crate::limits::AUTH_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "login body is over 16 KiB"),
    };
    let login: Login = match serde_json::from_slice(&body) {
        Ok(l) => l,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("invalid login body (expected {{\"username\", \"password\"}}): {e}"),
            )
        }
    };
    if login.username.is_empty() || login.username.len() > crate::limits::LOGIN_NAME_BYTES {
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "username must be 1-{} bytes",
                crate::limits::LOGIN_NAME_BYTES
            ),
        );
    }
    if login.password.len() > crate::users::MAX_PASSWORD_LEN {
        return error(StatusCode::BAD_REQUEST, "password is over 1024 bytes");
    }
    let identity = state.identity.clone();
    let src_key = source.map_or_else(|| "unknown".to_owned(), |s| s.to_string());
    let typed = login.username.clone();

    let tokens = state.tokens.clone();
    let lookup_name = typed.clone();
    let exists = tokio::task::spawn_blocking(move || {
        tokens.with_conn(|c| crate::meta::get_user(c, &lookup_name))
    })
    .await;
    let user_row = match exists {
        Ok(Ok(Ok(u))) => u,
        _ => return super::store_failed("reading the user for a login"),
    };
    let audit_name = identity.audit.login_name(&typed, user_row.is_some());

    let who = Attempt {
        account: &typed,
        src_key: &src_key,
        audit_user: &audit_name,
        source,
        fail_action: "authn_login_fail",
    };
    if let Err(r) = who.pass_gate(&identity, "too many failed logins").await {
        return r;
    }

    let password = login.password;
    let disabled = user_row.as_ref().is_some_and(|u| u.disabled);
    let verified =
        tokio::task::spawn_blocking(move || crate::users::verify_login(user_row, &password))
            .await
            .ok()
            .flatten();

    let Some(user) = verified else {
        who.failed(
            &identity,
            if disabled {
                "user disabled"
            } else {
                "wrong user name or password"
            },
        );
        return error(StatusCode::UNAUTHORIZED, "wrong user name or password");
    };
    identity.lockout.success(&typed, &src_key);
    let Ok(role) = crate::authz::Role::parse(&user.role) else {
        return super::store_failed("a stored user has an unknown role");
    };
    let new = identity
        .sessions
        .create(&user.name, role, &user.password_changed_at);
    identity.audit.record(
        Record::new("authn_login_success", Category::Authentication, true)
            .user(user.name.clone())
            .source(source),
    );
    identity.audit.record(
        Record::new("session_created", Category::Authentication, true)
            .user(user.name.clone())
            .source(source)
            .with("vigil.session.id", new.public_id.clone()),
    );
    let cfg = &identity.config;
    let mut r = Json(json!({
        "user": user.name,
        "role": role.as_str(),
        "csrf_token": new.csrf,
        "idle_timeout_secs": cfg.session_idle_secs,
        "absolute_timeout_secs": cfg.session_absolute_secs,
    }))
    .into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&new.cookie, cfg.session_absolute_secs, cfg.cookie_secure),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `POST /api/v1/auth/logout`: ends the cookie's session.
pub async fn logout(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    req: Request,
) -> Response {
    let source = client_ip(&req);
    let cookie = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(crate::sessions::cookie_value)
        .map(str::to_owned);
    let ended = match (principal.via, cookie) {
        (Via::Session, Some(c)) => state.identity.sessions.remove(&c).is_some(),
        _ => false,
    };
    if ended {
        state.identity.audit.record(
            Record::new("session_expired", Category::Authentication, true)
                .user(principal.user.clone())
                .source(source)
                .reason("logout"),
        );
    }
    let mut r = Json(json!({ "session_ended": ended })).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie("", 0, state.identity.config.cookie_secure),
    );
    r
}

/// The password change body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// `POST /api/v1/auth/password` with `{"current_password", "new_password"}`:
/// a user changes their own password. The current password is checked
/// (and throttled like a login) so that a stolen session or token cannot
/// take the account over; every session of the user ends, this one too.
pub async fn change_password(
    State(state): State<Arc<AppState>>,
    Extension(principal): Extension<Principal>,
    req: Request,
) -> Response {
    let source = client_ip(&req);
    let (parts, body) = req.into_parts();
    if !is_json(&parts.headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "password change needs Content-Type: application/json with {\"current_password\", \"new_password\"}",
        );
    }
    let body: Bytes = match axum::body::to_bytes(body, crate::limits::AUTH_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "password change body is over 16 KiB",
            )
        }
    };
    let change: PasswordChange = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "invalid password change body (expected {{\"current_password\", \"new_password\"}}): {e}"
                ),
            )
        }
    };
    if change.current_password.len() > crate::users::MAX_PASSWORD_LEN {
        return error(
            StatusCode::BAD_REQUEST,
            "current_password is over 1024 bytes",
        );
    }
    let no_account = || {
        error(
            StatusCode::CONFLICT,
            "this credential has no user account with a password (service tokens cannot change one)",
        )
    };
    if !principal.is_account {
        return no_account();
    }
    let identity = state.identity.clone();
    let name = principal.user.clone();
    let tokens = state.tokens.clone();
    let n = name.clone();
    let row = match tokio::task::spawn_blocking(move || {
        tokens.with_conn(|c| crate::meta::get_user(c, &n))
    })
    .await
    {
        Ok(Ok(Ok(u))) => u,
        _ => return super::store_failed("reading the user for a password change"),
    };
    let Some(row) = row else {
        return no_account();
    };
    let src_key = source.map_or_else(|| "unknown".to_owned(), |s| s.to_string());
    let who = Attempt {
        account: &name,
        src_key: &src_key,
        audit_user: &name,
        source,
        fail_action: "authn_password_change_fail",
    };
    if let Err(r) = who.pass_gate(&identity, "too many wrong passwords").await {
        return r;
    }
    let current = change.current_password.clone();
    let verified =
        tokio::task::spawn_blocking(move || crate::users::verify_login(Some(row), &current))
            .await
            .ok()
            .flatten();
    if verified.is_none() {
        who.failed(&identity, "current password is wrong");
        return error(StatusCode::FORBIDDEN, "the current password is wrong");
    }
    identity.lockout.success(&name, &src_key);
    if change.new_password == change.current_password {
        return error(
            StatusCode::BAD_REQUEST,
            "the new password must differ from the current one",
        );
    }
    let tokens = state.tokens.clone();
    let (n, pw) = (name.clone(), change.new_password);
    let set = tokio::task::spawn_blocking(move || {
        tokens.with_conn(|c| crate::users::set_password(c, &n, &pw))
    })
    .await;
    match set {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e @ crate::users::UserError::WeakPassword(_)))) => {
            return error(StatusCode::BAD_REQUEST, &e.to_string())
        }
        _ => return super::store_failed("storing a new password"),
    }
    identity.sessions.remove_user(&name);
    identity.audit.record(
        Record::new("authn_password_change", Category::Authentication, true)
            .user(name.clone())
            .source(source)
            .reason("changed by the user"),
    );
    let mut r = Json(json!({ "user": name, "sessions_ended": true })).into_response();
    if principal.via == Via::Session {
        r.headers_mut().insert(
            header::SET_COOKIE,
            set_cookie("", 0, state.identity.config.cookie_secure),
        );
    }
    r
}

/// `GET /api/v1/auth/me`: who the caller is.
pub async fn me(Extension(principal): Extension<Principal>) -> Response {
    Json(json!({
        "user": principal.user,
        "role": principal.role.as_str(),
        "via": match principal.via { Via::Token => "token", Via::Session => "session" },
    }))
    .into_response()
}
