//! `/api/v1/users` and `/api/v1/tokens` (admins only, see the authorization table).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;

use super::{error, AppState};
use crate::audit::{self, Category, Record};
use crate::auth::Principal;
use crate::users::UserError;

fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Box<Response>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            &format!("invalid {what} body: {e}"),
        ))
    })
}

fn user_error(e: UserError) -> Response {
    let status = match &e {
        UserError::Exists(_) => StatusCode::CONFLICT,
        UserError::NotFound(_) => StatusCode::NOT_FOUND,
        UserError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, &e.to_string())
}

/// Runs a metadata operation off the async workers.
async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&rusqlite::Connection) -> T + Send + 'static,
) -> Result<T, Response> {
    let tokens = state.tokens.clone();
    match tokio::task::spawn_blocking(move || tokens.with_conn(f)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(super::store_failed(&e.to_string())),
        Err(e) => Err(super::store_failed(&e.to_string())),
    }
}

fn record(action: &'static str, category: Category) -> Record {
    Record::new(action, category, true).from_context(audit::context().as_ref())
}

/// `GET /api/v1/users`
pub async fn list(State(state): State<Arc<AppState>>) -> Response {
    match blocking(&state, crate::meta::list_users).await {
        Ok(Ok(users)) => {
            let users: Vec<crate::meta::UserInfo> = users.into_iter().map(Into::into).collect();
            Json(json!({ "users": users })).into_response()
        }
        Ok(Err(e)) => super::store_failed(&e.to_string()),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    role: String,
    password: String,
}

/// `POST /api/v1/users` with `{"name", "role", "password"}`.
pub async fn create(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let u: NewUser = match parse(&body, "user") {
        Ok(u) => u,
        Err(r) => return *r,
    };
    let (name, role) = (u.name.clone(), u.role.clone());
    match blocking(&state, move |c| {
        crate::users::create(c, &u.name, &u.role, &u.password)
    })
    .await
    {
        Ok(Ok(())) => {
            state.identity.audit.record(
                record("user_created", Category::Iam)
                    .target(name.clone())
                    .with("vigil.user.role", role.clone()),
            );
            (
                StatusCode::CREATED,
                Json(json!({ "name": name, "role": role })),
            )
                .into_response()
        }
        Ok(Err(e)) => user_error(e),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserChange {
    role: Option<String>,
    disabled: Option<bool>,
    password: Option<String>,
}

/// `PATCH /api/v1/users/{name}` with any of `{"role", "disabled", "password"}`.
pub async fn update(
    State(state): State<Arc<AppState>>,
    Extension(me): Extension<Principal>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let ch: UserChange = match parse(&body, "user change") {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if ch.role.is_none() && ch.disabled.is_none() && ch.password.is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "nothing to change: send role, disabled and/or password",
        );
    }
    // An administrator cannot lock themselves out; another admin must do it.
    if name == me.user
        && (ch.disabled == Some(true) || ch.role.as_deref().is_some_and(|r| r != "admin"))
    {
        return error(
            StatusCode::CONFLICT,
            "you cannot disable or demote your own account",
        );
    }
    let n = name.clone();
    let old = match blocking(&state, move |c| crate::meta::get_user(c, &n)).await {
        Ok(Ok(Some(u))) => u,
        Ok(Ok(None)) => return user_error(UserError::NotFound(name)),
        Ok(Err(e)) => return super::store_failed(&e.to_string()),
        Err(r) => return r,
    };
    let audit = state.identity.audit.clone();
    if let Some(pw) = ch.password {
        let n = name.clone();
        match blocking(&state, move |c| crate::users::set_password(c, &n, &pw)).await {
            Ok(Ok(())) => {
                state.identity.sessions.remove_user(&name);
                audit.record(record("authn_password_change", Category::Iam).target(name.clone()));
            }
            Ok(Err(e)) => return user_error(e),
            Err(r) => return r,
        }
    }
    if let Some(role) = ch.role {
        let n = name.clone();
        match blocking(&state, move |c| crate::users::set_role(c, &n, &role)).await {
            Ok(Ok(role)) => audit.record(
                record("privilege_permissions_changed", Category::Iam)
                    .target(name.clone())
                    .with("vigil.user.role", role.as_str())
                    .with("vigil.user.previous_role", old.role.clone()),
            ),
            Ok(Err(e)) => return user_error(e),
            Err(r) => return r,
        }
    }
    if let Some(disabled) = ch.disabled {
        let n = name.clone();
        match blocking(&state, move |c| crate::users::set_disabled(c, &n, disabled)).await {
            Ok(Ok(())) if disabled => {
                state.identity.sessions.remove_user(&name);
                audit.record(record("user_disabled", Category::Iam).target(name.clone()));
            }
            Ok(Ok(())) => audit.record(
                record("user_updated", Category::Iam)
                    .target(name.clone())
                    .reason("enabled"),
            ),
            Ok(Err(e)) => return user_error(e),
            Err(r) => return r,
        }
    }
    let n = name.clone();
    match blocking(&state, move |c| crate::meta::get_user(c, &n)).await {
        Ok(Ok(Some(u))) => Json(crate::meta::UserInfo::from(u)).into_response(),
        Ok(Ok(None)) => user_error(UserError::NotFound(name)),
        Ok(Err(e)) => super::store_failed(&e.to_string()),
        Err(r) => r,
    }
}

/// `GET /api/v1/tokens`
pub async fn list_tokens(State(state): State<Arc<AppState>>) -> Response {
    match blocking(&state, crate::meta::list_tokens).await {
        Ok(Ok(tokens)) => Json(json!({ "tokens": tokens })).into_response(),
        Ok(Err(e)) => super::store_failed(&e.to_string()),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    role: String,
    /// Lifetime such as `30d`; absent for no expiry.
    expires: Option<String>,
    /// The user the token acts for.
    user: Option<String>,
    /// Scopes narrowing the role (docs/SECURITY.md); absent for the whole role.
    scopes: Option<Vec<String>>,
}

/// `POST /api/v1/tokens` with `{"name", "role", "expires"?, "user"?, "scopes"?}`; the
/// token is in the answer, once.
pub async fn create_token(State(state): State<Arc<AppState>>, body: Bytes) -> Response {
    let t: NewToken = match parse(&body, "token") {
        Ok(t) => t,
        Err(r) => return *r,
    };
    if t.name.is_empty() || t.name.len() > 128 || t.name.chars().any(char::is_control) {
        return error(
            StatusCode::BAD_REQUEST,
            "token name must be 1-128 characters without control characters",
        );
    }
    let role = match crate::authz::Role::parse(&t.role) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let scopes = match &t.scopes {
        Some(list) => match crate::authz::Scope::parse_list(&list.join(",")) {
            Ok(s) if list.iter().all(|x| !x.contains(',')) => Some(s),
            Ok(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "scopes: give each scope as its own string",
                )
            }
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("scopes: {e}")),
        },
        None => None,
    };
    let expires_at = match t.expires.as_deref().map(crate::auth::parse_lifetime) {
        Some(Ok(d)) => Some(crate::auth::expiry_from_now(d)),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, &format!("expires: {e}")),
        None => None,
    };
    if let Some(u) = t.user.clone() {
        match blocking(&state, move |c| crate::meta::get_user(c, &u)).await {
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => {
                return user_error(UserError::NotFound(t.user.unwrap_or_default()));
            }
            Ok(Err(e)) => return super::store_failed(&e.to_string()),
            Err(r) => return r,
        }
    }
    let token = crate::auth::generate_token();
    let tokens = state.tokens.clone();
    let (tk, name, user, exp, sc) = (
        token.clone(),
        t.name.clone(),
        t.user.clone(),
        expires_at.clone(),
        scopes.clone(),
    );
    let id = tokio::task::spawn_blocking(move || {
        tokens.add_scoped(
            &tk,
            &name,
            role.as_str(),
            user.as_deref(),
            exp,
            sc.as_deref(),
        )
    })
    .await;
    let id = match id {
        Ok(Ok(id)) => id,
        Ok(Err(e)) => return super::store_failed(&e.to_string()),
        Err(e) => return super::store_failed(&e.to_string()),
    };
    state.identity.audit.record(
        record("authn_token_created", Category::Iam)
            .with("vigil.token.id", id.clone())
            .with("vigil.token.name", t.name.clone())
            .with("vigil.token.role", role.as_str())
            .with(
                "vigil.token.scopes",
                scopes
                    .as_deref()
                    .map_or_else(|| "all".to_owned(), crate::authz::Scope::join),
            ),
    );
    (
        StatusCode::CREATED,
        Json(json!({
            "id": id,
            "name": t.name,
            "role": role.as_str(),
            "user": t.user,
            "expires_at": expires_at,
            "scopes": scopes.as_deref().map(|s| s.iter().map(|x| x.as_str()).collect::<Vec<_>>()),
            "token": token,
        })),
    )
        .into_response()
}

/// `DELETE /api/v1/tokens/{id}`
pub async fn revoke_token(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let i = id.clone();
    match blocking(&state, move |c| crate::meta::revoke_token(c, &i)).await {
        Ok(Ok(true)) => {
            state.identity.audit.record(
                record("authn_token_revoked", Category::Iam).with("vigil.token.id", id.clone()),
            );
            Json(json!({ "revoked": id })).into_response()
        }
        Ok(Ok(false)) => error(
            StatusCode::NOT_FOUND,
            &format!("no active token with id {id:?}"),
        ),
        Ok(Err(e)) => super::store_failed(&e.to_string()),
        Err(r) => r,
    }
}
