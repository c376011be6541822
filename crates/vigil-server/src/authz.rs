//! Roles and the authorization table: which role may call which route.
//!
//! [`TABLE`] is the single place that decides access. The HTTP middleware
//! looks every request up by method and route pattern (as written in the
//! router, e.g. `/api/v1/proof/{seq}`); a route with no row is refused for
//! everyone, so forgetting a row fails closed. To add a route, add one line
//! here next to its neighbours; the route walker test in `tests/auth.rs`
//! fails with the missing method and path when a served route has no row.

use std::fmt;

/// What a principal may do, coarsely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Everything, including users and tokens.
    Admin,
    /// Search, alerts, incidents, rules (read) and integrity checks.
    Analyst,
    /// Read-only access to stored events and proofs.
    Viewer,
    /// Sends events only.
    Ingest,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Analyst, Role::Viewer, Role::Ingest];

    /// The name used in the database, the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Viewer => "viewer",
            Role::Ingest => "ingest",
        }
    }

    /// Parses a role name.
    pub fn parse(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(vigil_event::sanitize::display(s).into_owned()))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (use admin, analyst, viewer or ingest)")]
pub struct UnknownRole(pub String);

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials (health probes, the login form).
    Public,
    /// Any authenticated principal, whatever its role.
    Authenticated,
    /// Only these roles.
    Roles(&'static [Role]),
}

impl Access {
    /// Whether a principal with `role` passes (`Public` passes everyone).
    pub fn allows(self, role: Role) -> bool {
        match self {
            Access::Public | Access::Authenticated => true,
            Access::Roles(rs) => rs.contains(&role),
        }
    }

    /// Text for docs: `public`, `authenticated` or a role list.
    pub fn describe(self) -> String {
        match self {
            Access::Public => "public".into(),
            Access::Authenticated => "authenticated".into(),
            Access::Roles(rs) => rs.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "),
        }
    }
}

