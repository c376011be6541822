//! Identity and access control in the real server: the authorization table
//! walked over every route, sessions with cookies and CSRF, login lockout,
//! token expiry and revocation, and the self-audit in search results.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{vigil, Server, TOKEN};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::Method;
use serde_json::{json, Value};
use vigil_server::authz::{self, Access, Role};

const PASSWORD: &str = "correct horse battery staple";

fn client() -> Client {
    Server::client()
}

/// `vigil user add NAME --role ROLE --password-stdin` on a data dir.
fn add_user(data: &Path, name: &str, role: &str, password: &str) {
    let mut child = vigil()
        .args([
            "user",
            "add",
            name,
            "--role",
            role,
            "--password-stdin",
            "--data-dir",
        ])
        .arg(data)
        .env_remove("VIGIL_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "user add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!all.contains(password), "the password was echoed: {all}");
}

/// `vigil token create NAME --role ROLE` on a data dir; returns (id, token).
fn create_token(data: &Path, name: &str, role: &str) -> (String, String) {
    let out = common::run_ok(
        vigil()
            .args(["token", "create", name, "--role", role, "--data-dir"])
            .arg(data)
            .env_remove("VIGIL_CONFIG"),
    );
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("id"))
        .unwrap()
        .trim()
        .to_string();
    let token = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("vgl_"))
        .unwrap()
        .to_string();
    (id, token)
}

/// A logged-in browser: its cookie and CSRF token.
struct Browser {
    cookie: String,
    csrf: String,
}

impl Browser {
    fn send(&self, server: &Server, method: Method, path: &str, csrf: bool) -> RequestBuilder {
        let mut r = client()
            .request(method, server.url(path))
            .header("cookie", format!("vigil_session={}", self.cookie));
        if csrf {
            r = r.header("x-csrf-token", &self.csrf);
        }
        r
    }
}

fn login_raw(server: &Server, user: &str, password: &str) -> Response {
    client()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "username": user, "password": password }))
        .send()
        .unwrap()
}

fn login(server: &Server, user: &str, password: &str) -> Browser {
    let r = login_raw(server, user, password);
    assert_eq!(r.status(), 200, "login of {user}");
    let set_cookie = r
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attr), "{attr} missing: {set_cookie}");
    }
    assert!(
        !set_cookie.contains("Secure"),
        "plain HTTP must not mark the cookie Secure: {set_cookie}"
    );
    let cookie = set_cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("vigil_session=")
        .unwrap()
        .to_string();
    let body: Value = r.json().unwrap();
    Browser {
        cookie,
        csrf: body["csrf_token"].as_str().unwrap().to_string(),
    }
}

fn admin(server: &Server, method: Method, path: &str) -> RequestBuilder {
    client()
        .request(method, server.url(path))
        .bearer_auth(TOKEN)
}

/// A concrete path for a route pattern.
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{seq}", "1")
        .replace("{name}", "nobody")
        .replace("{id}", "0000000000000000")
}

