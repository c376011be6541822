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
];

/// The row for a method and route pattern; `None` means refuse.
pub fn lookup(method: &str, path: &str) -> Option<&'static Rule> {
    // HEAD is served by GET handlers, so it has GET's rule.
    let method = if method == "HEAD" { "GET" } else { method };
    TABLE.iter().find(|r| r.method == method && r.path == path)
}

/// The table as Markdown, as it appears in docs/SECURITY.md.
pub fn markdown() -> String {
    let mut out = String::from("| Method | Route | Access |\n|---|---|---|\n");
    for r in TABLE {
        out.push_str(&format!(
            "| {} | `{}` | {} |\n",
            r.method,
            r.path,
            r.access.describe()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