/// What a token may be narrowed to, on top of its role. A token without
/// scopes may do everything its role allows; a token with scopes may only
/// call routes whose scope ([`scope_of`]) it holds. Sessions have no scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// `POST /api/v1/events`.
    Ingest,
    /// Search, export and tail.
    Search,
    /// Every other read (`GET`), and integrity checks.
    Read,
    /// Changes to alerts, suppressions, incidents, the blocklist, playbooks.
    Respond,
    /// Users, tokens, and any other change.
    Admin,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 5] = [
        Scope::Ingest,
        Scope::Search,
        Scope::Read,
        Scope::Respond,
        Scope::Admin,
    ];

    /// The name used in the database, the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Search => "search",
            Scope::Read => "read",
            Scope::Respond => "respond",
            Scope::Admin => "admin",
        }
    }

    /// Parses a scope name.
    pub fn parse(s: &str) -> Result<Scope, UnknownScope> {
        Scope::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| UnknownScope(vigil_event::sanitize::display(s).into_owned()))
    }

    /// Parses a comma-separated list (as stored and as given to the CLI);
    /// sorted, without duplicates, never empty.
    pub fn parse_list(s: &str) -> Result<Vec<Scope>, UnknownScope> {
        let mut out = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(Scope::parse)
            .collect::<Result<Vec<_>, _>>()?;
        out.sort();
        out.dedup();
        if out.is_empty() {
            return Err(UnknownScope(String::new()));
        }
        Ok(out)
    }

    /// The stored form of a list: names joined by commas.
    pub fn join(list: &[Scope]) -> String {
        list.iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A scope name that is not one of [`Scope::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown or empty scope {0:?} (use ingest, search, read, respond or admin, comma-separated)"
)]
pub struct UnknownScope(pub String);

/// Route families whose changes are incident response, not administration.
const RESPOND_PREFIXES: [&str; 5] = [
    "/api/v1/alerts",
    "/api/v1/suppressions",
    "/api/v1/incidents",
    "/api/v1/blocklist",
    "/api/v1/playbooks",
];

/// The scope a route needs; `None` for routes any authenticated caller may
/// use whatever its scopes (public routes and `/api/v1/auth/…`). Derived
/// from the method and path so that a new route is covered at once; a
/// change outside the known families needs `admin` (fail closed).
pub fn scope_of(method: &str, path: &str) -> Option<Scope> {
    let method = if method == "HEAD" { "GET" } else { method };
    if path.starts_with("/api/v1/auth/")
        || lookup(method, path).is_some_and(|r| r.access == Access::Public)
    {
        return None;
    }
    let family = |p: &str| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    Some(if family("/api/v1/events") {
        Scope::Ingest
    } else if family("/api/v1/search") || family("/api/v1/export") || family("/api/v1/tail") {
        Scope::Search
    } else if family("/api/v1/users") || family("/api/v1/tokens") {
        Scope::Admin
    } else if method == "GET" || (method == "POST" && path == "/api/v1/verify") {
        Scope::Read
    } else if RESPOND_PREFIXES.iter().any(|p| family(p)) {
        Scope::Respond
    } else {
        Scope::Admin
    })
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// HTTP method in upper case.
    pub method: &'static str,
    /// Route pattern exactly as given to the router.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
}

const fn row(method: &'static str, path: &'static str, access: Access) -> Rule {
    Rule {
        method,
        path,
        access,
    }
}

/// Admins only.
pub const ADMIN: Access = Access::Roles(&[Role::Admin]);
/// Admins and analysts.
pub const ANALYST: Access = Access::Roles(&[Role::Admin, Role::Analyst]);
/// Everyone who reads: admins, analysts and viewers.
pub const READ: Access = Access::Roles(&[Role::Admin, Role::Analyst, Role::Viewer]);
/// Event senders: admins and ingest principals.
pub const SEND: Access = Access::Roles(&[Role::Admin, Role::Ingest]);

/// The authorization table. One row per (method, route).
pub const TABLE: &[Rule] = &[
    row("GET", "/healthz", Access::Public),
    row("GET", "/readyz", Access::Public),
    row("POST", "/api/v1/auth/login", Access::Public),
    row("POST", "/api/v1/auth/logout", Access::Authenticated),
    row("GET", "/api/v1/auth/me", Access::Authenticated),
    row("POST", "/api/v1/auth/password", Access::Authenticated),
    row("POST", "/api/v1/events", SEND),
    row("GET", "/api/v1/search", READ),
    row("POST", "/api/v1/search", READ),
    // Listing and cancelling: the handlers show and stop only the caller's
    // own searches, unless the caller is an admin.
    row("GET", "/api/v1/search/running", READ),
    row("DELETE", "/api/v1/search/{id}", READ),
    row("POST", "/api/v1/search/{id}/cancel", READ),
    row("GET", "/api/v1/export", READ),
    row("POST", "/api/v1/export", READ),
    row("GET", "/api/v1/tail", READ),
    row("GET", "/api/v1/sources", READ),
    row("GET", "/api/v1/rules", READ),
    row("POST", "/api/v1/verify", ANALYST),
    row("GET", "/api/v1/proof/consistency", READ),
    row("GET", "/api/v1/proof/{seq}", READ),
    // Scrapers get a viewer token: metrics are operational, not events.
    row("GET", "/metrics", READ),
    row("GET", "/api/v1/users", ADMIN),
    row("POST", "/api/v1/users", ADMIN),
    row("PATCH", "/api/v1/users/{name}", ADMIN),
    row("GET", "/api/v1/tokens", ADMIN),
    row("POST", "/api/v1/tokens", ADMIN),
    row("DELETE", "/api/v1/tokens/{id}", ADMIN),
    row("GET", "/api/v1/alerts", READ),
    row("GET", "/api/v1/alerts/{id}", READ),
    row("POST", "/api/v1/alerts/{id}/ack", ANALYST),
    row("POST", "/api/v1/alerts/{id}/close", ANALYST),
    row("GET", "/api/v1/suppressions", READ),
    row("POST", "/api/v1/suppressions", ANALYST),
    row("DELETE", "/api/v1/suppressions/{id}", ANALYST),
    row("GET", "/api/v1/deliveries", READ),
    // Bouncers fetch the blocklist with a viewer token.
    row("GET", "/api/v1/blocklist", READ),
    row("POST", "/api/v1/blocklist", ANALYST),
    row("DELETE", "/api/v1/blocklist/{addr}", ANALYST),
    row("GET", "/api/v1/playbooks", READ),
    row("POST", "/api/v1/playbooks/{id}/dry-run", ANALYST),
    row("GET", "/api/v1/incidents", READ),
    row("POST", "/api/v1/incidents", ANALYST),
    row("GET", "/api/v1/incidents/metrics", READ),
    row("GET", "/api/v1/incidents/{id}", READ),
    row("PATCH", "/api/v1/incidents/{id}", ANALYST),
    row("POST", "/api/v1/incidents/{id}/notes", ANALYST),
    row("POST", "/api/v1/incidents/{id}/pins", ANALYST),
    row("POST", "/api/v1/incidents/{id}/alerts", ANALYST),
    row(
        "DELETE",
        "/api/v1/incidents/{id}/alerts/{alert_id}",
        ANALYST,
    ),
    row("GET", "/api/v1/incidents/{id}/export", READ),
];

/// The row for a method and route pattern; `None` means refuse.
pub fn lookup(method: &str, path: &str) -> Option<&'static Rule> {
    // HEAD is served by GET handlers, so it has GET's rule.
    let method = if method == "HEAD" { "GET" } else { method };
    TABLE.iter().find(|r| r.method == method && r.path == path)
}

/// The table as Markdown, as it appears in docs/SECURITY.md.
pub fn markdown() -> String {
    let mut out = String::from("| Method | Route | Access | Token scope |\n|---|---|---|---|\n");
    for r in TABLE {
        out.push_str(&format!(
            "| {} | `{}` | {} | {} |\n",
            r.method,
            r.path,
            r.access.describe(),
            scope_of(r.method, r.path).map_or("—", Scope::as_str)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_follow_the_route_families() {
        let cases = [
            ("GET", "/healthz", None),
            ("POST", "/api/v1/auth/login", None),
            ("POST", "/api/v1/auth/password", None),
            ("POST", "/api/v1/events", Some(Scope::Ingest)),
            ("POST", "/api/v1/search", Some(Scope::Search)),
            ("GET", "/api/v1/tail", Some(Scope::Search)),
            ("GET", "/api/v1/alerts", Some(Scope::Read)),
            ("HEAD", "/metrics", Some(Scope::Read)),
            ("POST", "/api/v1/verify", Some(Scope::Read)),
            ("POST", "/api/v1/alerts/{id}/ack", Some(Scope::Respond)),
            ("DELETE", "/api/v1/suppressions/{id}", Some(Scope::Respond)),
            ("GET", "/api/v1/users", Some(Scope::Admin)),
            ("DELETE", "/api/v1/tokens/{id}", Some(Scope::Admin)),
            // A change outside the known families needs admin.
            ("POST", "/api/v1/rules", Some(Scope::Admin)),
            ("POST", "/api/v1/alertsx", Some(Scope::Admin)),
        ];
        for (m, p, want) in cases {
            assert_eq!(scope_of(m, p), want, "{m} {p}");
        }
    }

    /// A token scoped to reading or searching cannot change stored state:
    /// every route it reaches with another method than GET is on this short
    /// list of requests that only ask, or stop the caller's own running
    /// search (`http::search::cancel` finds only the caller's). A new write
    /// route in a read family (say, saving a search under
    /// `/api/v1/search/…`) fails here until it gets a writing scope.
    #[test]
    fn read_and_search_scopes_reach_no_route_that_changes_state() {
        const ASKING: [(&str, &str); 5] = [
            ("POST", "/api/v1/search"),
            ("POST", "/api/v1/export"),
            ("POST", "/api/v1/verify"),
            ("DELETE", "/api/v1/search/{id}"),
            ("POST", "/api/v1/search/{id}/cancel"),
        ];
        for r in TABLE {
            let reading = matches!(
                scope_of(r.method, r.path),
                Some(Scope::Read | Scope::Search)
            );
            if reading && r.method != "GET" {
                assert!(
                    ASKING.contains(&(r.method, r.path)),
                    "{} {} is reachable with a read or search token",
                    r.method,
                    r.path
                );
            }
        }
    }

    #[test]
    fn scope_lists_parse_sorted_and_refuse_unknown_or_empty() {
        assert_eq!(
            Scope::parse_list("search, read,search").unwrap(),
            vec![Scope::Search, Scope::Read]
        );
        assert_eq!(Scope::join(&[Scope::Search, Scope::Read]), "search,read");
        assert!(Scope::parse_list("read,write")
            .unwrap_err()
            .to_string()
            .contains("\"write\""));
        assert!(Scope::parse_list(" , ").is_err());
    }

    #[test]
    fn no_duplicate_rows() {
        for (i, a) in TABLE.iter().enumerate() {
            for b in &TABLE[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {} has two rows",
                    a.method,
                    a.path
                );
            }
        }
    }

    #[test]
    fn rows_are_well_formed() {
        for r in TABLE {
            assert!(
                ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&r.method),
                "{r:?}"
            );
            assert!(r.path.starts_with('/'), "{r:?}");
            if let Access::Roles(rs) = r.access {
                assert!(!rs.is_empty(), "{r:?} admits nobody");
                // Administrators can do everything.
                assert!(rs.contains(&Role::Admin), "{r:?} excludes admin");
            }
        }
    }

    #[test]
    fn only_probes_and_login_are_public() {
        let public: Vec<_> = TABLE
            .iter()
            .filter(|r| r.access == Access::Public)
            .map(|r| r.path)
            .collect();
        assert_eq!(public, ["/healthz", "/readyz", "/api/v1/auth/login"]);
    }

    #[test]
    fn lookup_denies_unknown_and_maps_head() {
        assert!(lookup("GET", "/api/v1/nothing").is_none());
        assert!(lookup("DELETE", "/api/v1/search").is_none());
        assert_eq!(lookup("HEAD", "/healthz").unwrap().access, Access::Public);
        assert!(!lookup("GET", "/metrics")
            .unwrap()
            .access
            .allows(Role::Ingest));
        assert!(!lookup("GET", "/api/v1/users")
            .unwrap()
            .access
            .allows(Role::Analyst));
        assert!(lookup("POST", "/api/v1/events")
            .unwrap()
            .access
            .allows(Role::Ingest));
        assert!(!lookup("GET", "/api/v1/search")
            .unwrap()
            .access
            .allows(Role::Ingest));
    }

    #[test]
    fn roles_parse() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
        }
        let e = Role::parse("root\n").unwrap_err().to_string();
        assert!(e.contains("unknown role") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn security_doc_has_the_table() {
        let doc = include_str!("../../../docs/SECURITY.md");
        assert!(
            doc.contains(&markdown()),
            "docs/SECURITY.md must contain the authorization table exactly as authz::markdown() prints it:\n{}",
            markdown()
        );
    }
}