#[test]
fn route_walker_enforces_the_authorization_table() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let tokens: Vec<(Role, String)> = Role::ALL
        .into_iter()
        .map(|r| (r, create_token(&data, &format!("walker-{r}"), r.as_str()).1))
        .collect();
    let server = Server::start(&data);
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    let mut served = 0;
    for pattern in vigil_server::http::route_patterns() {
        let path = concrete(pattern);
        for m in &methods {
            let anon = client()
                .request(m.clone(), server.url(&path))
                .send()
                .unwrap();
            if anon.status() == 405 {
                assert!(
                    authz::lookup(m.as_str(), pattern).is_none(),
                    "authz::TABLE has a row for {m} {pattern}, which the router does not serve"
                );
                continue;
            }
            served += 1;
            let rule = authz::lookup(m.as_str(), pattern).unwrap_or_else(|| {
                panic!(
                    "route {m} {pattern} is served by the router but has no row in \
                     vigil_server::authz::TABLE: add one (it is refused for everyone until then)"
                )
            });
            if rule.access == Access::Public {
                assert_ne!(anon.status(), 401, "{m} {pattern} is public");
                continue;
            }
            assert_eq!(
                anon.status(),
                401,
                "{m} {pattern} must refuse anonymous callers"
            );
            assert!(anon.headers().contains_key("www-authenticate"));
            for (role, token) in &tokens {
                let status = client()
                    .request(m.clone(), server.url(&path))
                    .bearer_auth(token)
                    .send()
                    .unwrap()
                    .status();
                assert_ne!(status, 401, "{m} {pattern} as {role}");
                if rule.access.allows(*role) {
                    assert_ne!(status, 403, "{m} {pattern} must admit {role}");
                } else {
                    assert_eq!(status, 403, "{m} {pattern} must refuse {role}");
                }
            }
        }
    }
    assert_eq!(
        served,
        authz::TABLE.len(),
        "every table row is a served route"
    );
    // Unknown routes are not revealed to anonymous callers.
    let r = client().get(server.url("/api/v1/nothing")).send().unwrap();
    assert_eq!(r.status(), 401);
    let r = admin(&server, Method::GET, "/api/v1/nothing")
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[test]
fn sessions_use_cookies_and_csrf_and_end_on_password_change_and_disable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    add_user(&data, "ann", "analyst", PASSWORD);
    let server = Server::start(&data);

    // Login needs JSON, and the right password.
    let r = client()
        .post(server.url("/api/v1/auth/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username=ann&password={PASSWORD}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(
        login_raw(&server, "ann", "wrong password here").status(),
        401
    );

    let b = login(&server, "ann", PASSWORD);
    let me: Value = b
        .send(&server, Method::GET, "/api/v1/auth/me", false)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        me,
        json!({"user": "ann", "role": "analyst", "via": "session"})
    );
    // Reads need no CSRF token.
    let r = b
        .send(&server, Method::GET, "/api/v1/search?q=*", false)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // A state-changing request with the cookie but no CSRF token is refused.
    let body = json!({"q": "*"}).to_string();
    let r = b
        .send(&server, Method::POST, "/api/v1/search", false)
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().unwrap().contains("X-CSRF-Token"));
    let r = b
        .send(&server, Method::POST, "/api/v1/search", false)
        .header("x-csrf-token", "0".repeat(64))
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = b
        .send(&server, Method::POST, "/api/v1/search", true)
        .body(body.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // The analyst role is enforced for sessions too.
    let r = b
        .send(&server, Method::GET, "/api/v1/users", false)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = b
        .send(&server, Method::POST, "/api/v1/events", true)
        .body("{\"message\":\"x\"}")
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);

    // An administrator changes ann's password: the session ends.
    let r = admin(&server, Method::PATCH, "/api/v1/users/ann")
        .json(&json!({"password": "another long passphrase"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = b
        .send(&server, Method::GET, "/api/v1/auth/me", false)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(login_raw(&server, "ann", PASSWORD).status(), 401);

    // Logout ends a session (and needs the CSRF token).
    let b = login(&server, "ann", "another long passphrase");
    let r = b
        .send(&server, Method::POST, "/api/v1/auth/logout", false)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let r: Value = b
        .send(&server, Method::POST, "/api/v1/auth/logout", true)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(r["session_ended"], true);
    let r = b
        .send(&server, Method::GET, "/api/v1/auth/me", false)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);

    // Disabling ann offline with the CLI, while the server runs, ends her session.
    let b = login(&server, "ann", "another long passphrase");
    common::run_ok(
        vigil()
            .args(["user", "disable", "ann", "--data-dir"])
            .arg(&data)
            .env_remove("VIGIL_CONFIG"),
    );
    let r = b
        .send(&server, Method::GET, "/api/v1/auth/me", false)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().unwrap().contains("user disabled"));
    assert_eq!(
        login_raw(&server, "ann", "another long passphrase").status(),
        401
    );
    let users = common::run_ok(
        vigil()
            .args(["user", "list", "--json", "--data-dir"])
            .arg(&data)
            .env_remove("VIGIL_CONFIG"),
    );
    let ann: Value = serde_json::from_str(users.lines().next().unwrap()).unwrap();
    assert_eq!(ann["disabled"], true);
    assert!(ann.get("hash").is_none());
}

