//! `vigil token`: create, list and revoke API tokens in a data dir's `meta.db`.
//!
//! A revocation takes effect on the server's next request with that token,
//! even while the server runs: the server reads the token row every time.

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

use super::DataArgs;

/// `vigil token …`
#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it once (only its hash is stored).
    Create {
        /// A name for whoever uses it (also the default `vigil.source` of its events).
        name: String,
        /// admin, analyst, viewer or ingest.
        #[arg(long)]
        role: String,
        /// Lifetime, e.g. 90m, 12h, 30d (default: no expiry).
        #[arg(long, value_name = "LIFETIME")]
        expires: Option<String>,
        /// Tie the token to a user: it stops working when the user is disabled.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Narrow the role to these scopes: ingest, search, read, respond,
        /// admin, comma-separated (default: everything the role allows).
        #[arg(long, value_name = "LIST")]
        scope: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List tokens (never their secrets).
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke a token by its id (from `vigil token list`).
    Revoke {
        /// Token id.
        id: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// Runs `vigil token …`.
pub fn run(a: TokenArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        TokenCommand::Create {
            name,
            role,
            expires,
            user,
            scope,
            data,
        } => {
            let scopes = scope
                .as_deref()
                .map(vigil_server::authz::Scope::parse_list)
                .transpose()?;
            if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
                bail!("token name must be 1-128 characters without control characters");
            }
            let role = vigil_server::authz::Role::parse(&role)?;
            let expires_at = match expires.as_deref() {
                Some(e) => Some(vigil_server::auth::expiry_from_now(
                    vigil_server::auth::parse_lifetime(e).map_err(anyhow::Error::msg)?,
                )),
                None => None,
            };
            let store = super::user::store(&data)?;
            if let Some(u) = &user {
                if store
                    .with_conn(|c| vigil_server::meta::get_user(c, u))?
                    .context("reading the user")?
                    .is_none()
                {
                    bail!("no user named {:?}", vigil_event::sanitize::display(u));
                }
            }
            let token = vigil_server::auth::generate_token();
            let id = store.add_scoped(
                &token,
                &name,
                role.as_str(),
                user.as_deref(),
                expires_at.clone(),
                scopes.as_deref(),
            )?;
            let mut record = super::user::rec("authn_token_created")
                .with("vigil.token.id", id.clone())
                .with("vigil.token.name", name.clone())
                .with("vigil.token.role", role.as_str())
                .with(
                    "vigil.token.scopes",
                    scopes
                        .as_deref()
                        .map_or_else(|| "all".to_owned(), vigil_server::authz::Scope::join),
                );
            if let Some(u) = &user {
                record = record.target(u.clone());
            }
            super::user::audit(&data, record)?;
            println!("id       {id}");
            println!("role     {role}");
            if let Some(s) = &scopes {
                println!("scopes   {}", vigil_server::authz::Scope::join(s));
            }
            if let Some(e) = expires_at {
                println!("expires  {e}");
            }
            println!("token (shown once; only its hash is stored):");
            println!("  {token}");
        }
        TokenCommand::List { json, data } => {
            let store = super::user::store(&data)?;
            let tokens = store
                .with_conn(vigil_server::meta::list_tokens)?
                .context("listing tokens")?;
            if !json {
                println!(
                    "{:<16} {:<24} {:<8} {:<8} {:<20} {:<31} LAST USED",
                    "ID", "NAME", "ROLE", "STATE", "SCOPES", "EXPIRES"
                );
            }
            for t in tokens {
                if json {
                    println!("{}", serde_json::to_string(&t)?);
                } else {
                    println!(
                        "{:<16} {:<24} {:<8} {:<8} {:<20} {:<31} {}",
                        t.id,
                        vigil_event::sanitize::display(&t.name),
                        t.role,
                        if t.revoked { "revoked" } else { "active" },
                        t.scopes.as_deref().unwrap_or("all"),
                        t.expires_at.as_deref().unwrap_or("never"),
                        t.last_used_at.as_deref().unwrap_or("-"),
                    );
                }
            }
        }
        TokenCommand::Revoke { id, data } => {
            let store = super::user::store(&data)?;
            let revoked = store
                .with_conn(|c| vigil_server::meta::revoke_token(c, &id))?
                .context("revoking the token")?;
            if !revoked {
                bail!(
                    "no active token with id {:?} (see vigil token list)",
                    vigil_event::sanitize::display(&id)
                );
            }
            super::user::audit(
                &data,
                super::user::rec("authn_token_revoked").with("vigil.token.id", id.clone()),
            )?;
            println!("token {id} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