#[test]
fn repeated_failures_lock_the_account_for_that_source_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    add_user(&data, "bob", "viewer", PASSWORD);
    add_user(&data, "carol", "viewer", PASSWORD);
    let server = Server::start(&data);
    for i in 0..5 {
        let r = login_raw(&server, "bob", "not bob's password");
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    // Locked now, even with the right password; the client is told when to retry.
    for pw in ["not bob's password", PASSWORD] {
        let r = login_raw(&server, "bob", pw);
        assert_eq!(r.status(), 429);
        let after: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=30).contains(&after), "Retry-After {after}");
    }
    // Another account from the same source is not affected.
    login(&server, "carol", PASSWORD);
    let lock = server.wait_for("event.action:authn_login_lock", 1);
    assert_eq!(lock["hits"][0]["user"]["name"], "bob", "{lock}");
}

#[test]
fn tokens_expire_and_revocation_takes_effect_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data);

    // Created through the API: an ingest token sends events but cannot search.
    let r: Value = admin(&server, Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "shipper", "role": "ingest", "expires": "30d"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let (id, token) = (
        r["id"].as_str().unwrap().to_string(),
        r["token"].as_str().unwrap().to_string(),
    );
    assert!(r["expires_at"].is_string());
    let send = || {
        client()
            .post(server.url("/api/v1/events"))
            .bearer_auth(&token)
            .header("content-type", "application/x-ndjson")
            .body("{\"message\":\"hello\"}\n")
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(send(), 200);
    let r = client()
        .get(server.url("/api/v1/search"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let listed: Value = admin(&server, Method::GET, "/api/v1/tokens")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let row = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap();
    assert!(row["last_used_at"].is_string(), "{row}");
    assert!(row.get("hash").is_none());
    let r = admin(&server, Method::DELETE, &format!("/api/v1/tokens/{id}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(send(), 401, "a revoked token is refused at once");

    // Revoked offline with the CLI while the server runs.
    let (cli_id, cli_token) = create_token(&data, "reader", "viewer");
    let get = |t: &str| {
        client()
            .get(server.url("/api/v1/sources"))
            .bearer_auth(t)
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(get(&cli_token), 200);
    common::run_ok(
        vigil()
            .args(["token", "revoke", &cli_id, "--data-dir"])
            .arg(&data)
            .env_remove("VIGIL_CONFIG"),
    );
    assert_eq!(get(&cli_token), 401);

    // A token past its expiry time is refused.
    let store = vigil_server::auth::TokenStore::new(vigil_server::meta::open(&data).unwrap());
    let old = vigil_server::auth::generate_token();
    let past = vigil_event::format_time(chrono::Utc::now() - chrono::Duration::seconds(1));
    store
        .add_with(&old, "old", "viewer", None, Some(past))
        .unwrap();
    let r = client()
        .get(server.url("/api/v1/sources"))
        .bearer_auth(&old)
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().unwrap().contains("expired"));
    // Bad lifetimes are refused with the reason.
    let r = admin(&server, Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "x", "role": "viewer", "expires": "forever"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("invalid lifetime"));
}

#[test]
fn brute_force_against_the_login_raises_a_searchable_alert() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    add_user(&data, "alice", "admin", PASSWORD);
    let server = Server::start(&data);
    for _ in 0..10 {
        let s = login_raw(&server, "alice", "guess-guess-guess").status();
        assert!(s == 401 || s == 429, "{s}");
    }
    let fails = server.wait_for("event.action:authn_login_fail user.name:alice", 10);
    assert_eq!(fails["total"], 10, "{fails}");
    let alerts = server.wait_for("event.kind:alert rule.id:vigil.brute_force", 1);
    assert_eq!(alerts["total"], 1, "{alerts}");
    let a = &alerts["hits"][0];
    assert_eq!(a["user"]["name"], "alice");
    assert_eq!(a["vigil"]["alert"]["detector"]["counts"]["failures"], 10);
    // The evidence is the audit events themselves.
    let first = a["vigil"]["alert"]["evidence_seqs"][0].as_u64().unwrap();
    let ev = server.search(&format!("vigil.seq:{first}"), 1);
    assert_eq!(ev["hits"][0]["vigil"]["input"], "audit", "{ev}");
    assert_eq!(ev["hits"][0]["event"]["action"], "authn_login_fail");
}

#[test]
fn audit_events_name_who_did_what_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    add_user(&data, "dave", "viewer", PASSWORD);
    let server = Server::start(&data);

    // A password typed into the user name field is not stored.
    let typed = "Tr0ub4dor&3-typed-as-name";
    assert_eq!(login_raw(&server, typed, "x").status(), 401);
    let b = login(&server, "dave", PASSWORD);
    let r = b
        .send(&server, Method::GET, "/api/v1/tokens", false)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = admin(&server, Method::POST, "/api/v1/users")
        .json(&json!({"name": "erin", "role": "analyst", "password": "erin's long passphrase"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = admin(&server, Method::POST, "/api/v1/users")
        .json(&json!({"name": "frank", "role": "viewer", "password": "frank"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("password refused"));
    let r = admin(&server, Method::PATCH, "/api/v1/users/erin")
        .json(&json!({"role": "viewer"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = admin(&server, Method::PATCH, "/api/v1/users/erin")
        .json(&json!({"disabled": true}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = admin(&server, Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "temp", "role": "viewer"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let r = admin(
        &server,
        Method::DELETE,
        &format!("/api/v1/tokens/{}", t["id"].as_str().unwrap()),
    )
    .send()
    .unwrap();
    assert_eq!(r.status(), 200);
    let r = b
        .send(&server, Method::GET, "/api/v1/search?q=needle", false)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    let expected = [
        ("authn_login_fail", "authentication"),
        ("authn_login_success", "authentication"),
        ("session_created", "authentication"),
        ("authz_fail", "iam"),
        ("user_created", "iam"),
        ("privilege_permissions_changed", "iam"),
        ("user_disabled", "iam"),
        ("authn_token_created", "iam"),
        ("authn_token_revoked", "iam"),
        ("data_search", "database"),
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    let hits = loop {
        let v = server.search("vigil.input:audit", 1000);
        let hits = v["hits"].as_array().unwrap().clone();
        let have = |a: &str| hits.iter().any(|h| h["event"]["action"] == a);
        if expected.iter().all(|(a, _)| have(a)) || Instant::now() > deadline {
            break hits;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for (action, category) in expected {
        let h = hits
            .iter()
            .find(|h| h["event"]["action"] == action)
            .unwrap_or_else(|| panic!("no {action} audit event in {hits:#?}"));
        assert_eq!(h["event"]["category"], json!([category]), "{h}");
        assert!(h["event"]["outcome"].is_string(), "{h}");
        assert!(h["vigil"]["seq"].is_u64(), "{h}");
        assert!(h["user"]["name"].is_string(), "{action} names no user: {h}");
    }
    let find = |a: &str| hits.iter().find(|h| h["event"]["action"] == a).unwrap();
    assert_eq!(find("authn_login_success")["user"]["name"], "dave");
    assert_eq!(find("authn_login_success")["source"]["ip"], "127.0.0.1");
    assert_eq!(find("authz_fail")["user"]["name"], "dave");
    assert_eq!(find("authz_fail")["event"]["outcome"], "failure");
    assert_eq!(find("user_created")["user"]["target"]["name"], "erin");
    assert_eq!(
        find("privilege_permissions_changed")["vigil"]["user"]["role"],
        "viewer"
    );
    let search = find("data_search");
    assert_eq!(search["user"]["name"], "dave");
    assert_eq!(search["vigil"]["search"]["query"], "needle");
    assert_eq!(search["vigil"]["search"]["results"], 0);
    let unknown = hits
        .iter()
        .find(|h| {
            h["event"]["action"] == "authn_login_fail"
                && h["user"]["name"].as_str().unwrap().starts_with("unknown:")
        })
        .expect("the unknown name is stored as a keyed hash");
    assert_eq!(unknown["event"]["outcome"], "failure");
    let all = serde_json::to_string(&hits).unwrap();
    for secret in [typed, PASSWORD, "erin's long passphrase", TOKEN] {
        assert!(!all.contains(secret), "{secret:?} is in the audit trail");
    }
    assert!(!all.contains(t["token"].as_str().unwrap()));
}

#[test]
fn users_change_their_own_password_and_every_session_ends() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    add_user(&data, "vic", "viewer", PASSWORD);
    let server = Server::start(&data);
    let first = login(&server, "vic", PASSWORD);
    let second = login(&server, "vic", PASSWORD);
    let change = |b: &Browser, current: &str, new: &str, csrf: bool| -> Response {
        b.send(&server, Method::POST, "/api/v1/auth/password", csrf)
            .json(&json!({ "current_password": current, "new_password": new }))
            .send()
            .unwrap()
    };
    const NEW: &str = "a different long passphrase";

    // A state change: the CSRF token is needed like anywhere else.
    assert_eq!(change(&first, PASSWORD, NEW, false).status(), 403);
    // The current password must be right; the account is not changed.
    let r = change(&first, "not the password at all", NEW, true);
    assert_eq!(r.status(), 403);
    assert!(r.text().unwrap().contains("current password is wrong"));
    // The policy applies to the new password.
    let r = change(&first, PASSWORD, "short", true);
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("at least 12 characters"));
    let r = change(&first, PASSWORD, PASSWORD, true);
    assert_eq!(r.status(), 400);
    // Unknown fields are refused rather than ignored.
    let r = first
        .send(&server, Method::POST, "/api/v1/auth/password", true)
        .json(&json!({ "current_password": PASSWORD, "new_password": NEW, "user": "admin" }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);

    let r = change(&first, PASSWORD, NEW, true);
    assert_eq!(r.status(), 200);
    let cleared = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // Both sessions ended; the old password no longer logs in, the new one does.
    for b in [&first, &second] {
        let r = b
            .send(&server, Method::GET, "/api/v1/auth/me", false)
            .send()
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    assert_eq!(login_raw(&server, "vic", PASSWORD).status(), 401);
    login(&server, "vic", NEW);

    // A service token has no password to change.
    let r = admin(&server, Method::POST, "/api/v1/auth/password")
        .json(&json!({ "current_password": PASSWORD, "new_password": NEW }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 409);
    // Nor does a service token that happens to carry a user's name, even
    // with that user's password: it is not her account.
    let r: Value = admin(&server, Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "vic", "role": "viewer", "expires": "30d"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let namesake = r["token"].as_str().unwrap().to_string();
    let r = Server::client()
        .post(server.url("/api/v1/auth/password"))
        .bearer_auth(&namesake)
        .json(&json!({ "current_password": NEW, "new_password": "another long passphrase 9" }))
        .send()
        .unwrap();
    assert_eq!(r.status(), 409);
    login(&server, "vic", NEW);

    // The change and the failed attempt are in the audit log, without secrets.
    let v = server.wait_for(
        "vigil.input:audit AND event.action:(authn_password_change OR authn_password_change_fail)",
        2,
    );
    let actions: Vec<&str> = v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"]["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"authn_password_change"), "{actions:?}");
    assert!(
        actions.contains(&"authn_password_change_fail"),
        "{actions:?}"
    );
    let text = v.to_string();
    assert!(!text.contains(NEW) && !text.contains(PASSWORD), "{text}");
}

#[test]
fn token_scopes_narrow_the_role() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Offline: an analyst token that may only search.
    let out = common::run_ok(
        vigil()
            .args([
                "token",
                "create",
                "dash",
                "--role",
                "analyst",
                "--scope",
                "search",
                "--data-dir",
            ])
            .arg(&data)
            .env_remove("VIGIL_CONFIG"),
    );
    assert!(out.contains("scopes   search"), "{out}");
    let search_only = out
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("vgl_"))
        .unwrap()
        .to_string();
    let bad = vigil()
        .args([
            "token",
            "create",
            "x",
            "--role",
            "viewer",
            "--scope",
            "read,write",
            "--data-dir",
        ])
        .arg(&data)
        .env_remove("VIGIL_CONFIG")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("\"write\""));
    let server = Server::start(&data);

    let with = |token: &str, method: Method, path: &str| -> Response {
        client()
            .request(method, server.url(path))
            .bearer_auth(token)
            .send()
            .unwrap()
    };
    assert_eq!(
        with(&search_only, Method::GET, "/api/v1/search?q=*").status(),
        200
    );
    let r = with(&search_only, Method::GET, "/api/v1/alerts");
    assert_eq!(r.status(), 403);
    let msg = r.text().unwrap();
    assert!(msg.contains("do not include read"), "{msg}");
    // Scopes never widen a role: analysts cannot ingest whatever the scope.
    assert_eq!(
        with(&search_only, Method::POST, "/api/v1/events").status(),
        403
    );
    // Who am I still works for any scope.
    assert_eq!(
        with(&search_only, Method::GET, "/api/v1/auth/me").status(),
        200
    );

    // Through the API: an admin token narrowed to reading.
    let r = admin(&server, Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "reader", "role": "admin", "scopes": ["read"]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().unwrap();
    assert_eq!(v["scopes"], json!(["read"]));
    let reader = v["token"].as_str().unwrap().to_string();
    assert_eq!(with(&reader, Method::GET, "/api/v1/sources").status(), 200);
    assert_eq!(with(&reader, Method::GET, "/api/v1/users").status(), 403);
    assert_eq!(
        with(&reader, Method::DELETE, "/api/v1/tokens/x").status(),
        403
    );
    for bad in [json!(["read", "root"]), json!([]), json!(["read,admin"])] {
        let r = admin(&server, Method::POST, "/api/v1/tokens")
            .json(&json!({"name": "bad", "role": "viewer", "scopes": bad}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    let listed: Value = admin(&server, Method::GET, "/api/v1/tokens")
        .send()
        .unwrap()
        .json()
        .unwrap();
    let scopes: Vec<&str> = listed["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["scopes"].as_str())
        .collect();
    assert!(
        scopes.contains(&"search") && scopes.contains(&"read"),
        "{listed}"
    );
}

#[test]
fn offline_user_and_token_changes_reach_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    // Before the server runs: spooled, taken in at start.
    add_user(&data, "olga", "viewer", PASSWORD);
    let (token_id, _) = create_token(&data, "olga-cli", "viewer");
    let spool = data.join("audit-spool");
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 2);
    let server = Server::start(&data);
    let q = "vigil.input:audit AND vigil.audit.origin:cli";
    let v = server.wait_for(q, 2);
    let actions: Vec<&str> = v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["event"]["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"user_created"), "{v:#}");
    assert!(actions.contains(&"authn_token_created"), "{v:#}");
    let created = v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["event"]["action"] == "authn_token_created")
        .unwrap();
    assert_eq!(created["vigil"]["token"]["id"], token_id.as_str());
    assert!(created["user"]["name"].as_str().unwrap().starts_with("os:"));

    // While it runs: a change shows up within a few seconds.
    common::run_ok(
        vigil()
            .args(["user", "role", "olga", "analyst", "--data-dir"])
            .arg(&data)
            .env_remove("VIGIL_CONFIG"),
    );
    let v = server.wait_for(
        "vigil.audit.origin:cli AND event.action:privilege_permissions_changed",
        1,
    );
    assert_eq!(v["total"], 1, "{v:#}");
    let hit = &v["hits"][0];
    assert_eq!(hit["user"]["target"]["name"], "olga");
    assert_eq!(hit["vigil"]["user"]["role"], "analyst");
    assert_eq!(hit["vigil"]["user"]["previous_role"], "viewer");
    // Taken files are gone; nothing was refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&spool).unwrap().count() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let left: Vec<_> = std::fs::read_dir(&spool).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
